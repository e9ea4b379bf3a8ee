"""One plan, end to end: compress, export, verify, inspect, time, evaluate, record.

The layer above ``compress`` (which only changes PyTorch models), ``export`` (which only writes .tflite files)
and the measuring modules (``inspection``, ``latency``, ``runtime``): the one place where they meet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from helpers.core import paths
from helpers.compress import Context
from helpers.compress.plan import CompressionPlan
from helpers.datasets.data import load_dataset


def context(dataset: str, finetune_images: int | None, val_images: int | None, seed: int = 0,
            input_size: int = 32, channels: int | None = None) -> Context:
    """A compression context on ``dataset``: a seeded training subset for fine-tuning and the validation split, at
    the baseline's ``input_size`` and ``channels`` (a user's imported network: its own size, 3 channels)."""
    full = load_dataset(dataset, "train", input_size, channels)
    train = full.subset(finetune_images, seed=seed)
    val = load_dataset(dataset, "val", input_size, channels).subset(val_images, seed=seed)
    return Context(train_ds=train, val_ds=val, input_size=train.images.shape[-1], in_channels=train.in_channels,
                   seed=seed, split_images=len(full))


@dataclass(frozen=True)
class Timing:
    """How an artifact is timed: ``threads`` of the interpreter and an optional ``reference``.

    ``reference`` is (reference .tflite, its latency in ms): the artifact is then timed against it in
    alternating blocks and reported as ratio x that latency, so a slow phase of a shared machine cannot
    reorder plans. ``measure=False`` skips timing.
    """

    threads: int = 1
    reference: tuple | None = None
    measure: bool = True


def run_plan(plan: CompressionPlan, model, ctx: Context, out_dir: str | Path, timing: Timing = Timing(),
             val_images: int | None = None, provenance: dict | None = None) -> dict:
    """Apply ``plan`` to a copy of ``model``, export, verify every step, measure; returns the record (also JSON).

    The record holds each step's parameters, seconds and checks, the artifact path and mode, its inspection,
    latency (median, IQR, CV; with a reference also the ratio to it), validation accuracy with ``val_n`` and
    ``val_correct`` (for its interval) and ``provenance`` (e.g. the run record's id). ``out_dir`` receives
    ``model.tflite`` and ``record.json``; the compressed PyTorch model is returned under ``model``.
    """
    from helpers.deploy.export_cache import export_tflite
    from helpers.deploy.inspection import inspect_tflite
    from helpers.core.io import atomic_folder, write_json
    from helpers.deploy.latency import measure_tflite, measure_tflite_paired
    from helpers.networks.models import count_macs_params
    from helpers.deploy.runtime import evaluate_tflite

    work, records, snapshots = plan.run_steps(model, ctx)
    out_dir = Path(out_dir)
    spec = plan.export_spec()
    final = out_dir / "model.tflite"
    # model.tflite and record.json are made in a temporary folder that replaces out_dir as one unit: a kill at
    # any moment leaves the previous pair or the new one, never a model without its record or a mixed pair
    with atomic_folder(out_dir, owned=("model.tflite", "record.json")) as tmp:
        artifact = tmp / "model.tflite"
        t0 = time.perf_counter()
        calib = [ctx.example(spec.get("calibration", 100))] if spec["mode"] == "int8" else None
        export_tflite(work, artifact, spec["mode"], calib, ctx.input_size, ctx.in_channels,
                      per_channel=spec.get("per_channel", True), prepared_qat=ctx.state.get("qat_module"),
                      qat_quantizer=ctx.state.get("qat_quantizer"))
        export_s = time.perf_counter() - t0
        plan.verify_steps(records, snapshots, work, ctx, artifact)
        info = inspect_tflite(artifact)
        macs, params = count_macs_params(work, ctx.input_size, ctx.in_channels)
        result = {"plan": plan.to_dict(), "steps": records, "artifact": paths.portable(final), "mode": spec["mode"],
                  "full_integer": info.full_integer, "size_bytes": info.size_bytes,
                  "parameter_bytes": info.parameter_bytes, "macs": macs, "params": params,
                  "export_seconds": round(export_s, 2), "ops": info.ops,
                  "all_checks_pass": all(c["status"] != "fail" for r in records for c in r["checks"])}
        t_timing = time.perf_counter()
        if timing.measure and timing.reference:
            ref_path, ref_ms = timing.reference
            p = measure_tflite_paired(artifact, paths.resolve(ref_path), timing.threads)
            result["latency"] = {"median_ms": p.ratio * ref_ms, "iqr_ms": p.ratio_iqr * ref_ms, "cv": p.cv,
                                 "noisy": p.noisy, "ratio_to_reference": p.ratio, "reference": paths.portable(ref_path),
                                 "unpaired_median_ms": p.median_ms}
        elif timing.measure:
            lat = measure_tflite(artifact, timing.threads)
            result["latency"] = {"median_ms": lat.median_ms, "iqr_ms": lat.iqr_ms, "cv": lat.cv, "noisy": lat.noisy}
        result["timing_seconds"] = round(time.perf_counter() - t_timing, 2)
        result["val_n"] = result["val_correct"] = None
        t_acc = time.perf_counter()
        if ctx.val_ds is not None:
            ev = evaluate_tflite(artifact, ctx.val_ds, val_images, timing.threads)
            result["val_accuracy"], result["val_n"] = ev["accuracy"], ev.get("n")
            result["val_correct"] = round(ev["accuracy"] * ev["n"]) if ev.get("n") else None
        result["accuracy_seconds"] = round(time.perf_counter() - t_acc, 2)
        result.update(provenance or {})
        write_json(tmp / "record.json", result)
    result["model"] = work
    return result


def baseline_context(record: dict, finetune_images: int | None, val_images: int | None, seed: int = 0) -> Context:
    """:func:`context` on a baseline's own dataset, input size and channels (from its checkpoint's sidecar)."""
    cfg = record["config"]
    return context(cfg["dataset"], finetune_images, val_images, seed, cfg.get("input_size", 32), cfg.get("in_channels"))


def plan_row(plan: dict | CompressionPlan, model, record: dict, ctx: Context, profile: str, label: str = "",
             threads: int = 1, reference: tuple | None = None, command: bool | Path = False) -> dict:
    """Apply ``plan`` to the baseline ``model`` (with :func:`run_plan`) and return one flat row of measured figures.

    ``reference`` is (artifact path, its latency in ms), normally ``references.plain_int8_reference``: the plan's
    artifact is then timed against it in alternating blocks. Artifacts and the per-plan record land in
    runs/<profile>/plans/<checkpoint>/<plan hash>/. Accuracy is a fraction (``val_accuracy`` of the artifact).
    ``command`` (the ``search`` command): the rows name a command record kept in ``run_records/`` of the profile's
    results, or in the folder ``command`` names, so a search never replaces the chain's ``run_record.json``.
    """
    from helpers.core.identity import EXPORT_CODE, code_digest
    from helpers.records.provenance import command_record, current_record

    plan = plan if isinstance(plan, CompressionPlan) else CompressionPlan.from_dict(plan)
    # the folder carries a hash of the code that makes the artifact, so a code change never reuses a stale one
    code = code_digest("compress", "data.py", "train.py", "models.py", *EXPORT_CODE)
    out = (paths.run_dir(profile) / "plans" / Path(record["path"]).stem
           / plan.digest(f"{len(ctx.train_ds)}{len(ctx.val_ds)}{code}"))
    budget = plan_budget(plan, record, ctx)  # in the plan's record.json too: every plan names its training budget
    res = run_plan(plan, model, ctx, out, Timing(threads, reference),
                   provenance={"run_record": (command_record(profile, None if command is True else command) if command
                                              else current_record(profile))["id"],
                               "budget": budget})
    checks = [c for s in res["steps"] for c in s["checks"]]
    return {"budget": budget, "label": label or plan.name, "model": record["config"]["model"], "dataset": record["config"]["dataset"],
            "mode": res["mode"], "latency_ms": res["latency"]["median_ms"], "latency_iqr_ms": res["latency"]["iqr_ms"],
            "noisy": res["latency"]["noisy"], "val_accuracy": res["val_accuracy"], "macs": res["macs"],
            "params": res["params"], "size_kB": res["size_bytes"] / 1024, "full_integer": res["full_integer"],
            "checks_pass": sum(c["status"] == "pass" for c in checks),
            "checks_fail": sum(c["status"] == "fail" for c in checks),
            "checks_not_visible": sum(c["status"] == "not visible" for c in checks),
            "ratio_to_reference": res["latency"].get("ratio_to_reference"), "run_record": res.get("run_record"),
            "val_n": res["val_n"], "val_correct": res["val_correct"],
            "seconds": sum(s["seconds"] for s in res["steps"]) + res["export_seconds"], "artifact": res["artifact"],
            "cost": cost_breakdown(res), "steps": res["steps"]}


def plan_budget(plan: CompressionPlan, record: dict, ctx: Context) -> float | None:
    """The plan's training budget (``helpers.core.budget``): the baseline's passes plus its fine-tunes' over the context's
    training images; None when the context does not know its split's size."""
    from helpers.core.budget import total_passes

    if not getattr(ctx, "split_images", None):
        return None
    return total_passes(record, plan.to_dict(), len(ctx.train_ds), ctx.split_images)


def cost_breakdown(res: dict) -> dict:
    """Seconds of a plan's run by phase: fine-tuning (and QAT), the other compression steps, export, timing, accuracy."""
    tune = sum(s["seconds"] for s in res["steps"] if s["method"] in ("finetune", "qat"))
    return {"finetune_s": round(tune, 2), "compress_s": round(sum(s["seconds"] for s in res["steps"]) - tune, 2),
            "export_s": res["export_seconds"], "timing_s": res.get("timing_seconds", 0.0),
            "accuracy_s": res.get("accuracy_seconds", 0.0)}
