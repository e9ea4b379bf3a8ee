"""Tables built from plan rows (``pipeline.plan_row``): verification checks and speed-ups against a reference row."""

from __future__ import annotations

import pandas as pd

PAYS = 1.05  # a measured speed-up below this is treated as no gain


def checks_table(rows: list[dict]) -> pd.DataFrame:
    """Every verification check of every row, one line each."""
    return pd.DataFrame([{"label": r["label"], "method": s["method"], **c} for r in rows for s in r["steps"]
                         for c in s["checks"]])


def with_speedups(df: pd.DataFrame, reference_label: str) -> pd.DataFrame:
    """Add measured speed-up, MAC-predicted speed-up and accuracy change (fraction) against the reference row.

    Per model/dataset; ``pays`` is a measured speed-up of at least ``PAYS``.
    """
    out = []
    for _, g in df.groupby(["model", "dataset"]):
        ref = g[g.label == reference_label]
        if ref.empty:
            out.append(g)
            continue
        ref = ref.iloc[0]
        out.append(g.assign(speedup=ref.latency_ms / g.latency_ms, mac_speedup=ref.macs / g.macs,
                            accuracy_change=g.val_accuracy - ref.val_accuracy,
                            pays=lambda d: (ref.latency_ms / d.latency_ms) >= PAYS))
    return pd.concat(out)
