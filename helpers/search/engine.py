"""The search engine (O8): Bayesian optimisation of a plan template's free parameters, with random and grid
baselines, and the second fidelity (``confirm_front``). What is minimised lives in ``objective``, where to look
next in ``proposals``, where trials are stored in ``trials``; wiring a search on a real baseline in ``experiment``.

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
import time
from concurrent.futures import Executor, Future, wait, FIRST_COMPLETED
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from helpers.search.objective import Objective, SearchError
from helpers.search.proposals import composite_proposals, dimensions, grid_points
from helpers.search.store import _plain, append_log, read_log

__all__ = ["METHODS", "SURROGATES", "Objective", "SearchError", "run_search", "confirm_front", "best_so_far",
           "pareto_front", "summarise", "trial_row"]

METHODS = ("gp", "random", "grid")
SURROGATES = ("composite", "objective")


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
    feasible = [t for t in ok if objective.feasible(t["accuracy"], t.get("val_n"))]
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
                   feasible=objective.feasible(outcome["accuracy"], outcome.get("val_n")),
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
