"""The accuracy bar, compared as counts of correct images: a plan clears it when its correct count reaches the
reference's accuracy minus ``threshold`` points, evaluated in exact fractions (a float32 0.91200000048 must not
turn 1804 of 2000 into a miss)."""

from __future__ import annotations

import math
from fractions import Fraction


def correct_count(accuracy: float, n: int) -> int:
    """The number of correct images behind an accuracy stored as a fraction of ``n`` (rounded to the nearest)."""
    if n is None or n < 1 or accuracy is None or not math.isfinite(float(accuracy)):
        raise ValueError(f"an accuracy as a count needs n >= 1 and a finite accuracy, not accuracy={accuracy!r}, n={n!r}")
    return int(round(float(accuracy) * n))


def bar_fraction(reference_correct: int, reference_n: int, threshold_points: float) -> Fraction:
    """The bar as an exact fraction: the reference's correct share minus ``threshold_points`` / 100."""
    if threshold_points is None or not math.isfinite(float(threshold_points)) or threshold_points < 0:
        raise ValueError(f"the threshold must be a number of accuracy points of at least 0, not {threshold_points!r}")
    return Fraction(reference_correct, reference_n) - Fraction(str(threshold_points)) / 100


def clears(correct: int, n: int, reference_correct: int, reference_n: int, threshold_points: float) -> bool:
    """True when ``correct`` of ``n`` reaches the bar (the reference's share minus the threshold), exactly."""
    return Fraction(int(correct), int(n)) >= bar_fraction(reference_correct, reference_n, threshold_points)


def clears_accuracy(accuracy: float, n: int, reference_accuracy: float, reference_n: int,
                    threshold_points: float) -> bool:
    """:func:`clears` for accuracies stored as fractions of their image counts (converted to counts first)."""
    return clears(correct_count(accuracy, n), n, correct_count(reference_accuracy, reference_n), reference_n,
                  threshold_points)
