"""Shared fixtures: tiny synthetic datasets and small models so unit tests take seconds.

``make test`` runs two pytest-xdist workers on the 2-core machine. Each worker, and every process it starts, gets one
thread (OMP_NUM_THREADS; two 2-thread processes on two cores slowed CPU training about 10x) and its own runs folder
(``WORKBENCH_RUNS``: the smoke chain clears its runs/smoke/ while the other worker's tests write theirs), with one
shared checkpoint folder (``WORKBENCH_CHECKPOINTS``: a baseline is trained once for both) and one shared export cache
(``WORKBENCH_EXPORT_CACHE``: a network converted once for both; 55 of 161 exports in one run repeated an earlier one). The tests that read the
smoke chain's outputs share one ``xdist_group``, so the chain runs once, on one worker.
"""

import os
import pickle
from pathlib import Path

WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if WORKER:  # before torch is imported: its thread pool reads OMP_NUM_THREADS once
    _root = Path(__file__).resolve().parents[1]
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ.setdefault("WORKBENCH_RUNS", str(_root / "runs" / "xdist" / WORKER))
    os.environ.setdefault("WORKBENCH_CHECKPOINTS", str(_root / "runs" / "checkpoints"))
    os.environ.setdefault("WORKBENCH_EXPORT_CACHE", str(_root / "runs" / "export-cache"))

import numpy as np
import pytest
import torch


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    """``make test`` (two workers, the slow tier included): the glyph set is rendered into data/ once, before the
    workers start, instead of by each worker's first test that needs it (a minute of one core each time)."""
    if WORKER or not session.config.getoption("numprocesses", None):
        return
    if "not slow" in (session.config.getoption("markexpr") or ""):
        return  # the fast tier writes no data
    from helpers.datasets.data import load_dataset

    load_dataset("glyphs", "train")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    """Under ``--dist loadgroup`` the smoke chain's tests must reach the scheduler with their group in their node id
    (``…@smoke_chain``), or xdist spreads them over the workers and the chain runs once per worker (silently, 15
    minutes each): pytest 9.2's structured node ids did that to pytest-xdist 3.8 (pytest-xdist#1386), hence the pin."""
    if node.config.getvalue("dist") != "loadgroup" or not any("::test_smoke_chain_runs" in i for i in ids):
        return
    if not any(i.endswith("@smoke_chain") for i in ids):
        pytest.exit("pytest-xdist did not group the smoke chain's tests by their xdist_group mark, so the chain would "
                    "run on every worker; install the pinned pytest (make setup) or run without -n", returncode=3)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1 if WORKER else 2)


@pytest.fixture(scope="session")
def _glyph_scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("glyphs")


@pytest.fixture(autouse=True)
def _fast_tier_writes_no_data(request, monkeypatch, _glyph_scratch):
    """The fast tier (tests not marked slow) writes only to temporary folders: a glyph set not yet rendered under
    data/ is rendered into a session temporary folder instead (a rendered one there is only read)."""
    if request.node.get_closest_marker("slow"):
        return
    from helpers.datasets import glyphs
    from helpers.core import paths

    real = glyphs.render_glyphs

    def render(cache_dir, *args, **kwargs):
        cache_dir = Path(cache_dir)
        inside = cache_dir.resolve().is_relative_to(paths.DATA.resolve())
        if inside and not any(cache_dir.glob(f"glyphs_v{glyphs.RENDER_VERSION}_*.npz")):
            cache_dir = _glyph_scratch / cache_dir.name
        return real(cache_dir, *args, **kwargs)

    monkeypatch.setattr(glyphs, "render_glyphs", render)


@pytest.fixture(scope="session")
def smoke_chain():
    """The whole chain on the smoke profile through Papermill, once per session (the chain's test and the smoke
    book read it): runs/smoke/ is cleared first, so only this run's outputs are checked. Returns the CLI's result."""
    import shutil
    import subprocess
    import sys

    from helpers.core import paths

    shutil.rmtree(paths.run_dir("smoke"), ignore_errors=True)
    return subprocess.run([sys.executable, "-m", "helpers", "run", "--profile", "smoke"], capture_output=True,
                          text=True, timeout=1500)


@pytest.fixture(scope="session")
def baseline_exports(tmp_path_factory):
    """ResNet-18 and MobileNetV2 x0.25 (seeded weights, 1x32x32) exported as fp32 and int8 with seeded calibration:
    ``(models, files, folder, calibration)``, ``files[name, mode]``. One session fixture for the export and Edge TPU
    tests, whose modules share the ``exports`` xdist group so that it is made once (a minute of conversions)."""
    from helpers.deploy.export import export_tflite
    from helpers.networks.models import build_model

    out = tmp_path_factory.mktemp("exp")
    torch.manual_seed(0)
    calib = [torch.randn(4, 1, 32, 32) for _ in range(4)]
    models = {name: build_model(name, 10, 1, 0.25).eval() for name in ("resnet18", "mobilenet_v2")}
    files = {(name, mode): export_tflite(m, out / f"{name}_{mode}.tflite", mode, calib)
             for name, m in models.items() for mode in ("fp32", "int8")}
    return models, files, out, calib


@pytest.fixture
def cifar_root(tmp_path):
    """A data root holding tiny CIFAR-10 and CIFAR-100 files in the real pickle format."""
    rng = np.random.default_rng(0)

    def batch(n, key, k):
        return {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), key: list(rng.integers(0, k, n))}

    c10 = tmp_path / "cifar-10-batches-py"
    c10.mkdir()
    for i in range(1, 6):
        (c10 / f"data_batch_{i}").write_bytes(pickle.dumps(batch(20, "labels", 10)))
    (c10 / "test_batch").write_bytes(pickle.dumps(batch(30, "labels", 10)))
    (c10 / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    c100 = tmp_path / "cifar-100-python"
    c100.mkdir()
    (c100 / "train").write_bytes(pickle.dumps(batch(200, "fine_labels", 100)))
    (c100 / "test").write_bytes(pickle.dumps(batch(50, "fine_labels", 100)))
    (c100 / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"f{i}" for i in range(100)]}))
    return tmp_path
