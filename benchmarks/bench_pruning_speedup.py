"""Does compression pay on the edge runtime? int8 LiteRT latency of MobileNetV2 (and ResNet-18) unpruned,
with 50% of channels removed (torch-pruning), and with 50% unstructured sparsity, side by side from one run.

Target (issue 4): structured pruning of 50% of MobileNetV2's channels is at least 1.6x faster than the
unpruned int8 model; 50% unstructured sparsity gives no speed-up (dense kernels).

    .venv/bin/python benchmarks/bench_pruning_speedup.py [--width 0.5] [--repeats 25]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from helpers.core.benchmarks import exit_status, judge
from helpers.compress import Context
from helpers.compress.plan import CompressionPlan
from helpers.deploy.latency import measure_tflite
from helpers.networks.models import build_model, count_macs_params
from helpers.search.pipeline import Timing, run_plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.5, help="MobileNetV2 width (default 0.5, as the default profile)")
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--models", default="mobilenet_v2,resnet18")
    args = parser.parse_args()
    torch.manual_seed(0)
    ctx = Context(input_size=32, in_channels=1)
    plans = {"int8": [{"method": "ptq", "calibration": 16}],
             "structured 50%": [{"method": "structured", "ratio": 0.5}, {"method": "ptq", "calibration": 16}],
             "unstructured 50%": [{"method": "unstructured", "amount": 0.5}, {"method": "ptq", "calibration": 16}]}
    widths = {"mobilenet_v2": args.width, "resnet18": args.width / 2}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            model = build_model(name, 10, 1, widths[name]).eval()
            results = {}
            for label, steps in plans.items():
                res = run_plan(CompressionPlan.from_dict({"steps": steps}), model, ctx,
                               Path(tmp) / name / label.split()[0], Timing(measure=False))
                lat = measure_tflite(res["artifact"], repeats=args.repeats)
                results[label] = (lat, count_macs_params(res["model"], 32, 1)[0], res["size_bytes"])
            base_ms = results["int8"][0].median_ms
            print(f"{name} x{widths[name]} (int8 LiteRT, 1 thread, median of {args.repeats} blocks):")
            for label, (lat, macs, size) in results.items():
                print(f"  {label:>17}: {lat.median_ms:.4f} ms (IQR {lat.iqr_ms:.4f}{', NOISY' if lat.noisy else ''}), "
                      f"speed-up {base_ms / lat.median_ms:.2f}x, MACs {macs / 1e6:.1f}M, file {size / 1024:.0f} kB")
            s = base_ms / results["structured 50%"][0].median_ms
            u = base_ms / results["unstructured 50%"][0].median_ms
            if name == "mobilenet_v2":
                print("  " + judge("bench_pruning_speedup", "mobilenet_v2 structured 50% int8 speed-up (x)", s))
                print("  " + judge("bench_pruning_speedup", "mobilenet_v2 unstructured 50% int8 speed-up (x)", u))


if __name__ == "__main__":
    main()
    raise SystemExit(exit_status())
