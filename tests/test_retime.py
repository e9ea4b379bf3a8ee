"""`python -m helpers retime`: the committed networks rebuilt from their specs and timed on this machine."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from helpers.core import paths


def test_the_committed_specs_rebuild_the_committed_networks():
    """Every committed controls row and each table's answer networks have a spec; the table's answer set holds the
    networks the answer compares (the fastest pruned and from-scratch networks that clear the bar)."""
    from helpers.experiments.retime import committed_networks

    controls = committed_networks("controls")
    rows = sum(len(pd.read_csv(p).query("model == 'resnet18'")) for p in paths.RESULTS.glob("default/*/controls.csv"))
    assert len(controls) == rows and all(len(n.channels) == 4 and len(n.reference) == 4 for n in controls)
    table = committed_networks("table")
    for ds, fastest in (("glyphs", ["16-8-40-48", "8-8-24-64"]), ("fashion_mnist", ["16-16-40-64", "8-8-24-48"])):
        keys = {n.key for n in table if n.dataset == ds}
        assert set(fastest) <= keys and 10 < len(keys) < 60, (ds, len(keys))
    assert len(committed_networks("table", "all")) == 576


@pytest.mark.slow  # seconds, not milliseconds: kept out of `make check`
def test_the_studies_chosen_plans_rebuild_with_the_macs_the_studies_logged():
    """Every chosen plan of the committed studies has a spec (the baseline's channels and the pruning step); rebuilt
    with seeded weights and the L1 criterion, a network has exactly the MACs its study logged for the trained one
    (one per study and dataset, and the narrowest and widest of each)."""
    from helpers.experiments.retime import committed_networks, rebuild
    from helpers.networks.models import count_macs_params

    nets = committed_networks("studies")
    chosen = pd.concat([pd.read_csv(p) for p in paths.RESULTS.glob("study/*/*/chosen.csv")])
    assert len(nets) == chosen.chosen.astype(str).str.startswith("{").sum() > 30
    assert all(n.plan and n.macs and json.loads(n.plan)[0]["params"]["importance"] == "l1" for n in nets)
    picked = {}
    for n in nets:
        group = picked.setdefault((n.source, n.dataset), {})
        group.setdefault("first", n)
        group["min"] = min(group.get("min", n), n, key=lambda x: x.macs)
        group["max"] = max(group.get("max", n), n, key=lambda x: x.macs)
    for group in picked.values():
        for n in {g.key: g for g in group.values()}.values():
            model, val = rebuild(n.architecture, n.dataset, n.channels, n.plan)
            assert count_macs_params(model, val.images.shape[-1], val.in_channels)[0] == n.macs, (n.source, n.key)


@pytest.mark.parametrize("argv, says", [
    (["--scope", "everything"], "unknown scope 'everything'; use one of controls, table, studies, all"),
    (["--scope", "chain"], "scope 'chain' cannot be re-timed yet"),
    (["--scope", "table", "--networks", "some"], "unknown network set 'some'"),
])
def test_a_bad_scope_is_one_sentence_and_writes_nothing(argv, says, capsys, monkeypatch, tmp_path):
    from helpers.cli import main

    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    assert main(["retime", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and says in err and err.count("\n") == 0, err
    assert not (tmp_path / "results").exists()


def test_a_scope_with_nothing_committed_is_one_sentence_and_writes_nothing(capsys, monkeypatch, tmp_path):
    from helpers.cli import main

    (tmp_path / "results").mkdir()
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    assert main(["retime", "--scope", "controls"]) == 2
    err = capsys.readouterr().err
    assert "nothing committed to re-time in scope 'controls'" in err
    assert list((tmp_path / "results").iterdir()) == []


def _controls(root):
    folder = root / "results" / "default" / "m"
    folder.mkdir(parents=True)
    pd.DataFrame({"key": ["baseline-a", "uniform-b", "uniform-c"], "model": "resnet18", "dataset": "fashion_mnist",
                  "kind": ["baseline", "uniform", "uniform"],
                  "channels": ["16/32/64/128", "8/16/24/48", "8/16/32/64"]}).to_csv(folder / "controls.csv", index=False)


@pytest.mark.slow
def test_retime_resumes_after_sigkill_without_a_duplicate_row(tmp_path):
    """A committed controls table of three networks: SIGKILL once the first row is written, then the same command
    finishes the other two; every row once, each a positive latency against this machine's plain int8, the
    baseline's own row about 1x."""
    _controls(tmp_path)
    env = {**os.environ, "WORKBENCH_ROOT": str(tmp_path), "WORKBENCH_RUNS": str(tmp_path / "runs")}
    cmd = [sys.executable, "-m", "helpers", "retime", "--scope", "controls", "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    logs = list((tmp_path / "results" / "retime").glob("*/latency.jsonl"))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        logs = list((tmp_path / "results" / "retime").glob("*/latency.jsonl"))
        if logs and logs[0].read_text().count("\n") >= 1:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.2)
    proc.wait(timeout=60)
    assert logs, proc.stdout.read().decode()[-2000:]
    first = logs[0].read_text().count("\n")
    assert 1 <= first < 3, "killed too late to show a resume"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = [json.loads(line) for line in logs[0].read_text().splitlines()]
    assert sorted(r["key"] for r in rows) == ["baseline-a", "uniform-b", "uniform-c"]
    assert all(r["latency_ms"] > 0 and r["status"] == "ok" for r in rows)
    by = {r["key"]: r for r in rows}
    assert abs(by["baseline-a"]["ratio"] - 1) < 0.1 and by["uniform-b"]["ratio"] < 1
    assert f"{first} timed here already" in done.stdout
