"""GP against random search on a cheap objective, over several seeds, from one run.

The objective is a proxy built from the O4 per-layer table: per-stage structured-pruning ratios
(4 free parameters) scale each stage's int8 latency by (1 - r)^2 (channels in and out both shrink), and a
fast accuracy proxy loses sensitivity_s * r^3 points per stage (late stages are cheaper to prune). The
constrained objective applies (accuracy bar = baseline - 1 point). For each seed, random search runs at
twice the budget; the script prints how many trials each method needs to reach random search's best.
Target (issue 5): GP needs at most half of random search's trials.

    .venv/bin/python benchmarks/bench_search.py [--budget 20] [--seeds 5]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import paths
from helpers.search import Objective, run_search

STAGES = ["layer1", "layer2", "layer3", "layer4"]
SENSITIVITY = {"layer1": 6.0, "layer2": 4.0, "layer3": 2.5, "layer4": 1.5}  # accuracy points lost at r = 1


def stage_latency() -> tuple[dict, float]:
    """Per-stage int8 latency (ms) of ResNet-18 from the O4 table when it exists, else fixed shares."""
    lut = paths.run_dir("default") / "layer_latency.csv"
    if lut.exists():
        d = pd.read_csv(lut).query("model == 'resnet18'")
        d["stage"] = d.block.str.split(".").str[0]
        per = d.groupby("stage").lite_net_ms.sum().to_dict()
        rest = sum(v for k, v in per.items() if k not in STAGES) + d.overhead_ms.iloc[0]
        return {s: per.get(s, 0.0) for s in STAGES}, rest
    return {"layer1": 0.030, "layer2": 0.020, "layer3": 0.018, "layer4": 0.017}, 0.010


class Proxy:
    def __init__(self, lat: dict, rest: float):
        self.lat, self.rest = lat, rest

    def __call__(self, v: dict) -> dict:
        r = {s: v[f"0.structured.stage_ratios.{s}"] for s in STAGES}
        latency = self.rest + sum(self.lat[s] * (1 - r[s]) ** 2 for s in STAGES)
        accuracy = 0.92 - sum(SENSITIVITY[s] * r[s] ** 3 for s in STAGES) / 100
        return {"accuracy": accuracy, "latency_ms": latency}


def trials_to_reach(rows: list[dict], target: float) -> int | None:
    best = np.inf
    for i, t in enumerate(rows, 1):
        best = min(best, t["objective"])
        if best <= target + 1e-9:
            return i
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=20, help="GP budget; random search gets twice this")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    lat, rest = stage_latency()
    proxy = Proxy(lat, rest)
    ref_ms = rest + sum(lat.values())
    obj = Objective("constrained", baseline_accuracy=0.92, threshold_points=1.0, reference_ms=ref_ms)
    free = [{"name": f"0.structured.stage_ratios.{s}", "kind": "float", "low": 0.0, "high": 0.9} for s in STAGES]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            rnd = run_search(proxy, free, obj, 2 * args.budget, Path(tmp) / f"r{seed}.jsonl", "random", seed)
            gp = run_search(proxy, free, obj, args.budget, Path(tmp) / f"g{seed}.jsonl", "gp", seed, n_initial=5,
                            acq_func="gp_hedge")
            target = min(t["objective"] for t in rnd.trials)
            rows.append({"seed": seed, "random_best": target, "random_trials": trials_to_reach(rnd.trials, target),
                         "gp_best": min(t["objective"] for t in gp.trials),
                         "gp_trials": trials_to_reach(gp.trials, target)})
    df = pd.DataFrame(rows)
    print(f"proxy from {'the O4 table' if (paths.run_dir('default') / 'layer_latency.csv').exists() else 'fixed shares'}; "
          f"GP budget {args.budget}, random budget {2 * args.budget}, {args.seeds} seeds")
    print(df.round(4).to_string(index=False))
    reached = df.gp_trials.notna()
    med_gp = df.gp_trials.fillna(args.budget + 1).median()
    med_rnd = df.random_trials.median()
    print(f"median trials to reach random search's best (at {2 * args.budget} trials): random {med_rnd:.0f}, "
          f"GP {med_gp:.0f}{'' if reached.all() else ' (not reached within budget counted as budget+1)'}; "
          f"GP reached it in {reached.sum()}/{len(df)} seeds; ratio GP/random {med_gp / med_rnd:.2f} "
          f"(target <= 0.5: {'met' if med_gp <= 0.5 * 2 * args.budget and reached.all() else 'missed'})")


if __name__ == "__main__":
    main()
