"""The answer: one row per claim, drawn from the committed tables, and one word on the hypothesis by a fixed rule.

The claims (each row names its machine, since latency belongs to one machine; accuracy counts are portable):

1. **08's targets** (per machine that ran the default chain): GP's chosen plan of 08 on test, against 08's
   registered targets (within the threshold of fp32's test accuracy, >= 2.0x over plain int8, >= 5.0x over fp32).
2. **The first studies** (`o8-calibrated`, `o8-gp-vs-random`, per dataset): GP over random search, the registered
   verdict (upper bound of the 90% interval of the median latency ratio < 1).
3. **The table's verdicts** (`o8-table`, per dataset, at the registered primary budget of 20 trials): GP vs random,
   TPE vs random, GP vs TPE (Wilcoxon signed-rank with a bootstrap interval; "first better" holds).
4. **Compression vs the narrow networks from scratch** (per dataset): the fastest pruned network that clears the
   bar over the fastest network of the same space trained from scratch that clears it (holds when the pruned one is
   at least as fast).
5. **Inherit vs retrain** (per dataset): the networks trained both ways, how many score higher on test from scratch
   (holds for compression's inherited weights when they win the majority).

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
TARGETS = "within the threshold of fp32's test accuracy, >= 2.0x over plain int8 and >= 5.0x over fp32"
RULE = ("**supported** when GP beats random search in the table's registered comparison (20 trials) on every "
        "dataset, compression plus search is at least as fast as the fastest network trained from scratch that clears "
        "the same bar on every dataset, and 08's targets are met on every machine that ran the chain; **not "
        "supported** when GP beats random search on no dataset of the table and 08's targets are met on no machine; "
        "**partly supported** otherwise.")
COLUMNS = ["claim", "dataset", "finding", "number", "machine", "holds"]


def claims(root: Path | None = None) -> pd.DataFrame:
    """Every claim's rows (:data:`COLUMNS`), from the committed results under ``root`` (``results/``)."""
    root = Path(root) if root else paths.ROOT / "results"
    rows = _chain_targets(root / "default") + _first_studies(root / "study") + _table_rows(root / "study")
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


def _short(verdict: str) -> str:
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
            out.append([f"`{meta['config']['name']}` gp vs random", r.dataset, _short(r.verdict),
                        f"{r.median_ratio:.3f} [{r.lo:.3f}, {r.hi:.3f}], {r.seeds} seeds", layout.folder.name,
                        bool(r.met)])
    return out


def _table_rows(base: Path) -> list[list]:
    from helpers.analysis.table_analysis import answer, inherit_vs_scratch, table_bar
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
            for r in v[v.budget == PRIMARY_BUDGET].itertuples():
                out.append([f"table {r.first} vs {r.second}", ds, _short(r.verdict),
                            f"{r.median_ratio:.3f} [{r.lo:.3f}, {r.hi:.3f}], {r.seeds} seeds, p {r.p:.2g}", machine,
                            r.verdict == "first better"])
            ref = json.loads(layout.reference(ds).read_text())
            bar = table_bar(cfg, ref)
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
            both = inherit_vs_scratch(cfg, layout.folder, ds, bar)
            if both["networks"]:
                out.append(["inherit vs scratch", ds, f"scratch up in {both['test_up']} of {both['networks']}",
                            f"median {both['test_median']:+.0f} of {both['test_n']:,}, p {both['p']:.2g}",
                            machine, bool(both["test_up"] < both["networks"] / 2)])
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
    machines = sorted(set(rows.machine))
    lines += [""] + wrap(f"Machines (each row's latencies are one machine's): "
                         + "; ".join(f"{short_machine(m)} = `{m}`" for m in machines)
                         + f". 08's targets: {TARGETS}. Accuracy: test images correct, with a 95% Wilson interval; "
                         "the studies' and the table's intervals are 90% bootstrap intervals of a median ratio.")
    return lines + [""]
