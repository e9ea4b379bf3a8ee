"""The search's trial on a real baseline: fill a plan template, run it through the pipeline, return its figures."""

from __future__ import annotations

import json

from helpers.compress import Context
from helpers.compress.plan import CompressionPlan
from helpers.pipeline import plan_row


class PlanTrial:
    """The search's trial: fill the template with ``values``, apply, export, measure (picklable for executors).

    Returns accuracy (validation, of the artifact, a fraction), latency_ms and its IQR, MACs, size and the
    artifact path. Values this object has already run (the same initial point proposed to GP and random
    search, or the GP proposing a point again) return the first outcome, marked ``reused``, instead of
    running it again.
    """

    def __init__(self, template: CompressionPlan, model, record: dict, ctx: Context, profile: str, threads: int = 1,
                 reference: tuple | None = None):
        self.template, self.model, self.record, self.ctx = template, model, record, ctx
        self.profile, self.threads, self.reference = profile, threads, reference
        self.outcomes: dict[str, dict] = {}

    def __call__(self, values: dict) -> dict:
        key = json.dumps(values, sort_keys=True, default=str)
        if key in self.outcomes:
            return {**self.outcomes[key], "reused": True}
        plan = self.template.with_values(values)
        row = plan_row(plan, self.model, self.record, self.ctx, self.profile, threads=self.threads,
                       reference=self.reference)
        self.outcomes[key] = {"accuracy": row["val_accuracy"], "latency_ms": row["latency_ms"],
                              "latency_iqr_ms": row["latency_iqr_ms"], "macs": row["macs"], "size_kB": row["size_kB"],
                              "full_integer": row["full_integer"], "checks_fail": row["checks_fail"],
                              "artifact": row["artifact"], "val_n": row["val_n"], "run_record": row["run_record"]}
        return dict(self.outcomes[key])


def with_finetune_epochs(plan: CompressionPlan, epochs: float) -> CompressionPlan:
    """The same plan (free parameters kept) with every fine-tuning step set to ``epochs`` passes."""
    d = plan.to_dict()
    for step in d["steps"]:
        if step["method"] == "finetune":
            step["epochs"] = epochs
    return CompressionPlan.from_dict(d)
