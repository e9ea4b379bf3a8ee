"""What a search minimises: one number from a trial's validation accuracy and latency (O8)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

OBJECTIVES = ("constrained", "mnasnet", "weighted")


class SearchError(ValueError):
    """A search configuration is invalid; the message names the field and the fix."""


@dataclass
class Objective:
    """Turns (validation accuracy, latency) into one number to minimise.

    * ``constrained``: latency / reference latency when accuracy >= baseline - threshold, else that plus
      ``penalty`` x log(1 + shortfall in points): smooth and monotone, so the GP sees a slope back to
      feasibility, and saturating, so a few hopeless trials do not flatten the GP's view of the feasible
      region (with skopt's GP on the objective, a linear penalty reached random search's best in 2 of 5
      seeds of benchmarks/bench_search.py's per-stage proxy, this one in 4 of 5).
    * ``mnasnet``: minus MnasNet's reward ACC x (LAT / target)^w, w = -0.07 by default.
    * ``weighted``: (1 - ACC) x ``alpha`` + latency / reference x (1 - ``alpha``).
    """

    name: str = "constrained"
    baseline_accuracy: float = 1.0  # fraction
    threshold_points: float = 1.0  # accuracy points below the baseline still feasible
    reference_ms: float = 1.0  # latency that normalises (the plain int8 baseline)
    penalty: float = 0.5  # weight of log(1 + shortfall in points)
    mnas_w: float = -0.07
    alpha: float = 0.5
    baseline_n: int | None = None  # images behind baseline_accuracy: feasibility is then decided as counts

    def __post_init__(self):
        if self.name not in OBJECTIVES:
            raise SearchError(f"unknown objective {self.name!r}; choose one of {', '.join(OBJECTIVES)}")
        if not 0 <= self.threshold_points <= 100:
            raise SearchError(f"threshold {self.threshold_points!r} is out of range; give accuracy points in [0, 100]")
        if not 0 < self.baseline_accuracy <= 1:
            raise SearchError(f"baseline accuracy {self.baseline_accuracy!r} must be a fraction in (0, 1]")
        if self.reference_ms <= 0:
            raise SearchError(f"reference latency {self.reference_ms!r} ms must be positive")

    def lowered(self, points: float) -> "Objective":
        """The same objective with its accuracy bar ``points`` lower (what a short screening trial must clear)."""
        return replace(self, threshold_points=self.threshold_points + points)

    @property
    def bar(self) -> float:
        """The accuracy (fraction) a trial must reach to be feasible."""
        return self.baseline_accuracy - self.threshold_points / 100

    def feasible(self, accuracy: float, n: int | None = None) -> bool:
        """Whether ``accuracy`` (a fraction of ``n`` images) clears the bar. With both image counts known, the bar
        is compared as counts in exact fractions (``bars.clears_accuracy``): a baseline stored as float32
        (0.91200000048 of 2000) must not turn 1804 of 2000 into a miss; otherwise in floats."""
        if n and self.baseline_n:
            from helpers.core.bars import clears_accuracy

            return clears_accuracy(accuracy, n, self.baseline_accuracy, self.baseline_n, self.threshold_points)
        return 100 * accuracy >= 100 * self.baseline_accuracy - self.threshold_points - 1e-9

    def __call__(self, accuracy: float, latency_ms: float) -> float:
        return float(self.values(accuracy, latency_ms))

    def values(self, accuracy, latency_ms) -> np.ndarray:
        """The objective of arrays of accuracies (fractions) and latencies (ms), element by element."""
        acc, lat = np.asarray(accuracy, float), np.asarray(latency_ms, float) / self.reference_ms
        if self.name == "constrained":
            shortfall = np.maximum(0.0, 100 * self.baseline_accuracy - self.threshold_points - 100 * acc)
            return lat + self.penalty * np.log1p(shortfall)
        if self.name == "mnasnet":
            return -acc * lat ** self.mnas_w
        return self.alpha * (1 - acc) + (1 - self.alpha) * lat


