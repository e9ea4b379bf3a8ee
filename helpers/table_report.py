"""What the ``table`` and ``replay`` commands print and write: a table's progress and machine time, and the
optimisers' replays with the pre-registered verdicts (CSV beside the table)."""

from __future__ import annotations

import json
from pathlib import Path


from helpers.table_config import TableConfig
from helpers.trials import TableLayout


def build_summary(cfg: TableConfig, folder: Path) -> list[str]:
    """Per dataset: rows measured of each kind, the machine time they took and, for what is left, the estimate
    from the mean seconds per network so far; and every run record the table was measured under."""
    from helpers.table import scratch_networks, seed_networks, table_frame
    from helpers.trials import read_log

    layout, n = TableLayout(folder), len(cfg.lattice())
    lines = [f"table {cfg.name} in {folder}"]
    for ds in cfg.datasets:
        df = table_frame(folder, ds)
        if not len(df):
            lines.append(f"{ds}: no network measured yet; {n} to measure")
            continue
        have = df.kind.value_counts().to_dict()
        sec = df.groupby("kind").seconds.mean().to_dict()
        rows = read_log(layout.rows(ds))
        inherit_left = n - have.get("inherit", 0)
        seed_left = len(seed_networks(cfg)) - have.get("seed1", 0)
        scratch_total = (len(scratch_networks(cfg, rows, _base(cfg))) if inherit_left == 0
                         else cfg.scratch_b + len(cfg.uniform) + 10)  # the front is known once every row is in
        scratch_left = max(0, scratch_total - have.get("scratch", 0))
        per = sec.get("inherit", 0.0)
        left_s = inherit_left * per + seed_left * per + scratch_left * sec.get("scratch", 2.5 * per)
        lines.append(f"{ds}: {have.get('inherit', 0)} of {n} pruned networks, {have.get('scratch', 0)} Scratch-B, "
                     f"{have.get('seed1', 0)} second-seed; {df.seconds.sum() / 3600:.2f} h of machine time so far "
                     f"({per:.1f} s per pruned network); about {left_s / 3600:.1f} h left")
    records = sorted({r for ds in cfg.datasets for r in table_frame(folder, ds).get("run_record", [])})
    lines.append(f"run records: {', '.join(records) or 'none yet'}")
    return lines


def _base(cfg: TableConfig) -> list:
    return list(cfg.lattice().widest())


def table_folder(cfg: TableConfig, machine_id: str | None) -> Path:
    """The folder of the table measured on ``machine_id`` (default: this machine); one sentence when there is none
    or when it was measured under another config."""
    from helpers.identity import machine
    from helpers.table import table_dir

    here = machine_id or machine()["id"]
    folder = table_dir(cfg, here)
    layout = TableLayout(folder)
    if not layout.meta.exists():
        others = sorted(p.name for p in folder.parent.glob("*") if TableLayout(p).meta.exists())
        where = f"; it was measured on {', '.join(others)} (pass --machine ID)" if others else ""
        raise ValueError(f"table {cfg.name!r} has not been measured on {here}{where}; build it with "
                         f"`python -m helpers table CONFIG`")
    key = json.loads(layout.meta.read_text()).get("key")
    if key != cfg.key():
        raise ValueError(f"the table in {folder} was measured under another config (key {key} vs {cfg.key()}); replay "
                         "it with the config it was built from")
    return folder


def run_replays(cfg: TableConfig, machine_id: str | None = None, seeds: int | None = None, optimisers=None,
                as_json: bool = False) -> list[str]:
    """Replay the optimisers on every dataset whose table is complete; write ``<ds>-replay.csv`` and
    ``<ds>-verdicts.csv``; return the lines to print."""
    from helpers.io import atomic_path
    from helpers.table_analysis import regret_summary, replays, table_search, verdicts

    from helpers.table_config import OPTIMISERS

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
