"""06's rule for which parameters the search optimises (helpers.experiments.judge_parameters)."""

import pandas as pd
import pytest

from helpers.experiments import judge_parameters


def sweep(rows):
    return pd.DataFrame(rows, columns=["parameter", "value", "latency_ms", "val_acc_%"])


BASE = [("(default)", "-", 0.10, 85.0), ("ratio", "0.3", 0.14, 88.0), ("ratio", "0.6", 0.08, 83.0)]


def test_a_value_that_buys_accuracy_at_a_worse_rate_than_the_ratio_is_not_searched():
    # +2 points for +40% latency; the ratio itself gives +3 points for the same latency
    effects = judge_parameters(sweep(BASE + [("round_to", "1", 0.14, 87.0)]))
    assert not effects.loc["round_to", "optimise"]
    assert effects.loc["round_to", "above_curve"] == pytest.approx(-1.0)
    assert effects.loc["round_to", "latency_change_%"] == pytest.approx(40.0)


def test_faster_at_equal_accuracy_or_better_at_equal_latency_is_searched():
    effects = judge_parameters(sweep(BASE + [("stage_slope", "0.3", 0.09, 85.0), ("importance", "l1", 0.10, 86.0)]))
    assert effects.loc["stage_slope", "optimise"]  # the ratio needs 84.0 at 0.09 ms
    assert effects.loc["stage_slope", "above_curve"] == pytest.approx(1.0)
    assert effects.loc["importance", "optimise"]


def test_worse_values_noise_and_excluded_fidelities_keep_the_default():
    rows = BASE + [("importance", "random", 0.10, 80.0), ("calibration", "256", 0.10, 85.3),
                   ("finetune_epochs", "2.0", 0.10, 91.0)]
    effects = judge_parameters(sweep(rows), exclude=("finetune_epochs",))
    assert list(effects.index) == ["importance", "calibration"]
    assert not effects.optimise.any()  # 5 points worse; 0.3 points is within min_gain
