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


def test_plan_trial_reuses_the_outcome_of_values_it_has_run(monkeypatch):
    from helpers import experiments
    from helpers.compress.plan import CompressionPlan

    calls = []

    def fake_plan_row(plan, *args, **kwargs):
        calls.append(plan)
        return {"val_acc_%": 90.0 + len(calls), "latency_ms": 0.1, "latency_iqr_ms": 0.001, "macs": 1, "size_kB": 1.0,
                "full_integer": True, "checks_fail": 0, "artifact": f"a{len(calls)}", "val_n": 100, "run_record": "r"}

    monkeypatch.setattr(experiments, "plan_row", fake_plan_row)
    template = CompressionPlan.from_dict({"steps": [{"method": "structured", "ratio": {"low": 0.1, "high": 0.5}},
                                                    {"method": "ptq", "calibration": 8}]})
    trial = experiments.PlanTrial(template, None, {}, None, "smoke")
    first = trial({"0.structured.ratio": 0.3})
    again = trial({"0.structured.ratio": 0.3})
    other = trial({"0.structured.ratio": 0.4})
    assert len(calls) == 2 and "reused" not in first
    assert again["reused"] and again["accuracy"] == first["accuracy"] and again["artifact"] == "a1"
    assert other["accuracy"] == pytest.approx(0.92)


def test_per_dataset_repeats_a_number_and_names_a_missing_dataset():
    from helpers.experiments import per_dataset

    assert per_dataset("final_epochs", 2.0, ["a", "b"]) == {"a": 2.0, "b": 2.0}
    with pytest.raises(ValueError, match="final_epochs has no value for dataset 'b'"):
        per_dataset("final_epochs", {"a": 1.0}, ["a", "b"])
