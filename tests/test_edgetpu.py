"""Edge TPU: compiler report parsing, a compiler that fails, float models refused, offline rules."""

import os
import stat
import subprocess
import sys

import pytest
import torch

from helpers import edgetpu
from helpers.edgetpu import EdgeTPUError, offline_report, parse_compiler_report
from helpers.export import export_tflite
from helpers.models import build_model

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
def int8_and_fp32(tmp_path_factory):
    out = tmp_path_factory.mktemp("etpu")
    model = build_model("mobilenet_v2", 10, 1, 0.25).eval()
    calib = [torch.randn(2, 1, 32, 32)]
    return export_tflite(model, out / "m_int8.tflite", "int8", calib), export_tflite(model, out / "m_fp32.tflite", "fp32")


def _fake_compiler(tmp_path, monkeypatch, body: str):
    script = tmp_path / "bin" / "edgetpu_compiler"
    script.parent.mkdir(exist_ok=True)
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.slow
def test_compiler_report_is_parsed(int8_and_fp32, tmp_path, monkeypatch):
    _fake_compiler(tmp_path, monkeypatch, f"cat <<'EOF'\n{REPORT}EOF\n")
    r = edgetpu.report(int8_and_fp32[0], tmp_path / "out")
    assert r.source == "compiler" and r.cpu_ops == 1 and r.compiled_model.endswith("m_int8_edgetpu.tflite")


@pytest.mark.slow
def test_compiler_failure_is_reported(int8_and_fp32, tmp_path, monkeypatch):
    _fake_compiler(tmp_path, monkeypatch, "echo 'Compilation failed due to large activation tensors' >&2; exit 1\n")
    with pytest.raises(EdgeTPUError, match="exit 1.*large activation tensors"):
        edgetpu.compile_model(int8_and_fp32[0], tmp_path / "out")


@pytest.mark.slow
def test_float_model_is_refused(int8_and_fp32):
    with pytest.raises(EdgeTPUError, match="not fully 8-bit quantised.*--mode int8"):
        offline_report(int8_and_fp32[1])
    run = subprocess.run([sys.executable, "-m", "helpers", "edgetpu", str(int8_and_fp32[1])], capture_output=True,
                         text=True)
    assert run.returncode == 2 and "not fully 8-bit" in run.stderr


@pytest.mark.slow
def test_offline_report_maps_the_whole_baseline(int8_and_fp32):
    r = offline_report(int8_and_fp32[0])
    assert r.first_cpu_op is None and r.cpu_ops == 0 and r.tpu_ops == r.total_ops > 50
    assert r.off_chip_bytes == 0 and r.on_chip_bytes == r.parameter_bytes > 0


def test_op_table_is_data():
    assert edgetpu.OP_TABLE["ops"]["CONV_2D"] == "" and "PADV2" not in edgetpu.OP_TABLE["ops"]
