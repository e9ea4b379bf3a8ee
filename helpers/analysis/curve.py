"""Plans against the uniform-width curve: the accuracy a narrower network trained from scratch reaches at a plan's
speed-up (interpolated between measured widths), the difference with its noise and one verdict per plan; and the
tool's answer to "is there a narrow network that meets the same bar faster?". Data frames in, data frames out.

The curve of an architecture and dataset is its ``uniform`` controls and its ``budget_matched`` baseline (all
trained from scratch for one budget), ordered by speed-up over plain int8 and interpolated linearly in log speed-up
(latency is a product of per-layer costs, so log latency is the natural axis). No extrapolation: a plan faster or
slower than every control is "outside the curve".
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from helpers.core.bars import clears, correct_count
from helpers.core.stats import Z95

CURVE_KINDS = ("uniform", "budget_matched")
BEATS, BELOW, TIE, OUTSIDE = "beats the curve", "below the curve", "not distinguishable", "outside the curve"
FASTER, SLOWER = "faster than every control (no curve there)", "slower than every control (no curve there)"
NO_CURVE = "no controls of this model"
VERDICTS = (BEATS, BELOW, TIE, OUTSIDE, FASTER, SLOWER, NO_CURVE)


def curve_points(controls: pd.DataFrame, model: str, dataset: str) -> pd.DataFrame:
    """The curve of ``model`` on ``dataset``: its uniform-width and budget-matched rows by ascending speed-up."""
    c = controls[(controls.model == model) & (controls.dataset == dataset) & controls.kind.isin(CURVE_KINDS)]
    return c.sort_values("speedup_vs_int8").reset_index(drop=True)


def interpolate(curve: pd.DataFrame, speedup: float, column: str = "int8_test_accuracy") -> tuple | None:
    """(value of ``column`` at ``speedup``, {curve row key: weight}) interpolated linearly in log speed-up between
    the two neighbouring controls; None outside the curve's range or for a curve of fewer than two points."""
    if len(curve) < 2 or not (speedup > 0) or not math.isfinite(speedup):
        return None
    s = np.log(curve.speedup_vs_int8.to_numpy(float))
    x = math.log(speedup)
    if x < s[0] or x > s[-1]:
        return None
    hi = int(np.searchsorted(s, x, side="left"))
    if s[hi] == x:
        return float(curve[column].iloc[hi]), {curve.key.iloc[hi]: 1.0}
    lo = hi - 1
    w = (x - s[lo]) / (s[hi] - s[lo])
    value = (1 - w) * curve[column].iloc[lo] + w * curve[column].iloc[hi]
    return float(value), {curve.key.iloc[lo]: 1 - w, curve.key.iloc[hi]: w}


def difference(plan_accuracy: float, plan_n: int, weights: dict, curve: pd.DataFrame, plan_correct=None,
               predictions: dict | None = None, z: float = Z95, split: str = "test") -> tuple[float, float, bool]:
    """(plan minus curve accuracy, half-width of its ``z`` interval, paired?) as fractions.

    Paired per test image when the plan's per-image correctness (``plan_correct``, booleans) and every weighted
    control's (``predictions[key]``) are given: d_i = plan_i - sum_k w_k control_k,i, and the noise is that of the
    mean of d. Otherwise the accuracies are treated as independent binomial estimates. ``split`` 'val' compares
    with the controls' validation accuracy (never paired: only test correctness is kept).
    """
    rows = curve.set_index("key")
    col, n_col = ("int8_test_accuracy", "test_n") if split == "test" else ("int8_val_accuracy", "val_n")
    curve_acc = sum(w * rows.loc[k, col] for k, w in weights.items())
    if (split == "test" and plan_correct is not None and predictions is not None
            and all(k in predictions for k in weights)):
        d = np.asarray(plan_correct, float) - sum(w * np.asarray(predictions[k], float) for k, w in weights.items())
        return float(d.mean()), float(z * d.std(ddof=1) / math.sqrt(len(d))), True
    var = plan_accuracy * (1 - plan_accuracy) / plan_n
    var += sum(w * w * rows.loc[k, col] * (1 - rows.loc[k, col]) / rows.loc[k, n_col] for k, w in weights.items())
    return float(plan_accuracy - curve_acc), float(z * math.sqrt(var)), False


def verdict(diff: float, half: float) -> str:
    """Beats the curve when the whole interval lies above 0, below it when it lies under 0, else not distinguishable."""
    if diff - half > 0:
        return BEATS
    if diff + half < 0:
        return BELOW
    return TIE


def against_curve(plans: pd.DataFrame, controls: pd.DataFrame, predictions: dict | None = None,
                  plan_predictions: dict | None = None, split: str = "test") -> pd.DataFrame:
    """Each plan (columns model, dataset, speedup_vs_int8, <split>_accuracy, <split>_n; optional ``key`` into
    ``plan_predictions``) against its curve on ``split`` ('test' or 'val'): ``curve_accuracy``,
    ``difference_points`` and ``noise_points`` (95% half-width), ``paired`` and ``curve_verdict``;
    ``curve_budget`` states the controls' budget."""
    out = []
    col = "int8_test_accuracy" if split == "test" else "int8_val_accuracy"
    for _, p in plans.iterrows():
        curve = curve_points(controls, p.model, p.dataset)
        row = {"curve_accuracy": np.nan, "difference_points": np.nan, "noise_points": np.nan, "paired": False,
               "curve_verdict": OUTSIDE if len(curve) >= 2 else NO_CURVE,
               "curve_budget": curve.budget.iloc[0] if len(curve) else np.nan}
        acc = p[f"{split}_accuracy"]
        at = interpolate(curve, float(p.speedup_vs_int8), col) if pd.notna(acc) else None
        if at is None and pd.notna(acc) and len(curve) >= 2:
            row["curve_verdict"] = FASTER if p.speedup_vs_int8 > curve.speedup_vs_int8.max() else SLOWER
        if at is not None:
            value, weights = at
            plan_correct = (plan_predictions or {}).get(p["key"]) if "key" in p else None
            d, half, paired = difference(float(acc), int(p[f"{split}_n"]), weights, curve, plan_correct, predictions,
                                         split=split)
            row.update(curve_accuracy=value, difference_points=100 * d, noise_points=100 * half, paired=paired,
                       curve_verdict=verdict(d, half))
        out.append(row)
    return pd.concat([plans.reset_index(drop=True), pd.DataFrame(out)], axis=1)


def faster_control(controls: pd.DataFrame, model: str, dataset: str, speedup: float, reference_val_accuracy: float,
                   reference_val_n: int, threshold_points: float) -> dict | None:
    """The fastest control of ``model`` on ``dataset`` (uniform width or budget-matched) that clears the bar on
    validation (its int8 accuracy as a count against the reference's minus ``threshold_points``) and is faster than
    ``speedup``; None when no such control exists. Selection stays on validation, as the search's own."""
    ref = correct_count(reference_val_accuracy, reference_val_n)
    best = None
    for _, c in curve_points(controls, model, dataset).iterrows():
        ok = clears(correct_count(c.int8_val_accuracy, int(c.val_n)), int(c.val_n), ref, reference_val_n, threshold_points)
        if ok and c.speedup_vs_int8 > speedup and (best is None or c.speedup_vs_int8 > best["speedup_vs_int8"]):
            best = c.to_dict()
    return best


def answer(controls: pd.DataFrame | None, model: str, dataset: str, speedup: float | None, reference_val_accuracy: float,
           reference_val_n: int, threshold_points: float, machine_id: str) -> str:
    """The tool's one sentence on the chosen plan (``speedup`` over plain int8; None: no plan met the bar) against the
    narrow-network control measured on ``machine_id``: names the faster control that meets the same bar, if any."""
    if controls is None or not len(curve_points(controls, model, dataset)):
        return (f"no uniform-width control of {model} on {dataset} is measured on this machine ({machine_id}); run "
                "`python -m helpers controls` (make controls) to learn whether a narrower network meets the bar faster")
    best = faster_control(controls, model, dataset, speedup if speedup is not None else 0.0, reference_val_accuracy,
                          reference_val_n, threshold_points)
    if best is None:
        return (f"no uniform-width network trained from scratch ({model}, {dataset}) meets the same bar faster than "
                f"the chosen plan's {speedup:.2f}x on validation")
    head = ("no plan met the bar, but" if speedup is None
            else f"the chosen plan ({speedup:.2f}x over plain int8) is not the fastest model that meets the bar:")
    return (f"{head} a {describe_control(best)} meets the same bar on validation at {best['speedup_vs_int8']:.2f}x "
            f"({100 * best['int8_val_accuracy']:.2f}%); prefer it or say why not")


def describe_control(row) -> str:
    """'uniform-width network x0.5 of the baseline's channels (8/16/32/64), trained from scratch for 4.00 passes'."""
    what = ("budget-matched baseline" if row["kind"] == "budget_matched"
            else f"uniform-width network x{row['fraction']:g} of the baseline's channels")
    return f"{what} ({row['channels']}), trained from scratch for {row['budget']:.2f} passes"


def plans_vs_controls(plans: pd.DataFrame, profile: str, split: str = "val", speedup: str = "speedup",
                      model: str | None = None) -> tuple[pd.DataFrame | None, str]:
    """03's and 05's int8 plans (``speedup`` over plain int8, ``<split>_accuracy``, ``<split>_n``, ``budget``) against
    this machine's curve: (table, one sentence on the budgets), or (None, why not) without controls here."""
    from helpers.experiments.controls import load_controls
    from helpers.experiments.portable import origin
    from helpers.core.identity import machine

    controls = load_controls(profile)
    if controls is None:
        return None, (f"no uniform-width controls are measured on this machine ({machine()['id']}): run `python -m "
                      "helpers controls` (make controls) to compare these plans with narrow networks from scratch")
    p = plans[plans["mode"] == "int8"] if "mode" in plans else plans
    p = p.assign(speedup_vs_int8=p[speedup], **({"model": model} if model else {}))
    table = against_curve(p, controls, split=split)
    cols = [c for c in ("model", "dataset", "label", "budget", "speedup_vs_int8", f"{split}_accuracy", "curve_budget",
                        "curve_accuracy", "difference_points", "noise_points", "curve_verdict") if c in table]
    budgets = sorted(set(round(b, 2) for b in p.get("budget", pd.Series(dtype=float)).dropna()))
    note = (f"plans trained for {', '.join(map(str, budgets)) or '?'} passes against narrow networks trained from "
            f"scratch for {', '.join(map(str, sorted(set(round(b, 2) for b in table.curve_budget.dropna())))) or '?'} "
            f"passes, on {'validation' if split == 'val' else 'test'} (controls {origin(controls, machine()['id'])})")
    return table[cols], note


def answer_for(profile: str, model: str, dataset: str, reference: dict, speedup: float | None, val_n: int,
               threshold_points: float, val_accuracy: float | None = None) -> str:
    """:func:`answer` with this machine's controls of ``profile``, for a search or study whose baseline and plain int8
    artifact are ``reference`` (``int8_artifact``, ``fp32_val_accuracy``); says so when the controls were trained
    for another baseline (a different checkpoint) and are no control of this one."""
    from pathlib import Path

    from helpers.experiments.controls import load_controls
    from helpers.core.identity import machine

    controls = load_controls(profile)
    if controls is not None and reference.get("int8_artifact"):
        base = controls[(controls.kind == "baseline") & (controls.model == model) & (controls.dataset == dataset)]
        stem = Path(reference["int8_artifact"]).parent.parent.name
        if len(base) and Path(base.checkpoint.iloc[0]).stem != stem:
            return (f"the controls of profile {profile!r} on this machine were trained for baseline "
                    f"{Path(base.checkpoint.iloc[0]).stem}, not this search's {stem}: no narrow-network comparison")
    text = answer(controls, model, dataset, speedup, reference["fp32_val_accuracy"], val_n, threshold_points,
                  machine()["id"])
    return text + (matched_bar_clause(controls, model, dataset, val_accuracy, val_n, threshold_points)
                   if controls is not None and val_accuracy is not None else "")


def matched_bar_clause(controls: pd.DataFrame, model: str, dataset: str, val_accuracy: float, val_n: int,
                       threshold_points: float) -> str:
    """'; against the budget-matched bar (...) the chosen plan clears it' (validation, counts), or '' without one."""
    bm = controls[(controls.model == model) & (controls.dataset == dataset) & (controls.kind == "budget_matched")]
    if not len(bm):
        return ""
    b = bm.iloc[0]
    ok = clears(correct_count(val_accuracy, val_n), val_n, correct_count(b.fp32_val_accuracy, int(b.val_n)),
                int(b.val_n), threshold_points)
    return (f"; against the budget-matched bar ({100 * b.fp32_val_accuracy - threshold_points:.2f}% on validation: the "
            f"unpruned network trained from scratch for {b.budget:.2f} passes, minus {threshold_points:g} point) the "
            f"chosen plan's {100 * val_accuracy:.2f}% {'clears it' if ok else 'misses it'}")
