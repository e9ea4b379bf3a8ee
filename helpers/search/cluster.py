"""Trials on a Dask cluster: small trial specs, per-worker caches, and latency comparable between workers.

A trial travels as a :class:`TrialSpec` (the baseline's checkpoint path and digest, the dataset and its split
sizes, the plan template, the seed, the target machine's plain int8 latency) plus the plan values; each worker
loads and caches what it needs by name (:func:`run_spec`), so nothing large is pickled per task. The client
alone writes the trial logs (``search.run_search`` runs there), so a worker that dies loses no finished
trial; a trial lost with its worker is submitted once more and then logged as failed with the reason
(:class:`RemoteTrial`).

Latency: each worker times the trial's artifact against *its own* copy of the baseline's plain int8 artifact
in alternating blocks and keeps the ratio; the latency reported is that ratio times the plain int8 latency
measured on the study's target machine (the client's), so trials timed on different workers are comparable.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

#: a worker that dies with a task is not retried by the scheduler: RemoteTrial re-submits once, then logs
ALLOWED_FAILURES = 0


@dataclass(frozen=True)
class TrialSpec:
    """Everything a worker needs to run one trial of a search, by name (small and picklable)."""

    checkpoint: str  # the baseline's .pt file (runs/checkpoints/ on every machine of the cluster)
    digest: str  # its sha256 prefix: a worker holding another file refuses the trial
    dataset: str
    finetune_images: int | None
    val_images: int | None
    seed: int
    template: dict  # the plan template (screening or final fine-tune)
    profile: str  # where the worker writes plan artifacts and names its run record
    reference_ms: float  # plain int8 latency on the target machine: latency = worker's ratio x this
    threads: int = 1  # torch threads on the worker (the interpreter times on 1 thread, as the reference)


def file_digest(path: str | Path) -> str:
    """The first 16 hex digits of a file's sha256."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=8)
def _worker_state(checkpoint: str, digest: str, dataset: str, finetune_images, val_images, seed: int, threads: int):
    """The baseline, its record, the data context and this worker's plain int8 reference, built once per worker."""
    import torch

    from helpers.deploy.artifacts import plain_int8
    from helpers.networks.checkpoints import load_model, read_sidecar
    from helpers.search.pipeline import baseline_context
    from helpers.core.identity import machine

    torch.set_num_threads(threads)
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"worker on {machine()['id']} has no checkpoint {checkpoint}; copy runs/checkpoints/ "
                                "there (or train the baselines on it) before joining the cluster")
    if file_digest(checkpoint) != digest:
        raise RuntimeError(f"worker on {machine()['id']} holds another {checkpoint} (digest {file_digest(checkpoint)}, "
                           f"the client's is {digest}); copy the client's checkpoint there")
    model, _ = load_model(checkpoint)
    record = {**read_sidecar(checkpoint), "path": checkpoint}
    return model, record, baseline_context(record, finetune_images, val_images, seed), str(plain_int8(model, record))


def run_spec(spec: TrialSpec, values: dict, token: str | None = None) -> dict:
    """Run one trial on this worker (``token`` only makes each submission a distinct task). The outcome is
    ``trial.PlanTrial``'s, with the latency ratio to this worker's plain int8 copy and the worker named."""
    import os

    from helpers.compress.plan import CompressionPlan
    from helpers.core.identity import machine
    from helpers.search.trial import PlanTrial

    model, record, ctx, ref_path = _worker_state(spec.checkpoint, spec.digest, spec.dataset, spec.finetune_images,
                                                 spec.val_images, spec.seed, spec.threads)
    trial = PlanTrial(CompressionPlan.from_dict(spec.template), model, record, ctx, spec.profile,
                      reference=(ref_path, spec.reference_ms))
    out = trial(values)
    return {**out, "latency_ratio": out["latency_ms"] / spec.reference_ms, "worker": f"{machine()['id']}/{os.getpid()}",
            "worker_address": _address()}


def _address() -> str | None:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):  # not on a Dask worker
        return None


def _evaluate(artifact: str, dataset: str, images: int) -> float:
    from helpers.datasets.data import load_dataset
    from helpers.deploy.runtime import evaluate_tflite

    from helpers.core.paths import resolve

    return evaluate_tflite(resolve(artifact), load_dataset(dataset, "test").subset(images))["accuracy"]


def evaluate_where_made(executor, outcome: dict, dataset: str, test_ds) -> float:
    """Test accuracy of an artifact that lives on the worker that made it (its machine's runs/), scored there."""
    address = outcome.get("worker_address")
    if executor is None or address is None or not hasattr(executor, "scheduler_info"):
        raise FileNotFoundError(f"artifact {outcome['artifact']} is not on this machine and no Dask worker made it; "
                                "run the study where its artifacts are")
    return executor.submit(_evaluate, outcome["artifact"], dataset, len(test_ds), workers=[address],
                           allow_other_workers=False).result()


def _lost(exc: BaseException) -> bool:
    """True when a task failed because its worker went away (not because the trial raised)."""
    try:
        from distributed import KilledWorker
        from distributed.comm.core import CommClosedError
    except ImportError:  # a plain concurrent.futures executor
        from concurrent.futures.process import BrokenProcessPool

        return isinstance(exc, BrokenProcessPool)
    return isinstance(exc, (KilledWorker, CommClosedError))


@dataclass
class RemoteTrial:
    """The client's stand-in for ``trial.PlanTrial``: sends (spec, values) to ``executor`` (a Dask client or any
    concurrent.futures executor) and waits. ``template``, ``model`` and ``ctx`` stay on the client for
    ``trial.NetworkKeyedTrial``'s keys; they never travel. A trial lost with its worker is submitted once more,
    then raised as lost (``search.run_search`` logs it as failed with that reason)."""

    spec: TrialSpec
    executor: object
    template: object
    model: object
    ctx: object
    attempts: int = 2
    lost: list = field(default_factory=list)  # (values, reason) of each lost submission, for the record

    def __call__(self, values: dict) -> dict:
        reason = None
        for _ in range(self.attempts):
            future = self.executor.submit(run_spec, self.spec, values, uuid.uuid4().hex)
            try:
                out = future.result()
                return {**out, "resubmitted_after": reason} if reason else out
            except Exception as exc:  # noqa: BLE001 - a lost worker is retried, a trial's own error is not
                if not _lost(exc):
                    raise
                reason = f"{type(exc).__name__}: {exc}"
                self.lost.append((values, reason))
        raise RuntimeError(f"trial lost with its worker {self.attempts} times ({reason})")


def trial_spec(record: dict, data: tuple, template, profile: str, reference_ms: float) -> TrialSpec:
    """The spec of a search's trials on the baseline ``record``; ``data`` is (dataset, finetune images, val images,
    seed, torch threads per worker)."""
    dataset, finetune_images, val_images, seed, threads = data
    return TrialSpec(record["path"], file_digest(record["path"]), dataset, finetune_images, val_images, seed,
                     template.to_dict(), profile, reference_ms, threads)


def local_client(workers: int):
    """A Dask client of a local cluster of ``workers`` processes, one task at a time each (no dashboard); how many
    torch threads a trial uses there is the trial spec's ``threads``."""
    import logging

    import dask
    from distributed import Client, LocalCluster

    dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES})
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR)
    return Client(cluster)


def connect(address: str):
    """A Dask client of the scheduler at ``address``; a scheduler that does not answer gets one sentence."""
    from distributed import Client

    try:
        return Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise OSError(f"no Dask scheduler answers at {address} ({exc}); start one with `dask scheduler` and give its "
                      "address, e.g. tcp://host:8786") from None


@contextlib.contextmanager
def executor_for(workers: int | None = None, scheduler: str | None = None):
    """The study's executor: a local cluster of ``workers`` processes, the cluster at ``scheduler``, or None (run
    in this process); closed on leaving (a local cluster with it)."""
    if not workers and not scheduler:
        yield None
        return
    client = connect(scheduler) if scheduler else local_client(workers)
    try:
        yield client
    finally:
        cluster = None if scheduler else client.cluster
        client.close()
        if cluster is not None:
            cluster.close()


def workers(executor) -> dict:
    """Each worker's address -> its machine (``provenance.machine``); empty for a non-Dask executor."""
    if not hasattr(executor, "run"):
        return {}
    from helpers.core.identity import machine

    return executor.run(machine)


def slots(executor) -> int:
    """How many trials the executor runs at once: a Dask cluster's threads, a pool's workers, else 1."""
    if hasattr(executor, "scheduler_info"):
        return max(1, sum(w["nthreads"] for w in executor.scheduler_info()["workers"].values()))
    return int(getattr(executor, "_max_workers", 1))
