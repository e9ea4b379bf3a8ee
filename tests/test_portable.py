"""Portable results (issue 22): committed files hold repository-relative paths, the one-off migration of older
files, and records read back from any checkout."""

import json

from helpers.core import paths
from helpers.core.migrations import absolute_paths, relative_paths


def test_no_absolute_path_under_results():
    assert absolute_paths(paths.RESULTS) == []


def test_the_migration_makes_paths_relative_once_and_touches_nothing_else(tmp_path):
    log = tmp_path / "s0-gp.jsonl"
    log.write_text(json.dumps({"artifact": "/work/wt/runs/study/x/plans/a/model.tflite", "channels": "8/16/32/64",
                               "note": "a/b", "reference": ["/home/u/repo/runs/artifacts/r/int8-c100.tflite", 0.1]})
                   + "\n")
    csv = tmp_path / "chosen.csv"
    csv.write_text("dataset,artifact,chosen\nfashion_mnist,/work/wt/runs/p/model.tflite,\"{\"\"r\"\": 0.5}\"\n")
    (tmp_path / "keep.npz").write_bytes(b"/work/wt/runs/binary")
    assert sorted(p.name for p in relative_paths(tmp_path)) == ["chosen.csv", "s0-gp.jsonl"]
    row = json.loads(log.read_text())
    assert row == {"artifact": "runs/study/x/plans/a/model.tflite", "channels": "8/16/32/64", "note": "a/b",
                   "reference": ["runs/artifacts/r/int8-c100.tflite", 0.1]}
    assert "fashion_mnist,runs/p/model.tflite," in csv.read_text()
    assert absolute_paths(tmp_path) == [] and relative_paths(tmp_path) == []
    assert (tmp_path / "keep.npz").read_bytes() == b"/work/wt/runs/binary"


def test_records_hold_portable_paths_that_resolve_in_this_checkout(tmp_path):
    inside = paths.ROOT / "runs" / "artifacts" / "x" / "int8.tflite"
    assert paths.portable(inside) == "runs/artifacts/x/int8.tflite"
    assert paths.resolve("runs/artifacts/x/int8.tflite") == paths.ROOT / "runs" / "artifacts" / "x" / "int8.tflite"
    outside = tmp_path / "model.tflite"
    assert paths.portable(outside) == str(outside.resolve()) and paths.resolve(str(outside)) == outside
