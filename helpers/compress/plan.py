"""The plan interface (O7): an ordered list of compression steps, validated before anything runs.

A plan is YAML, a dict or Papermill parameters::

    name: prune-then-int8
    steps:
      - {method: structured, ratio: 0.5, importance: l1}
      - {method: finetune, epochs: 0.5}
      - {method: ptq, calibration: 100}

A value written as ``{low: 0.2, high: 0.7}`` (numbers) or ``{choices: [l1, l2]}`` marks the parameter
free: such a template is what the search (O8) optimises; ``with_values`` fills it in.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from helpers.compress.registry import METHODS, Context

EXPORT_MODES = ("int8", "fp32", "fp16", "dynamic")


class PlanError(ValueError):
    """A plan is malformed; the message names the step and the field."""


@dataclass
class Step:
    method: str
    params: dict
    free: dict = field(default_factory=dict)  # field -> {"low", "high"} or {"choices"}


@dataclass
class CompressionPlan:
    steps: list[Step]
    name: str = "plan"
    export: dict = field(default_factory=lambda: {"mode": "int8", "calibration": 100})

    # ---- construction and validation -------------------------------------------------------------
    @classmethod
    def from_yaml(cls, source: str | Path) -> "CompressionPlan":
        """Load a plan from a YAML file path or YAML text."""
        is_path = isinstance(source, Path) or ("\n" not in source and source.endswith((".yaml", ".yml")))
        if is_path and not Path(source).is_file():
            raise PlanError(f"plan file {source} does not exist")
        text = Path(source).read_text() if is_path else source
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            from helpers.core.io import yaml_problem

            raise PlanError(f"plan is not valid YAML ({yaml_problem(exc)}); fix the syntax there") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data) -> "CompressionPlan":
        """Build and validate a plan from a mapping with ``steps`` (and optional ``name``, ``export``)."""
        if isinstance(data, list):
            data = {"steps": data}
        if not isinstance(data, dict):
            raise PlanError(f"a plan must be a mapping with a 'steps' list, not {type(data).__name__}")
        unknown = sorted(set(data) - {"name", "steps", "export"})
        if unknown:
            raise PlanError(f"plan: unknown top-level field {unknown[0]!r}; use name, steps, export")
        steps = data.get("steps")
        if not isinstance(steps, list) or not steps:
            raise PlanError("plan: 'steps' must be a non-empty list of {method: ..., <parameters>}")
        if data.get("export") is not None and not isinstance(data["export"], dict):
            raise PlanError(f"plan: 'export' must be a mapping like {{mode: int8, calibration: 100}}, not "
                            f"{data['export']!r}")
        export = {"mode": "int8", "calibration": 100, **(data.get("export") or {})}
        if export["mode"] not in EXPORT_MODES:
            raise PlanError(f"plan export, field 'mode': {export['mode']!r} is not one of {', '.join(EXPORT_MODES)}")
        plan = cls([], str(data.get("name", "plan")), export)
        for i, raw in enumerate(steps, 1):
            plan.steps.append(_parse_step(i, raw))
        plan.validate()
        return plan

    def validate(self) -> None:
        """Check values and order: unknown names, ranges, types, quantisation last and at most once."""
        quant_steps = [i for i, s in enumerate(self.steps, 1) if METHODS[s.method].category == "quantization"]
        if len(quant_steps) > 1:
            raise PlanError(f"step {quant_steps[1]} ({self.steps[quant_steps[1] - 1].method}), field 'method': "
                            f"only one quantisation step is allowed (step {quant_steps[0]} is one already)")
        if quant_steps and quant_steps[0] != len(self.steps):
            i = quant_steps[0]
            raise PlanError(f"step {i} ({self.steps[i - 1].method}), field 'method': quantisation must be the last "
                            f"step (step {i + 1} is {self.steps[i].method}); move it to the end")
        for i, s in enumerate(self.steps, 1):
            where = f"step {i} ({s.method})"
            try:
                s.params = METHODS[s.method].resolve({k: v for k, v in s.params.items() if k not in s.free}, where)
            except ValueError as exc:
                raise PlanError(str(exc)) from None

    # ---- templates ------------------------------------------------------------------------------
    def free_parameters(self) -> list[dict]:
        """The free parameters: step index (0-based), method, field, kind and range or choices."""
        out = []
        for i, s in enumerate(self.steps):
            for f, spec in s.free.items():
                out.append({"step": i, "method": s.method, "field": f, "kind": METHODS[s.method].params[f].kind,
                            **spec, "name": f"{i}.{s.method}.{f}"})
        return out

    def with_values(self, values: dict) -> "CompressionPlan":
        """A concrete plan with the free parameters set (keys as in ``free_parameters()[..]['name']``)."""
        plan = copy.deepcopy(self)
        for fp in self.free_parameters():
            if fp["name"] not in values:
                raise PlanError(f"step {fp['step'] + 1} ({fp['method']}), field '{fp['field']}': no value given "
                                "for this free parameter")
            step = plan.steps[fp["step"]]
            step.params[fp["field"]] = values[fp["name"]]
            step.free.pop(fp["field"])
        plan.validate()
        return plan

    def to_dict(self) -> dict:
        steps = []
        for s in self.steps:
            d = {"method": s.method, **s.params}
            d.update({k: dict(v) for k, v in s.free.items()})
            steps.append(d)
        return {"name": self.name, "export": dict(self.export), "steps": steps}

    def digest(self, salt: str = "") -> str:
        """A short stable hash of the plan (free ranges included): names its output folder or trial log."""
        spec = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(f"{spec}{salt}".encode()).hexdigest()[:12]

    def export_spec(self) -> dict:
        """How the compressed model is exported: ``mode`` (and for int8 ``per_channel`` and ``calibration``).

        The plan's ``export`` section, overridden by its quantisation step (the method's ``export_mode`` and
        the step's own per-channel and calibration values).
        """
        spec = dict(self.export)
        quant = [s for s in self.steps if METHODS[s.method].export_mode]
        if quant:
            step = quant[-1]
            spec = {"mode": METHODS[step.method].export_mode}
            if spec["mode"] == "int8":
                spec.update(per_channel=step.params["per_channel"], calibration=step.params["calibration"])
        return spec

    # ---- application ------------------------------------------------------------------------------
    def run_steps(self, model, ctx: Context) -> tuple:
        """Apply every step to a copy of ``model``: (compressed model, step records, per-step snapshots).

        The records hold each step's method, category, parameters and seconds; the snapshots are what
        :meth:`verify_steps` compares against. Raises PlanError while free parameters remain.
        """
        from helpers.compress.pruning import make_permanent, snapshot

        if self.free_parameters():
            names = ", ".join(f["name"] for f in self.free_parameters())
            raise PlanError(f"plan {self.name!r} still has free parameters ({names}); give each a value "
                            "(a plan file needs plain values, a search fills them in)")
        ctx.teacher = ctx.teacher or copy.deepcopy(model).eval()
        ctx.state.clear()
        work = copy.deepcopy(model)
        snapshots, records = [], []
        for s in self.steps:
            before = snapshot(work)
            t0 = time.perf_counter()
            work = METHODS[s.method].apply(work, s.params, ctx)
            snapshots.append(before)
            records.append({"method": s.method, "category": METHODS[s.method].category, "params": s.params,
                            "seconds": round(time.perf_counter() - t0, 2)})
        return make_permanent(work).eval(), records, snapshots

    def verify_steps(self, records: list[dict], snapshots: list, model, ctx: Context, artifact) -> list[dict]:
        """Run each step's verify against its snapshot, the final model and the artifact; adds ``checks``."""
        for rec, s, before in zip(records, self.steps, snapshots):
            rec["checks"] = METHODS[s.method].verify(before, model, s.params, ctx, artifact)
        return records


def _parse_step(i: int, raw) -> Step:
    if not isinstance(raw, dict):
        raise PlanError(f"step {i}: must be a mapping like {{method: structured, ratio: 0.5}}, not {raw!r}")
    if "method" not in raw:
        raise PlanError(f"step {i}, field 'method': missing; choose one of {', '.join(sorted(METHODS))}")
    name = raw["method"]
    if not isinstance(name, str) or name not in METHODS:
        raise PlanError(f"step {i}, field 'method': unknown method {name!r}; choose one of {', '.join(sorted(METHODS))}")
    method = METHODS[name]
    params, free = {}, {}
    for k, v in raw.items():
        if k == "method":
            continue
        where = f"step {i} ({name}), field '{k}'"
        if k not in method.params:
            raise PlanError(f"{where}: unknown parameter for {name}; known: {', '.join(method.params) or 'none'}")
        spec = method.params[k]
        if isinstance(v, dict) and spec.kind != "dict":
            free[k] = _parse_free(where, spec, v)
        else:
            params[k] = v
    return Step(name, params, free)


def _parse_free(where: str, spec, v: dict) -> dict:
    if set(v) == {"choices"}:
        choices = list(v["choices"])
        if not choices:
            raise PlanError(f"{where}: empty list of choices; give at least one")
        for c in choices:
            try:
                spec.check(c, where)
            except ValueError as exc:
                raise PlanError(str(exc)) from None
        return {"choices": choices}
    if set(v) != {"low", "high"}:
        raise PlanError(f"{where}: a free parameter is {{low: .., high: ..}} or {{choices: [..]}}, not {v!r}")
    if spec.kind not in ("float", "int"):
        raise PlanError(f"{where}: a {spec.kind} parameter cannot take a numeric range; use {{choices: [..]}}")
    try:
        low, high = spec.check(v["low"], where), spec.check(v["high"], where)
    except ValueError as exc:
        raise PlanError(str(exc)) from None
    if not low < high:
        raise PlanError(f"{where}: empty range [{low}, {high}]; low must be below high")
    return {"low": low, "high": high}
