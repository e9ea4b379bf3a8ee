"""Scratch-B of chosen plans (Liu et al. 2019): each chosen plan's pruned architecture re-trained from random
initialisation for the plan's whole budget, beside the pruned-and-fine-tuned plan: does inheriting the
baseline's weights help?

The plans are 08's chosen plans on this machine (``search_summary.csv``); each artifact's ``record.json`` holds the
filled plan, whose structural steps give the architecture. Both networks are timed paired against plain int8 in
this run and scored as int8 artifacts on validation and test; the test difference is paired per image.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from helpers import paths

INHERIT, SCRATCH, TIE = "inheriting helps", "scratch is better", "not distinguishable"


def pruned_architecture(plan: dict, model, ctx):
    """The network the structural (channel-pruning) steps of ``plan`` leave of ``model``, with its inherited weights."""
    from helpers.compress.plan import CompressionPlan
    from helpers.compress.registry import METHODS

    structural = [s for s in plan["steps"] if METHODS[s["method"]].category == "structured_pruning"]
    if not structural:
        raise ValueError("the plan prunes no channels, so it has no architecture of its own to re-train from scratch")
    pruned, _, _ = CompressionPlan.from_dict({"steps": structural}).run_steps(model, ctx)
    return pruned


def train_scratch(architecture, train_ds, epochs: float, baseline_spec, progress: bool = True):
    """``architecture`` re-initialised (seeded) and trained for ``epochs`` with the baseline's recipe; returns it."""
    from helpers.models import reinitialise
    from helpers.train import TrainConfig, resolve_precision, train

    model = reinitialise(architecture, seed=baseline_spec.seed)
    cfg = TrainConfig(epochs=epochs, batch_size=baseline_spec.batch_size, lr=baseline_spec.lr, seed=baseline_spec.seed,
                      precision=resolve_precision(model))
    train(model, train_ds, cfg, progress=progress)
    return model.cpu().eval()


def verdict(diff: float, half: float) -> str:
    """Inheriting helps when plan minus scratch lies above 0 with its whole interval, scratch is better below."""
    return INHERIT if diff - half > 0 else SCRATCH if diff + half < 0 else TIE


def run_scratch_b(profile: str, progress: bool = True, log=print) -> Path | None:
    """Scratch-B of every chosen plan of 08 on this machine; writes ``scratch_b.csv`` beside ``controls.csv``.

    Raises ValueError (one sentence) when 08 has not run on this machine; a plan whose artifact is missing here
    is skipped with a line saying so.
    """
    import math

    from helpers.artifacts import plain_int8
    from helpers.baselines import BaselineSpec
    from helpers.budget import epochs_for, total_passes
    from helpers.controls import load_predictions, measure, measure_artifact, save_predictions
    from helpers.data import calibration_batches, load_dataset
    from helpers.export import export_tflite
    from helpers.figures import load_table, save_table
    from helpers.models import stage_channels
    from helpers.pipeline import context
    from helpers.identity import config_key
    from helpers.params import load_profile
    from helpers.stats import Z95

    summary = load_table("search_summary", profile)
    if summary is None:
        raise ValueError(f"08 has not run on this machine for profile {profile!r} (no search_summary.csv); run the "
                         "chain first, then the Scratch-B controls")
    params = load_profile(profile)
    common = params.get("common") or {}
    bspec = BaselineSpec.parse(common.get("baseline_spec"))
    finetune_images = (params.get("08") or {}).get("finetune_images", common.get("finetune_images"))
    rows, preds = [], load_predictions(profile)
    chosen = summary.dropna(subset=["latency_ms"]).drop_duplicates(subset=["dataset", "artifact"])
    for r in chosen.itertuples():
        artifact = paths.resolve(r.artifact)
        if not artifact.exists():
            log(f"{r.dataset} {r.method}: the chosen plan's artifact {r.artifact} is not on this machine; skipped")
            continue
        plan = json.loads((artifact.parent / "record.json").read_text())["plan"]
        arch = "resnet18"
        base_model, base_rec = bspec.build(arch, r.dataset, progress=progress)
        reference = plain_int8(base_model, base_rec)
        train_all = load_dataset(r.dataset, "train")
        ctx = context(r.dataset, finetune_images, common.get("val_images"))
        budget = total_passes(base_rec, plan, finetune_images, len(train_all))
        key = config_key({"plan": plan, "baseline": Path(base_rec["path"]).stem, "budget": budget})
        scratch = train_scratch(pruned_architecture(plan, base_model, ctx), train_all.subset(bspec.train_images,
                                seed=bspec.seed), epochs_for(budget, bspec.train_images, len(train_all)), bspec, progress)
        out = paths.run_dir(profile) / "scratch-b" / key / "model.tflite"
        export_tflite(scratch, out, "int8", calibration_batches(train_all, 100), ctx.input_size, ctx.in_channels)
        val_ds, test_ds = ctx.val_ds, load_dataset(r.dataset, "test").subset(common.get("test_images"))
        mine, plan_correct = measure_artifact(artifact, reference, val_ds, test_ds)
        theirs, scratch_correct = measure(scratch, out, reference, val_ds, test_ds)
        d = plan_correct.astype(float) - scratch_correct.astype(float)
        diff, half = float(d.mean()), float(Z95 * d.std(ddof=1) / math.sqrt(len(d)))
        preds[f"plan-{key}"], preds[f"scratch_b-{key}"] = plan_correct, scratch_correct
        row = {"key": key, "model": arch, "dataset": r.dataset, "methods": ",".join(
                   summary[(summary.dataset == r.dataset) & (summary.artifact == r.artifact)].method),
               "chosen": r.chosen, "channels": "/".join(map(str, stage_channels(scratch))), "budget": budget,
               "plan_speedup": mine["speedup_vs_int8"], "scratch_speedup": theirs["speedup_vs_int8"],
               "plan_val_accuracy": mine["int8_val_accuracy"], "scratch_val_accuracy": theirs["int8_val_accuracy"],
               "val_n": mine["val_n"], "plan_test_accuracy": mine["int8_test_accuracy"],
               "scratch_test_accuracy": theirs["int8_test_accuracy"], "test_n": mine["test_n"],
               "difference_points": 100 * diff, "noise_points": 100 * half, "verdict": verdict(diff, half),
               "plan_artifact": paths.portable(artifact), "scratch_artifact": paths.portable(out)}
        rows.append(row)
        save_predictions(profile, preds)
        path = save_table(pd.DataFrame(rows), "scratch_b", profile)
        log(f"{r.dataset} ({row['channels']}, {budget:.2f} passes): pruned and fine-tuned {100 * row['plan_test_accuracy']:.2f}% "
            f"at {row['plan_speedup']:.2f}x, from scratch {100 * row['scratch_test_accuracy']:.2f}% at "
            f"{row['scratch_speedup']:.2f}x on test: {row['verdict']} ({row['difference_points']:+.2f} +/- "
            f"{row['noise_points']:.2f} points)")
    return path if rows else None
