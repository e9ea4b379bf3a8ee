"""Export, inspection, artifact accuracy and bad inputs on the export path."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from helpers.deploy.export import ExportError, export_tflite
from helpers.deploy.inspection import NotTFLiteError, constant_values, inspect_tflite, is_full_integer
from helpers.networks.models import build_model
from helpers.deploy.runtime import TFLiteClassifier

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("exports")]  # one worker makes baseline_exports


@pytest.fixture(scope="module")
def exported(baseline_exports):
    models, files, out, _ = baseline_exports
    return models, files, out


@pytest.fixture(scope="module")
def calib(baseline_exports):
    return baseline_exports[3]


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_int8_is_full_integer(exported, name):
    _, files, _ = exported
    info = inspect_tflite(files[name, "int8"])
    assert info.full_integer and is_full_integer(files[name, "int8"])
    assert info.input_dtype == "INT8" and info.output_dtype == "INT8"
    assert info.input_shape == [1, 32, 32, 1]  # channel-last input: no TRANSPOSE
    assert not info.flagged_ops and not info.float_tensors
    assert info.ops["CONV_2D"] >= 10
    # per-channel int8 weights: the int8 file is about a quarter of the fp32 one
    assert info.parameter_bytes < 0.35 * inspect_tflite(files[name, "fp32"]).parameter_bytes


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_fp32_artifact_matches_pytorch(exported, name):
    models, files, _ = exported
    x = torch.randn(3, 1, 32, 32)
    lite = TFLiteClassifier(files[name, "fp32"]).logits(x)
    with torch.no_grad():
        ref = models[name](x).numpy()
    np.testing.assert_allclose(lite, ref, atol=2e-3, rtol=1e-3)


def test_int8_follows_pytorch(exported):
    models, files, _ = exported
    x = torch.randn(16, 1, 32, 32)
    lite = TFLiteClassifier(files["resnet18", "int8"]).logits(x)
    with torch.no_grad():
        ref = models["resnet18"](x).numpy()
    assert np.corrcoef(lite.ravel(), ref.ravel())[0, 1] > 0.95


def test_fp16_and_dynamic_are_references_not_full_integer(exported, calib, capfd):
    models, files, out = exported
    fp32_size = inspect_tflite(files["resnet18", "fp32"]).parameter_bytes
    capfd.readouterr()  # ResNet-18, not MobileNetV2: a third of the conversion time, the same checks
    fp16 = inspect_tflite(export_tflite(models["resnet18"], out / "r_fp16.tflite", "fp16"))
    dyn = inspect_tflite(export_tflite(models["resnet18"], out / "r_dyn.tflite", "dynamic"))
    printed = capfd.readouterr().out
    assert "Quantization Ratio" not in printed, f"ai-edge-quantizer's report reached the output: {printed}"
    assert not fp16.full_integer and not dyn.full_integer
    assert fp16.ops.get("DEQUANTIZE", 0) > 0 and 0.4 < fp16.parameter_bytes / fp32_size < 0.6
    assert dyn.parameter_bytes < 0.35 * fp32_size and dyn.input_dtype == "FLOAT32"


def test_int8_weights_are_readable(exported):
    _, files, _ = exported
    weights = constant_values(files["resnet18", "int8"], "CONV_2D")
    assert weights and all(w.dtype == np.int8 for w in weights)


class ChannelShuffle(nn.Module):
    """A ShuffleNet-style block: the reshape/transpose becomes a TRANSPOSE op the Edge TPU cannot map."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        n, c, h, w = x.shape
        x = x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        return self.fc(x.mean((2, 3)))


def test_channel_shuffle_exports_and_is_named(tmp_path):
    from helpers.deploy.edgetpu import offline_report

    p = export_tflite(ChannelShuffle().eval(), tmp_path / "shuffle.tflite", "int8", [torch.randn(4, 1, 8, 8)],
                      input_size=8)
    info = inspect_tflite(p)
    assert "TRANSPOSE" in info.flagged_ops and info.full_integer  # an integer transpose is integer
    rep = offline_report(p)
    cpu = [q for q in rep.placement if q["device"] == "cpu"]
    assert cpu and cpu[0]["reason_kind"] == "shape/limit"  # the shuffle's 5-D tensors, not its dtype
    assert "only the 3 innermost dimensions may exceed 1" in rep.first_cpu_reason


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        return y[y > 0].sum().reshape(1, 1)  # a data-dependent shape: strict export refuses it


def test_failed_export_names_the_cause_and_leaves_nothing(tmp_path):
    with pytest.raises(ExportError, match="DataDependent as fp32 failed"):
        export_tflite(DataDependent(), tmp_path / "bad.tflite", "fp32", input_size=8)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="calibration"):
        export_tflite(build_model("resnet18", 10, 1, 0.25), tmp_path / "x.tflite", "int8")
    with pytest.raises(ValueError, match="unknown export mode 'int4'"):
        export_tflite(build_model("resnet18", 10, 1, 0.25), tmp_path / "x.tflite", "int4")


def test_missing_and_non_tflite_files(tmp_path):
    with pytest.raises(NotTFLiteError, match="does not exist"):
        inspect_tflite(tmp_path / "nope.tflite")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(NotTFLiteError, match="not a TensorFlow Lite model"):
        inspect_tflite(junk)
    run = subprocess.run([sys.executable, "-m", "helpers", "inspect", str(junk)], capture_output=True, text=True)
    assert run.returncode == 2 and "not a TensorFlow Lite model" in run.stderr


def test_cli_inspect_bench_edgetpu_json(exported):
    _, files, _ = exported
    model = str(files["mobilenet_v2", "int8"])
    out = json.loads(subprocess.run([sys.executable, "-m", "helpers", "inspect", model, "--json"],
                                    capture_output=True, text=True, check=True).stdout)
    assert out["full_integer"] is True and out["ops"]["DEPTHWISE_CONV_2D"] > 5 and out["size_bytes"] > 1000
    out = json.loads(subprocess.run([sys.executable, "-m", "helpers", "bench", model, "--json", "--repeats", "5"],
                                    capture_output=True, text=True, check=True).stdout)
    assert out["median_ms"] > 0 and out["iqr_ms"] >= 0 and "cv" in out and out["threads"] == 1
    out = json.loads(subprocess.run([sys.executable, "-m", "helpers", "edgetpu", model, "--json"],
                                    capture_output=True, text=True, check=True).stdout)
    assert out["first_cpu_op"] is None and out["parameter_bytes"] > 0 and out["source"] == "offline"
    tpu = subprocess.run([sys.executable, "-m", "helpers", "bench", model, "--delegate", "edgetpu"], capture_output=True,
                         text=True)  # no Edge TPU here: one sentence, exit 2
    assert tpu.returncode == 2 and "--delegate edgetpu: no Edge TPU answers here" in tpu.stderr, tpu.stderr
