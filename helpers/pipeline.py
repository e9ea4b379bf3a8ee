"""One plan, end to end: compress, export, verify, inspect, time, evaluate, record.

The layer above ``compress`` (which only changes PyTorch models), ``export`` (which only writes .tflite files)
and the measuring modules (``inspection``, ``latency``, ``runtime``): the one place where they meet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from helpers.compress import Context
from helpers.compress.plan import CompressionPlan


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
             val_limit: int | None = None, provenance: dict | None = None) -> dict:
    """Apply ``plan`` to a copy of ``model``, export, verify every step, measure; returns the record (also JSON).

    The record holds each step's parameters, seconds and checks, the artifact path and mode, its inspection,
    latency (median, IQR, CV; with a reference also the ratio to it), validation accuracy with ``val_n`` and
    ``val_correct`` (for its interval) and ``provenance`` (e.g. the run record's id). ``out_dir`` receives
    ``model.tflite`` and ``record.json``; the compressed PyTorch model is returned under ``model``.
    """
    from helpers.export import export_tflite
    from helpers.inspection import inspect_tflite
    from helpers.io import write_json
    from helpers.latency import measure_tflite, measure_tflite_paired
    from helpers.models import count_macs_params
    from helpers.runtime import evaluate_tflite

    work, records, snapshots = plan.run_steps(model, ctx)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = plan.export_spec()
    artifact = out_dir / "model.tflite"
    t0 = time.perf_counter()
    calib = [ctx.example(spec.get("calibration", 100))] if spec["mode"] == "int8" else None
    export_tflite(work, artifact, spec["mode"], calib, ctx.input_size, ctx.in_channels,
                  per_channel=spec.get("per_channel", True), prepared_qat=ctx.state.get("qat_module"),
                  qat_quantizer=ctx.state.get("qat_quantizer"))
    export_s = time.perf_counter() - t0
    plan.verify_steps(records, snapshots, work, ctx, artifact)
    info = inspect_tflite(artifact)
    macs, params = count_macs_params(work, ctx.input_size, ctx.in_channels)
    result = {"plan": plan.to_dict(), "steps": records, "artifact": str(artifact), "mode": spec["mode"],
              "full_integer": info.full_integer, "size_bytes": info.size_bytes,
              "parameter_bytes": info.parameter_bytes, "macs": macs, "params": params,
              "export_seconds": round(export_s, 2), "ops": info.ops,
              "all_checks_pass": all(c["status"] != "fail" for r in records for c in r["checks"])}
    if timing.measure and timing.reference:
        ref_path, ref_ms = timing.reference
        p = measure_tflite_paired(artifact, ref_path, timing.threads)
        result["latency"] = {"median_ms": p.ratio * ref_ms, "iqr_ms": p.ratio_iqr * ref_ms, "cv": p.cv,
                             "noisy": p.noisy, "ratio_to_reference": p.ratio, "reference": str(ref_path),
                             "unpaired_median_ms": p.median_ms}
    elif timing.measure:
        lat = measure_tflite(artifact, timing.threads)
        result["latency"] = {"median_ms": lat.median_ms, "iqr_ms": lat.iqr_ms, "cv": lat.cv, "noisy": lat.noisy}
    result["val_n"] = result["val_correct"] = None
    if ctx.val_ds is not None:
        ev = evaluate_tflite(artifact, ctx.val_ds, val_limit, timing.threads)
        result["val_accuracy"], result["val_n"] = ev["accuracy"], ev.get("n")
        result["val_correct"] = round(ev["accuracy"] * ev["n"]) if ev.get("n") else None
    result.update(provenance or {})
    write_json(out_dir / "record.json", result)
    result["model"] = work
    return result
