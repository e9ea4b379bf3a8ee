"""GP against random search on a cheap objective, over several seeds, from one run.

The objective is a proxy built from the O4 per-layer table: structured pruning at per-stage ratios r scales
each ResNet-18 stage's int8 latency by (1 - r)^2 (channels in and out both shrink), and a fast accuracy
proxy loses sensitivity_s * r^3 points per stage (late stages are cheaper to prune), times a factor for the
importance criterion. The constrained objective applies (accuracy bar = baseline - 1 point). Two spaces:

* ``template``: the space 08 searches, read from 06's search_space.yaml (overall ratio, stage slope,
  importance criterion; per-stage ratios follow ``helpers.compress.pruning.slope_ratios``), or 06's
  candidate ranges when 06 has not run;
* ``stages``: four free per-stage ratios in [0, 0.9] with the LAMP criterion, a harder space than the one
  searched.

For each seed, random search runs at twice the budget; the script prints how many trials each method needs
to reach random search's best, for the GP with the composite surrogate (the default: GPs of accuracy and
latency) and with skopt's GP on the objective, and in how many seeds the GP reached it at all. Target
(issue 5): the GP's median is at most half random search's.

    .venv/bin/python benchmarks/bench_search.py [--budget 20] [--seeds 5] [--space template stages]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from helpers.core.benchmarks import exit_status, judge
from helpers.core import paths
from helpers.compress.plan import CompressionPlan
from helpers.compress.pruning import slope_ratios
from helpers.search.engine import Objective, run_search

STAGES = ["layer1", "layer2", "layer3", "layer4"]
SENSITIVITY = {"layer1": 6.0, "layer2": 4.0, "layer3": 2.5, "layer4": 1.5}  # accuracy points lost at r = 1
IMPORTANCE = {"lamp": 1.0, "l1": 1.15}  # proxy assumption: L1 ranking loses a little more accuracy than LAMP
TEMPLATE = {"steps": [{"method": "structured", "ratio": {"low": 0.25, "high": 0.6},
                       "stage_slope": {"low": 0.0, "high": 0.35}, "importance": {"choices": ["lamp", "l1"]}}]}


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


def template_space() -> tuple[list[dict], dict, str]:
    """The structured-pruning step of 06's search space (or 06's candidate ranges): free parameters, fixed ones, source."""
    space_file = paths.run_dir("default") / "search_space.yaml"
    spec, source = TEMPLATE, "06's candidate ranges"
    if space_file.exists():
        spec = yaml.safe_load(space_file.read_text())
        spec.pop("screening", None)
        source = "06's search_space.yaml"
    plan = CompressionPlan.from_dict(spec)
    step = next(i for i, st in enumerate(plan.steps) if st.method == "structured")
    free = [f for f in plan.free_parameters() if f["step"] == step]
    fixed = {k: v for k, v in plan.steps[step].params.items() if k not in plan.steps[step].free}
    return free, fixed, source


class Proxy:
    def __init__(self, lat: dict, rest: float, fixed: dict | None = None):
        self.lat, self.rest, self.fixed = lat, rest, fixed or {}  # fixed: the step's parameters that are not searched

    def ratios(self, v: dict) -> tuple[dict, str]:
        """Per-stage ratios and importance criterion of trial values from either space (LAMP unless set)."""
        get = {"importance": "lamp", **self.fixed, **{k.split(".")[-1]: val for k, val in v.items()}}
        if "ratio" not in get:
            return {s: get[s] for s in STAGES}, get["importance"]
        tilted = slope_ratios({"stem": 0, **dict.fromkeys(STAGES)}, get["ratio"], get.get("stage_slope", 0.0))
        return {s: tilted.get(s, get["ratio"]) for s in STAGES}, get["importance"]

    def __call__(self, v: dict) -> dict:
        r, importance = self.ratios(v)
        latency = self.rest + sum(self.lat[s] * (1 - r[s]) ** 2 for s in STAGES)
        accuracy = 0.92 - IMPORTANCE[importance] * sum(SENSITIVITY[s] * r[s] ** 3 for s in STAGES) / 100
        return {"accuracy": accuracy, "latency_ms": latency}


def trials_to_reach(rows: list[dict], target: float) -> int | None:
    best = np.inf
    for i, t in enumerate(rows, 1):
        best = min(best, t["objective"])
        if best <= target + 1e-9:
            return i
    return None


def compare(proxy: Proxy, free: list[dict], obj: Objective, budget: int, seeds: int) -> pd.DataFrame:
    """Per seed: random search's best at twice the budget, and the trials random search and the GP need for it."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            rnd = run_search(proxy, free, obj, 2 * budget, Path(tmp) / f"r{seed}.jsonl", "random", seed)
            target = min(t["objective"] for t in rnd.trials)
            row = {"seed": seed, "random_best": target, "random_trials": trials_to_reach(rnd.trials, target)}
            for surrogate, col in (("composite", "gp"), ("objective", "gp_obj")):
                gp = run_search(proxy, free, obj, budget, Path(tmp) / f"{col}{seed}.jsonl", "gp", seed, n_initial=5,
                                acq_func="gp_hedge", surrogate=surrogate)
                row.update({f"{col}_best": min(t["objective"] for t in gp.trials),
                            f"{col}_trials": trials_to_reach(gp.trials, target)})
            rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=20, help="GP budget; random search gets twice this")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--space", nargs="+", choices=["template", "stages"], default=["template", "stages"])
    args = parser.parse_args()
    lat, rest = stage_latency()
    obj = Objective("constrained", baseline_accuracy=0.92, threshold_points=1.0, reference_ms=rest + sum(lat.values()))
    table = "the O4 table" if (paths.run_dir("default") / "layer_latency.csv").exists() else "fixed shares"
    for space in args.space:
        if space == "template":
            free, fixed, source = template_space()
        else:
            free = [{"name": f"0.structured.stage_ratios.{s}", "kind": "float", "low": 0.0, "high": 0.9} for s in STAGES]
            fixed, source = {}, "four per-stage ratios in [0, 0.9]"
        df = compare(Proxy(lat, rest, fixed), free, obj, args.budget, args.seeds)
        print(f"\n== space '{space}' ({source}: {', '.join(f['name'].split('.')[-1] for f in free)}); latency from "
              f"{table}; GP budget {args.budget}, random budget {2 * args.budget}, {args.seeds} seeds")
        print(df.round(4).to_string(index=False))
        med_rnd = df.random_trials.median()
        print(f"median trials to reach random search's best (at {2 * args.budget} trials): random {med_rnd:.1f}")
        for col, what in (("gp", "GP, composite surrogate (the default)"), ("gp_obj", "GP on the objective (skopt)")):
            reached = df[f"{col}_trials"].notna()
            med = df[f"{col}_trials"].fillna(args.budget + 1).median()
            print(f"  {what}: {med:.1f}{'' if reached.all() else ' (not reached within budget counted as budget+1)'}, "
                  f"{judge('bench_search', 'GP trials to reach random search best over random trials (ratio)', med / med_rnd)}; "
                  f"reached within {args.budget} trials in {reached.sum()}/{len(df)} seeds")


if __name__ == "__main__":
    main()
    raise SystemExit(exit_status())
