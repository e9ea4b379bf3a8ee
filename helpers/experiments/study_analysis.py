"""The O8 study's analysis, from its folder alone: the pre-registered verdict with its bootstrap interval, the
fidelity check (screening against the long fine-tune), the calibrated screening slack, and the cost per trial."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.experiments.study_config import CRITERION
from helpers.search.store import StudyLayout, read_log

#: final runs a calibrated screening rule needs before it replaces the prior slack (two seeds of two methods'
#: two final runs: fewer points than that move a fitted line more than they inform it)
MIN_CALIBRATION_RUNS = 8


def calibrated_slack(finals: list[dict], bar: float, prior: float,
                     min_runs: int | None = None) -> tuple[float, str]:
    """The screening slack (points) a model of the long fine-tune gives, and how it was found.

    A least-squares line of final accuracy on screening accuracy over ``finals`` (final runs, each with
    ``screen_accuracy`` and ``accuracy``); the slack is how far under ``bar`` (a fraction) the screening accuracy
    may lie whose predicted final accuracy reaches the bar, clipped to [0, 50] points. ``prior`` stands until
    ``min_runs`` (default ``MIN_CALIBRATION_RUNS``) final runs exist, and whenever the line does not rise
    (screening then orders nothing). Written here because it is two lines of numpy; a fuller model (plan values as covariates) waits for data.
    """
    min_runs = MIN_CALIBRATION_RUNS if min_runs is None else min_runs
    pts = np.array([(r["screen_accuracy"], r["accuracy"]) for r in finals if r.get("status") == "ok"], float)
    if len(pts) < min_runs:
        return float(prior), f"prior ({len(pts)} final runs, fewer than {min_runs})"
    if np.ptp(pts[:, 0]) == 0:
        return float(prior), "prior (every final run screened at one accuracy)"
    slope, icpt = np.polyfit(pts[:, 0], pts[:, 1], 1)
    if slope <= 0:
        return float(prior), f"prior (fitted slope {slope:.2f}: screening does not order final accuracy)"
    screen_at_bar = (bar - icpt) / slope
    slack = float(np.clip(100 * (bar - screen_at_bar), 0.0, 50.0))
    return round(slack, 2), f"fit on {len(pts)} final runs: final = {icpt:.3f} + {slope:.2f} x screening"


def verdict(chosen: pd.DataFrame, criterion: dict = CRITERION, resamples: int = 10_000, seed: int = 0,
            planned_seeds: int | None = None) -> pd.DataFrame:
    """The pre-registered verdict per dataset: the GP's chosen latency over random search's, per seed, its median
    and bootstrap interval, and whether the success rule holds. A missing plan scores plain int8's latency.

    With ``planned_seeds`` (the study's number of seeds), a dataset with fewer finished seeds gets the figures
    so far and the verdict "interim", never a claim: the criterion was registered for the whole study."""
    rows = []
    level = float(criterion.get("interval", 0.90))
    for ds, d in chosen.groupby("dataset"):
        lat = d.assign(latency_ms=d.latency_ms.fillna(d.int8_latency_ms)).pivot(index="seed", columns="method",
                                                                                  values="latency_ms")
        if not {"gp", "random"} <= set(lat.columns):
            continue
        ratios = (lat["gp"] / lat["random"]).dropna().to_numpy()
        if len(ratios) == 0:
            continue
        rng = np.random.default_rng(seed)
        boots = np.median(rng.choice(ratios, (resamples, len(ratios)), replace=True), axis=1)
        lo, hi = np.quantile(boots, [(1 - level) / 2, 1 - (1 - level) / 2])
        rows.append({"dataset": ds, "seeds": len(ratios), "median_ratio": float(np.median(ratios)), "lo": float(lo),
                     "hi": float(hi), "gp_wins": int((ratios < 1).sum()), "ties": int((ratios == 1).sum()),
                     "met": bool(hi < 1.0),
                     "verdict": ("GP faster (criterion met)" if hi < 1.0 else
                                 "random search faster" if lo > 1.0 else "no difference shown (criterion not met)")})
        if planned_seeds and len(ratios) < planned_seeds:
            rows[-1].update(met=False, verdict=f"interim ({len(ratios)} of {planned_seeds} seeds): no verdict yet")
    return pd.DataFrame(rows)


def fidelity(folder: Path) -> pd.DataFrame:
    """How well screening predicts the long fine-tune, per dataset, over every final run: the Spearman rank
    correlation of screening and final accuracy, how many final runs clear the real bar, the mean gain, and
    (given the study's ``study.json`` and references) how many that clear it had screened under their search's
    screening bar (``rejected_passing``: plans the screening rule called infeasible), the slack used and the
    slack :func:`calibrated_slack` fits on all of them (what a calibrated rule would use next)."""
    from scipy.stats import spearmanr

    layout = StudyLayout(folder)
    meta = json.loads(layout.meta.read_text())["config"] if layout.meta.exists() else None
    rows = []
    for x in layout.logs(final=True):
        ds, seed = x["dataset"], x["seed"]
        for r in read_log(x["path"]):
            if r.get("status") == "ok":
                rows.append({"dataset": ds, "seed": seed, "screen": r["screen_accuracy"], "final": r["accuracy"],
                             "passes": r["feasible"], "row": r})
    out = []
    for ds, d in pd.DataFrame(rows, columns=["dataset", "seed", "screen", "final", "passes", "row"]).groupby("dataset"):
        with warnings.catch_warnings():  # all final runs at one accuracy: no rank correlation (NaN), said as such
            warnings.simplefilter("ignore")
            rho = spearmanr(d.screen, d.final).statistic if len(d) > 2 else np.nan
        row = {"dataset": ds, "final_runs": len(d), "spearman": float(rho), "passing": int(d.passes.sum()),
               "mean_gain_points": float(100 * (d.final - d.screen).mean())}
        ref = layout.reference(ds)
        if meta is not None and ref.exists():
            bar = json.loads(ref.read_text())["fp32_val_accuracy"] - meta["threshold"] / 100
            prior = meta["screen_slack"][ds] if isinstance(meta["screen_slack"], dict) else meta["screen_slack"]
            used = {seed: _used_slack(folder, ds, seed, prior) for seed in d.seed.unique()}
            under = d.screen < bar - d.seed.map(used) / 100 - 1e-9
            row.update(rejected_passing=int((d.passes & under).sum()), slack_used=float(np.median(list(used.values()))),
                       calibrated_slack=calibrated_slack(list(d.row), bar, prior)[0])
        out.append(row)
    return pd.DataFrame(out)


def _used_slack(folder: Path, ds: str, seed: int, prior: float) -> float:
    """The slack a seed's searches ran under: its calibrated slack file, else the constant ``prior``."""
    path = StudyLayout(folder).slack(ds, seed)
    return float(json.loads(path.read_text())["slack_points"]) if path.exists() else float(prior)


def cost_table(folder: Path) -> pd.DataFrame:
    """Mean seconds per trial by phase (fine-tune, other compression, export, timing, accuracy), screening and
    final runs apart, over the trials that ran (not those that reused a network's outcome)."""
    rows = []
    for x in StudyLayout(folder).logs():
        stage = "final" if x["final"] else "screening"
        for r in read_log(x["path"]):
            if r.get("status") == "ok" and isinstance(r.get("cost"), dict) and not r.get("same_network_as"):
                rows.append({"stage": stage, **r["cost"], "total_s": r["seconds"]})
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    return df.groupby("stage").agg(["mean", "count"]).xs("mean", axis=1, level=1).assign(
        trials=df.groupby("stage").size())


def chosen_by_counts(folder: Path, chosen: pd.DataFrame, threshold_points: float, counts: bool = True) -> pd.DataFrame:
    """The chosen plans re-derived from the final-run logs: per search, the fastest final run that clears the bar
    on validation, compared as counts of correct images (``bars.clears_accuracy``; ``counts=False``: as floats, the
    rule the committed studies ran under, which reproduces their chosen.csv). Columns of ``chosen`` with the new
    ``latency_ms`` and ``val_accuracy``, ``changed`` (another plan than the committed one) and ``on_bar`` (final
    runs of that search whose accuracy sits exactly on the bar). Test accuracy of a newly chosen plan is unknown
    (NaN) until it is scored where its artifact is."""
    from helpers.core.bars import clears_accuracy

    layout, rows = StudyLayout(folder), []
    for r in chosen.itertuples(index=False):
        finals = [t for t in read_log(layout.log(r.dataset, r.seed, r.method, final=True)) if t.get("status") == "ok"]
        bar = r.fp32_val_accuracy - threshold_points / 100

        by_count = [clears_accuracy(t["accuracy"], int(t.get("val_n") or 2000), r.fp32_val_accuracy,
                                    int(t.get("val_n") or 2000), threshold_points) for t in finals]
        ok = [t for t, c in zip(finals, by_count) if (c if counts else t["accuracy"] >= bar)]
        best = min(ok, key=lambda t: t["latency_ms"]) if ok else None
        new = np.nan if best is None else best["latency_ms"]
        same = (pd.isna(new) and pd.isna(r.latency_ms)) or (not pd.isna(new) and not pd.isna(r.latency_ms)
                                                             and np.isclose(new, r.latency_ms, rtol=0, atol=1e-12))
        on_bar = sum(c and t["accuracy"] < bar for t, c in zip(finals, by_count))
        rows.append({**r._asdict(), "latency_ms": new, "val_accuracy": np.nan if best is None else best["accuracy"],
                     "test_accuracy": r.test_accuracy if same else np.nan, "changed": not same, "on_bar": on_bar})
    return pd.DataFrame(rows)
