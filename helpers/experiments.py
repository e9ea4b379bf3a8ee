"""Running plans on cached baselines as table rows: what notebooks 00, 03, 05, 06 and 07 call."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import paths
from helpers.compress import Context
from helpers.compress.plan import CompressionPlan
from helpers.data import load_dataset


def context(dataset: str, train_subset: int | None, val_subset: int | None, seed: int = 0) -> Context:
    """A compression context on ``dataset``: a seeded training subset for fine-tuning and the validation split."""
    train = load_dataset(dataset, "train").subset(train_subset, seed=seed)
    val = load_dataset(dataset, "val").subset(val_subset, seed=seed)
    return Context(train_ds=train, val_ds=val, input_size=train.images.shape[-1], in_channels=train.in_channels,
                   seed=seed)


def plain_int8_reference(model, record: dict, threads: int = 1) -> tuple[Path, float]:
    """The baseline's canonical plain int8 artifact (``artifacts.plain_int8``) and its latency (ms), measured once."""
    from helpers.artifacts import plain_int8
    from helpers.latency import measure_tflite

    path = plain_int8(model, record)
    return path, measure_tflite(path, threads).median_ms


def plan_row(plan: dict | CompressionPlan, model, record: dict, ctx: Context, profile: str, label: str = "",
             threads: int = 1, reference: tuple | None = None) -> dict:
    """Apply ``plan`` to the baseline ``model`` and return one flat row of measured figures.

    ``reference`` is (artifact path, its latency in ms), normally :func:`plain_int8_reference`: the plan's
    artifact is then timed against it in alternating blocks (``pipeline.Timing``). Artifacts and the
    per-plan record land in runs/<profile>/plans/<checkpoint>/<plan hash>/.
    """
    from helpers.pipeline import Timing, run_plan
    from helpers.provenance import code_digest, current_record

    plan = plan if isinstance(plan, CompressionPlan) else CompressionPlan.from_dict(plan)
    # the folder carries a hash of the code that makes the artifact, so a code change never reuses a stale one
    code = code_digest("compress", "export.py", "data.py", "train.py")
    out = (paths.run_dir(profile) / "plans" / Path(record["path"]).stem
           / plan.digest(f"{len(ctx.train_ds)}{len(ctx.val_ds)}{code}"))
    res = run_plan(plan, model, ctx, out, Timing(threads, reference),
                   provenance={"run_record": current_record(profile)["id"]})
    checks = [c for s in res["steps"] for c in s["checks"]]
    return {"label": label or plan.name, "model": record["config"]["model"], "dataset": record["config"]["dataset"],
            "mode": res["mode"], "latency_ms": res["latency"]["median_ms"], "latency_iqr_ms": res["latency"]["iqr_ms"],
            "noisy": res["latency"]["noisy"], "val_acc_%": 100 * res["val_accuracy"], "macs": res["macs"],
            "params": res["params"], "size_kB": res["size_bytes"] / 1024, "full_integer": res["full_integer"],
            "checks_pass": sum(c["status"] == "pass" for c in checks),
            "checks_fail": sum(c["status"] == "fail" for c in checks),
            "checks_not_visible": sum(c["status"] == "not visible" for c in checks),
            "ratio_to_reference": res["latency"].get("ratio_to_reference"), "run_record": res.get("run_record"),
            "val_n": res["val_n"], "val_correct": res["val_correct"],
            "seconds": sum(s["seconds"] for s in res["steps"]) + res["export_seconds"], "artifact": res["artifact"],
            "steps": res["steps"]}


def checks_table(rows: list[dict]) -> pd.DataFrame:
    """Every verification check of every row, one line each."""
    return pd.DataFrame([{"label": r["label"], "method": s["method"], **c} for r in rows for s in r["steps"]
                         for c in s["checks"]])


def with_speedups(df: pd.DataFrame, reference_label: str) -> pd.DataFrame:
    """Add measured speed-up, MAC-predicted speed-up and accuracy change against the reference row per model/dataset."""
    out = []
    for _, g in df.groupby(["model", "dataset"]):
        ref = g[g.label == reference_label]
        if ref.empty:
            out.append(g)
            continue
        ref = ref.iloc[0]
        out.append(g.assign(speedup=ref.latency_ms / g.latency_ms, mac_speedup=ref.macs / g.macs,
                            acc_change=g["val_acc_%"] - ref["val_acc_%"],
                            pays=lambda d: (ref.latency_ms / d.latency_ms) >= 1.05))
    return pd.concat(out)


def per_dataset(name: str, value, datasets) -> dict:
    """``value`` for each of ``datasets``: a dict is checked to cover them all, a single value is repeated."""
    value = value if isinstance(value, dict) else dict.fromkeys(datasets, value)
    missing = [ds for ds in datasets if ds not in value]
    if missing:
        raise ValueError(f"{name} has no value for dataset {missing[0]!r}; give one per dataset or a single number")
    return value


def judge_parameters(sens: pd.DataFrame, lever: str = "ratio", exclude: tuple = (), min_gain: float = 0.5,
                     noise: float = 0.0) -> pd.DataFrame:
    """Which swept parameters earn a place in the search, judged against the ``lever``'s own trade-off.

    ``sens`` has one row per plan with ``parameter`` ('(default)' for the default plan), ``latency_ms`` and
    ``val_acc_%`` (06's one-at-a-time sweep). The lever's curve runs
    through the default plan and the lever's sweep (accuracy interpolated over latency). A value that only
    buys accuracy with latency at the lever's rate or worse adds nothing the lever cannot do, so a parameter
    is optimised when one of its values lies more than ``min_gain`` points above that curve (more accurate
    at equal latency, or faster at equal accuracy) AND more than ``noise`` points (the 95% half-width of an
    accuracy difference on the validation subset, ``stats.difference_noise``): a height inside the noise is
    "not distinguishable" and the parameter stays at the default plan's value. Returns,
    per parameter (not the lever, not ``exclude``): the largest latency change (%) and accuracy change
    (points) against the default plan, the greatest height above the curve (points) and ``optimise``.
    """
    ref = sens[sens.parameter == "(default)"].iloc[0]
    curve = sens[sens.parameter.isin(["(default)", lever])].sort_values("latency_ms")
    above = sens["val_acc_%"] - np.interp(sens.latency_ms, curve.latency_ms, curve["val_acc_%"])
    rows = []
    for name in dict.fromkeys(sens.parameter):
        if name in ("(default)", lever, *exclude):
            continue
        d = sens[sens.parameter == name]
        heights = above[d.index]
        rows.append({"parameter": name, "latency_change_%": float((100 * (d.latency_ms / ref.latency_ms - 1)).abs().max()),
                     "acc_change": float((d["val_acc_%"] - ref["val_acc_%"]).abs().max()),
                     "above_curve": float(heights.max()), "noise": float(noise),
                     "optimise": bool(heights.max() > max(min_gain, noise)),
                     "verdict": ("optimise" if heights.max() > max(min_gain, noise) else
                                 "not distinguishable" if heights.max() > min_gain else "no gain")})
    return pd.DataFrame(rows).set_index("parameter")


class PlanTrial:
    """The search's trial: fill the template with ``values``, apply, export, measure (picklable for executors).

    Returns accuracy (validation, of the artifact), latency_ms and its IQR, MACs, size and the artifact path.
    Values this object has already run (the same initial point proposed to GP and random search, or the GP
    proposing a point again) return the first outcome, marked ``reused``, instead of running it again.
    """

    def __init__(self, template: CompressionPlan, model, record: dict, ctx: Context, profile: str, threads: int = 1,
                 reference: tuple | None = None):
        self.template, self.model, self.record, self.ctx = template, model, record, ctx
        self.profile, self.threads, self.reference = profile, threads, reference
        self.outcomes: dict[str, dict] = {}

    def __call__(self, values: dict) -> dict:
        key = json.dumps(values, sort_keys=True, default=str)
        if key in self.outcomes:
            return {**self.outcomes[key], "reused": True}
        plan = self.template.with_values(values)
        row = plan_row(plan, self.model, self.record, self.ctx, self.profile, threads=self.threads,
                       reference=self.reference)
        self.outcomes[key] = {"accuracy": row["val_acc_%"] / 100, "latency_ms": row["latency_ms"],
                              "latency_iqr_ms": row["latency_iqr_ms"], "macs": row["macs"], "size_kB": row["size_kB"],
                              "full_integer": row["full_integer"], "checks_fail": row["checks_fail"],
                              "artifact": row["artifact"], "val_n": row["val_n"], "run_record": row["run_record"]}
        return dict(self.outcomes[key])


def reference_point(model, record: dict, ctx: Context, profile: str, threads: int = 1) -> dict:
    """The canonical plain int8 artifact (reference latency) and the fp32 baseline's validation accuracy (the bar).

    The int8 artifact is ``artifacts.plain_int8`` (the same file 04 reports). The fp32 artifact is timed
    against it in alternating blocks, so its latency is the int8 latency times a ratio that a slow phase of
    the machine does not move; pass the returned ``latency_reference`` on to the trials (``reference``) to time
    them the same way.
    """
    from helpers.artifacts import deploy
    from helpers.latency import measure_tflite_paired
    from helpers.runtime import evaluate_tflite
    from helpers.train import evaluate

    pair = plain_int8_reference(model, record, threads)
    fp32 = deploy(model, record, "fp32")
    ratio = measure_tflite_paired(fp32, pair[0], threads).ratio
    return {"fp32_val_accuracy": evaluate(model, ctx.val_ds)["accuracy"], "int8_latency_ms": pair[1],
            "int8_val_accuracy": evaluate_tflite(pair[0], ctx.val_ds, None, threads)["accuracy"],
            "fp32_latency_ms": ratio * pair[1], "int8_artifact": str(pair[0]), "fp32_artifact": str(fp32),
            "latency_reference": (str(pair[0]), pair[1])}


def with_finetune_epochs(plan: CompressionPlan, epochs: float) -> CompressionPlan:
    """The same plan (free parameters kept) with every fine-tuning step set to ``epochs`` passes."""
    d = plan.to_dict()
    for step in d["steps"]:
        if step["method"] == "finetune":
            step["epochs"] = epochs
    return CompressionPlan.from_dict(d)


def composition_verdict(speedup: float, acc_change: float, parts_speedup: float, parts_acc: float,
                        speed_noise: float, acc_noise: float, speed_tolerance: float = 0.15) -> str:
    """Whether a composition adds up, judged only on differences larger than their noise.

    ``parts_speedup`` is the product of the parts' speed-ups and ``parts_acc`` the sum of their accuracy
    changes (points). The composition interferes when its speed-up falls short of the parts' by more than
    ``speed_tolerance`` (relative) plus ``speed_noise`` (relative spread of the measurement), or its accuracy
    falls short by more than ``acc_noise`` points (the 95% half-width of an accuracy difference). Returns
    'adds up', 'interferes (speed)', 'interferes (accuracy)' or 'interferes (speed, accuracy)'.
    """
    bad = []
    if speedup < parts_speedup * (1 - speed_tolerance - speed_noise):
        bad.append("speed")
    if acc_change < parts_acc - acc_noise:
        bad.append("accuracy")
    return f"interferes ({', '.join(bad)})" if bad else "adds up"
