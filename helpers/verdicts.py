"""Research decisions as functions: which method per sub-domain (O3) and the hypothesis' verdict on test (O8).

Notebooks and the report call these, so a decision is made by tested code, once, with its targets as arguments.
"""

from __future__ import annotations

import pandas as pd

SUB_DOMAINS = {"structured": "structured pruning", "unstructured": "unstructured pruning", "tucker_conv": "low rank",
               "svd_linear": "low rank", "clustering": "weight sharing", "int8": "quantisation",
               "fp16": "quantisation", "dynamic": "quantisation"}


def choose_per_sub_domain(pool: pd.DataFrame, accuracy_budget: float = 1.0) -> pd.DataFrame:
    """One method per (model, dataset, sub-domain): the largest measured speed-up within the accuracy budget.

    ``pool`` needs model, dataset, category (first word of the label), label, speedup and acc_change
    (points against plain int8). When no plan of a sub-domain stays within ``accuracy_budget`` points, the
    fastest is shown with ``within_budget`` False.
    """
    rows = []
    pool = pool.assign(sub_domain=pool.category.map(SUB_DOMAINS)).dropna(subset=["sub_domain"])
    for (arch, ds, sub), g in pool.groupby(["model", "dataset", "sub_domain"]):
        ok = g[g.acc_change >= -accuracy_budget]
        pick = (ok if len(ok) else g).sort_values("speedup", ascending=False).iloc[0]
        rows.append({"model": arch, "dataset": ds, "sub_domain": sub, "chosen": pick.label, "speedup": pick.speedup,
                     "acc_change": pick.acc_change, "within_budget": bool(len(ok))})
    return pd.DataFrame(rows)


def o8_verdict(test_acc: float, fp32_test: float, threshold: float, speedup_vs_int8: float, speedup_vs_fp32: float,
               target_vs_int8: float = 2.0, target_vs_fp32: float = 5.0) -> dict:
    """The hypothesis on test for one chosen plan: accuracy (percent) within ``threshold`` points of fp32's test
    accuracy, and both speed-up targets met. Returns ``bar``, ``accuracy_met``, ``speed_met``, ``met`` and
    ``text`` (one sentence that says by how much a miss misses)."""
    bar = fp32_test - threshold
    acc_ok = bool(test_acc >= bar)
    speed_ok = bool(speedup_vs_int8 >= target_vs_int8 and speedup_vs_fp32 >= target_vs_fp32)
    misses = []
    if not acc_ok:
        misses.append(f"accuracy {bar - test_acc:.2f} points under the bar")
    if speedup_vs_int8 < target_vs_int8:
        misses.append(f"{speedup_vs_int8:.2f}x vs plain int8 (target {target_vs_int8}x)")
    if speedup_vs_fp32 < target_vs_fp32:
        misses.append(f"{speedup_vs_fp32:.2f}x vs fp32 (target {target_vs_fp32}x)")
    text = "met" if not misses else "not met: " + "; ".join(misses)
    return {"bar": bar, "accuracy_met": acc_ok, "speed_met": speed_ok, "met": acc_ok and speed_ok, "text": text}
