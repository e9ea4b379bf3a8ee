"""The plan interface: parsing, templates, and malformed plans each rejected naming the step and field."""

import pytest

from helpers.compress.plan import CompressionPlan, PlanError

GOOD = """
name: prune-then-int8
steps:
  - {method: structured, ratio: {low: 0.2, high: 0.7}, importance: {choices: [l1, lamp]}}
  - {method: finetune, epochs: 0.1}
  - {method: ptq, calibration: 32}
"""


def test_template_and_values():
    plan = CompressionPlan.from_yaml(GOOD)
    free = plan.free_parameters()
    assert [f["name"] for f in free] == ["0.structured.ratio", "0.structured.importance"]
    assert free[0]["low"] == 0.2 and free[1]["choices"] == ["l1", "lamp"]
    concrete = plan.with_values({"0.structured.ratio": 0.4, "0.structured.importance": "lamp"})
    assert concrete.steps[0].params["ratio"] == 0.4 and concrete.steps[0].params["round_to"] == 1
    assert concrete.steps[2].params == {"per_channel": True, "calibration": 32}
    assert not concrete.free_parameters()
    assert CompressionPlan.from_dict(concrete.to_dict()).to_dict() == concrete.to_dict()


def test_plan_from_file(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(GOOD)
    assert CompressionPlan.from_yaml(path).name == "prune-then-int8"
    with pytest.raises(PlanError, match="does not exist"):
        CompressionPlan.from_yaml(str(tmp_path / "missing.yaml"))


MALFORMED = [
    ("steps: []", "'steps' must be a non-empty list"),
    ("[1, 2]", "step 1: must be a mapping"),
    ("steps:\n  - {ratio: 0.5}", "step 1, field 'method': missing"),
    ("steps:\n  - {method: prune_everything}", "step 1, field 'method': unknown method 'prune_everything'"),
    ("steps:\n  - {method: structured, ratio: 1.5}", "step 1 (structured), field 'ratio': 1.5 is outside"),
    ("steps:\n  - {method: structured, ratio: high}", "step 1 (structured), field 'ratio': expected a number"),
    ("steps:\n  - {method: structured, importance: magnitude}", "step 1 (structured), field 'importance': 'magnitude' is not one of"),
    ("steps:\n  - {method: structured, round_to: 2.5}", "step 1 (structured), field 'round_to': expected an integer"),
    ("steps:\n  - {method: structured, keep_stem: 1}", "step 1 (structured), field 'keep_stem': expected true or false"),
    ("steps:\n  - {method: structured, sparsity: 0.5}", "step 1 (structured), field 'sparsity': unknown parameter"),
    ("steps:\n  - {method: ptq}\n  - {method: finetune}", "step 1 (ptq), field 'method': quantisation must be the last step"),
    ("steps:\n  - {method: fp16}\n  - {method: ptq}", "step 2 (ptq), field 'method': only one quantisation step"),
    ("steps:\n  - {method: structured, ratio: {low: 0.6, high: 0.2}}", "step 1 (structured), field 'ratio': empty range"),
    ("steps:\n  - {method: structured, importance: {choices: []}}", "step 1 (structured), field 'importance': empty list"),
    ("steps:\n  - {method: structured, ratio: {min: 0.1}}", "step 1 (structured), field 'ratio': a free parameter is"),
    ("steps:\n  - {method: unstructured, amount: -0.1}", "step 1 (unstructured), field 'amount': -0.1 is outside"),
    ("steps:\n  - {method: finetune, epochs: 0.5}\n  - {method: tucker_conv, rank_ratio: 0}",
     "step 2 (tucker_conv), field 'rank_ratio': 0.0 is outside"),
    ("export: {mode: int4}\nsteps:\n  - {method: structured}", "plan export, field 'mode': 'int4'"),
    ("steps:\n  - {method: structured\n", "not valid YAML"),
    ("name: x\nsteps:\n  - {method: structured}\nextra: 1", "unknown top-level field 'extra'"),
]


@pytest.mark.parametrize("text, message", MALFORMED, ids=[m[:40] for _, m in MALFORMED])
def test_malformed_plan_is_rejected(text, message):
    with pytest.raises(PlanError) as err:
        CompressionPlan.from_yaml(text)
    assert message in str(err.value)


def test_template_needs_every_free_value():
    plan = CompressionPlan.from_yaml(GOOD)
    with pytest.raises(PlanError, match="step 1 \\(structured\\), field 'importance': no value"):
        plan.with_values({"0.structured.ratio": 0.3})
    with pytest.raises(PlanError, match="field 'ratio': 0.99 is outside"):
        plan.with_values({"0.structured.ratio": 0.99, "0.structured.importance": "l1"})
