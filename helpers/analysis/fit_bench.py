"""``fit``'s benchmark results (``results/fit/<machine>/<case>/bench.json``, written by ``benchmarks/bench_fit.py``)
judged against issue 39's pre-registered targets (``benchmarks/reference.csv``), in one place for the benchmark's
printout, the answer's rows and 08's lead.

A comparison counts only at equal or better test accuracy: where the chosen network scores fewer test images than
its comparator, the ratio is judged as 0 (a miss), as the benchmark's docstring registered before its first run.
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers.core import paths
from helpers.core.benchmarks import reference

__all__ = ["AGAINST", "comparisons", "committed"]

#: (key, what the chosen network is compared with, the reference metric)
AGAINST = (
    ("uniform", "the fastest uniform width from scratch that clears the bar",
     "chosen over the fastest uniform width from scratch that clears the bar (x)"),
    ("table", "the table's fastest network from scratch that clears the bar",
     "chosen over the fastest table network from scratch that clears the bar (x)"),
    ("int8", "the given network's plain int8", "chosen over the given network plain int8 (x)"),
)


def _given(bench: dict, label: str) -> dict:
    return {"latency_ms": bench["given_int8_ms"], "label": label,
            **({"test_correct": bench["given_test"]["correct"], "test_n": bench["given_test"]["n"]}
               if "given_test" in bench else {})}


def _comparator(bench: dict, key: str) -> dict | None:
    """The uniform widths include 1.0, the given network itself (the bar is 1 point below its own count, so it
    clears by construction): when no narrower width clears, the fastest that does is the given network. The table's
    network is compared whether or not it clears fit's bar when trained here (the table chose it as clearing the
    table's), at equal or better test accuracy like every comparison."""
    if key == "uniform":
        ok = [c for c in bench["controls"] if c.get("status") == "ok" and c["feasible"]]
        return min(ok, key=lambda c: c["latency_ms"]) if ok else _given(bench, "uniform width 1.0: the given network")
    if key == "table":
        return bench.get("table_scratch")
    return _given(bench, "given network, plain int8")


def comparisons(bench: dict) -> list[dict]:
    """One dict per target: what is compared, both latencies and test counts, the ratio, whether the chosen network's
    test count is at least the comparator's, the judged value and the target; ``met`` False when nothing was chosen
    or there is no comparator (``ratio`` None then); ``applicable`` False for the table's network in a case whose
    given network is not the table's ResNet-18 (not judged)."""
    chosen = bench.get("chosen")
    out = []
    for key, what, metric in AGAINST:
        ref = reference("bench_fit", metric)
        other = _comparator(bench, key)
        applicable = key != "table" or bench["case"].startswith("resnet18")  # the table holds ResNet-18 only
        row = {"key": key, "against": what, "metric": metric, "target": ref["target"], "other": other,
               "ratio": None, "equal_or_better": None, "judged": 0.0, "met": False, "applicable": applicable}
        if chosen is not None and other is not None:
            ratio = other["latency_ms"] / chosen["latency_ms"]
            better = other.get("test_correct") is None or chosen["test_correct"] >= other["test_correct"]
            judged = ratio if better else 0.0
            row.update(ratio=ratio, equal_or_better=better, judged=judged, met=judged >= ref["target"])
        out.append(row)
    return out


def committed(root: Path | None = None) -> list[dict]:
    """Every committed bench.json (``root`` defaults to ``results/``), each with its ``case`` and ``machine``."""
    base = Path(root or paths.RESULTS) / "fit"
    return [json.loads(p.read_text()) for p in sorted(base.glob("*/*/bench.json"))]
