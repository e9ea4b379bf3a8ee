import subprocess
import sys

import pytest

from helpers.core import paths
from helpers.networks.params import ChainError, load_profile, notebooks, parameters_for


def test_profiles_parse_and_declare_known_names():
    for profile in ("smoke", "default", "full"):
        params = load_profile(profile)
        for prefix, nb in notebooks().items():
            parameters_for(prefix, nb, params, profile)  # raises on a name the notebook does not declare


def test_notebooks_are_committed_without_outputs_and_with_a_parameters_cell():
    import nbformat

    for nb_path in notebooks().values():
        nb = nbformat.read(nb_path, as_version=4)
        assert nb.cells[0].cell_type == "markdown" and "Objective" in nb.cells[0].source
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, nb_path.name
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), nb_path.name
        assert "sys.path" not in "".join(c.source for c in nb.cells)


def test_bad_profile_and_malformed_params(tmp_path):
    with pytest.raises(ValueError, match="'tiny'.*smoke, default, full"):
        load_profile("tiny")
    (tmp_path / "smoke.yaml").write_text("common: [unclosed\n")
    with pytest.raises(ChainError, match="not valid YAML"):
        load_profile("smoke", tmp_path)
    (tmp_path / "smoke.yaml").write_text("common: 3\n")
    with pytest.raises(ChainError, match="section 'common'"):
        load_profile("smoke", tmp_path)
    nb = notebooks()["01"]
    with pytest.raises(ChainError, match="unknown name.*epochz"):
        parameters_for("01", nb, {"01": {"epochz": 3}}, "smoke")


@pytest.mark.slow  # seconds, not milliseconds: kept out of `make check`
def test_cli_rejects_unknown_profile_and_notebook():
    run = subprocess.run([sys.executable, "-m", "helpers", "run", "--profile", "huge"], capture_output=True, text=True)
    assert run.returncode == 2 and "invalid choice: 'huge'" in run.stderr
    run = subprocess.run([sys.executable, "-m", "helpers", "run", "--profile", "smoke", "--only", "99"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "no notebook with prefix 99" in run.stderr


@pytest.mark.slow
@pytest.mark.xdist_group("smoke_chain")  # one worker runs the chain once for both
def test_smoke_chain_runs_every_notebook(smoke_chain):
    """The whole chain on the smoke profile through Papermill: executed copies, chapters and figures appear, and
    every output that holds a number points to the one run record of the run."""
    import json

    import nbformat
    import pandas as pd

    from helpers.records.chapters import chapters_dir
    from helpers.records.provenance import record_path

    run = smoke_chain
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for nb in notebooks().values():
        assert (paths.run_dir("smoke") / nb.name).exists()
    assert (paths.figures_dir("smoke") / "01_training_curves.png").exists()
    assert (paths.figures_dir("smoke") / "02_confusions.pdf").exists()
    record = json.loads(record_path("smoke").read_text())
    assert record["characterisation"]["int8_ms"] > 0 and record["git"]["commit"]
    chapters = chapters_dir("smoke", record["machine"]["id"])
    for nb in notebooks().values():
        assert nbformat.read(paths.run_dir("smoke") / nb.name, as_version=4).metadata["run_record"] == record["id"]
        chapter = nbformat.read(chapters / nb.name, as_version=4)
        assert chapter.metadata["run_record"] == record["id"] and chapter.metadata["machine"] == record["machine"]["id"]
        assert all("papermill" not in c.metadata for c in chapter.cells), f"{nb.name} keeps per-cell timings"
    tables = list(record_path("smoke").parent.glob("*.csv"))
    assert {"baselines.csv", "pool.csv", "artifacts.csv", "search_summary.csv", "design_accuracy.csv"} <= {t.name for t in tables}
    for t in tables:
        assert set(pd.read_csv(t, dtype={"run_record": str}).run_record) == {record["id"]}, t.name
    plan_records = list((paths.run_dir("smoke") / "plans").rglob("record.json"))
    assert plan_records and all(json.loads(p.read_text())["run_record"] == record["id"] for p in plan_records)
    log_lines = [json.loads(line) for log in (paths.run_dir("smoke") / "study").rglob("*-s[0-9]*-*.jsonl")
                 for line in log.read_text().splitlines() if line.strip()]
    assert log_lines and all(r.get("run_record") == record["id"] for r in log_lines if r["status"] == "ok")
