"""What the ``table`` and ``replay`` commands print and write: a table's progress and machine time, and the
optimisers' replays with the pre-registered verdicts (CSV beside the table)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


from helpers.core import paths
from helpers.experiments.table_config import TableConfig
from helpers.search.store import TableLayout, read_log


def build_summary(cfg: TableConfig, folder: Path) -> list[str]:
    """Per dataset: rows measured of each kind, the machine time they took and, for what is left, the estimate
    from the mean seconds per network so far; and every run record the table was measured under."""
    from helpers.experiments.table import retimed, scratch_networks, seed_networks, table_frame

    n = len(cfg.lattice())
    lines = [f"table {cfg.name} in {folder}"]
    for ds in cfg.datasets:
        df = table_frame(folder, ds)
        if not len(df):
            lines.append(f"{ds}: no network measured yet; {n} to measure")
            continue
        have = df.kind.value_counts().to_dict()
        sec = df.groupby("kind").seconds.mean().to_dict()
        timed = retimed(folder, ds)
        inherit_left = n - have.get("inherit", 0)
        seed_left = len(seed_networks(cfg)) - have.get("seed1", 0)
        front_known = inherit_left == 0 and not df.latency_ms.isna().any()  # every row in and re-timed here
        scratch_total = (len(scratch_networks(cfg, df.to_dict("records"), _base(cfg))) if front_known
                         else cfg.scratch_b + len(cfg.uniform) + 10)
        scratch_left = max(0, scratch_total - have.get("scratch", 0))
        per = sec.get("inherit", 0.0)
        retime_s = (n - len(timed)) * (sum(r["seconds"] for r in timed) / len(timed) if timed else 6.0)
        left_s = inherit_left * per + seed_left * per + scratch_left * sec.get("scratch", 2.5 * per) + retime_s
        machines = df.machine.value_counts().sort_index().to_dict()
        lines.append(f"{ds}: {have.get('inherit', 0)} of {n} pruned networks, {have.get('scratch', 0)} Scratch-B, "
                     f"{have.get('seed1', 0)} second-seed (rows measured on "
                     f"{', '.join(f'{m}: {k}' for m, k in machines.items())}); {len(timed)} of {n} re-timed here; "
                     f"{(df.seconds.sum() + sum(r['seconds'] for r in timed)) / 3600:.2f} h of machine time so far "
                     f"({per:.1f} s per pruned network); about {left_s / 3600:.1f} h left")
    lines.append(f"run records: {', '.join(run_records(cfg, folder)) or 'none yet'}")
    return lines


def run_records(cfg: TableConfig, folder: Path) -> list[str]:
    """Every run record the table's rows (all machines') and this folder's re-timing were measured under."""
    from helpers.experiments.table import retimed, table_frame

    rows = {r for ds in cfg.datasets for r in table_frame(folder, ds).get("run_record", []) if isinstance(r, str)}
    return sorted((rows | {r.get("run_record") for ds in cfg.datasets for r in retimed(folder, ds)}) - {None})


def _base(cfg: TableConfig) -> list:
    return list(cfg.lattice().widest())


def table_folder(cfg: TableConfig, machine_id: str | None) -> Path:
    """The folder of the table measured on ``machine_id`` (default: this machine); one sentence when there is none
    or when it was measured under another config."""
    from helpers.core.identity import machine
    from helpers.experiments.table import table_dir

    here = machine_id or machine()["id"]
    folder = table_dir(cfg, here)
    layout = TableLayout(folder)
    if not layout.meta.exists():
        others = sorted(p.name for p in folder.parent.glob("*") if TableLayout(p).meta.exists())
        where = (f"; it was measured on {', '.join(others)} (pass --machine ID, or re-time it here with `python -m "
                 "helpers table CONFIG --resume --stage retime`)" if others else
                 "; build it with `python -m helpers table CONFIG`")
        raise ValueError(f"table {cfg.name!r} has not been measured on {here}{where}")
    key = json.loads(layout.meta.read_text()).get("key")
    if key != cfg.key():
        raise ValueError(f"the table in {folder} was measured under another config (key {key} vs {cfg.key()}); replay "
                         "it with the config it was built from")
    return folder


def run_redraws(cfg: TableConfig, machine_id: str | None = None, draws: int = 200) -> list[str]:
    """The registered comparisons at the primary budget with the validation counts redrawn ``draws`` times
    (``table_analysis.redraw_verdicts``) on every dataset whose replays are committed: ``<ds>-redraw.csv``. Raises
    ValueError in one sentence, before writing, when no dataset has replays."""
    from helpers.analysis.table_analysis import redraw_verdicts, seed_noise, table_bar
    from helpers.core.io import atomic_path

    folder = table_folder(cfg, machine_id)
    layout, lines = TableLayout(folder), []
    ready = [ds for ds in cfg.datasets if layout.replay(ds).exists() and layout.verdicts(ds).exists()]
    if not ready:
        raise ValueError(f"no replays of {cfg.name} in {paths.portable(folder)} to redraw; run `python -m helpers "
                         "replay CONFIG` first")
    for ds in ready:
        ref = json.loads(layout.reference(ds).read_text())
        bar = table_bar(cfg, ref)
        noise = seed_noise(folder, ds, bar)
        if not noise["networks"]:
            lines.append(f"{ds}: not redrawn: the table has no second training seed to measure the spread")
            continue
        v = redraw_verdicts(cfg, folder, ds, bar, noise["run_sd_correct"], ref["int8_latency_ms"], draws=draws)
        with atomic_path(layout.redraws(ds)) as tmp:
            v.to_csv(tmp, index=False)
        lines += [f"{ds}: {r.first} vs {r.second}: registered {r.registered}; in {r.same} of {r.draws} redraws "
                  f"({r.tally})" for r in v.itertuples()]
    return lines


def run_replays(cfg: TableConfig, machine_id: str | None = None, seeds: int | None = None, optimisers=None,
                as_json: bool = False) -> list[str]:
    """Replay the optimisers on every dataset whose table is complete; write ``<ds>-replay.csv`` and
    ``<ds>-verdicts.csv``; return the lines to print."""
    from helpers.core.io import atomic_path
    from helpers.analysis.table_analysis import regret_summary, replays, table_search, verdicts

    from helpers.experiments.table_config import OPTIMISERS

    bad = [o for o in optimisers or [] if o not in OPTIMISERS]
    if bad:
        raise ValueError(f"optimiser {bad[0]!r} is not one of {', '.join(OPTIMISERS)}")
    folder = table_folder(cfg, machine_id)
    layout, lines, out = TableLayout(folder), [], {}
    for ds in cfg.datasets:
        try:
            space, ref = table_search(cfg, folder, ds)
        except ValueError as exc:
            lines.append(f"{ds}: not replayed: {exc}")
            continue
        runs = replays(cfg, folder, ds, optimisers, seeds)
        best = space.best_latency()
        v = verdicts(cfg, runs, ref["int8_latency_ms"], best)
        summary = regret_summary(runs, cfg.budgets, ref["int8_latency_ms"], best)
        for path, frame in ((layout.replay(ds), runs), (layout.verdicts(ds), v)):
            with atomic_path(path) as tmp:
                frame.to_csv(tmp, index=False)
        write_table_figures(cfg, folder, ds, runs, space)
        out[ds] = {"verdicts": v.to_dict("records"), "regret": summary.to_dict("records")}
        lines.append(f"{ds}: fastest network that clears the bar {best:.4f} ms "
                     f"({ref['int8_latency_ms'] / best:.2f}x over plain int8)")
        lines.append(summary.round(3).to_string(index=False))
        if len(v):
            lines.append(v[["budget", "first", "second", "seeds", "median_ratio", "lo", "hi", "p", "verdict"]]
                         .round(4).to_string(index=False))
    if as_json:
        return [json.dumps(out, indent=2, default=str)]
    return lines


def run_live_check(cfg: TableConfig, progress: bool = True) -> list[str]:
    """The live confirmation on the config's first dataset (the cheaper one, listed first): written to
    ``<ds>-live-check.csv`` beside the table and returned as lines to print."""
    from helpers.core.io import atomic_path
    from helpers.analysis.table_analysis import live_check

    folder, ds = table_folder(cfg, None), cfg.datasets[0]
    t = live_check(cfg, folder, ds, progress=progress)
    with atomic_path(TableLayout(folder).live_check(ds)) as tmp:
        t.to_csv(tmp, index=False)
    agree = int((t.same_chosen & t.within_noise).sum())
    return [t.round(4).to_string(index=False),
            f"{ds}: live and replayed searches agree (same chosen network, latency within the table's timing noise) "
            f"in {agree} of {len(t)}"]


def table_sections(root: Path) -> list[str]:
    """The README section of each committed table (results/study/<name>/<machine>/ with a table.json): what is
    measured so far and its machine time, the bar's source and, once replayed, the pre-registered verdicts."""
    return [line for layout in TableLayout.committed(root) for line in table_section(layout.folder)]


def table_section(folder: Path) -> list[str]:
    """One table folder's section (markdown lines): the table's progress and machine time, the bar, the verdicts."""
    from helpers.experiments.table import retimed, siblings, table_frame

    lines, layout = [], TableLayout(folder)
    meta = json.loads(layout.meta.read_text())
    cfg = TableConfig(**meta["config"])
    n = len(cfg.lattice())
    lines += [f"### O8 benchmark `{cfg.name}` on machine `{folder.name}`", "",
              f"A tabular space of {n} networks per dataset ({' x '.join(str(len(v)) for v in cfg.space.values())}"
              f" per-stage channel counts), pre-registered in `params/tables/{cfg.name}.yaml`; primary: "
              f"{cfg.analysis['primary']}. Accuracy counts are portable (training and export are deterministic); "
              f"every latency the analysis of this section uses is the re-timing on `{folder.name}`.", "",
              "| dataset | pruned networks | Scratch-B | second seed | rows measured on | re-timed here | machine time "
              "| plain int8 here | bar (validation) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for ds in cfg.datasets:
        df = table_frame(folder, ds)
        timed = retimed(folder, ds)
        have = df.kind.value_counts().to_dict() if len(df) else {}
        seconds = (df.seconds.sum() if len(df) else 0) + sum(r["seconds"] for r in timed)
        hours = f"{seconds / 3600:.2f} h" if seconds else "-"
        where = (", ".join(f"`{m}` ({k})" for m, k in df.machine.value_counts().sort_index().items())
                 if len(df) else "-")
        ref = json.loads(layout.reference(ds).read_text()) if layout.reference(ds).exists() else None
        int8 = f"{ref['int8_latency_ms']:.4f} ms" if ref else "-"
        bar = (f"{ref['matched_val_correct']} of {ref['val_n']} (budget-matched) - {cfg.threshold:g} points"
               if ref else "-")
        lines.append(f"| {ds} | {have.get('inherit', 0)} of {n} | {have.get('scratch', 0)} | "
                     f"{have.get('seed1', 0)} | {where} | {len(timed)} of {n} | {hours} | {int8} | {bar} |")
    records = run_records(cfg, folder)
    lines += ["", f"Measured under {len(records)} run record{'s' * (len(records) != 1)}: "
              f"{', '.join(f'`{r}`' for r in records) or 'none yet'}.", ""]
    elsewhere = [] if any(retimed(folder, ds) for ds in cfg.datasets) else [
        f.name for f in siblings(folder.parent, cfg.key(), but=folder) if any(retimed(f, ds) for ds in cfg.datasets)]
    if elsewhere:  # rows built here, analysed where they were re-timed: the findings are not repeated
        return lines + [f"Nothing is re-timed on `{folder.name}`: the findings of these rows are in the section of "
                        f"{', '.join(f'`{m}`' for m in elsewhere)}, whose latencies the analysis uses.", "", ""]
    for ds in cfg.datasets:
        lines += dataset_findings(cfg, folder, ds)
    lines.append("")
    return lines


def dataset_findings(cfg: TableConfig, folder: Path, ds: str) -> list[str]:
    """One dataset's findings (markdown lines), each as soon as its data is in: the training-seed noise near the bar,
    the pre-registered comparisons, the answer against the narrower networks on test, the live check."""
    from helpers.reports.markdown import md
    from helpers.analysis.table_analysis import answer, inherit_vs_scratch, seed_noise, table_bar

    layout, lines = TableLayout(folder), []
    if not layout.reference(ds).exists():
        return lines
    ref = json.loads(layout.reference(ds).read_text())
    bar = table_bar(cfg, ref)
    noise = seed_noise(folder, ds, bar)
    if noise["networks"]:
        lines += [f"{ds}, training-seed noise: {noise['networks']} networks fine-tuned again with training seed 1 "
                  f"changed their validation count by {noise['mean_correct']:+.1f} images on average ({noise['up']} "
                  f"up; standard deviation of the change {noise['sd_correct']:.1f}, so about "
                  f"{noise['run_sd_correct']:.1f} for one run; at most {noise['max_abs_correct']:.0f} of "
                  f"{noise['val_n']:,}) and their test count by {noise['mean_test']:+.1f} of {noise['test_n']:,} on "
                  "average (every network of one seed shares its data order, so part of a change is common to all "
                  f"of them); {noise['flips']} of them "
                  f"changed side of the bar. {noise['near_bar']} of the table's {noise['table']} networks lie within "
                  "two such standard deviations of the bar: which side of it they fall on depends on the training "
                  "seed.", ""]
    if not layout.verdicts(ds).exists():
        lines += [f"{ds}: no verdict yet: the table is replayed (`python -m helpers replay`) once it holds every "
                  "network, re-timed on this machine.", ""]
    else:
        v = pd.read_csv(layout.verdicts(ds))
        lines += md(f"{ds}, the pre-registered comparisons (median paired ratio of regrets, 90% bootstrap interval, "
                    "Wilcoxon signed-rank W and p):",
                    ["budget", "comparison", "seeds", "ratio", "interval", "W", "p", "verdict"],
                    [f"| {r.budget} | {r.first} vs {r.second} | {r.seeds} | {r.median_ratio:.3f} | "
                     f"[{r.lo:.3f}, {r.hi:.3f}] | {r.wilcoxon_W:g} | {r.p:.3g} | "
                     f"{'**' + r.verdict + '**' if r.budget == 20 else r.verdict} |" for r in v.itertuples()])
    a = answer(cfg, folder, ds, bar, ref["int8_latency_ms"])
    if len(a):
        lines += md(f"{ds}, compression plus search against narrower networks trained from scratch (selected on "
                    "validation; test counts with their 95% Wilson interval):",
                    ["", "network", "latency here", "speed-up over plain int8", "validation", "clears the bar", "test"],
                    [f"| {r.role} | `{r.network}` | {r.latency_ms:.4f} ms | {r.speedup:.2f}x | "
                     f"{r.val_correct:,} of {r.val_n:,} | {'yes' if r.clears else 'no'} | {r.test_correct:,} of "
                     f"{r.test_n:,} [{100 * r.test_lo:.2f}, {100 * r.test_hi:.2f}]% |" for r in a.itertuples()])
        lines += [_answer_sentence(ds, a), ""]
        lines += _against_scratch_lines(cfg, folder, ds, bar, ref["int8_latency_ms"], noise)
    both = inherit_vs_scratch(cfg, folder, ds, bar)
    if both["networks"]:
        lines += [_inherit_sentence(ds, both), ""]
    if layout.live_check(ds).exists():
        t = pd.read_csv(layout.live_check(ds))
        seeds = ", ".join(map(str, sorted(set(t.seed))))
        built = [r for r in read_log(layout.live_store(ds)) if r.get("status") == "ok"]
        records = ", ".join(f"`{r}`" for r in sorted({r["run_record"] for r in built}))
        lines += [f"{ds}, live check ({', '.join(sorted(set(t.optimiser)))}, seeds {seeds}, run live on "
                  f"`{folder.name}`: {len(built)} networks built, {sum(r['seconds'] for r in built) / 60:.0f} min of "
                  f"machine time, run record {records}): the same proposals in {int(t.same_proposals.sum())} of "
                  f"{len(t)} searches (a GP's next proposal depends on the latencies it has measured, so timing "
                  f"noise can change its path; random search's cannot), the "
                  f"same chosen network in {int(t.same_chosen.sum())}, the same validation counts in "
                  f"{int(t.same_counts.sum())}; live over table latency of the networks met: median "
                  f"{t.latency_ratio_median.median():.4f} (largest deviation "
                  f"{100 * t.latency_ratio_max_dev.max():.1f}%), within the table's timing noise in "
                  f"{int(t.within_noise.sum())} of {len(t)}.", ""]
    return lines


def _against_scratch_lines(cfg: TableConfig, folder: Path, ds: str, bar, int8_ms: float, noise: dict) -> list[str]:
    """Beside the registered verdicts, two descriptions: each optimiser's chosen network at the primary budget against
    the fastest network from scratch that clears the bar, and the answer under counts redrawn with the measured
    training-seed spread."""
    from helpers.reports.markdown import md
    from helpers.analysis.table_analysis import redraw_answer, regret_against_scratch

    lines = []
    r = regret_against_scratch(cfg, folder, ds, bar, int8_ms)
    if len(r):
        lines += md(f"{ds}, regret against the fastest network from scratch that clears the bar (`"
                    f"{r.scratch_network.iloc[0]}`; a description beside the registered regret, which is against the "
                    f"fastest pruned network; after {r.budget.iloc[0]} trials, over {r.seeds.iloc[0]} seeds):",
                    ["optimiser", "median regret (registered)", "median against from scratch", "quartiles"],
                    [f"| {x.optimiser} | {x.median_regret:.3f} | {x.median_vs_scratch:.3f} | "
                     f"[{x.q25_vs_scratch:.3f}, {x.q75_vs_scratch:.3f}] |" for x in r.itertuples()])
    d = redraw_answer(cfg, folder, ds, bar, noise.get("run_sd_correct", float("nan"))) if noise["networks"] else {}
    if d.get("valid"):
        lines += [f"{ds}, the answer redrawn (descriptive, not a registered verdict): with every validation count "
                  f"redrawn {d['draws']:,} times from a normal spread of {d['run_sd']:.1f} images (one training run's, "
                  "measured above; latencies as measured, the bar unchanged), the fastest network from scratch that "
                  f"clears the bar is faster than the fastest pruned one in {d['holds']:,} of {d['valid']:,} redraws "
                  f"(speed ratio median {d['median_ratio']:.2f}x, 5-95% {d['lo']:.2f}x to {d['hi']:.2f}x), and the "
                  f"fastest pruned network that clears it is the table's own in {d['same_pruned']:,} of "
                  f"{d['valid']:,}.", ""]
    saved = TableLayout(folder).redraws(ds)
    v = pd.read_csv(saved) if saved.exists() else pd.DataFrame()
    if len(v):
        lines += md(f"{ds}, the registered comparisons redrawn (descriptive, not registered verdicts): every validation "
                    f"count redrawn {v.draws.iloc[0]:,} times with the same spread, each search's path (the networks it "
                    "met in the committed replay) held fixed and re-scored, so a redraw changes which networks clear "
                    "the bar, each search's choice and the best network; an optimiser told other counts might have "
                    f"met other networks, which only a replay per redraw would show. At {v.budget.iloc[0]} trials:",
                    ["comparison", "registered verdict", "redraws giving it", "first better", "every outcome"],
                    [f"| {x.first} vs {x.second} | {x.registered} | {x.same:,} of {x.draws:,} | {x.first_better:,} | "
                     f"{x.tally} |" for x in v.itertuples()])
    return lines


def _inherit_sentence(ds: str, s: dict) -> str:
    """Inherit or train from scratch, in words: over every network trained both ways, then the random ones alone."""
    def part(d: dict) -> str:
        p = "n/a" if d["p"] != d["p"] else f"{d['p']:.2g}"
        return (f"from scratch scored higher on test in {d['test_up']} of {d['networks']} (median "
                f"{d['test_median']:+.0f} images of {s['test_n']:,}; Wilcoxon signed-rank p {p}) and on validation in "
                f"{d['val_up']}; {d['clear_inherit']} clear the bar inherited, {d['clear_scratch']} from scratch")

    g = s["groups"]
    text = (f"{ds}, inherit the baseline's weights or train from scratch (Scratch-B, the same total budget): of the "
            f"{s['networks']} networks trained both ways ({g['front']} on the front, {g['uniform']} uniform widths, "
            f"{g['random']} drawn at random from the space), {part(s)}.")
    if s["random"]["networks"]:
        text += (f" The {s['random']['networks']} random ones alone (free of the front's selection on the inherited "
                 f"count): {part(s['random'])}.")
    return text


def _answer_sentence(ds: str, a: pd.DataFrame) -> str:
    """The answer in one sentence: the fastest pruned network that clears the bar against the fastest uniform-width
    network from scratch that clears it (or the fact that one of them is missing)."""
    pruned = a[a.role == "fastest pruned network that clears the bar"]
    uniform = a[a.role.str.startswith("uniform") & a.clears].sort_values("latency_ms")
    if not len(pruned):
        return f"{ds}: no pruned network of the table clears the bar."
    p = pruned.iloc[0]
    if not len(uniform):
        measured = int(a.role.str.startswith("uniform").sum())
        none = (f"none of the {measured} uniform widths trained from scratch clears the bar" if measured else
                "no uniform width has been trained from scratch yet (`--stage scratch`)")
        return (f"{ds}: {none}; the fastest pruned network that clears it is `{p.network}` ({p.speedup:.2f}x over "
                "plain int8).")
    u = uniform.iloc[0]
    faster = u.latency_ms / p.latency_ms
    return _uniform_sentence(ds, p, u, faster) + _scratch_sentence(a, p)


def _scratch_sentence(a: pd.DataFrame, p) -> str:
    """The fastest network from scratch that clears the bar against the fastest pruned one ('' when none is
    measured): the comparison the answer draws, beside the uniform widths'."""
    scratch = a[a.role == "fastest network from scratch that clears the bar"]
    if not len(scratch):
        return ""
    f = scratch.iloc[0]
    ratio = p.latency_ms / f.latency_ms
    return (f" The fastest network from scratch that clears the bar, `{f.network}`, runs at {f.latency_ms:.4f} ms: "
            + (f"{ratio:.2f}x faster than the fastest pruned network" if ratio >= 1 else
               f"the fastest pruned network is {1 / ratio:.2f}x faster")
            + f"; on test it scores {f.test_correct:,} of {f.test_n:,} ({f.test_correct - p.test_correct:+,} images "
            "against the pruned one).")


def _uniform_sentence(ds: str, p, u, faster: float) -> str:
    return (f"{ds}: the fastest pruned network that clears the bar, `{p.network}`, runs at {p.latency_ms:.4f} ms; the "
            f"fastest uniform width from scratch that clears it, `{u.network}`, at {u.latency_ms:.4f} ms: "
            + (f"the pruned network is {faster:.2f}x faster" if faster >= 1 else
               f"the uniform width is {1 / faster:.2f}x faster")
            + f"{' (the same network)' if p.network == u.network else ''}. On test it scores {p.test_correct:,} of "
            f"{p.test_n:,}, the uniform width {u.test_correct:,} of {u.test_n:,} ({p.test_correct - u.test_correct:+,} "
            "images).")


def write_table_figures(cfg: TableConfig, folder: Path, dataset: str, runs: pd.DataFrame, space) -> list[Path]:
    """The benchmark's figures of one dataset as PNG in ``<folder>/figures/`` (``replay`` is their one producer):
    anytime regret per optimiser (median and interquartile band over seeds, the best regret found by each trial),
    and the table's networks by speed-up and validation accuracy with the bar, Scratch-B and the uniform widths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from helpers.core.io import atomic_path
    from helpers.networks.models import uniform_channels
    from helpers.experiments.table import table_frame
    from helpers.experiments.table_config import Lattice

    layout, out = TableLayout(folder), []
    ref = json.loads(layout.reference(dataset).read_text())
    fig, ax = plt.subplots(figsize=(6, 4))
    top = max(cfg.budgets)
    for opt, g in runs.groupby("optimiser"):
        curve = g.pivot_table(index="seed", columns="trial", values="regret").reindex(columns=range(top)).ffill(axis=1)
        q = np.nanquantile(curve.to_numpy(float), [0.25, 0.5, 0.75], axis=0)
        x = np.arange(1, top + 1)
        ax.plot(x, q[1], label=f"{opt} (median of {len(curve)} seeds)")
        ax.fill_between(x, q[0], q[2], alpha=0.2)
    ax.set(xlabel="trials (distinct networks)", ylabel="regret (chosen / fastest clearing latency)", yscale="log",
           title=f"{dataset}: anytime regret on {len(cfg.lattice())} networks")
    ax.axvline(20, color="grey", lw=0.8, ls=":")
    ax.legend(fontsize=7)
    figs = [("table_regret", fig)]
    df = table_frame(folder, dataset)
    fig, ax = plt.subplots(figsize=(6, 4))
    base = list(cfg.lattice().widest())
    uniform = {Lattice.key(uniform_channels(base, f, cfg.round_to)) for f in cfg.uniform}
    for kind, style in (("inherit", dict(s=10, alpha=0.5)), ("scratch", dict(s=18, marker="x"))):
        rows = df[df.kind == kind] if len(df) else df
        if not len(rows):
            continue
        clears = [space.clears(r) for _, r in rows.iterrows()]
        ax.scatter(ref["int8_latency_ms"] / rows.latency_ms, 100 * rows.val_correct / rows.val_n,
                   c=["tab:green" if c else "tab:red" for c in clears], label=f"{kind} (green: clears the bar)", **style)
        u = rows[rows.network.isin(uniform)].sort_values("latency_ms")
        if kind == "scratch" and len(u):
            ax.plot(ref["int8_latency_ms"] / u.latency_ms, 100 * u.val_correct / u.val_n, "k--", lw=1,
                    label="uniform widths from scratch")
    ax.axhline(100 * float(space.bar), color="grey", lw=0.8, label="bar (budget-matched - threshold)")
    ax.set(xlabel="speed-up over plain int8", ylabel="validation accuracy (%)", title=f"{dataset}: the table")
    ax.legend(fontsize=7)
    figs.append(("table_front", fig))
    for name, fig in figs:
        fig.tight_layout()
        path = layout.figures / f"{dataset}-{name}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, format="png")
        plt.close(fig)
        out.append(path)
    return out
