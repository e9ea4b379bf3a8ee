"""The benchmarks' targets as stored reference rows (``benchmarks/reference.csv``), judged in one place.

As pycoral's benchmarks compare against stored reference values with a tolerance, each benchmark script
prints its measured figure beside the reference row's target instead of carrying the constant itself.
"""

from __future__ import annotations

import csv

from helpers.core import paths

REFERENCE = paths.ROOT / "benchmarks" / "reference.csv"
DIRECTIONS = ("at_least", "at_most", "below")
MISSED: list[str] = []  # the lines of every target missed in this process (``exit_status`` reads them)


def reference(benchmark: str, metric: str) -> dict:
    """The reference row of ``benchmark``/``metric``; KeyError names the file to add it to."""
    with open(REFERENCE, newline="") as f:
        for row in csv.DictReader(f):
            if row["benchmark"] == benchmark and row["metric"] == metric:
                return {**row, "target": float(row["target"]), "tolerance": float(row["tolerance"])}
    raise KeyError(f"no reference row for {benchmark} / {metric!r}; add one to {REFERENCE}")


def judge(benchmark: str, metric: str, measured: float) -> str:
    """One line: the measured figure, the target (with its tolerance) and met / missed by how much."""
    ref = reference(benchmark, metric)
    target, tol, how = ref["target"], ref["tolerance"], ref["direction"]
    if how not in DIRECTIONS:
        raise ValueError(f"{REFERENCE}: direction {how!r} of {metric!r} is not one of {', '.join(DIRECTIONS)}")
    if how == "at_least":
        ok, miss = measured >= target * (1 - tol), target * (1 - tol) - measured
    elif how == "at_most":
        ok, miss = measured <= target * (1 + tol), measured - target * (1 + tol)
    else:
        ok, miss = measured < target, measured - target
    sign = {"at_least": ">=", "at_most": "<=", "below": "<"}[how]
    verdict = "met" if ok else f"missed by {miss:.3g}"
    line = f"{metric}: {measured:.3g} (target {sign} {target:g}{f', tolerance {100 * tol:.0f}%' if tol else ''}: {verdict})"
    if not ok:
        MISSED.append(line)
    return line


def exit_status() -> int:
    """A benchmark script's exit status: 1 (each missed target printed again) when any judged target was missed."""
    for line in MISSED:
        print(f"MISSED {line}")
    return 1 if MISSED else 0
