"""Edge TPU: compiler report parsing, a compiler that fails, and the offline per-op placement on exports and on
hand-written graphs (float tail, requantisation, an unsupported op at the input, a large upsample beside a side
branch, a compiled model, malformed files)."""

import os
import stat
import subprocess
import sys

import pytest
import torch

from helpers.deploy import edgetpu
from helpers.deploy.edgetpu import EdgeTPUError, offline_report, parse_compiler_report
from helpers.deploy.export import export_tflite
from helpers.deploy.inspection import inspect_tflite
from helpers.networks.models import build_model
from tflite_graphs import act, build, weights

REPORT = """Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 542 ms.

Input model: model.tflite
Input size: 4.04MiB
Output model: model_edgetpu.tflite
Output size: 4.13MiB
On-chip memory used for caching model parameters: 604.50KiB
On-chip memory remaining for caching model parameters: 511.50KiB
Off-chip memory used for streaming uncached model parameters: 3.45MiB
Number of Edge TPU subgraphs: 1
Total number of operations: 50
Operation log: model_edgetpu.log

Number of operations that will run on Edge TPU: 49
Number of operations that will run on CPU: 1

Operator                       Count      Status

CONV_2D                        35         Mapped to Edge TPU
ADD                            10         Mapped to Edge TPU
MEAN                           1          Mapped to Edge TPU
FULLY_CONNECTED                1          Mapped to Edge TPU
PAD                            2          Mapped to Edge TPU
PADV2                          1          Operation not supported
"""


def test_parse_documented_report():
    r = parse_compiler_report(REPORT)
    assert r.compiler_version == "16.0.384591198"
    assert r.on_chip_bytes == int(604.5 * 1024) and r.on_chip_remaining_bytes == int(511.5 * 1024)
    assert r.off_chip_bytes == int(round(3.45 * 1024 ** 2))
    assert (r.subgraphs, r.total_ops, r.tpu_ops, r.cpu_ops) == (1, 50, 49, 1)
    assert r.first_cpu_op == "PADV2" and r.first_cpu_reason == "Operation not supported"
    assert [o["count"] for o in r.operators] == [35, 10, 1, 1, 2, 1]


def test_parse_rejects_a_truncated_report():
    with pytest.raises(ValueError, match="Number of Edge TPU subgraphs"):
        parse_compiler_report(REPORT.replace("Number of Edge TPU subgraphs: 1\n", ""))


@pytest.fixture(scope="module")
def int8_and_fp32(baseline_exports):
    """MobileNetV2 x0.25 as int8 and fp32 (the session's baseline exports, shared with the export tests)."""
    files = baseline_exports[1]
    return files["mobilenet_v2", "int8"], files["mobilenet_v2", "fp32"]


def _fake_compiler(tmp_path, monkeypatch, body: str):
    script = tmp_path / "bin" / "edgetpu_compiler"
    script.parent.mkdir(exist_ok=True)
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.slow
@pytest.mark.xdist_group("exports")  # beside the export tests: baseline_exports made once
def test_compiler_report_is_parsed(int8_and_fp32, tmp_path, monkeypatch):
    _fake_compiler(tmp_path, monkeypatch, f"cat <<'EOF'\n{REPORT}EOF\n")
    r = edgetpu.report(int8_and_fp32[0], tmp_path / "out")
    assert r.source == "compiler" and r.cpu_ops == 1 and r.compiled_model.endswith("mobilenet_v2_int8_edgetpu.tflite")


@pytest.mark.slow
@pytest.mark.xdist_group("exports")  # beside the export tests: baseline_exports made once
def test_compiler_failure_is_reported(int8_and_fp32, tmp_path, monkeypatch):
    _fake_compiler(tmp_path, monkeypatch, "echo 'Compilation failed due to large activation tensors' >&2; exit 1\n")
    with pytest.raises(EdgeTPUError, match="exit 1.*large activation tensors"):
        edgetpu.compile_model(int8_and_fp32[0], tmp_path / "out")


@pytest.mark.slow
@pytest.mark.xdist_group("exports")  # beside the export tests: baseline_exports made once
def test_a_float_model_is_placed_on_the_cpu_not_refused(int8_and_fp32):
    r = offline_report(int8_and_fp32[1])
    assert r.tpu_ops == 0 and r.cpu_ops == r.total_ops > 50 and r.subgraphs == 0
    assert {p["reason_kind"] for p in r.placement} <= {"float tensor", "not supported"}
    run = subprocess.run([sys.executable, "-m", "helpers", "edgetpu", str(int8_and_fp32[1])], capture_output=True,
                         text=True)
    assert run.returncode == 0 and "float tensor" in run.stdout


@pytest.mark.slow
@pytest.mark.xdist_group("exports")  # beside the export tests: baseline_exports made once
def test_offline_report_maps_the_whole_baseline(int8_and_fp32):
    r = offline_report(int8_and_fp32[0])
    assert r.first_cpu_op is None and r.cpu_ops == 0 and r.tpu_ops == r.total_ops > 50
    assert r.off_chip_bytes == 0 and r.on_chip_bytes == r.parameter_bytes > 0
    assert [p["index"] for p in r.placement] == list(range(r.total_ops))
    assert {p["device"] for p in r.placement} == {"edgetpu"}


@pytest.mark.slow
def test_a_large_upsample_in_an_export_leaves_it_and_what_follows_on_the_cpu(tmp_path):
    """A litert-torch int8 export with a global-pool branch upsampled 1x1 -> 33x33 beside a conv branch."""
    import torch.nn.functional as F

    class Upsample(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 1), torch.nn.Conv2d(8, 4, 1)

        def forward(self, x):
            y = torch.relu(self.a(x))
            pooled = F.interpolate(y.mean((2, 3), keepdim=True), size=(33, 33), mode="bilinear", align_corners=False)
            return self.c(torch.relu(self.b(y)) + pooled)

    torch.manual_seed(0)
    path = export_tflite(Upsample().eval(), tmp_path / "up.tflite", "int8", [torch.randn(2, 1, 33, 33)], input_size=33,
                         in_channels=1)
    r = offline_report(path)
    dev = {p["op"]: p for p in r.placement}
    resize = [p for p in r.placement if p["op"].startswith("RESIZE")]
    assert len(resize) == 1 and resize[0]["device"] == "cpu" and "factor 33 > 16" in resize[0]["reason"], r.placement
    k = resize[0]["index"]
    assert all(p["device"] == "edgetpu" for p in r.placement if p["index"] < k)
    assert r.placement[-1]["device"] == "cpu" and r.placement[-1]["reason_kind"] == "after the partition point"
    assert r.first_cpu_op == resize[0]["op"] and dev


# ---- hand-written graphs: each asserts the exact placement -------------------------------------------
def _devices(path):
    return [(p["op"], p["device"], p.get("reason_kind")) for p in offline_report(path).placement]


def _conv(name_in, name_out, tensors, k):
    tensors[f"w{k}"], tensors[f"b{k}"] = weights((4, 1, 1, 4)), weights((4,), "INT32")
    return ("CONV_2D", [name_in, f"w{k}", f"b{k}"], [name_out])


def test_a_float_tail_runs_on_the_cpu_and_the_integer_backbone_is_mapped(tmp_path):
    t = {"x": act("UINT8"), "y": act("UINT8"), "f": act("FLOAT32"), "z": act("FLOAT32")}
    ops = [_conv("x", "y", t, 0), ("DEQUANTIZE", ["y"], ["f"]), ("LOGISTIC", ["f"], ["z"])]
    path = build(tmp_path / "tail.tflite", t, ops, ["x"], ["z"])
    assert _devices(path) == [("CONV_2D", "edgetpu", None), ("DEQUANTIZE", "cpu", "not supported"),
                              ("LOGISTIC", "cpu", "float tensor")]
    info = inspect_tflite(path)
    assert not info.full_integer and info.float_tensors == ["f", "z"]


def test_integer_requantisation_and_int16_are_integer(tmp_path):
    t = {"x": act("INT8"), "u": act("UINT8"), "y": act("UINT8")}
    path = build(tmp_path / "requant.tflite", t, [("QUANTIZE", ["x"], ["u"]), _conv("u", "y", t, 0)], ["x"], ["y"])
    assert _devices(path) == [("QUANTIZE", "edgetpu", None), ("CONV_2D", "edgetpu", None)]
    assert inspect_tflite(path).full_integer and inspect_tflite(path).flagged_ops == {"QUANTIZE": 1}
    # a small integer LSTM-style cell: int8 in, int16 inside, int8 out; all 6 ops mapped
    t = {"x": act("INT8", (1, 16)), "h": act("INT16", (1, 16)), "w": weights((16, 16), "INT8"),
         "b": weights((16,), "INT32"), "g": act("INT16", (1, 16)), "s": act("INT16", (1, 16)),
         "m": act("INT16", (1, 16)), "a": act("INT16", (1, 16)), "o": act("INT8", (1, 16))}
    ops = [("QUANTIZE", ["x"], ["h"]), ("FULLY_CONNECTED", ["h", "w", "b"], ["g"]), ("LOGISTIC", ["g"], ["s"]),
           ("MUL", ["s", "h"], ["m"]), ("ADD", ["m", "h"], ["a"]), ("QUANTIZE", ["a"], ["o"])]
    path = build(tmp_path / "lstm.tflite", t, ops, ["x"], ["o"])
    r = offline_report(path)
    assert (r.tpu_ops, r.cpu_ops) == (6, 0) and inspect_tflite(path).full_integer


def test_an_unsupported_op_at_the_input_stays_on_the_cpu_and_the_rest_is_mapped(tmp_path):
    t = {"x": act("UINT8"), "c": act("INT8"), "y": act("INT8"), "z": act("INT8"), "q": act("INT8", (1, 8, 8, 8))}
    ops = [("CAST", ["x"], ["c"]), _conv("c", "y", t, 0), ("TILE", ["y", "m"], ["q"]), ("RELU", ["q"], ["z"])]
    t["m"] = weights((4,), "INT32")
    path = build(tmp_path / "cast.tflite", t, ops, ["x"], ["z"])
    assert _devices(path) == [("CAST", "cpu", "not supported"), ("CONV_2D", "edgetpu", None),
                              ("TILE", "edgetpu", None), ("RELU", "edgetpu", None)]
    r = offline_report(path)
    assert r.first_cpu_op == "CAST" and (r.tpu_ops, r.cpu_ops) == (3, 1)


def test_the_partition_follows_the_graph_not_the_file_order(tmp_path):
    """A pooled branch upsampled 1x1 -> 33x33 sits before a side branch in the file: the side branch is mapped
    (it does not depend on the resize), the concatenation and what follows it run on the CPU."""
    t = {"x": act(shape=(1, 33, 33, 4)), "a": act(shape=(1, 33, 33, 4)), "axes": ("INT32", [2], [1, 2]),
         "p": act(shape=(1, 1, 1, 4)), "size": ("INT32", [2], [33, 33]), "r": act(shape=(1, 33, 33, 4)),
         "s": act(shape=(1, 33, 33, 4)), "c": act(shape=(1, 33, 33, 8)), "o": act(shape=(1, 33, 33, 4))}
    ops = [_conv("x", "a", t, 0), ("MEAN", ["a", "axes"], ["p"]), ("RESIZE_BILINEAR", ["p", "size"], ["r"]),
           _conv("a", "s", t, 1), ("CONCATENATION", ["r", "s"], ["c"], {"axis": 3}), _conv("c", "o", t, 2)]
    path = build(tmp_path / "aspp.tflite", t, ops, ["x"], ["o"])
    assert _devices(path) == [("CONV_2D", "edgetpu", None), ("MEAN", "edgetpu", None),
                              ("RESIZE_BILINEAR", "cpu", "shape/limit"), ("CONV_2D", "edgetpu", None),
                              ("CONCATENATION", "cpu", "after the partition point"),
                              ("CONV_2D", "cpu", "after the partition point")]
    placed = offline_report(path).placement
    assert "after op 2 (RESIZE_BILINEAR)" in placed[4]["reason"]
    # a 2x upsample stays mapped
    t["p"], t["size"] = act(shape=(1, 17, 17, 4)), ("INT32", [2], [33, 33])
    assert {d for _, d, _ in _devices(build(tmp_path / "x2.tflite", t, ops, ["x"], ["o"]))} == {"edgetpu"}


@pytest.mark.parametrize("op,options,reason", [
    ("MAX_POOL_2D", {"fusedActivationFunction": 1}, "fused activation"),
    ("PACK", {"axis": 0}, "packing in the batch dimension"),
    ("STRIDED_SLICE", {"ellipsisMask": 1}, "an ellipsis or new-axis mask"),
])
def test_documented_limits_are_applied(tmp_path, op, options, reason):
    t = {"x": act(), "y": act(), "b": ("INT32", [4], [0, 0, 0, 0]), "e": ("INT32", [4], [1, 8, 8, 4]),
         "s": ("INT32", [4], [1, 1, 1, 1])}
    ins = ["x", "b", "e", "s"] if op == "STRIDED_SLICE" else ["x"]
    r = offline_report(build(tmp_path / "m.tflite", t, [(op, ins, ["y"], options)], ["x"], ["y"]))
    assert r.placement[0]["device"] == "cpu" and reason in r.placement[0]["reason"]


def test_a_dynamic_shape_puts_its_op_on_the_cpu(tmp_path):
    t = {"x": act(), "y": act(), "z": act()}
    path = build(tmp_path / "dyn.tflite", t, [("RELU", ["x"], ["y"]), ("RELU6", ["y"], ["z"])], ["x"], ["z"],
                 signatures={"z": [-1, 8, 8, 4]})
    assert _devices(path) == [("RELU", "edgetpu", None), ("RELU6", "cpu", "dynamic shape")]


def test_a_compiled_model_is_recognised_and_never_recompiled(tmp_path, monkeypatch):
    t = {"x": act("UINT8"), "y": act("UINT8", (1, 10)), "f": act("FLOAT32", (1, 10)), "z": act("FLOAT32", (1, 10))}
    ops = [("CUSTOM:edgetpu-custom-op", ["x"], ["y"]), ("DEQUANTIZE", ["y"], ["f"]), ("SOFTMAX", ["f"], ["z"])]
    path = build(tmp_path / "m_edgetpu.tflite", t, ops, ["x"], ["z"], custom_options=b"\x01" * 5000)
    info = inspect_tflite(path)
    assert info.compiled_for_edgetpu and info.parameter_bytes >= 5000
    r = offline_report(path)
    assert r.already_compiled and r.source == "compiled model" and (r.tpu_ops, r.cpu_ops) == (1, 2)
    assert [p["device"] for p in r.placement] == ["edgetpu", "cpu", "cpu"] and r.parameter_bytes >= 5000
    _fake_compiler(tmp_path, monkeypatch, "echo compiled >&2; exit 0\n")
    assert edgetpu.report(path).source == "compiled model"  # read, not compiled again
    with pytest.raises(EdgeTPUError, match="already compiled for the Edge TPU"):
        edgetpu.compile_model(path, tmp_path / "out")


@pytest.mark.slow  # seconds, not milliseconds: kept out of `make check`
@pytest.mark.parametrize("kind,answer", [
    ("no_buffers", "tensor 0 refers to buffer 0, the model has 0"),
    ("bad_tensor", "operator 0 refers to tensor 99, the subgraph has 2"),
])
def test_malformed_models_get_one_sentence_and_exit_2(tmp_path, kind, answer):
    from helpers.deploy.inspection import NotTFLiteError

    t = {"x": act(), "y": act()}
    ops = [("RELU", [99 if kind == "bad_tensor" else "x"], ["y"])]
    path = build(tmp_path / f"{kind}.tflite", t, ops, ["x"], ["y"], no_buffers=kind == "no_buffers")
    with pytest.raises(NotTFLiteError, match=answer):
        inspect_tflite(path)
    for cmd in ("inspect", "edgetpu", "bench"):
        run = subprocess.run([sys.executable, "-m", "helpers", cmd, str(path)], capture_output=True, text=True)
        assert run.returncode == 2 and answer in run.stderr and "Traceback" not in run.stderr, (cmd, run.stderr)
        assert len(run.stderr.strip().splitlines()) == 1


def test_the_rules_are_data_with_sources():
    from helpers.deploy.edgetpu_rules import COMPILER_VERSION, OPS

    assert COMPILER_VERSION.startswith("16.0") and "PADV2" not in OPS and "DEQUANTIZE" not in OPS
    assert OPS["CONV_2D"][1].startswith("coral.ai/docs") and "published" in OPS["TILE"][1]
    assert all(source for _, source in OPS.values())


def test_prefix_latency_refuses_without_a_device_and_differences_prefix_times(monkeypatch, tmp_path):
    """Per-block Edge TPU cost: one sentence without compiler and device; with them (stood in for here), block k's
    cost is the prefix time of blocks 0..k minus that of blocks 0..k-1."""
    from types import SimpleNamespace

    import torch

    from helpers.deploy import edgetpu, export_cache, latency
    from helpers.deploy.layers import blocks
    from helpers.networks.models import build_model

    model = build_model("resnet18", 10, 1, 0.25).eval()
    calib = torch.zeros(2, 1, 32, 32)
    monkeypatch.setattr(edgetpu, "compiler_path", lambda: None)
    with pytest.raises(edgetpu.EdgeTPUError, match="needs edgetpu_compiler on PATH and an attached Edge TPU"):
        edgetpu.prefix_latency(model, calib, tmp_path)
    monkeypatch.setattr(edgetpu, "compiler_path", lambda: "/usr/bin/edgetpu_compiler")
    monkeypatch.setattr(edgetpu, "delegate_available", lambda: True)
    monkeypatch.setattr(export_cache, "export_tflite", lambda m, path, *a, **k: path)
    monkeypatch.setattr(edgetpu, "compile_model", lambda p, out: SimpleNamespace(compiled_model=p, tpu_ops=3))
    prefix_ms = iter([0.5, 0.7, 1.6] + [2.0 + i for i in range(100)])
    monkeypatch.setattr(latency, "measure_tflite", lambda *a, **k: SimpleNamespace(median_ms=next(prefix_ms)))
    rows = edgetpu.prefix_latency(model, calib, tmp_path)
    assert len(rows) == len(blocks(model))
    assert [round(r["edgetpu_ms"], 6) for r in rows[:3]] == [0.5, 0.2, 0.9]
    assert rows[2]["prefix_ms"] == 1.6 and rows[0]["tpu_ops"] == 3


def test_a_missing_delegate_prints_no_traceback(capfd):
    """Without libedgetpu the delegate fails to load: the answer is False, and LiteRT's ``Delegate.__del__`` of the
    half-made delegate (an AttributeError Python would print with the machine's paths) stays out of the output."""
    from helpers.deploy.edgetpu import delegate_available

    if delegate_available():
        pytest.skip("an Edge TPU is attached")
    assert not delegate_available()
    err = capfd.readouterr().err
    assert "Delegate.__del__" not in err and "Traceback" not in err, err
