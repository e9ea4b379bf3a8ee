"""Median latency and spread of PyTorch fp32, LiteRT fp32 and LiteRT int8 for both baselines, side by side.

One image of 32x32, 1 thread, from one run of this script (the machines are shared: compare the ratios,
not absolute numbers across runs). Uses the cached default-profile baselines when they exist, otherwise
freshly initialised networks (latency does not depend on the weight values).

    .venv/bin/python benchmarks/bench_runtimes.py [--repeats 25] [--threads 1] [--csv runs/bench_runtimes.csv]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd
import torch

from helpers.core.benchmarks import exit_status, judge
from helpers.core import paths
from helpers.deploy.export import export_tflite
from helpers.deploy.latency import measure_tflite, measure_torch, write_rows
from helpers.networks.models import build_model

WIDTHS = {"resnet18": 0.25, "mobilenet_v2": 0.5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--widths", default="resnet18=0.25,mobilenet_v2=0.5")
    parser.add_argument("--csv", default=str(paths.RUNS / "bench_runtimes.csv"))
    args = parser.parse_args()
    widths = {k: float(v) for k, v in (kv.split("=") for kv in args.widths.split(","))}
    torch.manual_seed(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, width in widths.items():
            model = build_model(name, 10, 1, width).eval()
            calib = [torch.randn(1, 1, 32, 32) for _ in range(32)]
            fp32 = export_tflite(model, Path(tmp) / f"{name}_fp32.tflite", "fp32")
            int8 = export_tflite(model, Path(tmp) / f"{name}_int8.tflite", "int8", calib)
            for backend, res in [("torch fp32", measure_torch(model, 32, 1, args.threads, repeats=args.repeats)),
                                 ("LiteRT fp32", measure_tflite(fp32, args.threads, repeats=args.repeats)),
                                 ("LiteRT int8", measure_tflite(int8, args.threads, repeats=args.repeats))]:
                rows.append({**res.row(), "model": f"{name} x{width}", "backend": backend})
    write_rows(rows, args.csv)
    df = pd.DataFrame(rows)
    table = df.pivot(index="model", columns="backend", values="median_ms")
    spread = df.pivot(index="model", columns="backend", values="iqr_ms")
    print(f"median ms per image (IQR), {args.threads} thread(s), {args.repeats} timed blocks; CPU: {rows[0]['cpu']}")
    for model in table.index:
        cells = "  ".join(f"{b}: {table.loc[model, b]:.4f} ({spread.loc[model, b]:.4f})" for b in table.columns)
        print(f"{model:>20}  {cells}")
        print(f"{'':>20}  int8 speed-up over LiteRT fp32: {table.loc[model, 'LiteRT fp32'] / table.loc[model, 'LiteRT int8']:.2f}x, "
              f"over torch: {table.loc[model, 'torch fp32'] / table.loc[model, 'LiteRT int8']:.1f}x")
    for model in (m for m in table.index if m.startswith("resnet18 x0.25")):
        print(judge("bench_runtimes", "resnet18 x0.25 int8 speed-up over LiteRT fp32 (x)",
                    table.loc[model, "LiteRT fp32"] / table.loc[model, "LiteRT int8"]))
    noisy = df[df.noisy]
    if len(noisy):
        print(f"warning: {len(noisy)} measurement(s) flagged noisy (robust CV > 3%): {', '.join(noisy.model + ' ' + noisy.backend)}")
    print(f"rows: {args.csv}")


if __name__ == "__main__":
    main()
    raise SystemExit(exit_status())
