"""Research decisions as tested functions (helpers.analysis.verdicts, helpers.experiments.selection, helpers.analysis.final_report) and the
notebook parameter contract (BaselineSpec, notebook defaults equal to smoke.yaml, thin notebooks)."""

import ast

import pandas as pd
import pytest

from helpers.core import paths
from helpers.analysis.verdicts import composition_table, judge_parameters, target_verdict, within


def sweep(rows):
    return pd.DataFrame(rows, columns=["parameter", "value", "latency_ms", "val_accuracy"])


BASE = [("(default)", "-", 0.10, 0.85), ("ratio", "0.3", 0.14, 0.88), ("ratio", "0.6", 0.08, 0.83)]


def test_a_value_that_buys_accuracy_at_a_worse_rate_than_the_ratio_is_not_searched():
    # +2 points for +40% latency; the ratio itself gives +3 points for the same latency
    effects = judge_parameters(sweep(BASE + [("round_to", "1", 0.14, 0.87)]))
    assert not effects.loc["round_to", "optimise"]
    assert effects.loc["round_to", "above_curve"] == pytest.approx(-0.01)
    assert effects.loc["round_to", "latency_change_%"] == pytest.approx(40.0)


def test_faster_at_equal_accuracy_or_better_at_equal_latency_is_searched():
    effects = judge_parameters(sweep(BASE + [("stage_slope", "0.3", 0.09, 0.85), ("importance", "l1", 0.10, 0.86)]))
    assert effects.loc["stage_slope", "optimise"]  # the ratio needs 0.84 at 0.09 ms
    assert effects.loc["stage_slope", "above_curve"] == pytest.approx(0.01)
    assert effects.loc["importance", "optimise"]


def test_worse_values_noise_and_excluded_fidelities_keep_the_default():
    rows = BASE + [("importance", "random", 0.10, 0.80), ("calibration", "256", 0.10, 0.853),
                   ("finetune_epochs", "2.0", 0.10, 0.91)]
    effects = judge_parameters(sweep(rows), exclude=("finetune_epochs",))
    assert list(effects.index) == ["importance", "calibration"]
    assert not effects.optimise.any()  # 5 points worse; 0.3 points is within min_gain


def test_parameter_inside_the_noise_is_not_searched():
    sens = pd.DataFrame({"parameter": ["(default)", "ratio", "ratio", "slope"], "latency_ms": [1.0, 0.8, 1.2, 1.0],
                         "val_accuracy": [0.90, 0.88, 0.92, 0.908]})
    assert judge_parameters(sens, noise=0.0).loc["slope", "optimise"]
    j = judge_parameters(sens, noise=0.015).loc["slope"]
    assert not j.optimise and j.verdict == "not distinguishable"


def test_plan_trial_reuses_the_outcome_of_values_it_has_run(monkeypatch):
    from helpers.search import trial as trial_module
    from helpers.compress.plan import CompressionPlan

    calls = []

    def fake_plan_row(plan, *args, **kwargs):
        calls.append(plan)
        return {"val_accuracy": 0.90 + len(calls) / 100, "latency_ms": 0.1, "latency_iqr_ms": 0.001, "macs": 1,
                "size_kB": 1.0, "full_integer": True, "checks_fail": 0, "artifact": f"a{len(calls)}", "val_n": 100,
                "run_record": "r", "cost": {}}

    monkeypatch.setattr(trial_module, "plan_row", fake_plan_row)
    template = CompressionPlan.from_dict({"steps": [{"method": "structured", "ratio": {"low": 0.1, "high": 0.5}},
                                                    {"method": "ptq", "calibration": 8}]})
    trial = trial_module.PlanTrial(template, None, {}, None, "smoke")
    first = trial({"0.structured.ratio": 0.3})
    again = trial({"0.structured.ratio": 0.3})
    other = trial({"0.structured.ratio": 0.4})
    assert len(calls) == 2 and "reused" not in first
    assert again["reused"] and again["accuracy"] == first["accuracy"] and again["artifact"] == "a1"
    assert other["accuracy"] == pytest.approx(0.92)


def test_per_dataset_repeats_a_number_and_names_a_missing_dataset():
    from helpers.networks.params import per_dataset

    assert per_dataset("final_epochs", 2.0, ["a", "b"]) == {"a": 2.0, "b": 2.0}
    with pytest.raises(ValueError, match="final_epochs has no value for dataset 'b'"):
        per_dataset("final_epochs", {"a": 1.0}, ["a", "b"])


def test_targets_and_limits_say_by_how_much():
    assert target_verdict(0.91, 0.90) == "met" and target_verdict(0.5, None) == "n/a"
    assert target_verdict(0.885, 0.90) == "missed by 1.50 points"
    assert within(-0.009, 0.01) == "within" and within(0.2, 0.15) == "NOT within"


def test_composition_table_compares_with_what_the_parts_predict():
    comp = pd.DataFrame({"label": ["int8", "p", "l", "p -> l", "l -> p"], "speedup": [1.0, 1.5, 1.2, 1.8, 1.2],
                         "accuracy_change": [0.0, -0.01, -0.005, -0.014, -0.05]})
    t = composition_table(comp, {"p -> l": ["p", "l"], "l -> p": ["l", "p"], "q -> p": ["q", "p"]}, 0.02, 0.01)
    assert list(t.label) == ["p -> l", "l -> p"]  # a composition whose parts were not run is left out
    assert t.set_index("label").loc["p -> l", "verdict"] == "adds up"
    assert t.set_index("label").loc["l -> p", "verdict"] == "interferes (speed, accuracy)"
    assert t.parts_speedup.iloc[0] == pytest.approx(1.8)


def test_search_space_frees_only_the_knobs_chosen_and_names_a_missing_range():
    from helpers.experiments.selection import search_space, sweep_plan

    default = {"ratio": 0.45, "stage_slope": 0.15, "importance": "lamp", "round_to": 8, "calibration": 64,
               "finetune_epochs": 0.25}
    effects = pd.DataFrame({"optimise": [True, False]}, index=["stage_slope", "calibration"])
    gaps = pd.DataFrame({"final_epochs": [2.0], "slack_points": [3.5]}, index=["d"])
    ranges = {"ratio": {"low": 0.25, "high": 0.6}, "stage_slope": {"low": 0.0, "high": 0.35}}
    space = search_space(default, effects, ranges, gaps, 0.05, "rec")
    structured, finetune, ptq = space["steps"]
    assert structured["ratio"] == ranges["ratio"] and structured["stage_slope"] == ranges["stage_slope"]
    assert structured["importance"] == "lamp" and ptq["calibration"] == 64 and finetune["epochs"] == 0.25
    assert space["screening"] == {"final_epochs": {"d": 2.0}, "slack_points": {"d": 3.5}}
    with pytest.raises(ValueError, match="no range for stage_slope"):
        search_space(default, effects, {"ratio": ranges["ratio"]}, gaps, 0.05, "rec")
    with pytest.raises(ValueError, match="lacks calibration"):
        sweep_plan({k: v for k, v in default.items() if k != "calibration"}, 0.05)


def test_best_so_far_counts_only_finished_trials_over_the_bar():
    from helpers.search.engine import best_so_far

    trials = [{"status": "ok", "feasible": False, "latency_ms": 0.5}, {"status": "ok", "feasible": True, "latency_ms": 0.8},
              {"status": "failed"}, {"status": "ok", "feasible": True, "latency_ms": 0.6}]
    assert best_so_far(trials) == [float("inf"), 0.8, 0.8, 0.6]


def test_verdict_lines_state_the_test_verdict_and_the_faster_misses(tmp_path):
    import pandas as pd

    from helpers.analysis.final_report import summary_table, verdict_lines
    from helpers.search.store import append_log

    base = {"dataset": "d", "seed": 0, "fp32_val_accuracy": 0.92, "fp32_test_accuracy": 0.91, "int8_latency_ms": 0.11,
            "fp32_latency_ms": 0.35, "test_n": 1000}
    chosen = pd.DataFrame([{**base, "method": "gp", "chosen": "{r: 0.5}", "latency_ms": 0.05, "val_accuracy": 0.915,
                            "test_accuracy": 0.895},
                           {**base, "method": "random", "chosen": None, "latency_ms": float("nan"),
                            "val_accuracy": float("nan"), "test_accuracy": float("nan")}])
    append_log(tmp_path / "d-s0-gp-final.jsonl", {"trial": 0, "values": {"r": 0.6}, "status": "ok", "feasible": False,
                                                  "latency_ms": 0.04, "accuracy": 0.9})
    append_log(tmp_path / "d-s0-random-final.jsonl", {"trial": 0, "values": {"r": 0.7}, "status": "ok",
                                                      "feasible": False, "latency_ms": 0.03, "accuracy": 0.85})
    summary = summary_table(chosen, 1.0, 2.0, 5.0)
    assert summary.speedup_vs_int8.iloc[0] == pytest.approx(2.2) and summary.speedup_vs_fp32.iloc[0] == pytest.approx(7.0)
    lines = verdict_lines(summary, tmp_path)
    assert "d-s0-gp: VERDICT ON TEST: not met: accuracy 0.50 points under the bar" in lines[0]
    assert "faster candidate {'r': 0.6}: 2.75x" in lines[2] and "1.00 points under the bar" in lines[2]
    assert lines[3] == "d-s0-random: no final run met the bar; the most accurate reached 85.00% at 0.0300 ms (bar 91.00%)"


def test_baseline_spec_names_bad_keys_and_missing_entries():
    from helpers.networks.baselines import BaselineSpec

    spec = BaselineSpec.parse({"widths": {"resnet18": 0.25}, "epochs": {"fashion_mnist": 1.0}})
    assert spec.batch_size == 128 and spec.train_images == 1024
    with pytest.raises(ValueError, match="unknown key\\(s\\) train_subset"):
        BaselineSpec.parse({"widths": {}, "epochs": {}, "train_subset": 10})
    with pytest.raises(ValueError, match="lacks epochs"):
        BaselineSpec.parse({"widths": {}})
    with pytest.raises(ValueError, match="baseline_spec.widths has no entry for 'mobilenet_v2'"):
        spec.build("mobilenet_v2", "fashion_mnist")


def _notebooks():
    import nbformat

    return {p: nbformat.read(str(p), as_version=4) for p in sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))}


def test_notebook_defaults_are_the_smoke_profile():
    """A notebook run by hand trains the same baselines and runs the same plans as the smoke chain."""
    import papermill as pm

    from helpers.networks.params import load_profile, parameters_for

    smoke = load_profile("smoke")
    for path in _notebooks():
        defaults = {k: ast.literal_eval(v["default"]) for k, v in pm.inspect_notebook(str(path)).items()}
        for name, value in parameters_for(path.name[:2], path, smoke, "smoke").items():
            assert defaults[name] == value, f"{path.name}: {name} defaults to {defaults[name]!r}, smoke.yaml says {value!r}"


def test_notebooks_are_thin():
    """No def, no more than 60 code lines outside the parameters cell, no parameter block but baseline_spec."""
    for path, nb in _notebooks().items():
        code = [c for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])]
        lines = [ln for c in code for ln in c.source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        assert len(lines) <= 60, f"{path.name}: {len(lines)} code lines"
        assert not any(ln.lstrip().startswith(("def ", "class ")) for ln in lines), f"{path.name} defines a function"
        params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])][0].source
        for loose in ("widths =", "epochs =", "batch_size =", "lr =", "train_subset", "eval_subset", "val_subset"):
            assert not any(ln.startswith(loose) for ln in params.splitlines()), f"{path.name} declares {loose}"


def test_network_key_merges_counts_not_criteria():
    """Ratios that round to the same channel counts share a key; another importance criterion does not."""
    import torch

    from helpers.compress import Context
    from helpers.compress.plan import CompressionPlan
    from helpers.datasets.data import ArrayDataset
    from helpers.networks.models import build_model
    from helpers.search.trial import network_key

    torch.manual_seed(0)
    model = build_model("resnet18", 10, 1, 0.25).eval()
    ds = ArrayDataset(torch.randn(16, 1, 32, 32), torch.arange(16) % 10, [str(i) for i in range(10)], "x", "train", "fp")
    ctx = Context(train_ds=ds, val_ds=ds, input_size=32, in_channels=1)

    def key(ratio, importance, round_to=8):
        return network_key(CompressionPlan.from_dict({"steps": [
            {"method": "structured", "ratio": ratio, "importance": importance, "round_to": round_to},
            {"method": "ptq", "calibration": 8}]}), model, ctx)

    assert key(0.51, "l1") == key(0.55, "l1")  # 8-channel rounding: the same counts
    assert key(0.50, "l1") != key(0.50, "lamp")  # the criterion decides which channels stay
    assert key(0.50, "l1") != key(0.25, "l1")


def test_pays_is_one_noise_aware_rule_for_tables_and_findings():
    from helpers.analysis.findings import pool_findings
    from helpers.analysis.plan_rows import pays, with_speedups

    assert pays(1.10, 0.02) and not pays(1.04, 0.0) and not pays(1.10, 0.15)  # 10% inside a 15% spread: no gain
    rows = pd.DataFrame({"model": "m", "dataset": "d", "mode": "int8", "label": ["int8", "a", "b"],
                         "latency_ms": [1.0, 0.9, 0.9], "latency_iqr_ms": [0.01, 0.009, 0.18], "macs": [10, 5, 5],
                         "val_accuracy": 0.9})
    t = with_speedups(rows, "int8")
    assert list(t.pays) == [False, True, False]
    lines = pool_findings(t)
    assert "a: 1.11x" in lines[0] and "pays" in lines[0] and lines[1].endswith("does not pay.")
