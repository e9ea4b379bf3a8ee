"""Result sentences generated from result tables, so a notebook's prose cannot contradict its own figure.

Each function takes the table a notebook has just built and returns plain sentences; the notebooks print
them instead of carrying hand-written claims.
"""

from __future__ import annotations

import pandas as pd

from helpers.analysis.plan_rows import PAYS
from helpers.analysis.plan_rows import pays as pays_rule


def pool_findings(pool: pd.DataFrame, pays: float = PAYS) -> list[str]:
    """For 03: per model, whether each int8 method pays, and whether it beats or falls short of its MAC prediction.

    ``pool`` needs model, dataset, mode, label, speedup, mac_speedup, latency_ms and latency_iqr_ms. A
    difference counts only when it exceeds the measurement's relative IQR; a speed-up under ``pays`` does not pay.
    """
    out = []
    q = pool[(pool["mode"] == "int8") & (pool.label != "int8")]
    for (model, ds), g in q.groupby(["model", "dataset"]):
        for _, r in g.iterrows():
            spread = float(r.latency_iqr_ms / r.latency_ms)
            if not pays_rule(r.speedup, spread, pays):
                verdict = "does not pay"
            elif r.speedup > r.mac_speedup * (1 + spread):
                verdict = "pays, more than its MACs predict"
            elif r.speedup < r.mac_speedup * (1 - spread):
                verdict = "pays, less than its MACs predict"
            else:
                verdict = "pays, as its MACs predict"
            out.append(f"{model}/{ds}, {r.label}: {r.speedup:.2f}x measured vs {r.mac_speedup:.2f}x by MACs "
                       f"(spread {100 * spread:.1f}%): {verdict}.")
    return out


def layer_findings(share: pd.DataFrame, top: int = 3, bound: float = 1.5) -> list[str]:
    """For 04: the blocks that dominate int8 latency, and those whose latency share exceeds ``bound`` x their MAC share.

    ``share`` has model, block, share and macs_share (fractions of the model's total).
    """
    out = []
    for model, d in share.groupby("model"):
        d = d.sort_values("share", ascending=False)
        heads = ", ".join(f"{r.block} ({100 * r.share:.1f}% of latency, {100 * r.macs_share:.1f}% of MACs)"
                          for _, r in d.head(top).iterrows())
        out.append(f"{model}: the {top} most expensive blocks are {heads}.")
        heavy = d[d.share > bound * d.macs_share]
        out.append(f"{model}: {len(heavy)} of {len(d)} blocks take more than {bound}x their MAC share of latency "
                   f"(memory- or overhead-bound){': ' + ', '.join(heavy.block) if len(heavy) else ''}.")
    return out
