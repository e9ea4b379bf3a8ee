"""Scratch-B of chosen plans (Liu et al. 2019): each chosen plan's pruned architecture re-trained from random
initialisation for the plan's whole budget, beside the pruned-and-fine-tuned plan: does inheriting the
baseline's weights help?

The plans are 08's chosen plans on this machine (``search_summary.csv``; each artifact's ``record.json`` holds the
filled plan) or a study's (``chosen.csv`` with the study's template and long fine-tune); a plan whose artifact is
not on this machine is built again here (pruned and fine-tuned as the study did), so both sides are timed on one
machine. The structural steps give the architecture. Both networks are timed paired against plain int8 in this run
and scored as int8 artifacts on validation and test; the test difference is paired per image. Rows already in
this machine's table are kept, so a long run (a study's 40 plans) resumes where it stopped.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from helpers.core import paths

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
    from helpers.networks.models import reinitialise
    from helpers.networks.train import TrainConfig, resolve_precision, train

    model = reinitialise(architecture, seed=baseline_spec.seed)
    cfg = TrainConfig(epochs=epochs, batch_size=baseline_spec.batch_size, lr=baseline_spec.lr, seed=baseline_spec.seed,
                      precision=resolve_precision(model))
    train(model, train_ds, cfg, progress=progress)
    return model.cpu().eval()


def verdict(diff: float, half: float) -> str:
    """Inheriting helps when plan minus scratch lies above 0 with its whole interval, scratch is better below."""
    return INHERIT if diff - half > 0 else SCRATCH if diff + half < 0 else TIE


def chosen_plans(profile: str, study: str | None = None) -> tuple[list[dict], str, dict]:
    """The plans to re-train: (plans, table name, settings). Each plan is {dataset, methods, chosen, plan (filled,
    with the long fine-tune), artifact (None when it is not on this machine)}; settings hold the baseline spec,
    fine-tuning and validation images of their source (08's profile or the study config)."""
    from helpers.networks.params import load_profile

    params = load_profile(profile)
    common = params.get("common") or {}
    if study is None:
        from helpers.records.figures import load_table

        summary = load_table("search_summary", profile)
        if summary is None:
            raise ValueError(f"08 has not run on this machine for profile {profile!r} (no search_summary.csv); run "
                             "the chain first, then the Scratch-B controls")
        settings = {"baseline_spec": common.get("baseline_spec"), "val_images": common.get("val_images"),
                    "test_images": common.get("test_images"),
                    "finetune_images": (params.get("08") or {}).get("finetune_images", common.get("finetune_images"))}
        out = []
        for (ds, art), g in summary.dropna(subset=["latency_ms"]).groupby(["dataset", "artifact"], sort=False):
            artifact = paths.resolve(art)
            out.append({"dataset": ds, "methods": ",".join(g.method), "chosen": g.chosen.iloc[0],
                        "artifact": artifact if artifact.exists() else None,
                        "plan": json.loads((artifact.parent / "record.json").read_text())["plan"]
                        if artifact.exists() else None})
        return out, "scratch_b", settings
    from helpers.compress.plan import CompressionPlan
    from helpers.networks.params import per_dataset
    from helpers.experiments.study import committed
    from helpers.experiments.study_config import load_study
    from helpers.search.trial import with_finetune_epochs
    from helpers.search.store import StudyLayout

    cfg = load_study(study)
    folder = committed(study)
    if folder is None:
        raise ValueError(f"study {study} has no chosen plans on any machine yet; run it first")
    chosen = pd.read_csv(StudyLayout(folder).chosen).dropna(subset=["latency_ms"])
    final = per_dataset("final_epochs", cfg.final_epochs, cfg.datasets)
    template = CompressionPlan.from_dict(cfg.template)
    out = []
    for (ds, values), g in chosen.groupby(["dataset", "chosen"], sort=False):
        plan = with_finetune_epochs(template.with_values(json.loads(values)), final[ds]).to_dict()
        artifact = paths.resolve(g.artifact.iloc[0]) if "artifact" in g else None
        out.append({"dataset": ds, "methods": ",".join(f"s{r.seed} {r.method}" for r in g.itertuples()),
                    "chosen": values, "plan": plan,
                    "artifact": artifact if artifact is not None and artifact.exists() else None})
    settings = {"baseline_spec": cfg.baseline_spec or common.get("baseline_spec"), "val_images": cfg.val_images,
                "test_images": cfg.test_images, "finetune_images": cfg.finetune_images}
    return out, f"scratch_b-{cfg.name}", settings


def run_scratch_b(profile: str, study: str | None = None, progress: bool = True, log=print) -> Path | None:
    """Scratch-B of every chosen plan of 08 on this machine (or of the study config ``study``); writes
    ``scratch_b.csv`` (``scratch_b-<study>.csv``) beside ``controls.csv``, row by row. Raises ValueError (one sentence)
    when there are no chosen plans to re-train."""
    import math

    from helpers.deploy.artifacts import plain_int8
    from helpers.networks.baselines import BaselineSpec
    from helpers.core.budget import epochs_for, total_passes
    from helpers.experiments.controls import load_predictions, measure, measure_artifact, save_predictions
    from helpers.datasets.data import calibration_batches, load_dataset
    from helpers.deploy.export_cache import export_tflite
    from helpers.records.figures import load_table, save_table
    from helpers.core.identity import config_key
    from helpers.networks.models import stage_channels
    from helpers.search.pipeline import context, plan_row
    from helpers.search.references import plain_int8_reference
    from helpers.core.stats import Z95

    plans, table, settings = chosen_plans(profile, study)
    bspec = BaselineSpec.parse(settings["baseline_spec"])
    old = load_table(table, profile)
    rows = [] if old is None else old.drop(columns=["run_record"]).to_dict("records")
    preds, arch = load_predictions(profile), "resnet18"
    for p in plans:
        base_model, base_rec = bspec.build(arch, p["dataset"], progress=progress)
        train_all = load_dataset(p["dataset"], "train")
        ctx = context(p["dataset"], settings["finetune_images"], settings["val_images"])
        plan = p["plan"]
        budget = total_passes(base_rec, plan, settings["finetune_images"], len(train_all))
        key = config_key({"plan": plan, "baseline": Path(base_rec["path"]).stem, "budget": budget})
        if any(r["key"] == key for r in rows) and f"scratch_b-{key}" in preds:
            continue
        reference = plain_int8(base_model, base_rec)
        artifact = p["artifact"]
        if artifact is None:  # made on another machine: built again here, as its search built it
            log(f"{p['dataset']} {p['methods']}: rebuilding the chosen plan on this machine")
            artifact = paths.resolve(plan_row(plan, base_model, base_rec, ctx, profile,
                                              reference=plain_int8_reference(base_model, base_rec))["artifact"])
        scratch = train_scratch(pruned_architecture(plan, base_model, ctx), train_all.subset(bspec.train_images,
                                seed=bspec.seed), epochs_for(budget, bspec.train_images, len(train_all)), bspec, progress)
        out = paths.run_dir(profile) / "scratch-b" / key / "model.tflite"
        export_tflite(scratch, out, "int8", calibration_batches(train_all, 100), ctx.input_size, ctx.in_channels)
        val_ds, test_ds = ctx.val_ds, load_dataset(p["dataset"], "test").subset(settings["test_images"])
        mine, plan_correct = measure_artifact(artifact, reference, val_ds, test_ds)
        theirs, scratch_correct = measure(scratch, out, reference, val_ds, test_ds)
        d = plan_correct.astype(float) - scratch_correct.astype(float)
        diff, half = float(d.mean()), float(Z95 * d.std(ddof=1) / math.sqrt(len(d)))
        preds[f"plan-{key}"], preds[f"scratch_b-{key}"] = plan_correct, scratch_correct
        row = {"key": key, "model": arch, "dataset": p["dataset"], "methods": p["methods"], "chosen": p["chosen"],
               "channels": "/".join(map(str, stage_channels(scratch))), "budget": budget,
               "plan_speedup": mine["speedup_vs_int8"], "scratch_speedup": theirs["speedup_vs_int8"],
               "plan_val_accuracy": mine["int8_val_accuracy"], "scratch_val_accuracy": theirs["int8_val_accuracy"],
               "val_n": mine["val_n"], "plan_test_accuracy": mine["int8_test_accuracy"],
               "scratch_test_accuracy": theirs["int8_test_accuracy"], "test_n": mine["test_n"],
               "difference_points": 100 * diff, "noise_points": 100 * half, "verdict": verdict(diff, half),
               "rebuilt": p["artifact"] is None, "plan_artifact": paths.portable(artifact),
               "scratch_artifact": paths.portable(out)}
        rows = [r for r in rows if r["key"] != key] + [row]
        save_predictions(profile, preds)
        save_table(pd.DataFrame(rows), table, profile, command=True)
        log(f"{p['dataset']} {p['methods']} ({row['channels']}, {budget:.2f} passes): pruned and fine-tuned "
            f"{100 * row['plan_test_accuracy']:.2f}% at {row['plan_speedup']:.2f}x, from scratch "
            f"{100 * row['scratch_test_accuracy']:.2f}% at {row['scratch_speedup']:.2f}x on test: {row['verdict']} "
            f"({row['difference_points']:+.2f} +/- {row['noise_points']:.2f} points)")
    from helpers.records.provenance import record_path

    path = record_path(profile).parent / f"{table}.csv"
    return path if path.exists() else None
