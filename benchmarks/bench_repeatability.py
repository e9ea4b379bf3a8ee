"""Repeatability of the latency harness: measure one int8 model N times and print the spread of medians.

The target is that the reported median varies by at most 3% on a quiet machine; the harness itself
flags a measurement as noisy when its robust CV exceeds 3%.

    .venv/bin/python benchmarks/bench_repeatability.py [--runs 8] [--model mobilenet_v2]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from helpers.core.benchmarks import exit_status, judge
from helpers.deploy.export import export_tflite
from helpers.deploy.latency import measure_tflite
from helpers.networks.models import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--width", type=float, default=0.5)
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = export_tflite(build_model(args.model, 10, 1, args.width), Path(tmp) / "m.tflite", "int8",
                             [torch.randn(1, 1, 32, 32) for _ in range(16)])
        results = [measure_tflite(path) for _ in range(args.runs)]
    med = np.array([r.median_ms for r in results])
    spread = (med.max() - med.min()) / np.median(med)
    for i, r in enumerate(results):
        print(f"run {i}: median {r.median_ms:.4f} ms  IQR {r.iqr_ms:.4f}  robust CV {100 * r.cv:.1f}%  "
              f"attempts {r.attempts}  {'NOISY' if r.noisy else ''}")
    print(f"{args.model} x{args.width} int8: median of medians {np.median(med):.4f} ms, max-min spread "
          f"{100 * spread:.1f}% of the median, {sum(r.noisy for r in results)}/{len(results)} runs flagged noisy")
    print(judge("bench_repeatability", "max-min spread of the median (fraction)", spread))


if __name__ == "__main__":
    main()
    raise SystemExit(exit_status())
