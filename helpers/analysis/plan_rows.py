"""Tables built from plan rows (``pipeline.plan_row``): verification checks and speed-ups against a reference row."""

from __future__ import annotations

import pandas as pd

PAYS = 1.05  # a measured speed-up below this is treated as no gain


def pays(speedup: float, relative_spread: float = 0.0, floor: float = PAYS) -> bool:
    """Whether a measured speed-up pays: at least ``floor`` and beyond the measurement's relative spread (its
    relative IQR), so a gain inside the noise never counts. The one definition 03, the tables and findings use."""
    return bool(speedup >= max(floor, 1 + relative_spread))


def checks_table(rows: list[dict]) -> pd.DataFrame:
    """Every verification check of every row, one line each."""
    return pd.DataFrame([{"label": r["label"], "method": s["method"], **c} for r in rows for s in r["steps"]
                         for c in s["checks"]])


def with_speedups(df: pd.DataFrame, reference_label: str, floor: float = PAYS) -> pd.DataFrame:
    """Add measured speed-up, MAC-predicted speed-up and accuracy change (fraction) against the reference row.

    Per model/dataset; ``pays`` is :func:`pays` of the speed-up with the row's relative latency IQR.
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
                            pays=lambda d: [pays(s, iqr / ms, floor) for s, iqr, ms in
                                            zip(ref.latency_ms / d.latency_ms, d.latency_iqr_ms, d.latency_ms)]))
    return pd.concat(out)
