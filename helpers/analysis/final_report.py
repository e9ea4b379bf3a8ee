"""O8's report on the test split: one row per dataset and search method, and the verdict said once per dataset.

08 runs a one-seed study (``study.run_study``): every method's screening front gets the same long fine-tune
and each method's chosen plan (the fastest final run over the bar on validation) is scored once on test.
Here those rows get their speed-ups and the test accuracy's 95% interval, and ``verdicts.o8_verdict`` states
the hypothesis' verdict for the GP's plan. Accuracies are fractions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from helpers.core.stats import with_interval
from helpers.analysis.verdicts import o8_verdict


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
    from helpers.search.store import StudyLayout, read_log

    out, layout = [], StudyLayout(folder)
    for _, r in summary.iterrows():
        tag = layout.tag(r.dataset, r.seed, r.method)
        bar_val = r.fp32_val_accuracy - r.threshold / 100
        finals = [t for t in read_log(layout.log(r.dataset, r.seed, r.method, final=True)) if t["status"] == "ok"]
        if pd.isna(r.latency_ms):
            near = max(finals, key=lambda t: t["accuracy"], default=None)
            out.append(f"{tag}: no final run met the bar" + (
                f"; the most accurate reached {100 * near['accuracy']:.2f}% at {near['latency_ms']:.4f} ms "
                f"(bar {100 * bar_val:.2f}%)" if near else ""))
            continue
        v = o8_verdict(r.test_accuracy, r.fp32_test_accuracy, r.threshold, r.speedup_vs_int8, r.speedup_vs_fp32,
                       r.target_vs_int8, r.target_vs_fp32, int(r.test_n))
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


def against_controls(summary: pd.DataFrame, controls: pd.DataFrame, model: str, threshold_points: float,
                     predictions: dict | None = None, plan_correct: dict | None = None) -> pd.DataFrame:
    """Chosen plans (rows of ``summary_table`` or a study's chosen.csv) on test against both bars and the curve.

    Today's bar is the baseline's fp32 test accuracy minus the threshold; the budget-matched bar the budget-matched
    baseline's (a control). Both are compared as counts (``bars.clears_accuracy``). ``plan_correct`` maps an
    artifact path to its per-image test correctness, for a comparison with the curve paired per image.
    """
    from helpers.core.bars import clears_accuracy
    from helpers.analysis.curve import against_curve

    plans = summary.dropna(subset=["latency_ms"]).assign(
        model=model, speedup_vs_int8=lambda d: d.int8_latency_ms / d.latency_ms,
        key=lambda d: d.artifact if "artifact" in d else None).reset_index(drop=True)
    bm = controls[(controls.model == model) & (controls.kind == "budget_matched")].set_index("dataset")
    t = threshold_points / 100
    rows = []
    for _, r in plans.iterrows():
        m = bm.loc[r.dataset] if r.dataset in bm.index else None
        rows.append({"bar_test": r.fp32_test_accuracy - t,
                     "clears_bar": clears_accuracy(r.test_accuracy, r.test_n, r.fp32_test_accuracy, r.test_n,
                                                   threshold_points),
                     "matched_bar_test": np.nan if m is None else m.fp32_test_accuracy - t,
                     "clears_matched_bar": None if m is None else clears_accuracy(
                         r.test_accuracy, r.test_n, m.fp32_test_accuracy, int(m.test_n), threshold_points),
                     "matched_budget": np.nan if m is None else m.budget})
    plans = pd.concat([plans, pd.DataFrame(rows)], axis=1)
    return against_curve(plans, controls, predictions, plan_correct)


def controls_report(summary: pd.DataFrame, model: str, threshold_points: float, profile: str,
                    test_images: int | None = None) -> tuple[pd.DataFrame | None, list[str]]:
    """08's chosen plans against this machine's controls: the table of ``against_controls`` (paired per test image)
    and one line per dataset: the verdict against the curve and the tool's answer (a faster narrow network that
    meets the same bar on validation, named, or none). Without controls on this machine: (None, one sentence)."""
    from helpers.core import paths
    from helpers.experiments.controls import load_controls, predictions_for
    from helpers.analysis.curve import answer
    from helpers.datasets.data import load_dataset
    from helpers.core.identity import machine
    from helpers.deploy.runtime import evaluate_tflite

    controls, machine_id = load_controls(profile), machine()["id"]
    if controls is None:
        return None, [answer(None, model, ds, None, 0.0, 1, threshold_points, machine_id)
                      for ds in summary.dataset.unique()]
    plan_correct = {}
    for r in summary.dropna(subset=["latency_ms"]).itertuples():
        if paths.resolve(r.artifact).is_file() and r.artifact not in plan_correct:
            test_ds = load_dataset(r.dataset, "test").subset(test_images)
            plan_correct[r.artifact] = (evaluate_tflite(paths.resolve(r.artifact), test_ds)["predictions"]
                                        == test_ds.targets.numpy())
    from helpers.experiments.portable import origin

    table = against_controls(summary, controls, model, threshold_points, predictions_for(profile, controls),
                             plan_correct)
    lines = [f"the controls: narrow networks trained from scratch, {origin(controls, machine_id)}"]
    for r in summary.itertuples():
        c = controls[(controls.dataset == r.dataset) & (controls.kind == "budget_matched")]
        val_n = int(c.val_n.iloc[0]) if len(c) else 1
        speedup = None if pd.isna(r.latency_ms) else r.int8_latency_ms / r.latency_ms
        lines.append(f"{r.dataset} {r.method}: " + answer(controls, model, r.dataset, speedup, r.fp32_val_accuracy,
                                                          val_n, threshold_points, machine_id))
    for t in table.itertuples():
        lines.append(f"{t.dataset} {t.method}: {t.speedup_vs_int8:.2f}x at {100 * t.test_accuracy:.2f}% on test "
                     f"(budget {getattr(t, 'budget', np.nan):.2f} passes) against narrow networks trained from scratch for "
                     f"{t.curve_budget:.2f} passes: {t.curve_verdict}" + (
                         f" ({t.difference_points:+.2f} +/- {t.noise_points:.2f} points, "
                         f"{'paired per image' if t.paired else 'unpaired'})" if pd.notna(t.difference_points) else ""))
    return table, lines


def chosen_placements(chosen: pd.DataFrame) -> dict:
    """Where each chosen plan's artifact would run on the Edge TPU (as 04 draws it), keyed 'dataset sSEED method';
    plans without an artifact (no final run cleared the bar) are left out."""
    from helpers.core import paths
    from helpers.deploy.edgetpu import report

    return {f"{r.dataset} s{r.seed} {r.method}": report(paths.resolve(r.artifact)).placement
            for r in chosen.dropna(subset=["latency_ms"]).itertuples()}
