"""The search's trial on a real baseline: fill a plan template, run it through the pipeline, return its figures."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.compress import Context
from helpers.compress.plan import CompressionPlan
from helpers.search.pipeline import plan_row


class PlanTrial:
    """The search's trial: fill the template with ``values``, apply, export, measure (picklable for executors).

    Returns accuracy (validation, of the artifact, a fraction), latency_ms and its IQR, MACs, size and the
    artifact path. Values this object has already run (the same initial point proposed to GP and random
    search, or the GP proposing a point again) return the first outcome, marked ``reused``, instead of
    running it again.
    """

    def __init__(self, template: CompressionPlan, model, record: dict, ctx: Context, profile: str, threads: int = 1,
                 reference: tuple | None = None, command: bool | Path = False):
        self.template, self.model, self.record, self.ctx = template, model, record, ctx
        self.profile, self.threads, self.reference, self.command = profile, threads, reference, command
        self.outcomes: dict[str, dict] = {}

    def __call__(self, values: dict) -> dict:
        key = json.dumps(values, sort_keys=True, default=str)
        if key in self.outcomes:
            return {**self.outcomes[key], "reused": True}
        plan = self.template.with_values(values)
        row = plan_row(plan, self.model, self.record, self.ctx, self.profile, threads=self.threads,
                       reference=self.reference, command=self.command)
        self.outcomes[key] = {"accuracy": row["val_accuracy"], "latency_ms": row["latency_ms"],
                              "latency_iqr_ms": row["latency_iqr_ms"], "macs": row["macs"], "size_kB": row["size_kB"],
                              "full_integer": row["full_integer"], "checks_fail": row["checks_fail"],
                              "artifact": row["artifact"], "val_n": row["val_n"], "run_record": row["run_record"],
                              "cost": row["cost"], "budget": row.get("budget")}
        return dict(self.outcomes[key])


def with_finetune_epochs(plan: CompressionPlan, epochs: float) -> CompressionPlan:
    """The same plan (free parameters kept) with every fine-tuning step set to ``epochs`` passes."""
    d = plan.to_dict()
    for step in d["steps"]:
        if step["method"] == "finetune":
            step["epochs"] = epochs
    return CompressionPlan.from_dict(d)


#: Structured-pruning parameters that only decide how many channels each layer keeps (which ones stay is decided
#: by the importance criterion, ranked the same way whatever the count).
COUNT_PARAMS = ("ratio", "stage_slope", "stage_ratios", "round_to")


def network_key(plan: CompressionPlan, model, ctx: Context) -> str:
    """What a plan produces, as a short hash: the weight shapes after its structural (channel-pruning) steps,
    and every parameter of every step except those that only set channel counts (``COUNT_PARAMS``). Values
    that round to the same channel counts with the same criterion give the same key, so a search can reuse the
    outcome instead of spending a trial on an identical network."""
    import hashlib

    from helpers.compress.registry import METHODS

    d = plan.to_dict()
    structural = [s for s in d["steps"] if METHODS[s["method"]].category == "structured_pruning"]
    # what only sets channel counts is replaced by the counts it gives; every other choice (the importance
    # criterion decides WHICH channels stay) is part of the key as given
    choices = [{k: v for k, v in s.items() if k not in COUNT_PARAMS} for s in d["steps"]]
    shapes = []
    if structural:
        pruned, _, _ = CompressionPlan.from_dict({"steps": structural}).run_steps(model, ctx)
        shapes = [[name, list(p.shape)] for name, p in pruned.named_parameters() if p.dim() > 1]
    spec = json.dumps({"shapes": shapes, "steps": choices, "export": d["export"]}, sort_keys=True, default=str)
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


class NetworkKeyedTrial:
    """A trial that runs each distinct network once: the outcome of a network already in ``store`` (a JSON-lines
    file shared by every search of a study on one dataset and fidelity) is returned again, marked
    ``same_network_as`` with the values that first produced it, and the optimiser is told that outcome."""

    def __init__(self, trial: PlanTrial, store):
        self.trial, self.store = trial, store

    def __call__(self, values: dict) -> dict:
        from helpers.search.store import append_log, read_log

        plan = self.trial.template.with_values(values)
        key = network_key(plan, self.trial.model, self.trial.ctx)
        with _store_lock(self.store):
            known = self._known(read_log(self.store))
        if key in known:
            return {**known[key]["outcome"], "network": key, "same_network_as": known[key]["values"]}
        outcome = self.trial(values)  # searches running side by side may run one network twice: the first kept wins
        with _store_lock(self.store):
            rows = read_log(self.store)
            append_log(self.store, {"trial": len(rows), "values": values, "network": key, "outcome": outcome})
            first = self._known(rows).get(key)
        if first is not None:
            return {**first["outcome"], "network": key, "same_network_as": first["values"]}
        return {**outcome, "network": key}

    @staticmethod
    def _known(rows: list[dict]) -> dict:
        known: dict = {}
        for r in rows:
            known.setdefault(r["network"], r)
        return known


_LOCKS: dict = {}


def _store_lock(path):
    """One lock per network store in this process (searches of a study may run in threads side by side)."""
    import threading

    return _LOCKS.setdefault(str(path), threading.Lock())
