"""Does an int8 network's latency depend on its weights? The tabular benchmark's ``retime`` stage assumes it does not.

``table --stage retime`` times every network of the space by its architecture alone (pruned from the baseline, no
fine-tuning), so that a table fine-tuned on several machines gets its latencies from one. Here a few networks of
the registered space (params/tables/o8-table.yaml: the narrowest, the widest and two drawn at random) are each
made twice on this machine, fine-tuned (on a seeded subset of the training split, enough to move every weight) and
not, and the two int8 artifacts are timed against each other in alternating blocks, in both orders; the artifact
timed against itself gives the noise floor. Target: every network's median ratio within 2% of 1.

    .venv/bin/python benchmarks/bench_retime.py [--networks 4] [--repeats 4] [--finetune-images 4096]
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from helpers.core import paths
from helpers.core.benchmarks import exit_status, judge

PROFILE = "smoke/bench-retime"  # artifacts and run record under runs/, never beside the committed table


def main() -> None:
    from helpers.networks.baselines import BaselineSpec
    from helpers.datasets.data import load_dataset
    from helpers.deploy.latency import measure_tflite_paired
    from helpers.networks.models import stage_channels
    from helpers.networks.params import load_profile
    from helpers.search.pipeline import context
    from helpers.search.references import plain_int8_reference
    from helpers.experiments.table import NetworkRunner
    from helpers.experiments.table_config import Lattice, load_table_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=4, help="networks of the space (narrowest, widest, random)")
    parser.add_argument("--repeats", type=int, default=4, help="paired measurements per order")
    parser.add_argument("--finetune-images", type=int, default=4096, help="training images of each fine-tune")
    args = parser.parse_args()
    cfg = load_table_config(paths.PARAMS / "tables" / "o8-table.yaml")
    cfg = replace(cfg, finetune_images=args.finetune_images)
    ds = "fashion_mnist"
    bspec = BaselineSpec.parse(load_profile(cfg.profile)["common"]["baseline_spec"])
    model, rec = bspec.build(cfg.architecture, ds, progress=False)
    base = stage_channels(model)
    ctx = context(ds, cfg.finetune_images, 1024)
    pair = plain_int8_reference(model, rec)
    runner = NetworkRunner(cfg, model, rec, ctx, {"latency_reference": (paths.portable(pair[0]), pair[1])}, PROFILE, None, ds)
    nets = cfg.lattice().networks()
    rng = np.random.default_rng(0)
    picked = [nets[0], nets[-1]] + [nets[i] for i in rng.choice(np.arange(1, len(nets) - 1), args.networks - 2,
                                                                   replace=False)]
    test = load_dataset(ds, "test").subset(256)
    worst = 0.0
    for n in picked[:args.networks]:
        tuned = paths.resolve(runner("inherit", n, base, test)["artifact"])
        bare = paths.resolve(runner.retime(n, base)["artifact"])
        r = ([measure_tflite_paired(tuned, bare).ratio for _ in range(args.repeats)]
             + [1 / measure_tflite_paired(bare, tuned).ratio for _ in range(args.repeats)])
        floor = [measure_tflite_paired(tuned, tuned).ratio for _ in range(args.repeats)]
        med = float(np.median(r))
        worst = max(worst, abs(med - 1))
        print(f"{Lattice.key(n)}: fine-tuned / not fine-tuned latency, median {med:.4f} (min {min(r):.4f}, "
              f"max {max(r):.4f}, {len(r)} paired measurements); the fine-tuned artifact against itself "
              f"{np.median(floor):.4f} (min {min(floor):.4f}, max {max(floor):.4f})")
    print(judge("bench_retime", "fine-tuned over not fine-tuned int8 latency, worst network (|ratio - 1|)", worst))


if __name__ == "__main__":
    main()
    raise SystemExit(exit_status())
