"""Research decisions as functions, each with its target as an argument; notebooks and the report call these.

O1 accuracy targets, O3 one method per sub-domain, O4 int8 drop and lookup-table error, O5 whether a
composition adds up, O6 which parameters earn a place in the search, O8 the hypothesis' verdict on test.
Accuracies are fractions; a threshold named ``*_points`` is in percentage points, as people state it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SUB_DOMAINS = {"structured": "structured pruning", "unstructured": "unstructured pruning", "tucker_conv": "low rank",
               "svd_linear": "low rank", "clustering": "weight sharing", "int8": "quantisation",
               "fp16": "quantisation", "dynamic": "quantisation"}


def target_verdict(value: float, target: float | None, unit: str = "points", scale: float = 100) -> str:
    """'met', 'missed by <d> <unit>' or 'n/a' (no target) for a value that should reach ``target`` (same unit)."""
    if target is None:
        return "n/a"
    return "met" if value >= target else f"missed by {scale * (target - value):.2f} {unit}"


def within(value: float, limit: float) -> str:
    """'within' when ``|value| <= limit``, else 'NOT within' (04's int8 drop and lookup-table error)."""
    return "within" if abs(value) <= limit else "NOT within"


def choose_per_sub_domain(pool: pd.DataFrame, budget_points: float = 1.0) -> pd.DataFrame:
    """One method per (model, dataset, sub-domain): the largest measured speed-up within the accuracy budget.

    ``pool`` needs model, dataset, category (first word of the label), label, speedup and accuracy_change
    (fraction, against plain int8). When no plan of a sub-domain stays within ``budget_points``, the most
    accurate is shown with ``within_budget`` False (as 03's prose says; until 2026-12-06 the fastest was, which on
    MobileNetV2 showed a plan 76.8 points under plain int8).
    """
    rows = []
    pool = pool.assign(sub_domain=pool.category.map(SUB_DOMAINS)).dropna(subset=["sub_domain"])
    for (arch, ds, sub), g in pool.groupby(["model", "dataset", "sub_domain"]):
        ok = g[g.accuracy_change >= -budget_points / 100]
        pick = (ok.sort_values("speedup", ascending=False) if len(ok) else
                g.sort_values(["accuracy_change", "speedup"], ascending=False)).iloc[0]
        rows.append({"model": arch, "dataset": ds, "sub_domain": sub, "chosen": pick.label, "speedup": pick.speedup,
                     "accuracy_change": pick.accuracy_change, "within_budget": bool(len(ok))})
    return pd.DataFrame(rows)


def composition_verdict(speedup: float, acc_change: float, parts_speedup: float, parts_acc: float,
                        speed_noise: float, acc_noise: float, speed_tolerance: float = 0.15) -> str:
    """Whether a composition adds up, judged only on differences larger than their noise.

    ``parts_speedup`` is the product of the parts' speed-ups and ``parts_acc`` the sum of their accuracy
    changes. The composition interferes when its speed-up falls short of the parts' by more than
    ``speed_tolerance`` (relative) plus ``speed_noise`` (relative spread of the measurement), or its accuracy
    falls short by more than ``acc_noise`` (the 95% half-width of an accuracy difference, same unit as the
    changes). Returns 'adds up', 'interferes (speed)', 'interferes (accuracy)' or 'interferes (speed, accuracy)'.
    """
    bad = []
    if speedup < parts_speedup * (1 - speed_tolerance - speed_noise):
        bad.append("speed")
    if acc_change < parts_acc - acc_noise:
        bad.append("accuracy")
    return f"interferes ({', '.join(bad)})" if bad else "adds up"


def composition_table(comp: pd.DataFrame, parts: dict[str, list[str]], speed_noise: float, acc_noise: float,
                      speed_tolerance: float = 0.15) -> pd.DataFrame:
    """O5: each composition of ``parts`` (label -> labels of its parts) against what its parts predict.

    ``comp`` has label, speedup and accuracy_change (fraction) per plan. A composition whose parts were not
    run is left out. Returns label, speedup, parts_speedup, accuracy_change, parts_accuracy_change, verdict.
    """
    alone, rows = comp.set_index("label"), []
    for label, names in parts.items():
        if label not in alone.index or not all(n in alone.index for n in names):
            continue
        s, a, r = alone.loc[names, "speedup"].prod(), alone.loc[names, "accuracy_change"].sum(), alone.loc[label]
        rows.append({"label": label, "speedup": r.speedup, "parts_speedup": s, "accuracy_change": r.accuracy_change,
                     "parts_accuracy_change": a,
                     "verdict": composition_verdict(r.speedup, r.accuracy_change, s, a, speed_noise, acc_noise,
                                                    speed_tolerance)})
    return pd.DataFrame(rows, columns=["label", "speedup", "parts_speedup", "accuracy_change", "parts_accuracy_change",
                                       "verdict"])


def judge_parameters(sens: pd.DataFrame, lever: str = "ratio", exclude: tuple = (), min_gain: float = 0.005,
                     noise: float = 0.0) -> pd.DataFrame:
    """O6: which swept parameters earn a place in the search, judged against the ``lever``'s own trade-off.

    ``sens`` has one row per plan with ``parameter`` ('(default)' for the default plan), ``latency_ms`` and
    ``val_accuracy`` (fraction; 06's one-at-a-time sweep). The lever's curve runs through the default plan
    and the lever's sweep (accuracy interpolated over latency). A value that only buys accuracy with latency
    at the lever's rate or worse adds nothing the lever cannot do, so a parameter is optimised when one of
    its values lies more than ``min_gain`` above that curve (more accurate at equal latency, or faster at
    equal accuracy) AND more than ``noise`` (the 95% half-width of an accuracy difference on the validation
    subset, ``stats.difference_noise``): a height inside the noise is "not distinguishable" and the parameter
    stays at the default plan's value. Returns, per parameter (not the lever, not ``exclude``): the largest
    latency change (%) and accuracy change (fraction) against the default plan, the greatest height above
    the curve and ``optimise``.
    """
    ref = sens[sens.parameter == "(default)"].iloc[0]
    curve = sens[sens.parameter.isin(["(default)", lever])].sort_values("latency_ms")
    above = sens.val_accuracy - np.interp(sens.latency_ms, curve.latency_ms, curve.val_accuracy)
    rows = []
    for name in dict.fromkeys(sens.parameter):
        if name in ("(default)", lever, *exclude):
            continue
        d = sens[sens.parameter == name]
        top = above[d.index].max()
        rows.append({"parameter": name, "latency_change_%": float((100 * (d.latency_ms / ref.latency_ms - 1)).abs().max()),
                     "accuracy_change": float((d.val_accuracy - ref.val_accuracy).abs().max()),
                     "above_curve": float(top), "noise": float(noise), "optimise": bool(top > max(min_gain, noise)),
                     "verdict": ("optimise" if top > max(min_gain, noise) else
                                 "not distinguishable" if top > min_gain else "no gain")})
    return pd.DataFrame(rows).set_index("parameter")


def o8_verdict(test_acc: float, fp32_test: float, threshold_points: float, speedup_vs_int8: float,
               speedup_vs_fp32: float, target_vs_int8: float = 2.0, target_vs_fp32: float = 5.0,
               test_n: int | None = None) -> dict:
    """The hypothesis on test for one chosen plan: accuracy (fraction) within ``threshold_points`` of fp32's test
    accuracy, and both speed-up targets met. Returns ``bar`` (fraction), ``accuracy_met``, ``speed_met``, ``met``
    and ``text`` (one sentence that says by how much a miss misses). With ``test_n`` (both accuracies on the same
    images) the bar is compared as counts (``bars.clears_accuracy``)."""
    from helpers.core.bars import clears_accuracy

    bar = fp32_test - threshold_points / 100
    acc_ok = (clears_accuracy(test_acc, int(test_n), fp32_test, int(test_n), threshold_points) if test_n
              else bool(test_acc >= bar))
    speed_ok = bool(speedup_vs_int8 >= target_vs_int8 and speedup_vs_fp32 >= target_vs_fp32)
    misses = []
    if not acc_ok:
        misses.append(f"accuracy {100 * (bar - test_acc):.2f} points under the bar")
    if speedup_vs_int8 < target_vs_int8:
        misses.append(f"{speedup_vs_int8:.2f}x vs plain int8 (target {target_vs_int8}x)")
    if speedup_vs_fp32 < target_vs_fp32:
        misses.append(f"{speedup_vs_fp32:.2f}x vs fp32 (target {target_vs_fp32}x)")
    text = "met" if not misses else "not met: " + "; ".join(misses)
    return {"bar": bar, "accuracy_met": acc_ok, "speed_met": speed_ok, "met": acc_ok and speed_ok, "text": text}
