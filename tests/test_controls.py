"""Controls (issue 21): budget bookkeeping, the count-based bar, uniform widths, curve interpolation and the
"beats the curve" verdict on constructed inputs; bad control specs; a smoke-profile control run end to end."""

import math

import numpy as np
import pandas as pd
import pytest

from helpers.core.bars import bar_fraction, clears, clears_accuracy, correct_count
from helpers.core.budget import epochs_for, passes, plan_passes, total_passes
from helpers.analysis.curve import (BEATS, BELOW, FASTER, NO_CURVE, TIE, against_curve, answer, curve_points, difference,
                           faster_control, interpolate)
from helpers.networks.models import build_model, reinitialise, stage_channels, uniform_channels


# ---- budget bookkeeping ------------------------------------------------------------------------------------------
def test_passes_scale_epochs_by_the_share_of_the_split_used():
    assert passes(2.0, None, 54000) == 2.0
    assert passes(0.5, 6000, 54000) == pytest.approx(0.5 / 9)
    assert passes(1.0, 10**9, 100) == 1.0  # a subset larger than the split is the split


def test_plan_budget_adds_every_training_step_and_the_baseline():
    plan = {"steps": [{"method": "structured", "ratio": 0.5}, {"method": "finetune", "epochs": 0.25},
                      {"method": "qat", "epochs": 0.1}, {"method": "finetune", "epochs": 2.0}, {"method": "ptq"}]}
    assert plan_passes(plan, None, 1000) == pytest.approx(2.35)
    assert plan_passes(plan, 500, 1000) == pytest.approx(1.175)
    record = {"config": {"train": {"epochs": 2.0}, "train_subset": None}}
    assert total_passes(record, plan, None, 1000) == pytest.approx(4.35)
    assert total_passes(record, None, None, 1000) == 2.0
    with pytest.raises(ValueError, match="free epochs"):
        plan_passes({"steps": [{"method": "finetune", "epochs": {"low": 0.1, "high": 1}}]}, None, 10)


def test_epochs_for_inverts_passes_and_refuses_budgets_of_zero_or_less():
    assert epochs_for(passes(1.5, 1024, 54000), 1024, 54000) == pytest.approx(1.5)
    assert epochs_for(4.0, None, 54000) == 4.0
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="positive number of passes"):
            epochs_for(bad, None, 100)


# ---- the bar as counts ---------------------------------------------------------------------------------------------
def test_a_plan_exactly_on_the_bar_clears_it_although_the_stored_float_says_otherwise():
    reference = 0.9120000004768372  # float32 of 1824/2000, as the baselines store it
    assert correct_count(reference, 2000) == 1824
    assert 1804 / 2000 < reference - 1.0 / 100  # the float comparison fails by 1e-7 ...
    assert clears_accuracy(1804 / 2000, 2000, reference, 2000, 1.0)  # ... the count comparison does not
    assert not clears(1803, 2000, 1824, 2000, 1.0)
    assert bar_fraction(1824, 2000, 1.0) == pytest.approx(0.902)
    with pytest.raises(ValueError, match="threshold"):
        clears(1, 2, 1, 2, -1)


# ---- uniform widths --------------------------------------------------------------------------------------------------
def test_uniform_channels_follow_the_plans_rounding():
    assert uniform_channels([16, 32, 64, 128], 0.5, 8) == [8, 16, 32, 64]
    assert uniform_channels([16, 32, 64, 128], 0.75, 8) == [16, 24, 48, 96]  # 12 -> 16: halves round up
    assert uniform_channels([16, 32, 64, 128], 0.625, 8) == [8, 24, 40, 80]
    assert uniform_channels([16, 32, 64, 128], 0.15, 1) == [2, 5, 10, 19]


def test_a_width_that_rounds_a_stage_to_no_channel_is_one_sentence():
    with pytest.raises(ValueError, match=r"keeps no channel of stage 1 \(16 channels\).*at least 0.250"):
        uniform_channels([16, 32, 64, 128], 0.2, 8)
    with pytest.raises(ValueError, match="fraction must lie in"):
        uniform_channels([16], 0.0, 8)


def test_a_resnet_built_from_stage_channels_has_them_and_reinitialises_to_new_weights():
    m = build_model("resnet18", 10, 1, channels=[8, 16, 24, 48])
    assert stage_channels(m) == [8, 16, 24, 48]
    before = m.conv1.weight.detach().clone()
    reinitialise(m, seed=1)
    assert not np.allclose(before.numpy(), m.conv1.weight.detach().numpy())
    with pytest.raises(ValueError, match="four positive stage channel counts"):
        build_model("resnet18", 10, 1, channels=[8, 16])


# ---- the curve -----------------------------------------------------------------------------------------------------
def controls(accs=(0.90, 0.88, 0.85), speedups=(1.0, 2.0, 4.0), n=1000):
    kinds = ["budget_matched"] + ["uniform"] * (len(accs) - 1)
    return pd.DataFrame({"key": [f"k{i}" for i in range(len(accs))], "model": "resnet18", "dataset": "d",
                         "kind": kinds, "fraction": [1.0, 0.5, 0.25][: len(accs)], "channels": "c", "budget": 4.0,
                         "speedup_vs_int8": speedups, "int8_test_accuracy": accs, "test_n": n,
                         "int8_val_accuracy": accs, "val_n": n})


def test_interpolation_is_linear_in_log_speedup_and_never_extrapolates():
    c = curve_points(controls(), "resnet18", "d")
    acc, w = interpolate(c, 2 ** 0.5)  # halfway between 1x and 2x in log
    assert acc == pytest.approx(0.89) and w == pytest.approx({"k0": 0.5, "k1": 0.5})
    assert interpolate(c, 2.0)[0] == pytest.approx(0.88)
    assert interpolate(c, 4.5) is None and interpolate(c, 0.9) is None
    assert interpolate(c.iloc[:1], 1.0) is None


def test_paired_difference_uses_per_image_correctness():
    c = curve_points(controls(n=4), "resnet18", "d")
    plan = np.array([1, 1, 1, 0], bool)
    preds = {"k1": np.array([1, 1, 0, 0], bool)}
    d, half, paired = difference(0.75, 4, {"k1": 1.0}, c, plan, preds)
    assert paired and d == pytest.approx(0.25)
    assert half == pytest.approx(1.959964 * np.std([0, 0, 1, 0], ddof=1) / 2)
    d2, half2, paired2 = difference(0.75, 4, {"k1": 1.0}, c)  # no predictions: independent binomials
    assert not paired2 and d2 == pytest.approx(0.75 - 0.88)
    assert half2 == pytest.approx(1.959964 * math.sqrt(0.75 * 0.25 / 4 + 0.88 * 0.12 / 4))


def test_verdict_per_plan_above_below_inside_the_noise_and_outside():
    plans = pd.DataFrame({"model": "resnet18", "dataset": "d", "speedup_vs_int8": [2.0, 2.0, 2.0, 5.0],
                          "test_accuracy": [0.92, 0.82, 0.885, 0.95], "test_n": 10_000})
    out = against_curve(plans, controls(n=10_000))
    assert list(out.curve_verdict) == [BEATS, BELOW, TIE, FASTER]
    assert (against_curve(plans.assign(model="mobilenet_v2"), controls()).curve_verdict == NO_CURVE).all()
    assert out.difference_points.iloc[0] == pytest.approx(4.0)
    assert (out.curve_budget == 4.0).all()


def test_the_tool_names_a_faster_narrow_network_that_meets_the_same_bar():
    c = controls(accs=(0.90, 0.895, 0.80))
    best = faster_control(c, "resnet18", "d", 1.5, 0.905, 1000, 1.0)  # bar 0.895: the x0.5 control clears it
    assert best["key"] == "k1" and best["speedup_vs_int8"] == 2.0
    assert faster_control(c, "resnet18", "d", 2.5, 0.905, 1000, 1.0) is None
    text = answer(c, "resnet18", "d", 1.5, 0.905, 1000, 1.0, "m")
    assert "not the fastest model" in text and "2.00x" in text
    assert "no uniform-width control" in answer(None, "resnet18", "d", 1.5, 0.9, 1000, 1.0, "m")
    assert "meets the same bar faster" in answer(c, "resnet18", "d", 2.5, 0.905, 1000, 1.0, "m")


# ---- bad control specs -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("section, message", [
    ({"datasets": ["fashion_mnist"], "fractions": [0.1]}, "keeps no channel"),
    ({"datasets": ["fashion_mnist"], "budget": {"fashion_mnist": 0}}, "no budget"),
    ({"datasets": ["fashion_mnist"], "budget": {"fashion_mnist": -2.0}}, "no budget"),
    ({"datasets": ["mnist"]}, "unknown dataset 'mnist'"),
    ({"datasets": ["fashion_mnist"], "architectures": ["vgg"]}, "unknown architecture 'vgg'"),
    ({"datasets": ["fashion_mnist"], "fractions": [1.5]}, "not a share"),
    ({"datasets": ["fashion_mnist"], "widths": [0.5]}, "unknown key"),
])
def test_bad_control_specs_are_one_sentence_and_exit_2_before_training(tmp_path, monkeypatch, capsys, section, message):
    import yaml

    from helpers import cli
    from helpers.core import paths

    params = yaml.safe_load((paths.PARAMS / "smoke.yaml").read_text())
    params["controls"] = section
    (tmp_path / "smoke.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.setattr(paths, "PARAMS", tmp_path)
    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")  # nothing may be written, not even a run record
    trained = []
    monkeypatch.setattr("helpers.networks.baselines.baseline", lambda *a, **k: trained.append(a))
    assert cli.main(["controls", "--profile", "smoke", "--stage", "curve", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not trained and not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_smoke_controls_run_end_to_end(tmp_path, monkeypatch):
    """The smoke profile's controls: trained, exported full-integer, timed paired, scored; a second run keeps them."""
    from helpers.core import paths
    from helpers.experiments.controls import load_controls, load_predictions, run_controls
    from helpers.deploy.inspection import inspect_tflite

    monkeypatch.setattr(paths, "RUNS", paths.RUNS)  # checkpoints are shared with the other tests (a cache)
    lines = []
    path = run_controls("smoke", progress=False, log=lines.append, fresh=True)
    table = load_controls("smoke")
    assert path.exists() and set(table.kind) == {"baseline", "convergence", "budget_matched", "uniform"}
    uniform = table[table.kind == "uniform"].sort_values("fraction")
    assert list(uniform.channels) == ["8/16/32/64", "16/24/48/96"]
    base = table[table.kind == "baseline"].iloc[0]
    assert (table[table.kind == "convergence"].budget == 2 * base.budget).all()
    assert (table[table.kind.isin(["uniform", "budget_matched"])].budget > base.budget).all()
    assert ((table.speedup_vs_int8 > 0.3) & (table.speedup_vs_int8 < 5)).all()
    assert (table.int8_test_correct <= table.test_n).all()
    assert all(inspect_tflite(paths.ROOT / a).full_integer for a in table.artifact)
    assert not any(str(a).startswith("/") for a in table.artifact)  # committed tables hold relative paths
    preds = load_predictions("smoke")
    assert all(preds[k].sum() == c for k, c in zip(table.key, table.int8_test_correct))
    again = []
    run_controls("smoke", progress=False, log=again.append)
    assert len(lines) == len(table) and again == []  # every row kept, nothing measured twice


# ---- reports and the study's primary bar ---------------------------------------------------------------------------
def committed_controls(folder, accs=(0.92, 0.91, 0.88), speedups=(1.0, 2.0, 4.0)):
    c = controls(accs, speedups, n=10_000).assign(fp32_val_accuracy=list(accs), fp32_test_accuracy=list(accs),
                                                  speedup_iqr=0.01, dataset="fashion_mnist")
    base = c.iloc[:1].assign(kind="baseline", key="b1", budget=2.0, int8_test_accuracy=0.90)
    conv = c.iloc[:1].assign(kind="convergence", key="b4", budget=8.0, int8_test_accuracy=0.925)
    pd.concat([base, c, conv]).assign(run_record="r").to_csv(folder / "controls.csv", index=False)


def test_a_study_elsewhere_gets_the_budget_matched_bar_but_no_curve_verdict(tmp_path):
    from helpers.reports.controls_report import study_controls

    (tmp_path / "default" / "xeon").mkdir(parents=True)
    committed_controls(tmp_path / "default" / "xeon")
    study = tmp_path / "study" / "o8" / "epyc"
    chosen = pd.DataFrame({"dataset": "fashion_mnist", "seed": [0, 1], "method": ["gp", "random"],
                           "int8_latency_ms": 0.1, "latency_ms": [0.05, 0.04], "fp32_val_accuracy": 0.91,
                           "fp32_test_accuracy": 0.908, "val_accuracy": 0.905, "test_accuracy": [0.905, 0.898],
                           "test_n": 10_000, "artifact": ["a", "b"]})
    lines = "\n".join(study_controls(study, chosen, {"architecture": "resnet18", "threshold": 1.0}, tmp_path))
    assert "from the controls of machine `xeon`: accuracy only" in lines and "| curve verdict |" not in lines
    # today's bar 89.80%: both clear; budget-matched bar 91.00% (0.92 - 1 point): both miss
    assert "Chosen plans clearing today's bar on test: 2 of 2; clearing the budget-matched bar: 0 of 2" in lines
    (tmp_path / "default" / "epyc").mkdir()
    committed_controls(tmp_path / "default" / "epyc")
    same = "\n".join(study_controls(study, chosen, {"architecture": "resnet18", "threshold": 1.0}, tmp_path))
    assert "controls measured on the machine of these plans" in same and "| not distinguishable |" in same


def test_the_machine_section_states_convergence_budgets_and_the_answer(tmp_path):
    from helpers.reports.controls_report import machine_section

    committed_controls(tmp_path)
    pd.DataFrame({"dataset": "fashion_mnist", "seed": 0, "method": ["gp"], "int8_latency_ms": 0.1,
                  "latency_ms": [0.04], "fp32_val_accuracy": 0.915, "fp32_test_accuracy": 0.91, "val_accuracy": 0.91,
                  "test_accuracy": [0.93], "test_n": 10_000, "budget": 4.0, "artifact": "x", "chosen": "{}",
                  "run_record": "r"}).to_csv(tmp_path / "search_summary.csv", index=False)
    text = "\n".join(machine_section(tmp_path))
    assert "90.00% at 1x (2.00 passes)" in text and "92.50% at 4x (8.00 passes)" in text
    assert "still improving" in text
    # 2.5x lies between the 2x (91%) and 4x (88%) controls: curve 90.03%, the plan's 93% beats it
    assert "| fashion_mnist | gp | 4.00 | 2.50x | 93.00% |" in text and "**beats the curve**" in text
    assert "- fashion_mnist: **yes**" in text
    assert "Controls**: not measured" in "\n".join(machine_section(tmp_path / "nowhere"))


def test_a_study_config_names_its_primary_bar_and_old_keys_stay(tmp_path):
    from helpers.search.engine import SearchError
    from helpers.experiments.study_config import load_study

    assert load_study("params/studies/o8.yaml").key().startswith("6550075b0bbb")  # the committed study's key
    assert load_study("params/studies/o8-budget-matched.yaml").bar == "budget_matched"
    text = (tmp_path / "s.yaml")
    raw = open("params/studies/smoke.yaml").read() + "bar: best\n"
    text.write_text(raw)
    with pytest.raises(SearchError, match="bar 'best' is not one of baseline, budget_matched"):
        load_study(text)


def test_scratch_b_keeps_the_pruned_architecture_and_draws_new_weights():
    import torch

    from helpers.networks.baselines import BaselineSpec
    from helpers.compress import Context
    from helpers.datasets.data import ArrayDataset
    from helpers.experiments.scratch_b import INHERIT, SCRATCH, TIE, pruned_architecture, train_scratch, verdict

    torch.manual_seed(0)
    x, y = torch.randn(64, 1, 16, 16), torch.randint(0, 3, (64,))
    ds = ArrayDataset(x, y, ["a", "b", "c"], "toy", "train", "toy")
    model = build_model("resnet18", 3, 1, width=0.25)
    ctx = Context(train_ds=ds, val_ds=None, input_size=16, in_channels=1)
    plan = {"steps": [{"method": "structured", "ratio": 0.5, "round_to": 8}, {"method": "finetune", "epochs": 2.0},
                      {"method": "ptq"}]}
    pruned = pruned_architecture(plan, model, ctx)
    channels = stage_channels(pruned)
    assert channels != stage_channels(model) and all(c % 8 == 0 for c in channels)
    inherited = pruned.conv1.weight.detach().clone()
    spec = BaselineSpec(widths={"resnet18": 0.25}, epochs={"toy": 1.0}, batch_size=32, lr=0.05)
    scratch = train_scratch(pruned, ds, 0.5, spec, progress=False)
    assert stage_channels(scratch) == channels
    assert not torch.allclose(inherited, scratch.conv1.weight)
    with pytest.raises(ValueError, match="prunes no channels"):
        pruned_architecture({"steps": [{"method": "ptq"}]}, model, ctx)
    assert (verdict(0.02, 0.01), verdict(-0.02, 0.01), verdict(0.005, 0.01)) == (INHERIT, SCRATCH, TIE)



def test_the_search_names_the_budget_matched_bar_beside_todays():
    from helpers.analysis.curve import matched_bar_clause

    c = controls(accs=(0.92, 0.91, 0.88), n=1000).assign(fp32_val_accuracy=[0.92, 0.91, 0.88])
    assert "clears it" in matched_bar_clause(c, "resnet18", "d", 0.910, 1000, 1.0)  # 910 of 1000 is the bar exactly
    assert "misses it" in matched_bar_clause(c, "resnet18", "d", 0.909, 1000, 1.0)
    assert matched_bar_clause(c[c.kind != "budget_matched"], "resnet18", "d", 0.9, 1000, 1.0) == ""
