"""O8's report on the test split: one row per dataset and search method, and the verdict said once per dataset.

08 runs a one-seed study (``study.run_study``): every method's screening front gets the same long fine-tune
and each method's chosen plan (the fastest final run over the bar on validation) is scored once on test.
Here those rows get their speed-ups and the test accuracy's 95% interval, and ``verdicts.o8_verdict`` states
the hypothesis' verdict for the GP's plan. Accuracies are fractions.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from helpers.stats import with_interval
from helpers.verdicts import o8_verdict


def summary_table(chosen: pd.DataFrame, threshold_points: float, target_vs_int8: float,
                  target_vs_fp32: float) -> pd.DataFrame:
    """``run_study``'s chosen plans with speed-ups over plain int8 and fp32, the targets, the threshold and the
    95% Wilson interval of each chosen plan's test accuracy (NaN where no final run cleared the bar)."""
    df = chosen.drop(columns=["summary"], errors="ignore").assign(
        stage="final", threshold=threshold_points, target_vs_int8=target_vs_int8, target_vs_fp32=target_vs_fp32,
        speedup_vs_int8=lambda d: d.int8_latency_ms / d.latency_ms,
        speedup_vs_fp32=lambda d: d.fp32_latency_ms / d.latency_ms)
    return with_interval(df, "test_accuracy", "test_n")


def verdict_lines(summary: pd.DataFrame, folder: str | Path) -> list[str]:
    """Per dataset and method: the chosen plan on test (for the GP, the hypothesis' verdict), and the faster
    final runs of that search that missed the bar on validation (why nothing faster was chosen), read from the
    study's final-run logs in ``folder``."""
    from helpers.search import read_log

    out = []
    for _, r in summary.iterrows():
        tag = f"{r.dataset}-s{r.seed}-{r.method}"
        bar_val = r.fp32_val_accuracy - r.threshold / 100
        finals = [t for t in read_log(Path(folder) / f"{tag}-final.jsonl") if t["status"] == "ok"]
        if pd.isna(r.latency_ms):
            near = max(finals, key=lambda t: t["accuracy"], default=None)
            out.append(f"{tag}: no final run met the bar" + (
                f"; the most accurate reached {100 * near['accuracy']:.2f}% at {near['latency_ms']:.4f} ms "
                f"(bar {100 * bar_val:.2f}%)" if near else ""))
            continue
        v = o8_verdict(r.test_accuracy, r.fp32_test_accuracy, r.threshold, r.speedup_vs_int8, r.speedup_vs_fp32,
                       r.target_vs_int8, r.target_vs_fp32)
        head = "VERDICT ON TEST" if r.method == "gp" else "for comparison, on test"
        out.append(f"{tag}: {head}: {v['text']} (test accuracy {100 * r.test_accuracy:.2f}%, 95% CI "
                   f"{100 * r.test_accuracy_lo:.2f}-{100 * r.test_accuracy_hi:.2f}%, bar {100 * v['bar']:.2f}% = fp32 "
                   f"test {100 * r.fp32_test_accuracy:.2f}% minus {r.threshold} point)")
        out.append(f"{tag}: chosen {r.chosen}: {r.speedup_vs_int8:.2f}x vs plain int8 (target {r.target_vs_int8}x), "
                   f"{r.speedup_vs_fp32:.2f}x vs fp32 LiteRT (target {r.target_vs_fp32}x), validation "
                   f"{100 * r.val_accuracy:.2f}% vs fp32 {100 * r.fp32_val_accuracy:.2f}%")
        for t in finals:
            if not t["feasible"] and t["latency_ms"] < r.latency_ms:
                out.append(f"  faster candidate {t['values']}: {r.int8_latency_ms / t['latency_ms']:.2f}x, "
                           f"validation {100 * t['accuracy']:.2f}% after the long fine-tune, "
                           f"{100 * (bar_val - t['accuracy']):.2f} points under the bar")
    return out
