"""Studies on a local Dask cluster (helpers.search.cluster): small trial specs, client-only logs, a worker killed mid-trial."""

import json
import os
import shutil
import signal
import threading
import time

import pytest
import yaml

from helpers.core import paths
from helpers.search.store import read_log
from helpers.experiments.study_config import load_study

SMOKE = paths.PARAMS / "studies" / "smoke.yaml"
# what a Dask trial adds to a serial trial's record, and which search of a seed ran a shared network first
# (``same_network_as``: searches side by side may reach a shared initial point in either order)
WORKER_ONLY = {"latency_ratio", "worker", "worker_address", "resubmitted_after", "same_network_as"}


def _study(tmp_path, name):
    raw = {**yaml.safe_load(SMOKE.read_text()), "name": name, "seeds": [0], "screen_rule": "constant"}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_study(path)


def _logs(folder) -> dict:
    return {p.name: read_log(p) for p in sorted(folder.glob("fashion_mnist-s*.jsonl"))}


def _quiet(*_):
    pass


def test_a_trial_spec_is_small_and_names_its_checkpoint(tmp_path):
    import pickle

    from helpers.search.cluster import TrialSpec, file_digest, trial_spec
    from helpers.compress.plan import CompressionPlan

    ckpt = tmp_path / "b.pt"
    ckpt.write_bytes(b"weights")
    plan = CompressionPlan.from_dict({"steps": [{"method": "structured", "ratio": {"low": 0.2, "high": 0.5}},
                                                {"method": "ptq"}]})
    spec = trial_spec({"path": str(ckpt)}, ("fashion_mnist", 256, 128, 0, 1), plan, "smoke", 0.1)
    assert isinstance(spec, TrialSpec) and spec.digest == file_digest(ckpt) and spec.reference_ms == 0.1
    assert len(pickle.dumps(spec)) < 2000  # nothing large travels per task


@pytest.mark.slow
def test_a_study_on_two_local_workers_logs_what_a_serial_run_logs(tmp_path):
    """Random search proposes from its seed alone, so its trials match the serial run's one for one; the GP shares
    its initial points; every log has the serial run's length and record structure; the workers are recorded."""
    from helpers.search.cluster import executor_for
    from helpers.experiments.study import run_study

    serial, spread = _study(tmp_path, "dask-serial"), _study(tmp_path, "dask-two-workers")
    try:
        _, serial_dir = run_study(serial, progress=False, log=_quiet)
        with executor_for(workers=2) as client:
            chosen, dask_dir = run_study(spread, progress=False, log=_quiet, executor=client)
        a, b = _logs(serial_dir), _logs(dask_dir)
        assert a.keys() == b.keys() and len(a) == 4
        for name in a:
            assert [r["trial"] for r in a[name]] == [r["trial"] for r in b[name]], name
            assert [set(r) - WORKER_ONLY for r in a[name]] == [set(r) - WORKER_ONLY for r in b[name]], name
            assert all(r["status"] == "ok" and "worker" in r for r in b[name] if not r.get("same_network_as")), name
        assert [r["values"] for r in a["fashion_mnist-s0-random.jsonl"]] == \
               [r["values"] for r in b["fashion_mnist-s0-random.jsonl"]]
        n_initial = serial.n_initial
        assert [r["values"] for r in a["fashion_mnist-s0-gp.jsonl"]][:n_initial] == \
               [r["values"] for r in b["fashion_mnist-s0-gp.jsonl"]][:n_initial]
        workers = json.loads((dask_dir / "workers.json").read_text())
        assert len(workers["workers"]) == 2 and workers["target"]["id"]
        assert len(chosen) == 2 and set(chosen.method) == {"gp", "random"}
    finally:
        for d in ("dask-serial", "dask-two-workers"):
            shutil.rmtree(paths.RUNS / "smoke" / "study" / d, ignore_errors=True)


@pytest.mark.slow
def test_a_worker_killed_mid_trial_loses_nothing(tmp_path):
    """SIGKILL to a worker while it runs a trial: the trial is submitted once more, the study finishes, and every
    trial is logged exactly once (by the client)."""
    from helpers.search.cluster import executor_for
    from helpers.core.identity import machine
    from helpers.experiments.study import run_study, study_dir

    cfg = _study(tmp_path, "dask-kill")
    folder = study_dir(cfg, machine()["id"])
    out, errors = [], []
    try:
        with executor_for(workers=2) as client:
            pids = client.run(os.getpid)

            def study():
                try:
                    out.append(run_study(cfg, progress=False, log=_quiet, executor=client))
                except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                    errors.append(exc)

            runner = threading.Thread(target=study)
            runner.start()
            deadline, victim = time.time() + 300, None
            while time.time() < deadline and victim is None:  # the first moment a worker runs a trial after one logged
                busy = [a for a, keys in client.processing().items() if keys]
                if busy and any(read_log(p) for p in folder.glob("fashion_mnist-s0-*.jsonl")):
                    victim = busy[0]
                time.sleep(0.2)
            assert victim is not None, "no trial was running"
            os.kill(pids[victim], signal.SIGKILL)
            runner.join(900)
        assert not errors, errors
        assert out and len(out[0][0]) == 2
        for name, rows in _logs(folder).items():
            ids = [r["trial"] for r in rows]
            assert ids == list(range(len(ids))), name  # nothing lost, nothing logged twice
            assert all(r["status"] == "ok" or "lost with its worker" in r["reason"] for r in rows), name
        assert sum(len(r) for n, r in _logs(folder).items() if not n.endswith("-final.jsonl")) == 2 * cfg.budget
        # the killed worker's trial, run again (when another search ran the same network first, its outcome is kept
        # in the network store, so look there too)
        rows = [r.get("outcome", r) for p in folder.glob("fashion_mnist-*.jsonl") for r in read_log(p)]
        lost = [r["resubmitted_after"] for r in rows if r.get("resubmitted_after")]
        assert lost and "KilledWorker" in lost[0], lost
    finally:
        shutil.rmtree(folder.parent, ignore_errors=True)
