"""Coral Edge TPU: compile and parse the compiler's report when `edgetpu_compiler` exists, run with the
Edge TPU delegate when libedgetpu and a device exist, and otherwise an offline report that places every
operator on the Edge TPU or the CPU by the rules of ``edgetpu_rules`` (see README, "Edge TPU").
"""

from __future__ import annotations

import gc
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from helpers.deploy.edgetpu_rules import COMPILER_VERSION, PARTITIONING, op_problem
from helpers.deploy.inspection import EDGETPU_CUSTOM_OP, inspect_tflite

ON_CHIP_CACHE_BYTES = 8 * 1024 * 1024  # about 8 MiB of on-chip parameter cache
DELEGATE_LIBRARY = "libedgetpu.so.1"
MAPPED = "Mapped to Edge TPU"


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
    placement: list[dict] = field(default_factory=list)  # index, op, device, reason (kind and sentence)
    already_compiled: bool = False  # the model holds edgetpu-custom-op: placement read from it, not predicted
    partitioning: str = ""  # how the offline placement splits the graph (edgetpu_rules.PARTITIONING)

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
    def ignore_failed_delegate(unraisable) -> None:
        # a delegate that failed to load lacks ``_library``, so LiteRT's ``Delegate.__del__`` raises an
        # AttributeError that Python prints as "Exception ignored in ..." with the machine's paths: not news here
        if not (isinstance(unraisable.exc_value, AttributeError) and "Delegate" in repr(unraisable.object)):
            previous(unraisable)

    previous, sys.unraisablehook = sys.unraisablehook, ignore_failed_delegate
    try:
        load_delegate(DELEGATE_LIBRARY)
        return True
    except (ValueError, OSError, RuntimeError):
        return False
    finally:
        gc.collect()
        sys.unraisablehook = previous


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
    """Run `edgetpu_compiler -s` on a model and parse its report; the placement is read from the compiled file.

    Raises EdgeTPUError when the compiler is absent, the model is already compiled, or the compiler exits
    non-zero (its last output line is quoted). The compiled model lands in ``out_dir``. A float part is the
    compiler's to judge (it leaves float ops on the CPU), so nothing is refused for it here.
    """
    compiler = compiler_path()
    if compiler is None:
        raise EdgeTPUError("edgetpu_compiler is not on PATH; install it from Coral's package repository "
                           "(Debian package edgetpu-compiler) or use the offline report")
    if inspect_tflite(path).compiled_for_edgetpu:
        raise EdgeTPUError(f"{path} is already compiled for the Edge TPU (it holds edgetpu-custom-op); give the "
                           "compiler the model it was compiled from")
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
    if Path(report.compiled_model).exists():
        report.placement = placement(inspect_tflite(report.compiled_model))
    return report


def _partition(info, problems: dict) -> list[tuple[bool, list]]:
    """TensorFlow Lite's delegate partitioning (``PartitionGraphIntoIndependentNodeSubsets``): the ops in
    dependency order as alternating runs of supported and unsupported ops, each run taking every op whose
    inputs are ready and whose kind matches the run's (the first ready op in file order sets it).

    Written by hand: the partitioner lives in TensorFlow Lite's C++ and is not exposed to Python.
    ``problems`` maps an op's index to ``edgetpu_rules.op_problem`` of it. Returns [(supported, [op, ...]), ...]."""
    produced = {t for op in info.op_list for t in op.output_ids}
    ready = set(info.graph_inputs) | {t for op in info.op_list for t in op.input_ids if t not in produced}
    kind = {op.index: problems[op.index] is None for op in info.op_list}
    left = list(info.op_list)
    runs = []
    while left:
        run_kind, run = None, []
        progress = True
        while progress:
            progress = False
            for op in list(left):
                if not all(t in ready for t in op.input_ids):
                    continue
                if run_kind is None:
                    run_kind = kind[op.index]
                if kind[op.index] == run_kind:
                    run.append(op)
                    left.remove(op)
                    ready.update(op.output_ids)
                    progress = True
        if not run:  # a cycle or an input no op produces: the rest cannot be ordered, it stays on the CPU
            runs.append((False, left))
            break
        runs.append((run_kind, run))
    return runs


def placement(info) -> list[dict]:
    """Every operator of the main subgraph in file order: ``index``, ``op``, ``device`` (``edgetpu`` or ``cpu``),
    and for a CPU placement ``reason_kind`` and ``reason`` (see ``edgetpu_rules.PARTITIONING``).

    A compiled model (with ``edgetpu-custom-op``) is read, not predicted: the custom op runs on the Edge TPU and
    every op outside it on the CPU.
    """
    if info.compiled_for_edgetpu:
        return [{"index": op.index, "op": op.op, "device": "edgetpu" if op.op == EDGETPU_CUSTOM_OP else "cpu",
                 **({} if op.op == EDGETPU_CUSTOM_OP else
                    {"reason_kind": "outside edgetpu-custom-op",
                     "reason": "left outside edgetpu-custom-op by the compiler that made this file"})}
                for op in info.op_list]
    problems = {op.index: op_problem(op) for op in info.op_list}
    runs = _partition(info, problems)
    first_tpu = next((k for k, (ok, _) in enumerate(runs) if ok), None)
    where: dict[int, dict] = {}
    blocker = None
    for k, (ok, ops) in enumerate(runs):
        for op in ops:
            if k == first_tpu:
                where[op.index] = {"device": "edgetpu"}
            elif not ok:
                problem = problems[op.index] or ("unordered", "its inputs are never produced in this graph")
                where[op.index] = {"device": "cpu", "reason_kind": problem[0], "reason": problem[1]}
            else:
                where[op.index] = {"device": "cpu", "reason_kind": "after the partition point",
                                   "reason": f"supported, but runs after op {blocker.index} ({blocker.op}) left the "
                                             "Edge TPU subgraph; the compiler maps one subgraph"}
        if not ok and first_tpu is not None and k > first_tpu and blocker is None:
            blocker = ops[0]
    return [{"index": op.index, "op": op.op, **where[op.index]} for op in info.op_list]


def offline_report(path: str | Path) -> EdgeTPUReport:
    """The per-op placement from the rules (or, for a compiled model, read from it) and the summary it implies.

    ``parameter_bytes`` are the constants of the ops placed on the Edge TPU (of a compiled model: the size of
    its edgetpu-custom-op), split into on-chip and off-chip at the ~8 MiB cache; what the real compiler
    allocates can differ (it is not documented).
    """
    info = inspect_tflite(path)
    placed = placement(info)
    on_tpu = {p["index"] for p in placed if p["device"] == "edgetpu"}
    seen, params = set(), 0
    for op in info.op_list:
        if op.index in on_tpu:
            params += op.custom_bytes if op.op == EDGETPU_CUSTOM_OP else 0
            for t, brief in zip(op.input_ids, op.inputs):
                if brief["constant"] and t not in seen:
                    seen.add(t)
                    params += brief["bytes"]
    first = next((p for p in placed if p["device"] == "cpu" and p["reason_kind"] != "after the partition point"),
                 next((p for p in placed if p["device"] == "cpu"), None))
    counts: dict[tuple[str, str], int] = {}
    for p in placed:
        status = MAPPED if p["device"] == "edgetpu" else f"{p['reason_kind']}: {p['reason']}"
        counts[(p["op"], status)] = counts.get((p["op"], status), 0) + 1
    on_chip = min(params, ON_CHIP_CACHE_BYTES)
    return EdgeTPUReport(
        source="compiled model" if info.compiled_for_edgetpu else "offline",
        compiler_version="as compiled" if info.compiled_for_edgetpu else COMPILER_VERSION,
        parameter_bytes=params, on_chip_bytes=on_chip, on_chip_remaining_bytes=ON_CHIP_CACHE_BYTES - on_chip,
        off_chip_bytes=params - on_chip, subgraphs=1 if on_tpu else 0, total_ops=len(placed), tpu_ops=len(on_tpu),
        cpu_ops=len(placed) - len(on_tpu), first_cpu_op=first["op"] if first else None,
        first_cpu_reason=first["reason"] if first else None,
        operators=[{"op": op, "count": n, "status": st} for (op, st), n in counts.items()], placement=placed,
        already_compiled=info.compiled_for_edgetpu, partitioning="" if info.compiled_for_edgetpu else PARTITIONING)


def report(path: str | Path, out_dir: str | Path | None = None) -> EdgeTPUReport:
    """The compiler's report where `edgetpu_compiler` exists (a compiled model is read, never re-compiled), else
    the offline report."""
    if compiler_path() and not inspect_tflite(path).compiled_for_edgetpu:
        return compile_model(path, out_dir)
    return offline_report(path)


def prefix_latency(model, calibration, out_dir: str | Path, threads: int = 1) -> list[dict]:
    """Per-block Edge TPU cost by compiling and timing model prefixes and differencing (needs a device).

    No per-op profiler exists for the Edge TPU, so prefix k (blocks 0..k) is exported as int8, compiled,
    timed with the delegate, and block k's cost is t(k) - t(k-1). Raises EdgeTPUError without a device.
    """
    import torch

    from helpers.deploy.export_cache import export_tflite
    from helpers.deploy.latency import measure_tflite
    from helpers.deploy.layers import blocks

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
