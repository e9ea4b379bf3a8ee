"""The edge runtime: LiteRT's interpreter (tflite-runtime on Coral hosts), and artifact accuracy."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from helpers.deploy.inspection import read_model

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def runtime_name() -> str:
    """'tflite_runtime' where it is importable (Coral hosts), else 'litert' (ai-edge-litert)."""
    try:
        import tflite_runtime.interpreter  # noqa: F401

        return "tflite_runtime"
    except ImportError:
        return "litert"


def _interpreter_module():
    if runtime_name() == "tflite_runtime":
        import tflite_runtime.interpreter as mod
    else:
        from ai_edge_litert import interpreter as mod
    return mod


def make_interpreter(path: str | Path, num_threads: int = 1, delegate_library: str | None = None,
                     default_delegates: bool = True):
    """An allocated interpreter for ``path``.

    ``num_threads`` defaults to 1 (multi-threaded non-XNNPACK int8 kernels were 10-20x slower on the
    2-vCPU machines). ``default_delegates=False`` disables XNNPACK to see the model's real ops.
    ``delegate_library`` (e.g. 'libedgetpu.so.1') loads an external delegate such as the Edge TPU's.
    """
    read_model(path)  # clear error for a missing or non-TFLite file
    mod = _interpreter_module()
    kwargs = {"model_path": str(path), "num_threads": int(num_threads)}
    if delegate_library:
        kwargs["experimental_delegates"] = [mod.load_delegate(delegate_library)]
    if not default_delegates:
        kwargs["experimental_op_resolver_type"] = mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    from helpers.core.quiet import native_stderr_silenced

    with native_stderr_silenced():  # "INFO: Created TensorFlow Lite XNNPACK delegate" on every interpreter
        interp = mod.Interpreter(**kwargs)
        interp.allocate_tensors()
    return interp


class TFLiteClassifier:
    """Call a .tflite classifier on NCHW float images; inputs are quantised with the model's own scale."""

    def __init__(self, path: str | Path, num_threads: int = 1, delegate_library: str | None = None):
        self.path = Path(path)
        self.interp = make_interpreter(path, num_threads, delegate_library)
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]
        self.in_scale, self.in_zero = self.inp["quantization"]
        self.out_scale, self.out_zero = self.out["quantization"]

    def quantize_input(self, x_nchw: torch.Tensor) -> np.ndarray:
        """NCHW float -> the model's NHWC input array (int8/uint8 quantised when the model is)."""
        x = x_nchw.permute(0, 2, 3, 1).numpy()
        dtype = self.inp["dtype"]
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / self.in_scale + self.in_zero), info.min, info.max)
        return x.astype(dtype)

    def logits(self, x_nchw: torch.Tensor) -> np.ndarray:
        """Float logits for a batch, one interpreter call per image (the exported graph is batch 1)."""
        rows = []
        for i in range(x_nchw.shape[0]):
            self.interp.set_tensor(self.inp["index"], self.quantize_input(x_nchw[i:i + 1]))
            self.interp.invoke()
            y = self.interp.get_tensor(self.out["index"]).astype(np.float32)
            if self.out_scale:
                y = (y - self.out_zero) * self.out_scale
            rows.append(y.reshape(-1))
        return np.stack(rows)


def evaluate_tflite(path: str | Path, ds, limit: int | None = None, num_threads: int = 1) -> dict:
    """Accuracy of the deployed artifact on ``ds`` (first ``limit`` images): accuracy, predictions, n."""
    clf = TFLiteClassifier(path, num_threads)
    n = len(ds) if limit is None else min(limit, len(ds))
    preds = np.concatenate([clf.logits(ds.images[s:min(s + 256, n)]).argmax(1) for s in range(0, n, 256)])
    targets = ds.targets[:n].numpy()
    return {"accuracy": float((preds == targets).mean()), "predictions": preds, "n": n}


@torch.no_grad()
def agreement(path: str | Path, model: torch.nn.Module, ds, limit: int = 500) -> dict:
    """How closely the artifact follows the PyTorch model: top-1 agreement and logit error on ``limit`` images."""
    clf = TFLiteClassifier(path)
    x = ds.images[:limit]
    lite = clf.logits(x)
    ref = model.eval().cpu()(x).numpy()
    return {"top1_agreement": float((lite.argmax(1) == ref.argmax(1)).mean()),
            "max_abs_logit_error": float(np.abs(lite - ref).max()),
            "mean_abs_logit_error": float(np.abs(lite - ref).mean()), "n": int(len(x))}
