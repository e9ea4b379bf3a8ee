"""Controls carried to another machine (issue 38): another machine's accuracy joins this machine's re-timed latencies
only after a control retrained here gave the same counts; 08 leads with the answer on its own machine."""

import json

import numpy as np
import pandas as pd
import pytest

from helpers.core import paths

THERE = "machine-there"


def _committed(root, portable: bool | None):
    """A controls table trained on THERE, two of its rows re-timed on this machine, and (unless None) a check here."""
    from helpers.core.identity import machine

    here = machine()["id"]
    folder = root / "results" / "default" / THERE
    folder.mkdir(parents=True)
    pd.DataFrame({"key": ["budget_matched-a", "uniform-b", "uniform-c"], "model": "resnet18", "dataset": "glyphs",
                  "kind": ["budget_matched", "uniform", "uniform"], "fraction": [1.0, 0.5, 0.75],
                  "channels": ["16/32/64/128", "8/16/32/64", "16/24/48/96"], "budget": 2.0,
                  "speedup_vs_int8": [1.0, 1.07, 1.01], "speedup_iqr": 0.01, "ratio_to_int8": [1.0, 0.93, 0.99],
                  "noisy": False, "int8_val_accuracy": [0.95, 0.94, 0.96], "val_n": 2000,
                  "int8_val_correct": [1900, 1880, 1920], "int8_test_accuracy": [0.9, 0.8, 0.85], "test_n": 10,
                  "int8_test_correct": [9, 8, 8], "run_record": "012345678901"}).to_csv(folder / "controls.csv",
                                                                                       index=False)
    from helpers.experiments.controls import save_predictions

    save_predictions("default", {"uniform-b": np.arange(10) < 8})  # written for this machine: move it to THERE
    (paths.results_dir("default", here) / "controls_predictions.npz").rename(folder / "controls_predictions.npz")
    retime = root / "results" / "retime" / here
    retime.mkdir(parents=True)
    source = f"results/default/{THERE}/controls.csv"
    with open(retime / "latency.jsonl", "w") as fh:
        for key, ratio in (("budget_matched-a", 1.0), ("uniform-b", 0.5)):  # uniform-c is not re-timed here
            fh.write(json.dumps({"scope": "controls", "source": source, "key": key, "status": "ok", "ratio": ratio,
                                 "ratio_iqr": 0.02, "noisy": False, "speedup_vs_int8": 1 / ratio}) + "\n")
    if portable is not None:
        (retime / "portable-default.json").write_text(json.dumps({
            "source": source, "key": "uniform-b", "portable": portable, "machine": here, "accuracy_machine": THERE,
            "here": {"val_correct": 1880, "val_n": 2000, "test_correct": 8 if portable else 7, "test_n": 10},
            "there": {"val_correct": 1880, "val_n": 2000, "test_correct": 8, "test_n": 10}, "test_images_agree": 9}))
    return here


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    return tmp_path


def test_a_passing_check_joins_their_accuracy_with_this_machines_latency(root):
    from helpers.experiments.controls import load_controls, predictions_for
    from helpers.experiments.portable import origin

    here = _committed(root, portable=True)
    table = load_controls("default")
    assert list(table.key) == ["budget_matched-a", "uniform-b"]  # a row not re-timed here is left out
    assert table.speedup_vs_int8.tolist() == [1.0, 2.0] and table.int8_val_correct.tolist() == [1900, 1880]
    assert set(table.accuracy_machine) == {THERE} and set(table.latency_machine) == {here}
    assert origin(table, here) == (f"trained on {THERE} (accuracy shown portable by a control retrained here) and "
                                   f"re-timed on {here}")
    assert predictions_for("default", table)["uniform-b"].sum() == 8  # the per-image correctness of the trained machine


@pytest.mark.parametrize("portable", [False, None])
def test_without_a_passing_check_no_report_uses_their_accuracy(root, portable):
    from helpers.analysis.curve import plans_vs_controls
    from helpers.experiments.controls import load_controls

    _committed(root, portable)
    assert load_controls("default") is None
    table, why = plans_vs_controls(pd.DataFrame({"dataset": ["glyphs"], "speedup": [1.5], "val_accuracy": [0.9],
                                                 "val_n": [2000]}), "default", model="resnet18")
    assert table is None and why.startswith("no uniform-width controls are measured on this machine")


def test_the_check_sentence_says_whether_accuracy_carries_over():
    from helpers.experiments.portable import check_sentence

    check = {"key": "uniform-b", "machine": "m-here", "accuracy_machine": THERE, "test_images_agree": 18935,
             "here": {"val_correct": 1880, "val_n": 2000, "test_correct": 18639, "test_n": 19344},
             "there": {"val_correct": 1883, "val_n": 2000, "test_correct": 18666, "test_n": 19344}, "portable": False}
    text = check_sentence(check)
    assert "validation 1,880 of 2,000 (there 1,883), test 18,639 of 19,344 (there 18,666)" in text
    assert text.endswith("accuracy is not portable, so no report reuses it") and "18,935 of 19,344" in text
    assert check_sentence({**check, "there": check["here"], "portable": True}).endswith("its accuracy carries over")


@pytest.mark.parametrize("setup, says", [
    ("nothing", "no controls of profile 'default' are re-timed on this machine"),
    ("measured", "are measured on this machine"),
    ("key", "'uniform-z' is no control of results/default/machine-there/controls.csv"),
])
def test_the_check_refuses_in_one_sentence_before_training(root, capsys, setup, says):
    from helpers.cli import main

    if setup != "nothing":
        here = _committed(root, None)
        if setup == "measured":
            (paths.results_dir("default", here) / "controls.csv").write_text("key\n")
    before = sorted(p for p in root.rglob("*"))
    argv = ["controls", "--stage", "portable", "--quiet"] + (["--key", "uniform-z"] if setup == "key" else [])
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and says in err and err.count("\n") == 0, err
    assert sorted(p for p in root.rglob("*")) == before


def test_a_key_without_the_portable_stage_is_refused(capsys):
    from helpers.cli import main

    assert main(["controls", "--stage", "curve", "--key", "uniform-b"]) == 2
    assert "--key goes with --stage portable" in capsys.readouterr().err


def test_08_leads_with_the_answer_on_the_tables_machine():
    """On the machine that timed the table, 08's lead states the table's answer before the chapter's own plan; on a
    machine with nothing timed it says how to get the answer there."""
    from helpers.analysis.answer import claims, machine_answer

    rows = claims()
    table_machine = rows[rows.claim == "pruned vs scratch"].machine.iloc[0]
    lead = machine_answer(machine_id=table_machine)
    assert lead[0].startswith(f"**The answer on this machine (`{table_machine}`)")
    speed = next(x for x in lead if x.startswith("- **Compression against narrow networks"))
    for r in rows[(rows.claim == "pruned vs scratch") & (rows.machine == table_machine)].itertuples():
        assert f"{r.dataset}: {r.finding}" in speed
    assert lead[-1].startswith("**The hypothesis as a whole:")
    other = machine_answer(machine_id="no-such-machine")
    assert any("not re-timed on this machine" in x for x in other)
