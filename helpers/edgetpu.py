"""Coral Edge TPU: compile and parse the compiler's report when `edgetpu_compiler` exists, run with the
Edge TPU delegate when libedgetpu and a device exist, and otherwise an offline compatibility report
from the documented rules (see README, "Edge TPU").
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from helpers.inspection import inspect_tflite

ON_CHIP_CACHE_BYTES = 8 * 1024 * 1024  # about 8 MiB of on-chip parameter cache
DELEGATE_LIBRARY = "libedgetpu.so.1"

#: The documented op table (Coral's original list; later compilers map more, e.g. some QUANTIZE and
#: TRANSPOSE). Kept as data: op -> limitation checked by ``_op_problem`` ("" when none).
OP_TABLE = {
    "compiler_version": "documented table (pre-v14); a real compiler run overrides it",
    "ops": {
        "LOGISTIC": "", "RELU": "", "RELU6": "", "RELU_N1_TO_1": "", "TANH": "",
        "ADD": "", "SUB": "", "MUL": "", "MAXIMUM": "", "MINIMUM": "",
        "AVERAGE_POOL_2D": "no fused activation", "MAX_POOL_2D": "no fused activation",
        "CONCATENATION": "no fused activation; a constant input must be zeros and then only 2 inputs",
        "CONV_2D": "", "DEPTHWISE_CONV_2D": "",
        "FULLY_CONNECTED": "default weight format only; output one-dimensional",
        "L2_NORMALIZATION": "", "RESHAPE": "", "SLICE": "", "SPACE_TO_DEPTH": "", "SPLIT": "",
        "MEAN": "reduction over x and/or y only",
        "PAD": "padding over x and/or y only",
        "RESIZE_BILINEAR": "3-D input/output", "RESIZE_NEAREST_NEIGHBOR": "3-D input/output",
        "SOFTMAX": "1-D input, at most 16000 elements",
        "SQUEEZE": "only leading 1s squeezed",
        "STRIDED_SLICE": "all strides 1",
    },
}
INTEGER_TYPES = {"INT8", "UINT8", "INT32"}  # INT32 only for biases and shape/axis constants


class EdgeTPUError(RuntimeError):
    """The model cannot go down the Edge TPU path, or the compiler failed; the message says why."""


@dataclass
class EdgeTPUReport:
    source: str  # "compiler" or "offline"
    compiler_version: str
    parameter_bytes: int
    on_chip_bytes: int
    on_chip_remaining_bytes: int
    off_chip_bytes: int
    subgraphs: int
    total_ops: int
    tpu_ops: int
    cpu_ops: int
    first_cpu_op: str | None
    first_cpu_reason: str | None
    operators: list[dict] = field(default_factory=list)  # op, count, status
    compiled_model: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> dict:
        """One table row: where the report came from, op counts, the first op left on the CPU, parameter sizes (kB)."""
        return {"source": self.source, "ops": self.total_ops, "on_tpu": self.tpu_ops, "on_cpu": self.cpu_ops,
                "first_cpu_op": self.first_cpu_op, "reason": self.first_cpu_reason,
                "parameter_kB": self.parameter_bytes / 1024, "off_chip_kB": self.off_chip_bytes / 1024}


def compiler_path() -> str | None:
    """Path of `edgetpu_compiler` when it is on PATH."""
    return shutil.which("edgetpu_compiler")


def delegate_available() -> bool:
    """True when libedgetpu loads and an Edge TPU answers (the delegate fails to load without a device)."""
    try:
        from ai_edge_litert.interpreter import load_delegate
    except ImportError:
        try:
            from tflite_runtime.interpreter import load_delegate  # type: ignore
        except ImportError:
            return False
    try:
        load_delegate(DELEGATE_LIBRARY)
        return True
    except (ValueError, OSError, RuntimeError):
        return False


_SIZE = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}


def _bytes(text: str) -> int:
    m = re.match(r"\s*([\d.]+)\s*(B|KiB|MiB|GiB)", text)
    if not m:
        raise ValueError(f"cannot read a size from {text!r}")
    return int(round(float(m.group(1)) * _SIZE[m.group(2)]))


def parse_compiler_report(text: str) -> EdgeTPUReport:
    """Parse the text `edgetpu_compiler -s` prints (documented format) into a report.

    Raises ValueError naming the first expected line that is missing.
    """
    def field_(label: str) -> str:
        m = re.search(rf"^{re.escape(label)}:?\s*(.+)$", text, re.M)
        if not m:
            raise ValueError(f"compiler report has no line starting with {label!r}")
        return m.group(1).strip()

    version = field_("Edge TPU Compiler version")
    operators, first_cpu, reason = [], None, None
    table = re.search(r"^Operator\s+Count\s+Status\s*$(.*)", text, re.M | re.S)
    if table:
        for line in table.group(1).strip().splitlines():
            m = re.match(r"^(\S+)\s+(\d+)\s+(.+)$", line.strip())
            if m:
                row = {"op": m.group(1), "count": int(m.group(2)), "status": m.group(3).strip()}
                operators.append(row)
                if first_cpu is None and "Mapped to Edge TPU" not in row["status"]:
                    first_cpu, reason = row["op"], row["status"]
    on_chip = _bytes(field_("On-chip memory used for caching model parameters"))
    off_chip = _bytes(field_("Off-chip memory used for streaming uncached model parameters"))
    return EdgeTPUReport(
        source="compiler", compiler_version=version, parameter_bytes=on_chip + off_chip, on_chip_bytes=on_chip,
        on_chip_remaining_bytes=_bytes(field_("On-chip memory remaining for caching model parameters")),
        off_chip_bytes=off_chip, subgraphs=int(field_("Number of Edge TPU subgraphs")),
        total_ops=int(field_("Total number of operations")),
        tpu_ops=int(field_("Number of operations that will run on Edge TPU")),
        cpu_ops=int(field_("Number of operations that will run on CPU")),
        first_cpu_op=first_cpu, first_cpu_reason=reason, operators=operators)


def compile_model(path: str | Path, out_dir: str | Path | None = None, timeout_s: int = 600) -> EdgeTPUReport:
    """Run `edgetpu_compiler -s` on an int8 model and parse its report.

    Raises EdgeTPUError when the compiler is absent, the model is not full-integer, or the compiler
    exits non-zero (its last output line is quoted). The compiled model lands in ``out_dir``.
    """
    compiler = compiler_path()
    if compiler is None:
        raise EdgeTPUError("edgetpu_compiler is not on PATH; install it from Coral's package repository "
                           "(Debian package edgetpu-compiler) or use the offline report")
    _require_int8(path)
    out_dir = Path(out_dir or tempfile.mkdtemp(prefix="edgetpu_"))
    out_dir.mkdir(parents=True, exist_ok=True)
    run = subprocess.run([compiler, "-s", "-o", str(out_dir), str(path)], capture_output=True, text=True,
                         timeout=timeout_s)
    if run.returncode != 0:
        last = (run.stdout + run.stderr).strip().splitlines()
        raise EdgeTPUError(f"edgetpu_compiler failed on {path} (exit {run.returncode}): "
                           f"{last[-1] if last else 'no output'}")
    report = parse_compiler_report(run.stdout)
    report.compiled_model = str(out_dir / (Path(path).stem + "_edgetpu.tflite"))
    return report


def _require_int8(path) -> None:
    info = inspect_tflite(path)
    if info.float_tensors or info.input_dtype not in ("INT8", "UINT8"):
        raise EdgeTPUError(
            f"{path} is not fully 8-bit quantised ({len(info.float_tensors)} float tensors, input "
            f"{info.input_dtype}); the Edge TPU needs a full-integer model: export with --mode int8")


def _op_problem(op) -> str | None:
    """Why ``op`` (an inspection OpInfo) cannot be mapped, or None when the documented rules allow it."""
    table = OP_TABLE["ops"]
    if op.op not in table:
        return "operation not in the documented Edge TPU op list"
    for t in op.inputs + op.outputs:
        if t["dtype"] not in INTEGER_TYPES or (t["dtype"] == "INT32" and not t["constant"]):
            return f"tensor {t['name'] or '?'} is {t['dtype']}, not 8-bit"
        shape = t["shape"]
        if not t["constant"] and len(shape) > 3 and any(d != 1 for d in shape[:-3]):
            return f"tensor shape {shape} has more than 3 non-unit innermost dimensions"
    if op.op == "PAD":
        pads = next((t.get("value") for t in op.inputs[1:] if t.get("value") is not None), None)
        if pads and len(pads) == 8 and (any(pads[:2]) or any(pads[6:])):
            return "padding over batch or channel dimensions"
    if op.op == "MEAN":
        ins, outs = op.inputs[0]["shape"], op.outputs[0]["shape"]
        if ins and outs and ins[-1] != outs[-1]:
            return "reduction over the channel dimension"
    if op.op == "SOFTMAX":
        shape = op.inputs[0]["shape"]
        if sum(d != 1 for d in shape) > 1 or (shape and shape[-1] > 16000):
            return "softmax input is not 1-D or exceeds 16000 elements"
    if op.op == "FULLY_CONNECTED" and sum(d != 1 for d in op.outputs[0]["shape"]) > 1:
        return "fully-connected output is not one-dimensional"
    return None


def offline_report(path: str | Path) -> EdgeTPUReport:
    """Compatibility from the documented rules: ops mapped in order up to the first unsupported one.

    Raises EdgeTPUError for a model that is not full-integer or has dynamic shapes.
    """
    _require_int8(path)
    info = inspect_tflite(path)
    if info.dynamic_shapes:
        raise EdgeTPUError(f"{path} has dynamic tensor shapes; the Edge TPU needs shapes fixed at compile time")
    first, reason, cut = None, None, len(info.op_list)
    for op in info.op_list:
        problem = _op_problem(op)
        if problem:
            first, reason, cut = op.op, problem, op.index
            break
    counts: dict[tuple[str, str], int] = {}
    for op in info.op_list:
        if op.index < cut:
            status = "Mapped to Edge TPU"
        elif op.index == cut:
            status = f"Operation not supported: {reason}"
        else:
            status = "Runs on CPU: after the first unsupported op (one Edge TPU subgraph)"
        counts[(op.op, status)] = counts.get((op.op, status), 0) + 1
    params = info.parameter_bytes
    on_chip = min(params, ON_CHIP_CACHE_BYTES)
    return EdgeTPUReport(
        source="offline", compiler_version=OP_TABLE["compiler_version"], parameter_bytes=params,
        on_chip_bytes=on_chip, on_chip_remaining_bytes=ON_CHIP_CACHE_BYTES - on_chip, off_chip_bytes=params - on_chip,
        subgraphs=1 if cut > 0 else 0, total_ops=len(info.op_list), tpu_ops=cut, cpu_ops=len(info.op_list) - cut,
        first_cpu_op=first, first_cpu_reason=reason,
        operators=[{"op": op, "count": n, "status": s} for (op, s), n in counts.items()])


def report(path: str | Path, out_dir: str | Path | None = None) -> EdgeTPUReport:
    """The compiler's report where `edgetpu_compiler` exists, else the offline compatibility report."""
    return compile_model(path, out_dir) if compiler_path() else offline_report(path)


def prefix_latency(model, calibration, out_dir: str | Path, threads: int = 1) -> list[dict]:
    """Per-block Edge TPU cost by compiling and timing model prefixes and differencing (needs a device).

    No per-op profiler exists for the Edge TPU, so prefix k (blocks 0..k) is exported as int8, compiled,
    timed with the delegate, and block k's cost is t(k) - t(k-1). Raises EdgeTPUError without a device.
    """
    import torch

    from helpers.export import export_tflite
    from helpers.latency import measure_tflite
    from helpers.layers import blocks

    if not (compiler_path() and delegate_available()):
        raise EdgeTPUError("prefix timing needs edgetpu_compiler on PATH and an attached Edge TPU (libedgetpu)")
    out_dir = Path(out_dir)
    rows, previous = [], 0.0
    bl = blocks(model)
    for k in range(len(bl)):
        prefix = torch.nn.Sequential(*[b.module for b in bl[:k + 1]])
        p = export_tflite(prefix, out_dir / f"prefix{k:02d}.tflite", "int8", calibration,
                          input_size=calibration.shape[-1], in_channels=calibration.shape[1])
        rep = compile_model(p, out_dir)
        ms = measure_tflite(rep.compiled_model, threads, delegate_library=DELEGATE_LIBRARY).median_ms
        rows.append({"block": bl[k].name, "prefix_ms": ms, "edgetpu_ms": ms - previous, "tpu_ops": rep.tpu_ops})
        previous = ms
    return rows
