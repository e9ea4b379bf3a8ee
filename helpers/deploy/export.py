"""PyTorch -> TensorFlow Lite export with litert-torch: fp32, full-integer int8, fp16 and dynamic-range int8.

The int8 recipe is the one that yields full-integer models (see README, "Export"): channel-last input
(an NCHW input makes the converter insert a TRANSPOSE, which the Edge TPU cannot map), strict
``torch.export`` (non-strict export loses op provenance and leaves residual ADDs in float), PT2E
quantisation with symmetric per-channel weights, calibration one image per call (the exported
graph is specialised to batch 1).
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from helpers.deploy.int8_recipe import channel_last_program, quantizer  # noqa: F401  (part of this module's API)
from helpers.core.io import atomic_path

MODES = ("fp32", "int8", "fp16", "dynamic")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")  # one progress line per conversion step otherwise


class ExportError(RuntimeError):
    """The converter could not turn the model into a .tflite; the message names the model, mode and cause."""


def _first_conv_channels(model: nn.Module) -> int:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    raise ExportError(f"{type(model).__name__} has no Conv2d; pass in_channels explicitly")


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1).contiguous()


def _single_images(batches: Iterable[torch.Tensor]):
    for b in batches:
        b = b if b.ndim == 4 else b.unsqueeze(0)
        for i in range(b.shape[0]):
            yield b[i:i + 1].float()


def _convert(module: nn.Module, sample: torch.Tensor, quant=None) -> bytes:
    from helpers.core.quiet import load_litert_torch

    litert_torch = load_litert_torch()
    from litert_torch.quantize.quant_config import QuantConfig

    cfg = QuantConfig(pt2e_quantizer=quant) if quant is not None else None
    edge = litert_torch.convert(module, (sample,), quant_config=cfg)
    return edge.model_content()


def _post_quantize(float_model: bytes, mode: str) -> bytes:
    """fp16 weights or dynamic-range int8 with ai-edge-quantizer on top of the fp32 flatbuffer."""
    from ai_edge_quantizer import qtyping, quantizer as aeq, recipe

    q = aeq.Quantizer(float_model)
    if mode == "dynamic":
        q.load_quantization_recipe(recipe.dynamic_wi8_afp32())
    else:
        for op in (qtyping.TFLOperationName.CONV_2D, qtyping.TFLOperationName.DEPTHWISE_CONV_2D,
                   qtyping.TFLOperationName.FULLY_CONNECTED):
            q.update_quantization_recipe(
                regex=".*", operation_name=op, algorithm_key=aeq.AlgorithmName.FLOAT_CASTING,
                op_config=qtyping.OpQuantizationConfig(
                    weight_tensor_config=qtyping.TensorQuantizationConfig(num_bits=16,
                                                                          dtype=qtyping.TensorDataType.FLOAT),
                    compute_precision=qtyping.ComputePrecision.FLOAT, explicit_dequantize=True))
    return bytes(q.quantize().quantized_model)


def export_tflite(model: nn.Module, out_path: str | Path, mode: str = "int8",
                  calibration_batches: Iterable[torch.Tensor] | None = None, input_size: int = 32,
                  in_channels: int | None = None, per_channel: bool = True,
                  prepared_qat: nn.Module | None = None, qat_quantizer=None) -> Path:
    """Export ``model`` to ``out_path`` as a .tflite in ``mode`` ('fp32', 'int8', 'fp16', 'dynamic').

    ``calibration_batches`` is an iterable of NCHW float tensors (any batch size; fed one image per call) and
    is required for 'int8'. ``per_channel`` chooses per-channel (default) or per-tensor int8 weights.
    ``prepared_qat`` is a PT2E QAT-prepared module (see helpers.compress) converted instead of calibrating,
    with the ``qat_quantizer`` that prepared it.
    The file is written to a temporary name and renamed, so a failed export leaves nothing behind.
    Raises ValueError for a bad mode or missing calibration, ExportError when conversion fails.
    """
    if mode not in MODES:
        raise ValueError(f"unknown export mode {mode!r}; choose one of {', '.join(MODES)}")
    out_path = Path(out_path)
    if out_path.suffix != ".tflite":
        raise ValueError(f"output path {out_path} must end in .tflite")
    model = copy.deepcopy(model).cpu().eval()
    in_channels = in_channels or _first_conv_channels(model)
    logging.getLogger("absl").setLevel(logging.ERROR)
    try:
        if mode == "int8":
            from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

            quant = qat_quantizer if prepared_qat is not None and qat_quantizer is not None else quantizer(per_channel)
            if prepared_qat is not None:
                prepared, sample = prepared_qat, torch.zeros(1, input_size, input_size, in_channels)
            else:
                if calibration_batches is None:
                    raise ValueError("int8 export needs calibration batches (an iterable of NCHW float tensors)")
                program, sample = channel_last_program(model, input_size, in_channels)
                prepared = prepare_pt2e(program, quant)
                seen = 0
                with torch.no_grad():
                    for img in _single_images(calibration_batches):
                        prepared(_nhwc(img))
                        seen += 1
                if seen == 0:
                    raise ValueError("int8 export got an empty calibration set; pass at least one image")
            flat = _convert(convert_pt2e(prepared, fold_quantize=False), sample, quant)
        else:
            program, sample = channel_last_program(model, input_size, in_channels)
            flat = _convert(program, sample)  # exported modules refuse .eval(); they were traced in eval mode
            if mode in ("fp16", "dynamic"):
                flat = _post_quantize(flat, mode)
    except ValueError:
        raise
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else exc.__class__.__name__
        raise ExportError(f"exporting {type(model).__name__} as {mode} failed: {msg}") from exc
    with atomic_path(out_path) as tmp:
        tmp.write_bytes(flat)
    return out_path
