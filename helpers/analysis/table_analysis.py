"""The tabular benchmark's pre-registered analysis: optimisers replayed on a dataset's table, their regret, the
paired comparisons (Wilcoxon signed-rank, median ratio with a bootstrap interval, practical equivalence), the
training-seed noise near the bar, and the fastest network that clears the bar against the uniform widths."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.core.bars import bar_fraction
from helpers.search.objective import Objective
from helpers.experiments.replay import TableSearch, replay
from helpers.experiments.table import table_frame
from helpers.experiments.table_config import Lattice, TableConfig
from helpers.search.store import TableLayout


def table_search(cfg: TableConfig, folder: Path, dataset: str) -> tuple[TableSearch, dict]:
    """The dataset's inherit rows as an oracle, the bar from the budget-matched network's validation count minus
    the threshold (exact fractions). ValueError when the table does not hold every network of the space."""
    import json

    layout = TableLayout(folder)
    if not layout.reference(dataset).exists():
        raise ValueError(f"no table of {dataset} in {folder}; build it with `python -m helpers table CONFIG`")
    ref = json.loads(layout.reference(dataset).read_text())
    df = table_frame(folder, dataset)
    inherit = df[df.kind == "inherit"] if len(df) else df
    lat = cfg.lattice()
    have = set(inherit.network) if len(inherit) else set()
    missing = [Lattice.key(n) for n in lat.networks() if Lattice.key(n) not in have]
    if missing:
        raise ValueError(f"the {dataset} table in {folder} lacks {len(missing)} of {len(lat)} networks (e.g. "
                         f"{missing[0]}); finish it with `python -m helpers table CONFIG --resume` before replaying")
    untimed = inherit[inherit.latency_ms.isna()]
    if len(untimed):
        raise ValueError(f"{len(untimed)} of {len(lat)} networks of the {dataset} table have no latency measured on "
                         f"{folder.name} (e.g. {untimed.network.iloc[0]}); re-time them there with `python -m helpers "
                         "table CONFIG --resume --stage retime` before replaying")
    outcomes = {Lattice.parse_key(r.network): {"val_correct": int(r.val_correct), "val_n": int(r.val_n),
                                               "latency_ms": float(r.latency_ms),
                                               "latency_iqr_ms": float(r.latency_iqr_ms)} for r in inherit.itertuples()}
    bar = table_bar(cfg, ref)
    obj = Objective("constrained", float(Fraction(ref["matched_val_correct"], ref["val_n"])), cfg.threshold,
                    ref["int8_latency_ms"])
    return TableSearch(outcomes, lat, bar, obj), ref


def table_bar(cfg: TableConfig, ref: dict) -> Fraction:
    """The bar as an exact fraction of validation images: the budget-matched network's count minus the threshold."""
    return bar_fraction(ref["matched_val_correct"], ref["val_n"], cfg.threshold)


def replays(cfg: TableConfig, folder: Path, dataset: str, optimisers=None, seeds: int | None = None) -> pd.DataFrame:
    """Every optimiser's replays (seeds 0..seeds-1, each to the largest budget) with the regret after each trial."""
    space, ref = table_search(cfg, folder, dataset)
    best = space.best_latency()
    rows = []
    for opt in optimisers or cfg.optimisers:
        for seed in range(seeds or cfg.seeds):
            trials = replay(space, opt, seed, max(cfg.budgets), cfg.n_initial)
            for t in trials:
                chosen = t["best_ms"] if t["best_ms"] == t["best_ms"] else ref["int8_latency_ms"]  # no plan: plain int8
                rows.append({"dataset": dataset, "optimiser": opt, "seed": seed, **t, "regret": chosen / best})
    return pd.DataFrame(rows)


def regret_at(runs: pd.DataFrame, budget: int, reference_ms: float, best_ms: float) -> pd.DataFrame:
    """Regret after ``budget`` trials per optimiser and seed; a search that stopped earlier keeps its last value."""
    out = []
    for (opt, seed), g in runs.groupby(["optimiser", "seed"]):
        g = g.sort_values("trial")
        upto = g[g.trial < budget]
        r = upto.regret.iloc[-1] if len(upto) else reference_ms / best_ms
        out.append({"optimiser": opt, "seed": seed, "budget": budget, "regret": float(r)})
    return pd.DataFrame(out)


def compare(a: np.ndarray, b: np.ndarray, one_sided: bool, level: float, margin: float, alpha: float,
            resamples: int = 10_000, seed: int = 0, interval: bool = True) -> dict:
    """Paired comparison of two optimisers' regrets over seeds: Wilcoxon signed-rank of log(a) - log(b) (one-sided:
    a lower), the median ratio a/b with its bootstrap interval, and the verdict with practical equivalence.
    ``interval=False`` skips the bootstrap when the test is significant (the verdict does not use it; lo and hi are
    then NaN)."""
    from scipy.stats import rankdata, wilcoxon

    d = np.log(a) - np.log(b)
    if np.all(d == 0):
        p, stat = 1.0, 0.0
    else:
        res = wilcoxon(d, alternative="less" if one_sided else "two-sided")
        p, stat = float(res.pvalue), float(res.statistic)
    if interval or p >= alpha:
        rng = np.random.default_rng(seed)
        boots = np.median(rng.choice(d, (resamples, len(d)), replace=True), axis=1)
        lo, hi = np.exp(np.quantile(boots, [(1 - level) / 2, 1 - (1 - level) / 2]))
    else:
        lo = hi = float("nan")
    ratio = float(np.exp(np.median(d)))
    equivalent = 1 - margin <= lo and hi <= 1 + margin
    nonzero = d[d != 0]
    ranks = rankdata(np.abs(nonzero))
    first_lower = ranks[nonzero < 0].sum() > ranks[nonzero > 0].sum()  # the signed ranks' side, not the median's
    if p < alpha and (one_sided or first_lower):  # (the median of d is 0 when most seeds tie)
        verdict = "first better"
    elif p < alpha:
        verdict = "second better"
    elif equivalent:
        verdict = f"equivalent within +/-{100 * margin:g}%"
    else:
        verdict = "no difference shown (not equivalent either)"
    return {"seeds": len(d), "wins": int((d < 0).sum()), "ties": int((d == 0).sum()), "losses": int((d > 0).sum()),
            "median_ratio": ratio, "lo": float(lo), "hi": float(hi), "wilcoxon_W": stat, "p": p,
            "equivalent": bool(equivalent), "verdict": verdict}


def verdicts(cfg: TableConfig, runs: pd.DataFrame, reference_ms: float, best_ms: float) -> pd.DataFrame:
    """The pre-registered comparisons at every budget (the primary one is the analysis' budget, 20 by default)."""
    a = cfg.analysis
    rows = []
    for budget in cfg.budgets:
        r = regret_at(runs, budget, reference_ms, best_ms).pivot(index="seed", columns="optimiser", values="regret")
        for first, second in a["comparisons"]:
            if first not in r or second not in r:
                continue
            c = compare(r[first].to_numpy(), r[second].to_numpy(), second == "random", a["interval"],
                        a["equivalence_margin"], a["alpha"])
            rows.append({"dataset": runs.dataset.iloc[0], "budget": budget, "first": first, "second": second, **c})
    return pd.DataFrame(rows)


def regret_summary(runs: pd.DataFrame, budgets, reference_ms: float, best_ms: float) -> pd.DataFrame:
    """Per optimiser and budget: median regret and its quartiles, and the share of seeds that found the best."""
    rows = []
    for b in budgets:
        r = regret_at(runs, b, reference_ms, best_ms)
        for opt, g in r.groupby("optimiser"):
            v = g.regret.to_numpy()
            rows.append({"optimiser": opt, "budget": b, "median_regret": float(np.median(v)),
                         "q25": float(np.quantile(v, 0.25)), "q75": float(np.quantile(v, 0.75)),
                         "found_best": float(np.mean(np.isclose(v, 1.0)))})
    return pd.DataFrame(rows)


def seed_noise(folder: Path, dataset: str, bar: Fraction) -> dict:
    """Training-seed noise of the validation count: the seed-1 rows against the same networks' seed-0 rows, how many
    of them change side of the bar, and how many of the table's networks lie within two standard deviations of one
    run's count from the bar (their side of it depends on the training seed)."""
    df = table_frame(folder, dataset)
    if not len(df) or not (df.kind == "seed1").any():
        return {"networks": 0}
    a = df[df.kind == "inherit"].set_index("network")
    b = df[df.kind == "seed1"].set_index("network")
    both = a.index.intersection(b.index)
    d = (b.loc[both, "val_correct"] - a.loc[both, "val_correct"]).to_numpy(float)
    flips = sum(_clears(a.loc[k], bar) != _clears(b.loc[k], bar) for k in both)
    sd = float(d.std(ddof=1)) if len(d) > 1 else float("nan")
    run_sd = sd / np.sqrt(2)  # one run's: the difference of two independent runs has twice its variance
    near = int(sum(abs(Fraction(int(r.val_correct), int(r.val_n)) - bar) * int(r.val_n) <= 2 * run_sd
                   for r in a.itertuples())) if sd == sd else 0
    t = (b.loc[both, "test_correct"] - a.loc[both, "test_correct"]).to_numpy(float)
    return {"networks": len(both), "mean_correct": float(d.mean()), "sd_correct": sd, "run_sd_correct": run_sd,
            "up": int((d > 0).sum()), "mean_test": float(t.mean()), "test_n": int(a.test_n.iloc[0]),
            "max_abs_correct": float(np.abs(d).max()), "flips": int(flips), "val_n": int(a.val_n.iloc[0]),
            "near_bar": near, "table": len(a)}


def inherit_vs_scratch(cfg: TableConfig, folder: Path, dataset: str, bar: Fraction) -> dict:
    """Inherit the baseline's weights or train from scratch: the networks trained both ways, paired as scratch minus
    inherit, over all of them and over the random subset alone (drawn uniformly from the space, so free of the front's
    selection on the inherited validation count). Test counts carry the comparison (validation chose the front);
    the Wilcoxon signed-rank test is two-sided."""
    from scipy.stats import wilcoxon

    from helpers.experiments.table import scratch_groups

    df = table_frame(folder, dataset)
    if not len(df) or not (df.kind == "scratch").any() or df.latency_ms.isna().any():
        return {"networks": 0}
    a = df[df.kind == "inherit"].set_index("network")
    b = df[df.kind == "scratch"].set_index("network")
    groups = {g: [Lattice.key(n) for n in nets]
              for g, nets in scratch_groups(cfg, df.to_dict("records"), cfg.lattice().widest()).items()}

    def paired(keys) -> dict:
        keys = [k for k in keys if k in a.index and k in b.index]
        if not keys:
            return {"networks": 0}
        t = (b.loc[keys, "test_correct"] - a.loc[keys, "test_correct"]).to_numpy(float)
        v = (b.loc[keys, "val_correct"] - a.loc[keys, "val_correct"]).to_numpy(float)
        p = float(wilcoxon(t).pvalue) if len(t) > 1 and t.any() else float("nan")
        return {"networks": len(keys), "test_up": int((t > 0).sum()), "test_median": float(np.median(t)),
                "val_up": int((v > 0).sum()), "p": p,
                "clear_inherit": int(sum(_clears(a.loc[k], bar) for k in keys)),
                "clear_scratch": int(sum(_clears(b.loc[k], bar) for k in keys))}

    made = {g: len([k for k in keys if k in b.index]) for g, keys in groups.items()}
    return {**paired(list(b.index)), "groups": made, "test_n": int(a.test_n.iloc[0]),
            "random": paired(groups["random"])}


def _clears(row, bar: Fraction) -> bool:
    return Fraction(int(row["val_correct"]), int(row["val_n"])) >= bar


def fastest_clearing(df: pd.DataFrame, bar: Fraction, kind: str = "inherit") -> dict | None:
    """The fastest network of ``kind`` in a table frame (``table.table_frame``) that clears the bar on validation
    (re-timed here), or None."""
    rows = df[(df.kind == kind) & df.latency_ms.notna()] if len(df) else df
    ok = [r for _, r in rows.iterrows() if _clears(r, bar)]
    return _row(min(ok, key=lambda r: r.latency_ms)) if ok else None


def _row(r) -> dict:
    return {"network": r.network, "kind": r.kind, "latency_ms": float(r.latency_ms), "val_correct": int(r.val_correct),
            "val_n": int(r.val_n), "test_correct": int(r.test_correct), "test_n": int(r.test_n)}


def answer(cfg: TableConfig, folder: Path, dataset: str, bar: Fraction, int8_ms: float) -> pd.DataFrame:
    """The workbench's answer to "does compression plus search beat a narrower network here?": the fastest pruned
    network that clears the bar on validation (what a perfect search finds), the same network trained from scratch,
    the fastest Scratch-B network that clears the bar, and the uniform widths trained from scratch (the controls'
    curve), each with its latency here, its validation count and its test count with a 95% Wilson interval. Empty
    until every pruned network is re-timed here; the Scratch-B rows appear as they are measured."""
    from helpers.networks.models import uniform_channels
    from helpers.core.stats import wilson_interval

    df = table_frame(folder, dataset)
    inherit = df[df.kind == "inherit"] if len(df) else df
    if not len(inherit) or inherit.latency_ms.isna().any():
        return pd.DataFrame()
    scratch = df[(df.kind == "scratch") & df.latency_ms.notna()].set_index("network", drop=False)
    picked = []
    best = fastest_clearing(df, bar, "inherit")
    if best:
        picked.append(("fastest pruned network that clears the bar", best))
        if best["network"] in scratch.index:
            picked.append(("the same network from scratch", _row(scratch.loc[best["network"]])))
    fastest_scratch = fastest_clearing(df, bar, "scratch")
    if fastest_scratch:
        picked.append(("fastest network from scratch that clears the bar", fastest_scratch))
    base = list(cfg.lattice().widest())
    for f in cfg.uniform:
        key = Lattice.key(uniform_channels(base, f, cfg.round_to))
        if key in scratch.index:
            picked.append((f"uniform x{f:g} from scratch", _row(scratch.loc[key])))
    rows = []
    for role, r in picked:
        lo, hi = wilson_interval(r["test_correct"], r["test_n"])
        rows.append({"role": role, **r, "speedup": int8_ms / r["latency_ms"],
                     "clears": Fraction(r["val_correct"], r["val_n"]) >= bar, "test_lo": lo, "test_hi": hi})
    return pd.DataFrame(rows)


def regret_against_scratch(cfg: TableConfig, folder: Path, dataset: str, bar: Fraction, int8_ms: float,
                           budget: int = 20) -> pd.DataFrame:
    """Per optimiser, the replays' chosen networks after ``budget`` trials against two references: the fastest pruned
    network that clears the bar (the registered regret) and the fastest network trained from scratch that clears it
    (Scratch-B's measured networks only; a description beside the registered verdicts, not a new verdict). Median and
    quartiles over seeds; empty until the replays and a clearing network from scratch exist."""
    layout = TableLayout(folder)
    df = table_frame(folder, dataset)
    scratch = fastest_clearing(df, bar, "scratch") if len(df) else None
    pruned = fastest_clearing(df, bar, "inherit") if len(df) else None
    if not layout.replay(dataset).exists() or scratch is None or pruned is None:
        return pd.DataFrame()
    runs = pd.read_csv(layout.replay(dataset))
    r = regret_at(runs, budget, int8_ms, pruned["latency_ms"])
    rows = []
    for opt, g in r.groupby("optimiser"):
        v = g.regret.to_numpy()
        w = v * pruned["latency_ms"] / scratch["latency_ms"]
        rows.append({"optimiser": opt, "budget": budget, "seeds": len(v), "median_regret": float(np.median(v)),
                     "median_vs_scratch": float(np.median(w)), "q25_vs_scratch": float(np.quantile(w, 0.25)),
                     "q75_vs_scratch": float(np.quantile(w, 0.75)), "scratch_network": scratch["network"]})
    return pd.DataFrame(rows)


def redraw_answer(cfg: TableConfig, folder: Path, dataset: str, bar: Fraction, run_sd: float, draws: int = 2000,
                  seed: int = 0) -> dict:
    """The answer "the fastest network from scratch that clears the bar is faster than the fastest pruned one" when
    every validation count (pruned and from scratch) is redrawn with one training run's measured spread (normal,
    ``run_sd`` images, independently per network; the bar stays the budget-matched network's count). Descriptive:
    how often the answer holds, how often the fastest pruned network that clears the bar is the table's, and the
    median and 5-95% range of the speed ratio. Latencies are the measured ones (the spread is accuracy's)."""
    df = table_frame(folder, dataset)
    df = df[df.kind.isin(["inherit", "scratch"]) & df.latency_ms.notna()] if len(df) else df
    pruned, scratch = fastest_clearing(df, bar, "inherit"), fastest_clearing(df, bar, "scratch")
    if not len(df) or pruned is None or scratch is None or not run_sd == run_sd:
        return {"draws": 0}
    rng = np.random.default_rng(seed)
    need = float(bar * int(df.val_n.iloc[0]))  # the bar in images
    holds = same = 0
    ratios = []
    kinds, lat = df.kind.to_numpy(), df.latency_ms.to_numpy(float)
    names = df.network.to_numpy()
    for _ in range(draws):
        counts = df.val_correct.to_numpy(float) + rng.normal(0.0, run_sd, len(df))
        ok = counts >= need
        p, f = ok & (kinds == "inherit"), ok & (kinds == "scratch")
        if not p.any() or not f.any():
            continue
        ip = np.flatnonzero(p)[np.argmin(lat[p])]
        fp = lat[f].min()
        ratios.append(lat[ip] / fp)
        holds += lat[ip] > fp
        same += names[ip] == pruned["network"]
    n = len(ratios)
    lo, mid, hi = np.quantile(ratios, [0.05, 0.5, 0.95]) if n else (np.nan,) * 3
    return {"draws": draws, "valid": n, "holds": int(holds), "same_pruned": int(same), "run_sd": float(run_sd),
            "median_ratio": float(mid), "lo": float(lo), "hi": float(hi)}


def redraw_verdicts(cfg: TableConfig, folder: Path, dataset: str, bar: Fraction, run_sd: float, int8_ms: float,
                    budget: int = 20, draws: int = 200, seed: int = 0, resamples: int = 10_000) -> pd.DataFrame:
    """The registered comparisons at the primary budget when every network's validation count is redrawn with one
    training run's measured spread (normal, ``run_sd`` images; the bar stays the budget-matched network's count).

    Descriptive, and with one simplification stated wherever it is reported: each optimiser's *trajectory* (the
    networks it met in the committed replay, ``<dataset>-replay.csv``) is held fixed and only re-scored: a redraw
    changes which of the met networks clear the bar, hence each search's chosen network and the best network of the
    space, hence every regret. An optimiser told other counts might have proposed other networks; replaying every
    optimiser's seeds for each redraw (minutes per redraw here) is what would model that. One row per
    comparison: how many redraws give each verdict, and how many give the registered one."""
    from collections import Counter

    layout = TableLayout(folder)
    runs = pd.read_csv(layout.replay(dataset))
    runs = runs[runs.trial < budget]
    df = table_frame(folder, dataset)
    inherit = df[(df.kind == "inherit") & df.latency_ms.notna()].reset_index(drop=True)
    index = {n: i for i, n in enumerate(inherit.network)}
    lat = inherit.latency_ms.to_numpy(float)
    need = float(bar * int(inherit.val_n.iloc[0]))
    paths_ = {k: np.array([index[n] for n in g.network if n in index])
              for k, g in runs.groupby(["optimiser", "seed"])}
    registered = pd.read_csv(layout.verdicts(dataset))
    registered = registered[registered.budget == budget].set_index(["first", "second"]).verdict
    rng = np.random.default_rng(seed)
    tallies = {c: Counter() for c in registered.index}
    a = cfg.analysis
    for _ in range(draws):
        ok = inherit.val_correct.to_numpy(float) + rng.normal(0.0, run_sd, len(inherit)) >= need
        if not ok.any():
            continue
        best = lat[ok].min()
        regret = {}
        for (opt, s), met in paths_.items():
            cleared = met[ok[met]] if len(met) else met
            regret.setdefault(opt, {})[s] = (lat[cleared].min() if len(cleared) else int8_ms) / best
        for first, second in registered.index:
            if first in regret and second in regret:
                seeds = sorted(regret[first])
                x = np.array([regret[first][k] for k in seeds])
                y = np.array([regret[second][k] for k in seeds])
                v = compare(x, y, second == "random", a["interval"], a["equivalence_margin"], a["alpha"], resamples,
                            interval=False)
                tallies[(first, second)][v["verdict"].split(" (")[0]] += 1
    rows = []
    for (first, second), t in tallies.items():
        reg = registered[(first, second)].split(" (")[0]
        rows.append({"dataset": dataset, "budget": budget, "first": first, "second": second, "registered": reg,
                     "draws": sum(t.values()), "same": t.get(reg, 0), "first_better": t.get("first better", 0),
                     "tally": "; ".join(f"{k} {n}" for k, n in t.most_common()), "run_sd": float(run_sd)})
    return pd.DataFrame(rows)


def live_check(cfg: TableConfig, folder: Path, dataset: str, optimisers=("gp", "random"), seeds=(0, 1),
               budget: int | None = None, progress: bool = False) -> pd.DataFrame:
    """Live searches (each network built and timed now, ``table.LiveOutcomes``) against the replays of the same
    optimisers and seeds on the table: do they choose the same network, and do the live latencies of the networks
    they meet agree with the table's within its timing noise (the table rows' relative IQR)?"""
    from helpers.experiments.table import LiveOutcomes

    table, _ = table_search(cfg, folder, dataset)
    budget = budget or min(20, len(cfg.lattice()))  # the primary budget (a smoke space may hold fewer networks)
    live = TableSearch(LiveOutcomes(cfg, folder, dataset, progress), table.lattice, table.bar, table.objective)
    rows = []
    for opt in optimisers:
        for seed in seeds:
            a = replay(table, opt, seed, budget, cfg.n_initial)
            b = replay(live, opt, seed, budget, cfg.n_initial)
            ratios = np.array([live.outcomes[Lattice.parse_key(t["network"])]["latency_ms"]
                               / table.outcomes[Lattice.parse_key(t["network"])]["latency_ms"] for t in b])
            noise = float(np.median([table.outcomes[Lattice.parse_key(t["network"])]["latency_iqr_ms"]
                                     / table.outcomes[Lattice.parse_key(t["network"])]["latency_ms"] for t in b]))
            rows.append({"dataset": dataset, "optimiser": opt, "seed": seed, "trials": len(b),
                         "same_proposals": [t["network"] for t in a] == [t["network"] for t in b],
                         "table_chosen": _chosen(a), "live_chosen": _chosen(b), "same_chosen": _chosen(a) == _chosen(b),
                         "same_counts": all(live.outcomes[Lattice.parse_key(t["network"])]["val_correct"]
                                            == table.outcomes[Lattice.parse_key(t["network"])]["val_correct"] for t in b),
                         "latency_ratio_median": float(np.median(ratios)),
                         "latency_ratio_max_dev": float(np.abs(ratios - 1).max()), "timing_iqr_rel": noise,
                         "within_noise": bool(abs(np.median(ratios) - 1) <= max(noise, 0.01))})
    return pd.DataFrame(rows)


def _chosen(trials: list[dict]) -> str | None:
    ok = [t for t in trials if t["clears"]]
    return min(ok, key=lambda t: t["latency_ms"])["network"] if ok else None
