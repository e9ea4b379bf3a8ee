"""The README's controls sections, from committed tables only: the controls of a machine, how far the baselines are
from a plateau, every plan (03, 05, 08, Scratch-B) against the uniform-width curve with both sides' budgets, the
answer per dataset, and a study's chosen plans against both bars and the curve."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from helpers.analysis.curve import BEATS, against_curve, curve_points, describe_control, faster_control
from helpers.reports.markdown import ci, md, table
from helpers.core.stats import with_interval


def machine_section(folder: Path, threshold_points: float = 1.0) -> list[str]:
    """Markdown lines on one machine's controls (empty when ``make controls`` has not run there)."""
    from helpers.experiments.controls import convergence_lines

    controls = table(folder, "controls")
    if controls is None:
        lines = ["**Controls**: not measured on this machine (run `make controls`): no claim above is attributed to "
                 "compression against a narrower network trained from scratch.", ""]
        summary = table(folder, "search_summary")
        if summary is not None:
            lines += ["O8's chosen plans:", ""] + study_controls(
                folder, summary, {"architecture": "resnet18", "threshold": threshold_points}, folder.parent.parent)
        return lines
    c = with_interval(with_interval(controls, "int8_val_accuracy", "val_n"), "int8_test_accuracy", "test_n")
    lines = md("**Controls** (`make controls`: networks trained from scratch with the baseline's recipe for the budget "
                "shown, in passes over the training split; int8 artifacts of the canonical recipe timed against plain "
                "int8 in alternating blocks; speed-up with its IQR; accuracies of the int8 artifact with 95% intervals):",
                ["model", "dataset", "kind", "channels", "budget", "speed-up [IQR]", "fp32 val.", "int8 val. [95% CI]",
                 "int8 test [95% CI]"],
                [f"| {r.model} | {r.dataset} | {r.kind}{'' if r.kind != 'uniform' else f' x{r.fraction:g}'} | "
                 f"{r.channels} | {r.budget:.2f} | {r.speedup_vs_int8:.2f}x [{r.speedup_iqr:.2f}] | "
                 f"{100 * r.fp32_val_accuracy:.2f}% | {ci(r.int8_val_accuracy, r.int8_val_accuracy_lo, r.int8_val_accuracy_hi)} | "
                 f"{ci(r.int8_test_accuracy, r.int8_test_accuracy_lo, r.int8_test_accuracy_hi)} |"
                 for r in c.itertuples()])
    lines += ["**How far the baselines are from a plateau** (01):", ""] + [f"- {x}" for x in convergence_lines(controls)]
    lines += [""]
    lines += plans_section(folder, controls, threshold_points)
    sb = table(folder, "scratch_b")
    if sb is not None and len(sb):
        lines += md("**Scratch-B** (each chosen plan's pruned architecture re-trained from random initialisation for the "
                     "plan's whole budget; both int8, timed in one run; test difference paired per image):",
                     ["dataset", "methods", "channels", "budget", "pruned + fine-tuned", "from scratch",
                      "difference (points)", "verdict"],
                     [f"| {r.dataset} | {r.methods} | {r.channels} | {r.budget:.2f} | {100 * r.plan_test_accuracy:.2f}% at "
                      f"{r.plan_speedup:.2f}x | {100 * r.scratch_test_accuracy:.2f}% at {r.scratch_speedup:.2f}x | "
                      f"{r.difference_points:+.2f} +/- {r.noise_points:.2f} | **{r.verdict}** |" for r in sb.itertuples()])
        lines += ["Each row is one chosen plan of one seed, so a row that reads \"inheriting helps\" speaks for that "
                  "plan only; the tabular benchmark's Scratch-B (its section, `o8-table`) compares every network it "
                  "trained both ways, paired, and is the larger comparison of inheriting against retraining.", ""]
    return lines


def plans_section(folder: Path, controls: pd.DataFrame, threshold_points: float) -> list[str]:
    """03's and 05's int8 plans (validation) and 08's chosen plans (test) against the curve, and the answer."""
    from helpers.analysis.final_report import against_controls

    lines = []
    for name, what in (("pool", "O3 pool"), ("composition", "O5 compositions")):
        t = table(folder, name)
        if t is None or "budget" not in t:
            continue
        t = t[(t["mode"] == "int8") & (t.label != "int8")].assign(speedup_vs_int8=lambda d: d.speedup)
        v = against_curve(t, controls, split="val")
        lines += md(f"**{what} against the curve** (validation; the plans' budget against the curve's, in passes):",
                     ["model", "plan", "budget", "speed-up", "val. acc.", "curve at that speed-up (budget)",
                      "difference (points)", "verdict"],
                     [f"| {r.model} | {r.label} | {r.budget:.2f} | {r.speedup_vs_int8:.2f}x | {100 * r.val_accuracy:.2f}% | "
                      + (f"{100 * r.curve_accuracy:.2f}% ({r.curve_budget:.2f}) | {r.difference_points:+.2f} +/- "
                         f"{r.noise_points:.2f} |" if pd.notna(r.curve_accuracy) else "- | - |")
                      + f" {r.curve_verdict} |" for r in v.itertuples()])
    s = table(folder, "search_vs_controls")
    summary = table(folder, "search_summary")
    if s is None and summary is not None:  # 08 ran before the controls: unpaired, from the tables
        s = against_controls(summary, controls, "resnet18", threshold_points)
    if s is None or not len(s):
        return lines
    lines += md("**O8 chosen plans against both bars and the curve** (test, once; today's bar: the baseline's fp32 "
                 "test accuracy minus the threshold; budget-matched bar: the budget-matched baseline's; curve "
                 "difference paired per test image where marked):",
                 ["dataset", "method", "budget", "speed-up", "test acc.", "today's bar", "budget-matched bar",
                  "curve at that speed-up", "difference (points)", "verdict"],
                 [f"| {r.dataset} | {r.method} | {_f(r.budget)} | {r.speedup_vs_int8:.2f}x | {100 * r.test_accuracy:.2f}% | "
                  f"{100 * r.bar_test:.2f}% ({'clears' if r.clears_bar else 'misses'}) | "
                  + (f"{100 * r.matched_bar_test:.2f}% ({'clears' if r.clears_matched_bar else 'misses'}) | "
                     if pd.notna(r.matched_bar_test) else "- | ")
                  + (f"{100 * r.curve_accuracy:.2f}% | {r.difference_points:+.2f} +/- {r.noise_points:.2f}"
                     f"{' (paired)' if r.paired else ''} |" if pd.notna(r.curve_accuracy) else "- | - |")
                  + f" **{r.curve_verdict}** |" for r in s.itertuples()])
    lines += ["**Does compression plus search beat a narrower network trained from scratch here?**", ""]
    for ds, g in s.groupby("dataset"):
        gp = g[g.method == "gp"] if (g.method == "gp").any() else g
        r = gp.iloc[0]
        fc = faster_control(controls, r.model, ds, r.speedup_vs_int8, r.fp32_val_accuracy,
                            int(curve_points(controls, r.model, ds).val_n.iloc[0]), threshold_points) \
            if len(curve_points(controls, r.model, ds)) else None
        yes = r.curve_verdict == BEATS
        lines.append(f"- {ds}: {'**yes**' if yes else '**no**'}: the chosen plan ({r.speedup_vs_int8:.2f}x, "
                     f"{100 * r.test_accuracy:.2f}% on test) is {r.curve_verdict}"
                     + (f" ({r.difference_points:+.2f} +/- {r.noise_points:.2f} points)" if pd.notna(r.difference_points) else "")
                     + ("; a " + describe_control(fc) + f" meets the same bar on validation at {fc['speedup_vs_int8']:.2f}x"
                        if fc is not None else "; no narrow network meets the same bar faster on validation") + ".")
    return lines + [""]


def study_controls(folder: Path, chosen: pd.DataFrame, cfg: dict, results: Path) -> list[str]:
    """A study's chosen plans against both bars (test, counts) and the curve, with controls measured on the study's
    machine (``results``/default/<machine>/controls.csv); the budget-matched bar alone (accuracy needs no timing)
    from another machine's controls when the study's machine has none, and no curve comparison then."""
    from helpers.analysis.final_report import against_controls

    own = results / "default" / folder.name / "controls.csv"
    others = sorted(p for p in (results / "default").glob("*/controls.csv") if p != own)
    if not own.exists() and not others:
        return ["No controls are measured on any machine yet: the chosen plans are not compared with a budget-matched "
                "bar or narrow networks trained from scratch.", ""]
    source = own if own.exists() else others[0]
    controls = pd.read_csv(source)
    t = against_controls(chosen, controls, cfg["architecture"], cfg["threshold"])
    same = source == own
    head = ("Against both bars and the curve (controls measured on the machine of these plans; test, once; counts):"
            if same else f"Against both bars (the budget-matched baseline's accuracy from the controls of machine "
                         f"`{source.parent.name}`: accuracy only; the curve needs latencies from the machine of these plans, "
                         f"`{folder.name}`, where `make controls` has not run, so no curve verdict):")
    return md(head, ["dataset", "seed", "method", "speed-up", "test acc.", "today's bar", "budget-matched bar"]
               + (["curve verdict"] if same else []),
               [f"| {r.dataset} | {r.seed} | {r.method} | {r.speedup_vs_int8:.2f}x | {100 * r.test_accuracy:.2f}% | "
                f"{'clears' if r.clears_bar else '**misses**'} ({100 * r.bar_test:.2f}%) | "
                + (f"{'clears' if r.clears_matched_bar else '**misses**'} ({100 * r.matched_bar_test:.2f}%) |"
                   if pd.notna(r.matched_bar_test) else "- |")
                + (f" {r.curve_verdict} |" if same else "") for r in t.itertuples()]) + _bar_counts(t)


def _bar_counts(t: pd.DataFrame) -> list[str]:
    m = t.dropna(subset=["matched_bar_test"])
    if not len(m):
        return []
    return [f"Chosen plans clearing today's bar on test: {int(m.clears_bar.sum())} of {len(m)}; clearing the "
            f"budget-matched bar: {int(m.clears_matched_bar.astype(bool).sum())} of {len(m)} (datasets with a "
            "budget-matched baseline).", ""]


def _f(x) -> str:
    return "-" if x is None or pd.isna(x) else f"{x:.2f}"
