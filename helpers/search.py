"""The search loop and its trial log (O8): Bayesian optimisation of a plan template's free parameters, with
random and grid baselines. What is minimised lives in ``objective``, where to look next in ``proposals``.

Each trial fills the template, applies it to the baseline, exports int8, measures latency and the
artifact's validation accuracy. Trials are appended to a JSON-lines log as they finish, so a search
killed at any moment resumes without losing or repeating a finished trial. The optimiser is built on
scikit-optimize: its ask/tell ``Optimizer`` draws the initial points (random search is that sampler kept
on), and the GP either models the measured accuracy and latency (``composite``, the default) or the
objective itself (``objective``, skopt's own acquisition functions).
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from concurrent.futures import Executor, Future, wait, FIRST_COMPLETED
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from helpers.objective import OBJECTIVES, Objective, SearchError
from helpers.proposals import composite_proposals, dimensions, grid_points

__all__ = ["METHODS", "SURROGATES", "OBJECTIVES", "Objective", "SearchError", "dimensions", "composite_proposals",
           "read_log", "append_log", "stored_reference", "run_search", "confirm_front", "best_so_far",
           "pareto_front", "summarise", "SyntheticTrial", "load_config", "prepare", "search_from_config"]

METHODS = ("gp", "random", "grid")
SURROGATES = ("composite", "objective")


def _plain(v):
    return v.item() if hasattr(v, "item") else v


# ---- the trial log ---------------------------------------------------------------------------------
def read_log(path: str | Path) -> list[dict]:
    """Finished trials from a JSON-lines log; a corrupt line is skipped with a warning naming it."""
    path = Path(path)
    if not path.exists():
        return []
    trials = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or "trial" not in row or "values" not in row:
                raise ValueError("not a trial record")
            trials.append(row)
        except (json.JSONDecodeError, ValueError) as exc:
            warnings.warn(f"trial log {path}, line {n}: skipped a corrupt line ({exc}); the other lines are kept",
                          stacklevel=2)
    return trials


def append_log(path: str | Path, row: dict) -> None:
    """Append one trial as a JSON line and flush it to disk before returning."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(row, default=_plain)
    with open(path, "a+b") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell():  # a line cut short by a kill is closed off so the next record starts cleanly
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                fh.write(b"\n")
        fh.write(line.encode() + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


def stored_reference(path: str | Path, measure: Callable[[], dict]) -> dict:
    """The search's reference point, measured once and kept beside its logs, so a resumed search keeps its units.

    Trials are timed as a ratio to the plain int8 artifact times its latency; re-measuring that latency at
    every restart would put the trials of each segment in other units. The first call runs ``measure()``
    (e.g. ``references.reference_point``) and writes the JSON file atomically; later calls read it. Raises
    SearchError when the stored reference artifact no longer exists.
    """
    from helpers.io import write_json

    path = Path(path)
    if path.exists():
        ref = json.loads(path.read_text())
        artifact = (ref.get("latency_reference") or [None])[0]
        from helpers.paths import resolve

        if artifact and not resolve(artifact).exists():
            raise SearchError(f"the reference artifact {artifact} that {path} was measured on is gone; delete {path} "
                              "and the search's logs to start the search over")
        return ref
    ref = measure()
    write_json(path, ref)
    return json.loads(path.read_text())


# ---- the search ------------------------------------------------------------------------------------
@dataclass
class SearchResult:
    trials: list[dict]
    best: dict | None  # best feasible trial (lowest objective), None when nothing is feasible
    pareto: list[dict]  # non-dominated trials in (accuracy up, latency down)
    closest: list[dict] = field(default_factory=list)  # when nothing is feasible: the nearest misses
    message: str = ""


def pareto_front(trials: list[dict]) -> list[dict]:
    """Trials not dominated in (higher validation accuracy, lower latency), sorted by latency."""
    ok = [t for t in trials if t.get("status") == "ok"]
    front = [t for t in ok if not any(
        (o["accuracy"] >= t["accuracy"] and o["latency_ms"] <= t["latency_ms"]) and
        (o["accuracy"] > t["accuracy"] or o["latency_ms"] < t["latency_ms"]) for o in ok)]
    return sorted(front, key=lambda t: t["latency_ms"])


def best_so_far(trials: list[dict]) -> list[float]:
    """After each trial, the lowest latency among finished trials that cleared the bar so far (inf before one has)."""
    best, curve = np.inf, []
    for t in trials:
        if t["status"] == "ok" and t["feasible"]:
            best = min(best, t["latency_ms"])
        curve.append(best)
    return curve


def summarise(trials: list[dict], objective: Objective) -> SearchResult:
    """Best feasible trial, Pareto front, and (when nothing is feasible) the closest trials, said so."""
    ok = [t for t in trials if t.get("status") == "ok"]
    feasible = [t for t in ok if objective.feasible(t["accuracy"])]
    if feasible:
        best = min(feasible, key=lambda t: t["latency_ms"] if objective.name == "constrained" else t["objective"])
        return SearchResult(trials, best, pareto_front(trials))
    closest = sorted(ok, key=lambda t: -t["accuracy"])[:3]
    msg = (f"no trial met the accuracy threshold ({100 * objective.baseline_accuracy - objective.threshold_points:.2f}%); "
           f"the {len(closest)} closest trials are kept" if ok else "no trial finished successfully")
    return SearchResult(trials, None, pareto_front(trials), closest, msg)


def _timed(trial_fn: Callable[[dict], dict], values: dict):
    t0 = time.perf_counter()
    try:
        return trial_fn(values), time.perf_counter() - t0
    except Exception as exc:  # a failed trial is data, not the end of the search
        return exc, time.perf_counter() - t0


def trial_row(trial_id: int, values: dict, outcome: dict | Exception, seconds: float, objective: Objective,
              extra: dict) -> dict:
    """One log record: values, timing, then metrics, feasibility and objective, or the failure reason."""
    row = {"trial": trial_id, "values": values, "seconds": round(seconds, 2), **extra}
    if isinstance(outcome, Exception) or not all(
            isinstance(outcome.get(k), (int, float)) and math.isfinite(outcome[k]) for k in ("accuracy", "latency_ms")):
        reason = f"{type(outcome).__name__}: {outcome}" if isinstance(outcome, Exception) else f"non-finite metrics {outcome}"
        row.update(status="failed", reason=reason[:500], objective=None, feasible=False)
    else:
        row.update(status="ok", **{k: _plain(v) for k, v in outcome.items()},
                   feasible=objective.feasible(outcome["accuracy"]),
                   objective=objective(outcome["accuracy"], outcome["latency_ms"]))
    return row


def run_search(trial_fn: Callable[[dict], dict], free: list[dict], objective: Objective, budget: int,
               log_path: str | Path, method: str = "gp", seed: int = 0, n_initial: int = 5,
               acq_func: str = "gp_hedge", executor: Executor | None = None, n_parallel: int = 1,
               on_trial: Callable[[dict], None] | None = None, surrogate: str = "composite") -> SearchResult:
    """Search the free parameters for ``budget`` trials, resuming from the log at ``log_path``.

    ``trial_fn(values)`` returns at least ``accuracy`` (fraction) and ``latency_ms``; an exception or a
    NaN is logged as a failed trial (worst objective) and the search goes on. After ``n_initial`` random
    points the GP proposes: ``surrogate="composite"`` models accuracy and latency (``composite_proposals``),
    ``"objective"`` is skopt's GP on the objective with ``acq_func``. With ``executor`` (any
    concurrent.futures Executor, e.g. a Dask client's ``get_executor()``) up to ``n_parallel`` trials run
    at once, the optimiser proposing batches with a constant liar.
    """
    from skopt import Optimizer

    if method not in METHODS:
        raise SearchError(f"unknown search method {method!r}; choose one of {', '.join(METHODS)}")
    if surrogate not in SURROGATES:
        raise SearchError(f"unknown surrogate {surrogate!r}; choose one of {', '.join(SURROGATES)}")
    if budget < 1:
        raise SearchError(f"budget {budget!r} must be at least 1 trial")
    dims = dimensions(free)
    names = [d.name for d in dims]
    done = read_log(log_path)
    stale = next((t for t in done if set(t["values"]) != set(names)), None)
    if stale is not None:
        raise SearchError(f"trial log {log_path} holds trials over {sorted(stale['values'])}, not this search's "
                          f"{sorted(names)}; delete the log or give this search its own")
    for t in done:
        for d in dims:
            if t["values"][d.name] not in d:
                raise SearchError(f"trial log {log_path}, trial {t['trial']}: {d.name} = {t['values'][d.name]!r} lies "
                                  f"outside this search's range ({d}); delete the log or give this search its own")
    # random search is skopt's own initial-point sampler kept on for the whole budget (its "dummy"
    # estimator fails with scikit-learn 1.9's estimator tags)
    skopt_gp = method == "gp" and surrogate == "objective"
    opt = Optimizer(dims, base_estimator="GP", n_initial_points=n_initial if skopt_gp else 10 ** 9,
                    acq_func=acq_func, random_state=seed)
    grid = grid_points(dims, budget, seed) if method == "grid" else None
    logged, done = done, []
    worst = [10.0]

    def source(k: int) -> str:
        """Where the next proposal comes from: 'grid', 'composite' or 'skopt' (skopt's sampler or its GP)."""
        if grid is not None:
            tried = {json.dumps([_plain(v) for v in t["values"].values()], default=str) for t in done}
            if any(json.dumps([_plain(v) for v in p], default=str) not in tried for p in grid):
                return "grid"
        elif method == "gp" and not skopt_gp and len(done) >= n_initial and any(t.get("status") == "ok" for t in done):
            return "composite"
        return "skopt"

    def propose(k: int) -> list[list]:
        how = source(k)
        if how == "grid":
            tried = {json.dumps([_plain(v) for v in t["values"].values()], default=str) for t in done}
            return [p for p in grid if json.dumps([_plain(v) for v in p], default=str) not in tried][:k]
        if how == "composite":
            return composite_proposals(opt.space, done, names, objective, k, seed)
        return opt.ask(n_points=k, strategy="cl_min") if k > 1 else [opt.ask()]

    def tell(x: list, row: dict) -> None:
        if row["status"] == "ok":
            worst[0] = max(worst[0], row["objective"])
        opt.tell(list(x), row["objective"] if row["status"] == "ok" else worst[0] * 1.5)
        done.append(row)

    # Resume = the uninterrupted run: replay the log in order, advancing the optimiser's random state exactly
    # as the run that wrote it did (skopt's sampler draws from its rng on every ask), so the next proposal is
    # the one the uninterrupted run would have made and no finished plan is proposed again by a restarted sampler.
    for t in logged:
        if n_parallel <= 1 and source(1) == "skopt":
            opt.ask()
        tell([t["values"][n] for n in names], t)
    next_id = max([t["trial"] for t in done], default=-1) + 1

    def record(trial_id: int, x: list, outcome: dict | Exception, seconds: float) -> dict:
        row = trial_row(trial_id, {n: _plain(v) for n, v in zip(names, x)}, outcome, seconds, objective,
                        {"method": method, "seed": seed})
        append_log(log_path, row)  # written before the optimiser hears of it: a kill loses nothing finished
        tell(x, row)
        if on_trial:
            on_trial(row)
        return row

    def timed(x):
        return _timed(trial_fn, {n: _plain(v) for n, v in zip(names, x)})

    if executor is None or n_parallel <= 1:
        while len(done) < budget:
            x = propose(1)[0]
            outcome, secs = timed(x)
            record(next_id, x, outcome, secs)
            next_id += 1
    else:
        running: dict[Future, tuple[int, list]] = {}
        while len(done) < budget:
            free_slots = min(n_parallel - len(running), budget - len(done) - len(running))
            if free_slots > 0:
                for x in propose(free_slots):
                    running[executor.submit(timed, x)] = (next_id, x)
                    next_id += 1
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in finished:
                tid, x = running.pop(fut)
                outcome, secs = fut.result()
                record(tid, x, outcome, secs)
    return summarise(done, objective)


def confirm_front(screened: list[dict], objective: Objective, final_fn: Callable[[dict], dict], log_path: str | Path,
             max_runs: int = 2, on_trial: Callable[[dict], None] | None = None) -> SearchResult:
    """Second fidelity: re-run plans of the screening Pareto front with the final (long) fine-tuning.

    Screening trials fine-tune briefly, which under-states the accuracy a long fine-tune reaches and by
    a margin that depends on the dataset and the plan (NetAdapt's short-term vs long-term fine-tuning,
    Yang et al. 2018). So no margin is assumed: along the screening front (sorted by latency, accuracy
    rising with it) a bisection re-runs the middle plan with ``final_fn``; if it clears ``objective``'s bar
    the faster half is tried next, otherwise the more accurate half. At most ``max_runs`` final runs; the
    fastest final run that clears the bar is ``best``. Runs go to their own JSON-lines log, and a restarted
    notebook reuses finished runs instead of repeating them.
    """
    if max_runs < 1:
        raise SearchError(f"max_runs {max_runs!r} must be at least 1 final run")
    front = pareto_front(screened)
    done = read_log(log_path)
    finals, lo, hi = [], 0, len(front) - 1
    while lo <= hi and len(finals) < max_runs:
        mid = (lo + hi) // 2
        c = front[mid]
        row = next((d for d in done if d["values"] == c["values"]), None)
        if row is None:
            outcome, secs = _timed(final_fn, c["values"])
            row = trial_row(len(done), c["values"], outcome, secs, objective,
                            {"stage": "final", "screen_trial": c["trial"], "screen_accuracy": c["accuracy"],
                             "method": c.get("method"), "seed": c.get("seed")})
            append_log(log_path, row)
            done.append(row)
            if on_trial:  # as in run_search: runs replayed from the log are not reported again
                on_trial(row)
        finals.append(row)
        if row["status"] == "ok" and row["feasible"]:
            hi = mid - 1
        else:
            lo = mid + 1
    return summarise(finals, objective)


# ---- configuration and the command line ------------------------------------------------------------
class SyntheticTrial:
    """A cheap analytic stand-in for a real trial (tests and the benchmark of the search harness only).

    With u the mean of the numeric free values scaled to [0, 1]: accuracy = 0.92 - 0.08 u^3 and
    latency = 1 - 0.7 u (ms), after sleeping ``sleep_s``; a categorical choice other than the first costs
    half a point of accuracy; ``accuracy_gain`` stands in for a longer fine-tune (the final fidelity).
    """

    def __init__(self, free: list[dict], sleep_s: float = 0.0, accuracy_gain: float = 0.0):
        self.free, self.sleep_s, self.gain = free, sleep_s, accuracy_gain

    def __call__(self, values: dict) -> dict:
        time.sleep(self.sleep_s)
        us, penalty = [], 0.0
        for f in self.free:
            v = values[f["name"]]
            if "choices" in f:
                penalty += 0.005 * (f["choices"].index(v) > 0)
            else:
                us.append((v - f["low"]) / (f["high"] - f["low"]))
        u = float(np.mean(us)) if us else 0.0
        return {"accuracy": 0.92 - 0.08 * u ** 3 - penalty + self.gain, "latency_ms": 1.0 - 0.7 * u}


def load_config(path: str | Path) -> dict:
    """A search configuration (YAML) with defaults; SearchError names a bad field."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise SearchError(f"search config {path} does not exist")
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        from helpers.io import yaml_problem

        raise SearchError(f"search config {path} is not valid YAML ({yaml_problem(exc)}); fix the syntax there") from None
    defaults = {"objective": "constrained", "threshold": 1.0, "budget": 10, "method": "gp", "seed": 0, "n_initial": 5,
                "acq_func": "gp_hedge", "surrogate": "composite", "profile": "default", "finetune_images": None, "val_images": 2000,
                "trial": "plan", "sleep_s": 0.0, "log": str(path.with_suffix(".jsonl")),
                "screen_slack": 0.0, "final_epochs": None, "final_runs": 2}
    if not isinstance(cfg, dict):
        raise SearchError(f"search config {path} must be a mapping of fields (baseline, template, objective, ...), "
                          f"not a {type(cfg).__name__}")
    unknown = sorted(set(cfg) - set(defaults) - {"baseline", "template"})
    if unknown:
        raise SearchError(f"search config {path}: unknown field {unknown[0]!r}")
    cfg = {**defaults, **cfg}
    if "template" not in cfg:
        raise SearchError(f"search config {path}: missing 'template' (a plan with free parameters)")
    if cfg["method"] not in METHODS:
        raise SearchError(f"search config {path}, field 'method': {cfg['method']!r} is not one of {', '.join(METHODS)}")
    if cfg["surrogate"] not in SURROGATES:
        raise SearchError(f"search config {path}, field 'surrogate': {cfg['surrogate']!r} is not one of "
                          f"{', '.join(SURROGATES)}")
    if cfg["objective"] not in OBJECTIVES:
        raise SearchError(f"search config {path}, field 'objective': unknown objective {cfg['objective']!r}; "
                          f"choose one of {', '.join(OBJECTIVES)}")
    if not isinstance(cfg["threshold"], (int, float)) or not 0 <= cfg["threshold"] <= 100:
        raise SearchError(f"search config {path}, field 'threshold': {cfg['threshold']!r} is out of range; "
                          "give accuracy points in [0, 100]")
    if cfg["trial"] not in ("plan", "synthetic"):
        raise SearchError(f"search config {path}, field 'trial': {cfg['trial']!r} is not 'plan' or 'synthetic'")
    if not isinstance(cfg["screen_slack"], (int, float)) or not 0 <= cfg["threshold"] + cfg["screen_slack"] <= 100:
        raise SearchError(f"search config {path}, field 'screen_slack': {cfg['screen_slack']!r} must be accuracy points "
                          "with threshold + screen_slack in [0, 100]")
    if cfg["final_epochs"] is not None and (not isinstance(cfg["final_epochs"], (int, float)) or cfg["final_epochs"] <= 0):
        raise SearchError(f"search config {path}, field 'final_epochs': {cfg['final_epochs']!r} must be a positive "
                          "number of fine-tuning passes, or null for a single-fidelity search")
    if cfg["trial"] == "plan" and "baseline" not in cfg:
        raise SearchError(f"search config {path}: missing 'baseline' (model, dataset, width, epochs, ...)")
    for name, allow_none in (("budget", False), ("n_initial", False), ("final_runs", False),
                             ("finetune_images", True), ("val_images", True)):
        v = cfg[name]
        if not (v is None and allow_none) and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise SearchError(f"search config {path}, field {name!r}: {v!r} must be a whole number of at least 1"
                              + (" (or null for all)" if allow_none else ""))
    if isinstance(cfg["seed"], bool) or not isinstance(cfg["seed"], int):
        raise SearchError(f"search config {path}, field 'seed': {cfg['seed']!r} must be a whole number")
    if not isinstance(cfg["sleep_s"], (int, float)) or cfg["sleep_s"] < 0:
        raise SearchError(f"search config {path}, field 'sleep_s': {cfg['sleep_s']!r} must be seconds >= 0")
    if cfg["trial"] == "plan":
        b = cfg["baseline"]
        if not isinstance(b, dict) or not {"model", "dataset"} <= set(b):
            raise SearchError(f"search config {path}, field 'baseline': give a mapping with at least model and dataset")
        from helpers.models import MODELS

        if b["model"] not in MODELS:
            raise SearchError(f"search config {path}, field 'baseline.model': {b['model']!r} is not one of "
                              f"{', '.join(MODELS)}")
        for k in ("width", "epochs", "lr"):
            if k in b and (not isinstance(b[k], (int, float)) or b[k] <= 0):
                raise SearchError(f"search config {path}, field 'baseline.{k}': {b[k]!r} must be a positive number")
        for k in ("batch_size", "train_images"):
            if b.get(k) is not None and (isinstance(b[k], bool) or not isinstance(b[k], int) or b[k] < 1):
                raise SearchError(f"search config {path}, field 'baseline.{k}': {b[k]!r} must be a whole number of "
                                  "at least 1")
    return cfg


def check_log_path(log_path: Path) -> None:
    """The trial log can be created or appended to; SearchError names the path otherwise (before any work)."""
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a"):
            pass
    except OSError as exc:
        raise SearchError(f"trial log {log_path} cannot be written ({exc.strerror or exc}); set 'log' to a writable "
                          "path") from None


@dataclass
class Prepared:
    """What a search on a real baseline needs: the stored reference point, the screening trial and (with a
    long fine-tune) the final trial, both timed against the plain int8 artifact."""

    reference: dict
    screen: Callable
    final: Callable | None


def prepare(template, model, record: dict, ctx, profile: str, reference_path: str | Path, final_epochs=None,
            networks: str | Path | None = None, executor=None, data: tuple | None = None) -> Prepared:
    """The one wiring of a search on a real baseline, used by ``search_from_config`` and ``study.run_study``.

    The reference (plain int8 and fp32 artifacts, their latency and validation accuracy) is measured once and
    kept at ``reference_path``; trials are timed against the plain int8 artifact in alternating blocks. With
    ``networks`` (a path stem), each trial is keyed by the network it produces and a network already run
    returns its first outcome (``trial.NetworkKeyedTrial``; screening and final runs in separate stores).
    With ``executor`` (a Dask client or any concurrent.futures executor) the trials run there as small specs
    (``cluster.RemoteTrial``); ``data`` is then (dataset, finetune_images, val_images, seed) of ``ctx`` and the
    torch threads of a worker.
    """
    from helpers.references import reference_point
    from helpers.trial import NetworkKeyedTrial, PlanTrial, with_finetune_epochs

    ref = stored_reference(reference_path, lambda: reference_point(model, record, ctx))
    pair = ref["latency_reference"]
    if executor is not None:
        from helpers.cluster import RemoteTrial, trial_spec

        def make(plan):
            return RemoteTrial(trial_spec(record, data, plan, profile, pair[1]), executor, plan, model, ctx)
    else:
        def make(plan):
            return PlanTrial(plan, model, record, ctx, profile, reference=pair)

    screen = make(template)
    final = make(with_finetune_epochs(template, final_epochs)) if final_epochs else None
    if networks is not None:
        networks = Path(networks)
        screen = NetworkKeyedTrial(screen, networks.with_name(f"{networks.name}-screen.jsonl"))
        if final is not None:
            final = NetworkKeyedTrial(final, networks.with_name(f"{networks.name}-final{final_epochs}.jsonl"))
    return Prepared(ref, screen, final)


def search_from_config(path: str | Path, budget: int | None = None, resume: bool = False, executor=None,
                       n_parallel: int = 1, log=print) -> tuple[SearchResult, dict]:
    """Run the search a config file describes; returns (result, reference figures)."""
    from helpers.compress.plan import CompressionPlan, PlanError

    cfg = load_config(path)
    budget = int(cfg["budget"] if budget is None else budget)
    try:
        template = CompressionPlan.from_dict(cfg["template"])
    except PlanError as exc:
        raise SearchError(f"search config {path}, template: {exc}") from None
    free = template.free_parameters()
    dimensions(free)
    log_path = Path(cfg["log"])
    if not log_path.is_absolute():
        from helpers import paths

        log_path = paths.ROOT / log_path
    if log_path.exists() and read_log(log_path) and not resume:
        raise SearchError(f"trial log {log_path} already holds trials; pass --resume to continue it or delete it")
    check_log_path(log_path)
    if budget < 1:
        raise SearchError(f"budget {budget!r} must be at least 1 trial")
    final_fn = None
    if cfg["trial"] == "synthetic":
        trial_fn, ref = SyntheticTrial(free, cfg["sleep_s"]), {"fp32_val_accuracy": 0.92, "int8_latency_ms": 1.0}
        if cfg["final_epochs"]:
            final_fn = SyntheticTrial(free, cfg["sleep_s"], accuracy_gain=0.01)
    else:
        from helpers.baselines import baseline
        from helpers.pipeline import context

        b = cfg["baseline"]
        model, record = baseline(b["model"], b["dataset"], b.get("width", 1.0), b.get("epochs", 1.0),
                                 b.get("batch_size", 256), b.get("lr", 0.1), b.get("train_images"))
        ctx = context(b["dataset"], cfg["finetune_images"], cfg["val_images"], cfg["seed"])
        s = prepare(template, model, record, ctx, cfg["profile"], log_path.with_name(f"{log_path.stem}.reference.json"),
                    cfg["final_epochs"])
        ref, trial_fn, final_fn = s.reference, s.screen, s.final
    objective = Objective(cfg["objective"], ref["fp32_val_accuracy"], cfg["threshold"], ref["int8_latency_ms"])

    def report(row):
        if row["status"] == "ok":
            log(f"trial {row['trial']}: accuracy {100 * row['accuracy']:.2f}%, {row['latency_ms']:.4f} ms, "
                f"objective {row['objective']:.4f}{'' if row['feasible'] else ' (infeasible)'}")
        else:
            log(f"trial {row['trial']}: failed ({row['reason']})")

    result = run_search(trial_fn, free, objective.lowered(cfg["screen_slack"]), budget, log_path, cfg["method"], cfg["seed"],
                        cfg["n_initial"], cfg["acq_func"], executor, n_parallel, on_trial=report,
                        surrogate=cfg["surrogate"])
    if final_fn is None:
        return result, ref

    def report_final(row):
        log(f"final run of trial {row['screen_trial']}: " + (
            f"accuracy {100 * row['accuracy']:.2f}%, {row['latency_ms']:.4f} ms{'' if row['feasible'] else ' (misses the bar)'}"
            if row["status"] == "ok" else f"failed ({row['reason']})"))

    final_log = log_path.with_name(f"{log_path.stem}-final{cfg['final_epochs']}.jsonl")
    return confirm_front(result.trials[:budget], objective, final_fn, final_log, cfg["final_runs"], report_final), ref
