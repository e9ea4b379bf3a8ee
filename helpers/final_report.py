"""O8's report on the test split: one row per dataset and search method, and the verdict said once per dataset.

Selection happened on validation; here the chosen artifact and both references are scored on test, and
``verdicts.o8_verdict`` states the hypothesis' verdict with the test accuracy's 95% interval. Accuracies
are fractions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.stats import with_interval
from helpers.verdicts import o8_verdict


def summary_rows(dataset: str, refs: dict, results: dict, finals, test_ds, threshold_points: float,
                 target_vs_int8: float, target_vs_fp32: float, budget: int) -> list[dict]:
    """One row per search method on ``dataset``: its chosen plan, speed-ups, validation and (GP) test accuracy.

    ``results`` maps method -> ``search.SearchResult`` (screening); ``finals`` is the GP's ``confirm_front``
    result, whose best is the GP's chosen plan. Only the GP's choice is scored on test: the others had no
    final runs.
    """
    from helpers.runtime import evaluate_tflite

    fp32_test = evaluate_tflite(refs["fp32_artifact"], test_ds)["accuracy"]
    int8_test = evaluate_tflite(refs["int8_artifact"], test_ds)["accuracy"]
    rows = []
    for m, res in results.items():
        r = finals if m == "gp" else res
        row = {"dataset": dataset, "method": m, "trials": len(res.trials[:budget]),
               "stage": "final" if m == "gp" else "screening", "fp32_latency_ms": refs["fp32_latency_ms"],
               "int8_latency_ms": refs["int8_latency_ms"], "fp32_test_accuracy": fp32_test,
               "int8_test_accuracy": int8_test, "fp32_val_accuracy": refs["fp32_val_accuracy"],
               "threshold": threshold_points, "target_vs_int8": target_vs_int8, "target_vs_fp32": target_vs_fp32,
               "test_n": len(test_ds)}
        if r.best:
            b = r.best
            row.update(chosen=str(b["values"]), latency_ms=b["latency_ms"], val_accuracy=b["accuracy"],
                       speedup_vs_int8=refs["int8_latency_ms"] / b["latency_ms"],
                       speedup_vs_fp32=refs["fp32_latency_ms"] / b["latency_ms"],
                       test_accuracy=evaluate_tflite(b["artifact"], test_ds)["accuracy"] if m == "gp" else np.nan,
                       artifact=b["artifact"])
        else:
            row.update(chosen=r.message)
        rows.append(row)
    return rows


def summary_table(rows: list[dict]) -> pd.DataFrame:
    """The rows as a table with the 95% Wilson interval of each chosen plan's test accuracy."""
    df = pd.DataFrame(rows)
    if "test_accuracy" not in df:
        df["test_accuracy"] = np.nan
    return with_interval(df, "test_accuracy", "test_n")


def verdict_lines(summary: pd.DataFrame, finals: dict, int8_latency: dict) -> list[str]:
    """The verdict on test for each dataset's GP choice, what it was chosen over, and the faster final runs that
    missed the bar (why nothing faster was chosen)."""
    out = []
    for _, r in summary[summary.method == "gp"].iterrows():
        threshold, bar_val = r.threshold, r.fp32_val_accuracy - r.threshold / 100
        if pd.isna(r.get("latency_ms")):
            closest = finals[r.dataset].closest
            near = (f"; closest final run {100 * closest[0]['accuracy']:.2f}% at {closest[0]['latency_ms']:.4f} ms"
                    if closest else "")
            out.append(f"{r.dataset}: no final run met the bar ({r.chosen}){near}")
            continue
        v = o8_verdict(r.test_accuracy, r.fp32_test_accuracy, threshold, r.speedup_vs_int8, r.speedup_vs_fp32,
                       r.target_vs_int8, r.target_vs_fp32)
        out.append(f"{r.dataset}: VERDICT ON TEST: {v['text']} (test accuracy {100 * r.test_accuracy:.2f}%, 95% CI "
                   f"{100 * r.test_accuracy_lo:.2f}-{100 * r.test_accuracy_hi:.2f}%, bar {100 * v['bar']:.2f}% = fp32 "
                   f"test {100 * r.fp32_test_accuracy:.2f}% minus {threshold} point)")
        out.append(f"{r.dataset}: chosen {r.chosen}: {r.speedup_vs_int8:.2f}x vs plain int8 (target {r.target_vs_int8}x), "
                   f"{r.speedup_vs_fp32:.2f}x vs fp32 LiteRT (target {r.target_vs_fp32}x), validation "
                   f"{100 * r.val_accuracy:.2f}% vs fp32 {100 * r.fp32_val_accuracy:.2f}% "
                   f"({'within' if r.val_accuracy >= bar_val else 'outside'} {threshold} point), test "
                   f"{100 * r.test_accuracy:.2f}% (fp32 {100 * r.fp32_test_accuracy:.2f}%, plain int8 "
                   f"{100 * r.int8_test_accuracy:.2f}%)")
        for t in finals[r.dataset].trials:
            if t["status"] == "ok" and not t["feasible"] and t["latency_ms"] < r.latency_ms:
                out.append(f"  faster candidate {t['values']}: {int8_latency[r.dataset] / t['latency_ms']:.2f}x, "
                           f"validation {100 * t['accuracy']:.2f}% after the long fine-tune, "
                           f"{100 * (bar_val - t['accuracy']):.2f} points under the bar")
    return out
