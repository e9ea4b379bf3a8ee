"""Uncertainty of the numbers the notebooks report: Wilson intervals for accuracies, spread across groups.

Written by hand because the Wilson score interval is three lines (statsmodels would be a heavy dependency for it).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

Z95 = 1.959964


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval (fractions) of an accuracy of ``correct`` out of ``n``.

    Raises ValueError unless 0 <= correct <= n and n > 0.
    """
    if n <= 0 or not 0 <= correct <= n:
        raise ValueError(f"an accuracy interval needs 0 <= correct <= n and n > 0, not correct={correct}, n={n}")
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_noise(p: float, n: int, z: float = Z95) -> float:
    """Half-width (fraction) of a 95% interval of the difference of two independent accuracies near ``p`` on ``n`` each.

    A difference smaller than this is not distinguishable from sampling noise of the evaluation set.
    """
    return z * math.sqrt(2 * p * (1 - p) / n)


def with_interval(df: pd.DataFrame, acc: str = "val_accuracy", n: str = "val_n") -> pd.DataFrame:
    """Add ``<acc>_lo`` and ``<acc>_hi`` (the 95% Wilson interval of the fraction ``acc`` on ``n`` images) to each row.

    A row without an accuracy (NaN) gets NaN bounds.
    """
    bounds = [wilson_interval(round(a * k), int(k)) if a == a and k == k else (np.nan, np.nan)
              for a, k in zip(df[acc], df[n])]
    lo, hi = zip(*bounds) if bounds else ((), ())
    return df.assign(**{f"{acc}_lo": np.asarray(lo, float), f"{acc}_hi": np.asarray(hi, float)})


def group_accuracy(predictions, targets, groups, names: list[str]) -> pd.DataFrame:
    """Accuracy per group (glyphs: per held-out design) with its size and Wilson interval, as fractions."""
    pred, true, grp = (np.asarray(a) for a in (predictions, targets, groups))
    rows = []
    for g in np.unique(grp):
        m = grp == g
        k, n = int((pred[m] == true[m]).sum()), int(m.sum())
        lo, hi = wilson_interval(k, n)
        rows.append({"group": names[g] if names else int(g), "n": n, "accuracy": k / n, "accuracy_lo": lo,
                     "accuracy_hi": hi})
    return pd.DataFrame(rows)


def spread_over_groups(table: pd.DataFrame, col: str = "accuracy") -> dict:
    """Mean, standard deviation, min and max of ``col`` across groups (each group counts once)."""
    v = table[col].to_numpy(float)
    return {"groups": int(len(v)), "mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else float("nan"),
            "min": float(v.min()), "max": float(v.max())}
