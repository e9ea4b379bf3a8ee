"""Bad inputs, as a hostile but realistic user gives them: each is answered in one sentence (exit 2 at the CLI),
before any training, with no traceback, no hang, nothing silently reinterpreted and no half-written output.

The table below is the catalogue: surface, the input, and a fragment of the one-sentence answer.
"""

import json
import time

import pytest
import torch

from helpers.core import paths
from helpers.cli import main

PLAN = "steps:\n  - {method: structured, ratio: 0.5}\n  - {method: ptq, calibration: 8}\n"
SEARCH = """baseline: {{model: resnet18, dataset: fashion_mnist, width: 0.25, epochs: 1.0}}
template:
  steps:
    - {{method: structured, ratio: {{low: 0.2, high: 0.6}}}}
    - {{method: ptq, calibration: 8}}
log: {log}
{extra}
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A checkpoint with its sidecar, a broken sidecar, a wrong-architecture sidecar, text and fake models."""
    from helpers.networks.checkpoints import save_checkpoint
    from helpers.networks.models import build_model

    d = tmp_path_factory.mktemp("bad")
    cfg = {"model": "resnet18", "dataset": "fashion_mnist", "num_classes": 10, "in_channels": 1, "width": 0.25,
           "input_size": 32}
    torch.manual_seed(0)
    ok = save_checkpoint(build_model("resnet18", 10, 1, 0.25), d / "ok.pt", cfg, {})
    nowidth = save_checkpoint(build_model("resnet18", 10, 1, 0.25), d / "nowidth.pt",
                              {k: v for k, v in cfg.items() if k != "width"}, {})
    wrong = save_checkpoint(build_model("resnet18", 10, 1, 0.25), d / "wrong.pt", {**cfg, "model": "mobilenet_v2"}, {})
    (d / "garbage.pt").write_bytes(b"not a pickle at all")
    (d / "garbage.json").write_text(json.dumps({"config": cfg}))
    (d / "text.tflite").write_text("hello")
    (d / "fake.tflite").write_bytes(b"\x00\x00\x00\x00TFL3" + b"\xff" * 40)
    (d / "trunc.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3\x00\x00")
    (d / "dir.tflite").mkdir()
    (d / "plan.yaml").write_text(PLAN)
    (d / "free.yaml").write_text("steps:\n  - {method: structured, ratio: {low: 0.2, high: 0.5}}\n  - {method: ptq}\n")
    (d / "exportkind.yaml").write_text("steps:\n  - {method: ptq}\nexport: int8\n")
    (d / "methodlist.yaml").write_text("steps:\n  - {method: [ptq]}\n")
    (d / "badyaml.yaml").write_text("steps:\n  - {method: ptq\n")
    (d / "afile").write_text("x")
    (d / "busy").mkdir()
    (d / "busy" / "notes.txt").write_text("mine")
    return {"d": d, "ok": ok, "nowidth": nowidth, "wrong": wrong}


def _search(d, name, extra="", log=None):
    path = d / f"{name}.yaml"
    path.write_text(SEARCH.format(log=log or d / f"{name}.jsonl", extra=extra))
    return str(path)


# (surface, argv builder, fragment of the answer)
CASES = [
    ("run", lambda f: ["run", "--profile", "huge"], "invalid choice: 'huge'"),
    ("run", lambda f: ["run", "--profile", "smoke", "--only", "99"], "no notebook with prefix 99"),
    ("run", lambda f: ["run", "--profile", "smoke", "--only", "01,"], "has an empty entry"),
    ("run", lambda f: ["run", "--profile", "smoke", "--only", "01,01"], "names 01 more than once"),
    ("export", lambda f: ["export", str(f["d"] / "none.pt"), "--out", str(f["d"] / "x.tflite")], "does not exist"),
    ("export", lambda f: ["export", str(f["ok"]), "--out", str(f["d"] / "x.txt"), "--mode", "fp32"], "must end in .tflite"),
    ("export", lambda f: ["export", str(f["ok"]), "--out", str(f["d"] / "x.tflite"), "--calibration-images", "-5"],
     "is not a count"),
    ("export", lambda f: ["export", str(f["ok"]), "--out", str(f["d"] / "x.tflite"), "--calibration-images", "0"],
     "is not a count"),
    ("export", lambda f: ["export", str(f["ok"]), "--out", str(f["d"] / "x.tflite"), "--calibration-images", "many"],
     "is not a whole number"),
    ("export", lambda f: ["export", str(f["nowidth"]), "--out", str(f["d"] / "x.tflite")], "lacks width"),
    ("export", lambda f: ["export", str(f["wrong"]), "--out", str(f["d"] / "x.tflite")], "does not match the model"),
    ("export", lambda f: ["export", str(f["d"] / "garbage.pt"), "--out", str(f["d"] / "x.tflite")], "is corrupt"),
    ("export", lambda f: ["export", str(f["ok"]), "--out", str(f["d"] / "dir.tflite"), "--mode", "fp32"],
     "Is a directory for " + "{d}/dir.tflite;"),
    ("export", lambda f: ["export", str(f["ok"]), "--out", str(f["d"] / "x.tflite"), "--mode", "int4"], "invalid choice"),
    ("inspect", lambda f: ["inspect", str(f["d"] / "none.tflite")], "does not exist"),
    ("inspect", lambda f: ["inspect", str(f["d"] / "text.tflite")], "not a TensorFlow Lite model"),
    ("inspect", lambda f: ["inspect", str(f["d"] / "fake.tflite")], "truncated or corrupt"),
    ("inspect", lambda f: ["inspect", str(f["d"] / "trunc.tflite")], "truncated or corrupt"),
    ("bench", lambda f: ["bench", str(f["d"] / "text.tflite"), "--repeats", "0"], "is not a count"),
    ("bench", lambda f: ["bench", str(f["d"] / "text.tflite"), "--threads", "0"], "is not a count"),
    ("bench", lambda f: ["bench", str(f["d"] / "none.tflite")], "does not exist"),
    ("bench", lambda f: ["bench", str(f["d"] / "text.tflite")], "not a TensorFlow Lite model"),
    ("bench", lambda f: ["bench", str(f["d"] / "fake.tflite")], "truncated or corrupt"),
    ("edgetpu", lambda f: ["edgetpu", str(f["d"] / "none.tflite")], "does not exist"),
    ("edgetpu", lambda f: ["edgetpu", str(f["d"] / "text.tflite")], "not a TensorFlow Lite model"),
    ("study", lambda f: ["study", str(paths.PARAMS / "studies" / "smoke.yaml"), "--workers", "0"], "is not a count"),
    ("study", lambda f: ["study", str(paths.PARAMS / "studies" / "smoke.yaml"), "--workers", "2", "--scheduler",
                         "tcp://localhost:8786"], "not allowed with argument --workers"),
    ("study", lambda f: ["study", str(paths.PARAMS / "studies" / "smoke.yaml"), "--seeds", "3-1"], "runs backwards"),
    ("compress", lambda f: ["compress", str(f["d"] / "none.yaml"), "--checkpoint", str(f["ok"]), "--out",
                            str(f["d"] / "c")], "plan file"),
    ("compress", lambda f: ["compress", "myplan", "--checkpoint", str(f["ok"]), "--out", str(f["d"] / "c")],
     "plan file myplan does not exist"),
    ("compress", lambda f: ["compress", str(f["d"] / "free.yaml"), "--checkpoint", str(f["ok"]), "--out",
                            str(f["d"] / "c")], "has free parameters (0.structured.ratio)"),
    ("compress", lambda f: ["compress", str(f["d"] / "exportkind.yaml"), "--checkpoint", str(f["ok"]), "--out",
                            str(f["d"] / "c")], "'export' must be a mapping"),
    ("compress", lambda f: ["compress", str(f["d"] / "methodlist.yaml"), "--checkpoint", str(f["ok"]), "--out",
                            str(f["d"] / "c")], "unknown method ['ptq']"),
    ("compress", lambda f: ["compress", str(f["d"] / "badyaml.yaml"), "--checkpoint", str(f["ok"]), "--out",
                            str(f["d"] / "c")], "line 3, column 1"),
    ("compress", lambda f: ["compress", str(f["d"] / "plan.yaml"), "--checkpoint", str(f["ok"]), "--out",
                            str(f["d"] / "c"), "--finetune-images", "0"], "is not a count"),
    ("compress", lambda f: ["compress", str(f["d"] / "plan.yaml"), "--checkpoint", str(f["ok"]), "--out",
                            str(f["d"] / "c"), "--val-images", "-1"], "is not a count"),
    ("compress", lambda f: ["compress", str(f["d"] / "plan.yaml"), "--checkpoint", str(f["ok"]), "--out",
                            str(f["d"] / "afile")], "exists as a file"),
    ("compress", lambda f: ["compress", str(f["d"] / "plan.yaml"), "--checkpoint", str(f["ok"]), "--out",
                            str(f["d"] / "busy")], "holds other files (notes.txt)"),
    ("compress", lambda f: ["compress", str(f["d"] / "plan.yaml"), "--checkpoint", str(f["d"] / "none.pt"), "--out",
                            str(f["d"] / "c")], "does not exist"),
    ("search", lambda f: ["search", str(f["d"] / "none.yaml")], "does not exist"),
    ("search", lambda f: ["search", _search(f["d"], "s1", "budget: 0")], "'budget': 0 must be a whole number"),
    ("search", lambda f: ["search", _search(f["d"], "s2"), "--budget", "0"], "is not a count"),
    ("search", lambda f: ["search", _search(f["d"], "s3", "finetune_images: 0")], "'finetune_images': 0"),
    ("search", lambda f: ["search", _search(f["d"], "s4", "seed: abc")], "'seed': 'abc' must be a whole number"),
    ("search", lambda f: ["search", _search(f["d"], "s5", "methd: gp")], "unknown field 'methd'"),
    ("search", lambda f: ["search", _search(f["d"], "s6", log="/proc/nope/trials.jsonl")], "cannot be written"),
    ("search", lambda f: ["search", _search(f["d"], "s7", "baseline: {model: vgg16, dataset: fashion_mnist}")],
     "'baseline.model': 'vgg16'"),
    ("search", lambda f: ["search", _search(f["d"], "s8", "threshold: 150")], "out of range"),
    ("search", lambda f: ["search", str(_list_config(f["d"]))], "must be a mapping of fields"),
    ("search", lambda f: ["search", str(_bad_yaml_config(f["d"]))], "line 3, column 1"),
]


def _list_config(d):
    (d / "list.yaml").write_text("- a\n- b\n")
    return d / "list.yaml"


def _bad_yaml_config(d):
    (d / "bad.yaml").write_text("budget: 3\ntemplate: {steps: [\n")
    return d / "bad.yaml"


@pytest.mark.parametrize("surface,argv,answer", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_cli_answers_a_bad_input_in_one_sentence(files, capsys, surface, argv, answer):
    t0 = time.perf_counter()
    try:
        code = main(argv(files))
    except SystemExit as exc:  # argparse's own answer: usage and one line, exit 2
        code = exc.code
    err = capsys.readouterr().err.strip()
    answer = answer.format(d=files["d"])
    assert code == 2, err
    assert "Traceback" not in err and answer in err, err
    assert ".tmp" not in err, err  # never a temporary file's name
    last = err.splitlines()[-1]
    assert last.startswith(("error:", "python -m helpers")) and len(last) < 600, last
    assert time.perf_counter() - t0 < 10  # answered before any baseline is trained or timed


def test_no_half_written_output_after_a_refused_compress(files, capsys):
    """Refused compress calls (a free plan, a bad count, a busy folder) leave no output folder and touch no file."""
    d = files["d"]
    for plan, out, extra in (("free.yaml", "c-free", []), ("plan.yaml", "c-count", ["--val-images", "-1"]),
                             ("plan.yaml", "busy", [])):
        try:
            code = main(["compress", str(d / plan), "--checkpoint", str(files["ok"]), "--out", str(d / out), *extra])
        except SystemExit as exc:
            code = exc.code
        assert code == 2
    capsys.readouterr()
    assert not (d / "c-free").exists() and not (d / "c-count").exists()
    assert sorted(p.name for p in (d / "busy").iterdir()) == ["notes.txt"]


def test_a_params_file_is_checked_whole_before_the_first_notebook(tmp_path, monkeypatch, capsys):
    from helpers import runner

    for text, answer in [
        ('"8": {budget: 3}\n', "section '8' is neither 'common' nor a notebook prefix"),
        ("common: {val_imgs: 3}\n", "common key 'val_imgs' is declared by no notebook"),
        ('"05": {nope: 1}\n', "section '05' sets 'nope'"),
        ('"08": {budget: 0}\n', "08.budget is 0"),
        ('"03": {sweep: [1]}\n', "03.sweep is a list"),
        ("common: {baseline_spec: {widths: {}}}\n", "baseline_spec lacks epochs"),
        ("common: {baseline_spec: {widths: {}, epochs: {}, train_images: 0}}\n", "train_images is 0"),
        ("common: {baseline_spec: {widths: {}, epochs: {}, val_images: 0}}\n", "val_images is 0"),
        ("common: {finetune_images: -1}\n", "common.finetune_images is -1"),
        ("common: [unclosed\n", "line 2, column 1"),
    ]:
        (tmp_path / "smoke.yaml").write_text(text)
        monkeypatch.setattr(paths, "PARAMS", tmp_path)
        monkeypatch.setattr(runner, "current_record", None, raising=False)  # never reached: checked first
        t0 = time.perf_counter()
        assert main(["run", "--profile", "smoke"]) == 2
        err = capsys.readouterr().err
        assert answer in err and "Traceback" not in err, err
        assert time.perf_counter() - t0 < 10


@pytest.mark.parametrize("call,answer", [
    (lambda: __import__("helpers.datasets.data", fromlist=["x"]).load_dataset("fashion_mnist", "val").subset(0),
     "positive whole number"),
    (lambda: __import__("helpers.datasets.data", fromlist=["x"]).load_dataset("fashion_mnist", "val").subset(-1),
     "positive whole number"),
    (lambda: __import__("helpers.datasets.data", fromlist=["x"]).load_dataset("imagenet", "train"), "imagenet"),
    (lambda: __import__("helpers.networks.baselines", fromlist=["x"]).BaselineSpec.parse({"widths": {}, "epochs": {}, "lr0": 1}),
     "unknown key(s) lr0"),
    (lambda: __import__("helpers.compress.plan", fromlist=["x"]).CompressionPlan.from_dict({"steps": "ptq"}),
     "'steps' must be a non-empty list"),
    (lambda: __import__("helpers.networks.params", fromlist=["x"]).per_dataset("final_epochs", {"a": 1}, ["a", "b"]),
     "no value for dataset 'b'"),
])
def test_python_api_answers_bad_values(call, answer):
    with pytest.raises((ValueError, FileNotFoundError)) as exc:
        call()
    assert answer in str(exc.value)


def test_training_refuses_an_empty_dataset():
    from helpers.datasets.data import ArrayDataset
    from helpers.networks.models import build_model
    from helpers.networks.train import TrainConfig, train

    empty = ArrayDataset(torch.zeros(0, 1, 32, 32), torch.zeros(0, dtype=torch.long), ["a", "b"], "x", "train", "fp")
    with pytest.raises(ValueError, match="cannot train on an empty dataset"):
        train(build_model("resnet18", 2, 1, 0.25), empty, TrainConfig(epochs=1.0), progress=False)


def test_search_budget_zero_and_out_of_range_logs_are_refused(tmp_path):
    from helpers.experiments.experiment import SyntheticTrial
    from helpers.search.engine import Objective, SearchError, run_search
    from helpers.search.store import append_log

    free = [{"name": "0.structured.ratio", "kind": "float", "low": 0.1, "high": 0.5}]
    obj = Objective("constrained", baseline_accuracy=0.92, threshold_points=1.0, reference_ms=1.0)
    with pytest.raises(SearchError, match="budget 0 must be at least 1"):
        run_search(SyntheticTrial(free), free, obj, 0, tmp_path / "a.jsonl")
    append_log(tmp_path / "b.jsonl", {"trial": 0, "values": {"0.structured.ratio": 0.8}, "status": "ok",
                                      "accuracy": 0.9, "latency_ms": 1.0, "objective": 1.0})
    with pytest.raises(SearchError, match="lies outside this search's range"):
        run_search(SyntheticTrial(free), free, obj, 3, tmp_path / "b.jsonl")


@pytest.mark.parametrize("change, answer", [
    ({"threshold": -1.0}, "threshold -1.0 must be accuracy points"),
    ({"architecture": "vgg16"}, "architecture 'vgg16' is not one of"),
    ({"datasets": ["mnist"]}, "dataset 'mnist' is not one of"),
    ({"datasets": []}, "datasets must be a non-empty list"),
    ({"criterion": {"metric": "m", "statistic": "s", "interval": 1.5, "success": "x", "no_plan": "y"}},
     "criterion interval 1.5 must be a coverage"),
    ({"final_epochs": {"glyphs": 1.0}}, "final_epochs has no value for dataset 'fashion_mnist'"),
    ({"final_epochs": 0}, "final_epochs for fashion_mnist is 0"),
    ({"template": {"steps": [{"method": "prune_everything"}]}}, "template"),
    ({"bar": "strict"}, "bar 'strict' is not one of"),
    ({"val_images": 0}, "val_images 0 must be a whole number"),
])
def test_a_study_config_with_any_bad_field_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys,
                                                                                   change, answer):
    import yaml

    cfg = yaml.safe_load((paths.PARAMS / "studies" / "smoke.yaml").read_text())
    cfg.update(change, name="bad-study")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    assert main(["study", str(path)]) == 2
    err = capsys.readouterr().err
    assert answer in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists() and not (tmp_path / "results").exists()


def test_report_on_a_missing_profile_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["report", "--profile", "nope"])
    assert exc.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err
