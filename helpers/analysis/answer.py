"""The answer: one row per claim, drawn from the committed tables, and one word on the hypothesis by a fixed rule.

The claims (each row names its machine, since latency belongs to one machine; accuracy counts are portable):

1. **08's targets** (per machine that ran the default chain): GP's chosen plan of 08 on test, against 08's
   registered targets (within the threshold of fp32's test accuracy, >= 2.0x over plain int8, >= 5.0x over fp32).
2. **The first studies** (`o8-calibrated`, `o8-gp-vs-random`, per dataset): GP over random search, the registered
   verdict (upper bound of the 90% interval of the median latency ratio < 1).
3. **The table's verdicts** (`o8-table`, per dataset, at the registered primary budget of 20 trials): GP vs random,
   TPE vs random, GP vs TPE (Wilcoxon signed-rank with a bootstrap interval; "first better" holds); each followed
   by the same comparison with every validation count redrawn with one training run's measured spread and the
   searches' paths held fixed (``replay --redraw`` writes them; descriptive: "holds" when the first is better in
   at least 95% of the redraws).
4. **Compression vs the narrow networks from scratch** (per dataset): the fastest pruned network that clears the
   bar over the fastest network of the same space trained from scratch that clears it (holds when the pruned one is
   at least as fast); then the same with every validation count redrawn with one training run's measured spread
   (descriptive: "holds" when the pruned network is at least as fast in at least 95% of the redraws).
5. **Inherit vs retrain** (per dataset): the networks trained both ways, how many score higher on test from scratch
   (holds for compression's inherited weights when they win the majority).
6. **``fit`` against its controls** (``benchmarks/bench_fit.py``, per case): the chosen network's speed-up over the
   fastest uniform width from scratch, the table's fastest network from scratch and the given network's plain int8
   (holds: the registered target met at equal or better test accuracy). Not part of :data:`RULE`, which was fixed
   before ``fit`` existed.

:data:`RULE` turns the rows into one word; it was written before the first generation and is printed in the README
and in 08 beside the rows. Nothing here measures anything: a row appears once its table is committed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from helpers.core import paths

PRIMARY_BUDGET = 20  # the table's registered primary comparison (params/tables/o8-table.yaml)
SPEED_CLAIM = "pruned vs scratch"
REDRAW_CLAIM = "... counts redrawn"  # the same claim, validation counts redrawn (descriptive; holds: in >= 95%)
TARGETS = "within the threshold of fp32's test accuracy, >= 2.0x over plain int8 and >= 5.0x over fp32"
RULE = ("**supported** when GP beats random search in the table's registered comparison (20 trials) on every "
        "dataset, compression plus search is at least as fast as the fastest network trained from scratch that clears "
        "the same bar on every dataset, and 08's targets are met on every machine that ran the chain; **not "
        "supported** when GP beats random search on no dataset of the table and 08's targets are met on no machine; "
        "**partly supported** otherwise.")
COLUMNS = ["claim", "dataset", "finding", "number", "machine", "holds"]
#: The machine whose latencies the answer is told with first (08's lead, the book's default): the one that timed the
#: table, the benchmark that answers the question, and that holds the chain, the controls and the studies' re-timed
#: chosen plans too. Another machine's figures stand beside it, each named, never mixed into one comparison.
MACHINE_OF_RECORD = "amd-epyc-2c-d3c3b3"
#: ``fit``'s benchmark rows, by the comparison (``helpers.analysis.fit_bench.AGAINST``)
FIT_CLAIMS = {"uniform": "fit vs uniform width", "table": "fit vs table scratch", "int8": "fit vs plain int8"}


def claims(root: Path | None = None) -> pd.DataFrame:
    """Every claim's rows (:data:`COLUMNS`), from the committed results under ``root`` (``results/``)."""
    root = Path(root) if root else paths.ROOT / "results"
    rows = (_chain_targets(root / "default") + _first_studies(root / "study") + _table_rows(root / "study")
            + _fit_rows(root))
    return pd.DataFrame(rows, columns=COLUMNS)


def hypothesis(rows: pd.DataFrame) -> str:
    """One word by :data:`RULE`: "supported", "partly supported", "not supported" (or "not answered yet" when the
    table's verdicts or 08's targets are missing)."""
    gp = rows[rows.claim == "table gp vs random"]
    speed = rows[rows.claim == SPEED_CLAIM]
    targets = rows[rows.claim == "08's targets"]
    if not len(gp) or not len(targets):
        return "not answered yet"
    if gp.holds.all() and speed.holds.all() and len(speed) and targets.holds.all():
        return "supported"
    if not gp.holds.any() and not targets.holds.any():
        return "not supported"
    return "partly supported"


def retimed_comparison(root: Path | None = None) -> pd.DataFrame:
    """The table's answer on every machine that re-timed its networks (``python -m helpers retime``): among the
    networks re-timed there, the fastest pruned and the fastest from-scratch network that clear the bar (validation
    counts from the table, portable; latencies from that machine), with the speed ratio. One row per machine and
    dataset; the machine that built the table is among them through its own re-timing when it ran ``retime``."""
    from fractions import Fraction

    from helpers.analysis.table_analysis import table_bar
    from helpers.experiments.table import table_frame
    from helpers.experiments.table_config import TableConfig
    from helpers.search.store import TableLayout, read_log

    root = Path(root) if root else paths.ROOT / "results"
    rows = []
    for log in sorted((root / "retime").glob("*/latency.jsonl")):
        timed = {}
        for r in read_log(log, trials_only=False):
            if r.get("status") == "ok" and r["scope"] == "table":
                timed[(r["source"], r["key"])] = r
        for layout in TableLayout.committed(root / "study"):
            cfg = TableConfig(**json.loads(layout.meta.read_text())["config"])
            for ds in cfg.datasets:
                source = paths.portable(layout.rows(ds))
                mine = {k: r for (src, k), r in timed.items() if src == source}
                if not mine or not layout.reference(ds).exists():
                    continue
                bar = table_bar(cfg, json.loads(layout.reference(ds).read_text()))
                df = table_frame(layout.folder, ds)
                best = {}
                for kind in ("inherit", "scratch"):
                    ok = [(mine[r.network]["latency_ms"], r.network) for r in df[df.kind == kind].itertuples()
                          if r.network in mine and Fraction(int(r.val_correct), int(r.val_n)) >= bar]
                    if ok:
                        best[kind] = min(ok)
                if len(best) == 2:
                    (p_ms, p_net), (s_ms, s_net) = best["inherit"], best["scratch"]
                    rows.append({"machine": log.parent.name, "dataset": ds, "pruned": p_net, "pruned_ms": p_ms,
                                 "scratch": s_net, "scratch_ms": s_ms, "ratio": p_ms / s_ms,
                                 "networks": len(mine), "reference_ms": next(iter(mine.values()))["reference_ms"]})
    return pd.DataFrame(rows)


def retimed_studies(root: Path | None = None) -> pd.DataFrame:
    """The first studies' registered verdict (GP's chosen latency over random search's, per seed) on every machine that
    re-timed their chosen plans, beside the verdict where they ran: one row per machine, study and dataset. A plan not
    re-timed there (or re-timed with other MACs than logged) leaves its dataset out; a seed where a method chose no
    plan scores that machine's plain int8, as registered."""
    from helpers.experiments.study_analysis import verdict
    from helpers.search.store import StudyLayout, read_log

    root = Path(root) if root else paths.ROOT / "results"
    rows = []
    for log in sorted((root / "retime").glob("*/latency.jsonl")):
        timed = {(r["source"], r["key"]): r for r in read_log(log, trials_only=False) if r.get("scope") == "studies"}
        for layout in StudyLayout.committed(root / "study"):
            source = paths.portable(layout.chosen)
            if not layout.chosen.exists() or not any(src == source for src, _ in timed):
                continue
            meta = json.loads(layout.meta.read_text())
            chosen = pd.read_csv(layout.chosen)
            there = verdict(chosen, meta["criterion"], planned_seeds=len(meta["config"]["seeds"])).set_index("dataset")
            for ds, d in chosen.groupby("dataset"):
                got = [timed.get((source, f"{ds}-s{r.seed}-{r.method}")) for r in d.itertuples()]
                planned = d.chosen.astype(str).str.startswith("{").to_numpy()
                if any(p and (g is None or g["status"] != "ok") for p, g in zip(planned, got)) or not any(got):
                    continue
                ref = next(g for g in got if g)["reference_ms"]
                here = d.assign(latency_ms=[g["latency_ms"] if p else float("nan") for p, g in zip(planned, got)],
                                int8_latency_ms=ref)
                v = verdict(here, meta["criterion"], planned_seeds=len(meta["config"]["seeds"]))
                if len(v) and ds in there.index:
                    v = v.iloc[0]
                    rows.append({"machine": log.parent.name, "study": meta["config"]["name"], "dataset": ds,
                                 "ran_on": layout.folder.name, "seeds": int(v.seeds), "median_ratio": v.median_ratio,
                                 "lo": v.lo, "hi": v.hi, "verdict": v.verdict,
                                 "there_median_ratio": there.loc[ds, "median_ratio"],
                                 "there_verdict": there.loc[ds, "verdict"], "reference_ms": ref})
    return pd.DataFrame(rows)


def short_verdict(verdict: str) -> str:
    """A registered verdict without its parenthesis ("no difference shown (criterion not met)" -> the first part)."""
    return verdict.split(" (")[0]


def _chain_targets(base: Path) -> list[list]:
    from helpers.analysis.verdicts import o8_verdict

    out = []
    for table in sorted(base.glob("*/search_summary.csv")):
        s = pd.read_csv(table)
        for r in s[s.method == "gp"].itertuples():
            v = o8_verdict(r.test_accuracy, r.fp32_test_accuracy, r.threshold, r.speedup_vs_int8, r.speedup_vs_fp32,
                           r.target_vs_int8, r.target_vs_fp32, int(r.test_n))
            out.append(["08's targets", r.dataset, "met" if v["met"] else "not met",
                        f"{r.speedup_vs_int8:.2f}x int8, {r.speedup_vs_fp32:.2f}x fp32; "
                        f"{round(r.test_accuracy * r.test_n):,} of {int(r.test_n):,} "
                        f"[{100 * r.test_accuracy_lo:.2f}, {100 * r.test_accuracy_hi:.2f}]%", table.parent.name,
                        bool(v["met"])])
    return out


def _first_studies(base: Path) -> list[list]:
    from helpers.experiments.study_analysis import verdict
    from helpers.search.store import StudyLayout

    out = []
    for layout in StudyLayout.committed(base):
        if not layout.chosen.exists():
            continue
        meta = json.loads(layout.meta.read_text())
        chosen = pd.read_csv(layout.chosen)
        for r in verdict(chosen, meta["criterion"], planned_seeds=len(meta["config"]["seeds"])).itertuples():
            out.append([f"`{meta['config']['name']}` gp vs random", r.dataset, short_verdict(r.verdict),
                        f"{r.median_ratio:.3f} [{r.lo:.3f}, {r.hi:.3f}], {r.seeds} seeds", layout.folder.name,
                        bool(r.met)])
    return out


def _table_rows(base: Path) -> list[list]:
    from helpers.analysis.table_analysis import answer, inherit_vs_scratch, redraw_answer, seed_noise, table_bar
    from helpers.experiments.table_config import TableConfig
    from helpers.search.store import TableLayout

    out = []
    for layout in TableLayout.committed(base):
        cfg = TableConfig(**json.loads(layout.meta.read_text())["config"])
        machine = layout.folder.name
        for ds in cfg.datasets:
            if not layout.verdicts(ds).exists():
                continue  # verdicts live where the table was re-timed
            v = pd.read_csv(layout.verdicts(ds))
            ref = json.loads(layout.reference(ds).read_text())
            bar = table_bar(cfg, ref)
            noise = seed_noise(layout.folder, ds, bar)
            again = (pd.read_csv(layout.redraws(ds)).query(f"budget == {PRIMARY_BUDGET}")
                     .set_index(["first", "second"]) if layout.redraws(ds).exists() else None)
            for r in v[v.budget == PRIMARY_BUDGET].itertuples():
                out.append([f"table {r.first} vs {r.second}", ds, short_verdict(r.verdict),
                            f"{r.median_ratio:.3f} [{r.lo:.3f}, {r.hi:.3f}], {r.seeds} seeds, p {r.p:.2g}", machine,
                            r.verdict == "first better"])
                if again is not None and (r.first, r.second) in again.index:
                    d = again.loc[(r.first, r.second)]
                    out.append([REDRAW_CLAIM, ds, f"as registered in {d.same:,} of {d.draws:,}",
                                f"first better {d.first_better:,}, paths held", machine,
                                bool(d.first_better >= 0.95 * d.draws)])
            a = answer(cfg, layout.folder, ds, bar, ref["int8_latency_ms"])
            pruned = a[a.role == "fastest pruned network that clears the bar"]
            scratch = a[a.role == "fastest network from scratch that clears the bar"]
            if len(pruned) and len(scratch):
                p, f = pruned.iloc[0], scratch.iloc[0]
                ratio = p.latency_ms / f.latency_ms
                out.append([SPEED_CLAIM, ds, ("scratch " if ratio > 1 else "pruned ")
                            + f"{max(ratio, 1 / ratio):.2f}x faster",
                            f"{p.latency_ms:.4f}/{f.latency_ms:.4f} ms; {p.test_correct:,}/"
                            f"{f.test_correct:,} of {p.test_n:,}", machine, bool(ratio <= 1)])
                d = redraw_answer(cfg, layout.folder, ds, bar, noise["run_sd_correct"]) if noise["networks"] else {}
                if d.get("valid"):
                    out.append([REDRAW_CLAIM, ds, f"scratch faster in {d['holds']:,} of {d['valid']:,}",
                                f"{d['median_ratio']:.2f}x [{d['lo']:.2f}, {d['hi']:.2f}] (5-95%)", machine,
                                bool(d["valid"] - d["holds"] >= 0.95 * d["valid"])])
            both = inherit_vs_scratch(cfg, layout.folder, ds, bar)
            if both["networks"]:
                out.append(["inherit vs scratch", ds, f"scratch up in {both['test_up']} of {both['networks']}",
                            f"median {both['test_median']:+.0f} of {both['test_n']:,}, p {both['p']:.2g}",
                            machine, bool(both["test_up"] < both["networks"] / 2)])
    return out


def _fit_rows(root: Path) -> list[list]:
    """``fit``'s benchmark (``benchmarks/bench_fit.py``), one row per case and registered target; holds: target met
    (at equal or better test accuracy)."""
    from helpers.analysis.fit_bench import comparisons, committed

    out = []
    for b in committed(root):
        model, ds = b["case"].split("-", 1)
        label = ds if model == "resnet18" else f"{ds} ({'MNV2' if model == 'mobilenet_v2' else model})"
        chosen = b.get("chosen")
        for c in (c for c in comparisons(b) if c["applicable"]):
            other = c["other"]
            if chosen is None:
                finding, number = "nothing clears the bar", ""
            elif other is None:
                finding, number = "no comparator", ""
            else:
                r = c["ratio"]
                finding = f"{r:.2f}x faster" if r >= 1 else f"{1 / r:.2f}x slower"
                counts = (f"; {chosen['test_correct']:,}/{other['test_correct']:,} of {chosen['test_n']:,}"
                          if other.get("test_correct") is not None else "")
                number = f"{chosen['latency_ms']:.3f}/{other['latency_ms']:.3f} ms{counts}"
                number += "; misses bar" if other.get("feasible") is False else ""
                number += "; width 1.0" if other.get("label", "").startswith("uniform width 1.0") else ""
            out.append([FIT_CLAIMS[c["key"]], label, finding, number, b["machine"], bool(c["met"])])
    return out


def short_machine(machine_id: str) -> str:
    """A machine id's last part (its fingerprint's hash), the label the answer's narrow table uses."""
    return machine_id.rsplit("-", 1)[-1]


def answer_markdown(root: Path | None = None, width: int = 120) -> list[str]:
    """The answer as markdown lines of at most ``width`` characters (the README's limit): the word on the
    hypothesis with its rule, one row per claim, and the machines the rows' latencies come from."""
    import textwrap

    rows = claims(root)
    word = hypothesis(rows)
    wrap = lambda text: textwrap.wrap(text, width, break_on_hyphens=False)  # noqa: E731
    lines = wrap(f"**The hypothesis is {word}** on the committed results, by the rule fixed in "
                 f"`helpers/analysis/answer.py` before the first generation: {RULE}") + [""]
    lines += ["| claim | dataset | result | number [interval] | machine | holds |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r.claim} | {r.dataset} | {r.finding} | {r.number} | {short_machine(r.machine)} | "
              f"{'yes' if r.holds else 'no'} |" for r in rows.itertuples()]
    again = retimed_comparison(root)
    if len(again):
        lines += [""] + wrap("Re-timed on other machines (`python -m helpers retime`; the table's counts, each "
                             "machine's latencies, among the networks re-timed there): " + "; ".join(
                                 f"{short_machine(r.machine)}, {r.dataset}: scratch `{r.scratch}` "
                                 + (f"{r.ratio:.2f}x faster" if r.ratio >= 1 else f"{1 / r.ratio:.2f}x slower")
                                 + f" than pruned `{r.pruned}` (plain int8 {r.reference_ms:.4f} ms)"
                                 for r in again.itertuples()) + ".")
    studies = retimed_studies(root)
    if len(studies):
        lines += [""] + wrap("The first studies' chosen plans re-timed (their registered verdict, GP / random search, "
                             "with each machine's latencies): " + "; ".join(
                                 f"{short_machine(r.machine)}, `{r.study}` {r.dataset}: {r.median_ratio:.3f} "
                                 f"[{r.lo:.3f}, {r.hi:.3f}], {short_verdict(r.verdict)}" for r in studies.itertuples()) + ".")
    machines = sorted(set(rows.machine) | set(again.machine if len(again) else [])
                      | set(studies.machine if len(studies) else []))
    lines += [""] + wrap(f"Machine of record: `{MACHINE_OF_RECORD}`, the machine that timed the table and holds the "
                         "chain, the controls and the studies' chosen plans re-timed; the other machines' figures "
                         "stand beside it (the ranking's dependence on the machine is itself a finding).")
    lines += [""] + wrap(f"Machines (each row's latencies are one machine's): "
                         + "; ".join(f"{short_machine(m)} = `{m}`" for m in machines)
                         + f". Holds: the hypothesis's side of the claim (targets met, GP better, compression at least as fast, "
                         f"inheriting better); a \"counts redrawn\" row: the claim above it with every validation "
                         "count redrawn with one training run's measured spread (descriptive; the optimisers' searches "
                         f"keep their paths; holds in at least 95% of the redraws); a fit row (`benchmarks/bench_fit.py`; ms "
                         "and test images correct, fit/other): its registered target (>= 1.5x over the fastest uniform "
                         "width that clears the bar, width 1.0 being the given network; >= 1.2x over the table's "
                         "fastest network from scratch, trained here, where it may miss fit's bar; >= 4x over plain "
                         "int8) met at equal or better test accuracy. "
                         f"08's targets: {TARGETS}. "
                         "Accuracy: test images correct, with a 95% Wilson interval; "
                         "the studies' and the table's intervals are 90% bootstrap intervals of a median ratio.")
    return lines + [""]


def machine_answer(summary: pd.DataFrame | None = None, control_lines: list[str] | None = None,
                   machine_id: str | None = None, root: Path | None = None) -> list[str]:
    """08's lead: the answer with ``machine_id``'s latencies (this machine's by default), before the chapter's own
    one-seed plan. The table's answer (its own rows where it was timed on ``machine_id``, else the networks re-timed
    there), inherit vs retrain, the chapter's plans against the controls (``control_lines`` of
    ``final_report.controls_report``), the plans against 08's targets (``summary``), GP against random search, and
    the word on the hypothesis."""
    from helpers.core.identity import machine

    machine_id = machine_id or machine()["id"]
    rows = claims(root)
    mine = rows[rows.machine == machine_id]
    lines = [f"**The answer on this machine (`{machine_id}`); every latency below is this machine's.**", ""]
    speed = mine[mine.claim == SPEED_CLAIM]
    if len(speed):
        table = "; ".join(f"{r.dataset}: {r.finding} than the fastest pruned network ({r.number})"
                          for r in speed.itertuples())
        lines.append(f"- **Compression against narrow networks trained from scratch** (the table `o8-table`, both "
                     f"clearing the same bar; ms pruned/scratch and test images correct): {table}.")
    else:
        again = retimed_comparison(root)
        again = again[again.machine == machine_id] if len(again) else again
        if len(again):
            lines.append("- **Compression against narrow networks trained from scratch** (the table's networks "
                         "re-timed here, both clearing the same bar): " + "; ".join(
                             f"{r.dataset}: scratch `{r.scratch}` {r.ratio:.2f}x faster than pruned `{r.pruned}` "
                             f"({r.scratch_ms:.4f} vs {r.pruned_ms:.4f} ms)" for r in again.itertuples()) + ".")
        else:
            lines.append("- **Compression against narrow networks trained from scratch:** the table's networks are not "
                         "re-timed on this machine (`python -m helpers retime --scope table`).")
    inherit = rows[rows.claim == "inherit vs scratch"]
    if len(inherit):
        lines.append("- **Inheriting the baseline's weights against retraining the same pruned network from scratch** "
                     "(the table, accuracy only): " + "; ".join(f"{r.dataset}: {r.finding} ({r.number})"
                                                                for r in inherit.itertuples()) + ".")
    if control_lines:
        lines.append("- **This chapter's plans against the controls** (" + control_lines[0] + "): " + "; ".join(
            x for x in control_lines[1:] if " gp: " in x and "against narrow networks trained" not in x) + ".")
    if summary is not None:
        from helpers.analysis.verdicts import o8_verdict

        met = []
        for r in summary[summary.method == "gp"].itertuples():
            v = o8_verdict(r.test_accuracy, r.fp32_test_accuracy, r.threshold, r.speedup_vs_int8, r.speedup_vs_fp32,
                           r.target_vs_int8, r.target_vs_fp32, int(r.test_n))
            met.append(f"{r.dataset}: {'met' if v['met'] else 'not met'} ({r.speedup_vs_int8:.2f}x over plain int8, "
                       f"{r.speedup_vs_fp32:.2f}x over fp32)")
        lines.append(f"- **This chapter's one-seed GP plan against 08's targets** ({TARGETS}): " + "; ".join(met)
                     + ". The targets compare the plan with plain int8, not with the narrower networks above.")
    fits = mine[mine.claim.isin(FIT_CLAIMS.values())]
    if len(fits):
        lines.append("- **`fit`, the command that searches narrower networks (width, depth, resolution, distillation) "
                     "and pruned plans of a given network in one space** (`benchmarks/bench_fit.py`, registered "
                     "targets; ms fit/other and test images correct): " + "; ".join(
                         f"{r.dataset}, {r.claim}: {r.finding} ({r.number}; {'met' if r.holds else 'missed'})"
                         for r in fits.itertuples()) + ".")
    opt = rows[rows.claim.str.endswith("gp vs random")]
    if len(opt):
        lines.append("- **GP against random search** (registered verdicts; the machine whose latencies each uses): "
                     + "; ".join(f"{r.claim} {r.dataset}: {r.finding} ({r.number}; {short_machine(r.machine)})"
                                 for r in opt.drop_duplicates(["claim", "dataset", "machine"]).itertuples()) + ".")
    lines += ["", f"**The hypothesis as a whole: {hypothesis(rows)}**, by the rule in `helpers/analysis/answer.py` "
                  "(every claim and machine: the answer at the end of this Result)."]
    return lines
