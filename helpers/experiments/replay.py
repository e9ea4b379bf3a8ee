"""Optimisers on the tabular benchmark, through one ask/tell interface, replayed on measured outcomes.

Each optimiser proposes a network of the space (a tuple of per-stage channel counts) and is told its measured
validation count and latency. A network already told is told again at once and costs no trial (a live search
reuses a network it has run: ``trial.NetworkKeyedTrial``); a search that keeps proposing known networks stops
after ``MAX_ASKS`` proposals. The trial budget counts distinct networks.

- ``random``: the space without replacement, seeded.
- ``gp``: the composite surrogate of the registered studies (``proposals.composite_proposals``: skopt GPs of
  accuracy and log latency, expected improvement of the objective) after ``n_initial`` random networks, its
  acquisition maximised over the networks it has not yet measured (on continuous candidates snapped to the lattice
  it kept proposing measured networks: see ``tests/test_table.py``).
- ``gp-objective``: skopt's ``Optimizer`` (GP on the objective, EI) over the per-stage indices.
- ``tpe``: Optuna's TPE sampler (ask/tell) over the per-stage counts.
- ``greedy``: NetAdapt-style (Yang et al. 2018): from the widest network, each round measures every network one
  notch narrower in one stage and moves to the one that clears the bar with the most latency saved per accuracy
  point lost; it stops when none clears. Deterministic: every seed gives the same run.

The objective the model-based ones minimise is the studies' constrained one (``objective.Objective``): latency over
plain int8's when the validation count clears the bar, plus a penalty growing with the shortfall otherwise.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np

from helpers.search.objective import Objective
from helpers.experiments.table_config import Lattice

MAX_ASKS = 20  # proposals per trial of budget before a search that only repeats itself is stopped


class TableSearch:
    """A table's outcomes as an oracle: {channels: {val_correct, val_n, latency_ms}}, the bar as an exact fraction of
    validation images (``bars.bar_fraction``) and the objective the model-based optimisers minimise."""

    def __init__(self, outcomes: dict, lattice: Lattice, bar: Fraction, objective: Objective):
        self.outcomes, self.lattice, self.bar, self.objective = outcomes, lattice, bar, objective

    def clears(self, o) -> bool:
        return Fraction(int(o["val_correct"]), int(o["val_n"])) >= self.bar

    def value(self, o: dict) -> float:
        return self.objective(o["val_correct"] / o["val_n"], o["latency_ms"])

    def best_latency(self) -> float:
        """The fastest network in the table that clears the bar (the regret's denominator)."""
        return min(o["latency_ms"] for o in self.outcomes.values() if self.clears(o))


def _random(space: TableSearch, seed: int):
    nets = space.lattice.networks()
    order = np.random.default_rng(seed).permutation(len(nets))
    yield  # primed; random search ignores what it is told
    for i in order:
        yield nets[i]


def _varying(lattice: Lattice) -> list:
    """The stages with more than one count (the model-based optimisers' dimensions; a fixed stage is no dimension)."""
    return [k for k, v in lattice.stages.items() if len(v) > 1]


def _skopt_dims(lattice: Lattice):
    from skopt.space import Integer

    return [Integer(0, len(lattice.stages[k]) - 1, name=k) for k in _varying(lattice)]


def _to_net(lattice: Lattice, idx) -> tuple:
    pos = dict(zip(_varying(lattice), idx))
    return tuple(v[int(round(float(pos[k])))] if k in pos else v[0] for k, v in lattice.stages.items())


def _to_idx(lattice: Lattice, net) -> list:
    return [lattice.stages[k].index(c) for k, c in zip(lattice.stages, net) if k in _varying(lattice)]


def _gp_objective(space: TableSearch, seed: int, n_initial: int):
    from skopt import Optimizer

    opt = Optimizer(_skopt_dims(space.lattice), base_estimator="GP", n_initial_points=n_initial, acq_func="EI",
                    acq_optimizer="sampling", random_state=seed)
    told = yield
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x = opt.ask()
        told = yield _to_net(space.lattice, x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt.tell(x, space.value(told))


def _gp_composite(space: TableSearch, seed: int, n_initial: int):
    from skopt.space import Real, Space

    from helpers.search.proposals import composite_proposals

    # per-stage indices as reals, rounded to the nearest count; the acquisition is maximised over the networks not
    # yet measured (the space is enumerable), so no proposal repeats one
    names = _varying(space.lattice)
    sk = Space([Real(0, len(space.lattice.stages[k]) - 1, transform="normalize", name=k) for k in names])
    nets = space.lattice.networks()
    done, measured = [], set()
    told = yield
    first = [nets[i] for i in np.random.default_rng(seed).permutation(len(nets))[:n_initial]]
    points = np.asarray(sk.transform([_to_idx(space.lattice, n) for n in nets]))  # every network, transformed once
    while len(measured) < len(nets):
        if len(done) < len(first):
            net = first[len(done)]
        else:
            pool = points[[n not in measured for n in nets]]
            x = composite_proposals(sk, done, names, space.objective, 1, seed, samples=32, pool=pool)[0]
            net = _to_net(space.lattice, x)
        told = yield net
        measured.add(net)
        done.append(_done(space, net, told, names))


def _done(space: TableSearch, net, o: dict, names) -> dict:
    return {"values": dict(zip(names, _to_idx(space.lattice, net))), "status": "ok",
            "accuracy": o["val_correct"] / o["val_n"], "latency_ms": o["latency_ms"], "objective": space.value(o)}


def _tpe(space: TableSearch, seed: int, n_initial: int):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_initial))
    told = yield
    while True:
        t = study.ask()
        net = tuple(_suggest(t, k, v) for k, v in space.lattice.stages.items())
        told = yield net
        study.tell(t, space.value(told))


def _suggest(trial, name: str, choices: list) -> int:
    steps = set(np.diff(choices)) if len(choices) > 1 else {1}
    if len(steps) == 1:  # evenly spaced: an ordered integer with its step (TPE then sees neighbours as near)
        return trial.suggest_int(name, choices[0], choices[-1], step=int(steps.pop()))
    return trial.suggest_categorical(name, choices)


def _greedy(space: TableSearch, seed: int, n_initial: int):
    current = space.lattice.widest()
    here = yield
    here = yield current
    while True:
        best, trade = None, -math.inf
        for cand in space.lattice.shrinks(current):
            o = yield cand
            if space.clears(o):
                saved = here["latency_ms"] - o["latency_ms"]
                lost = max(here["val_correct"] / here["val_n"] - o["val_correct"] / o["val_n"], 1e-4)
                if saved / lost > trade:
                    best, trade, best_o = cand, saved / lost, o
        if best is None:
            return
        current, here = best, best_o


OPTIMISERS = {"random": lambda s, seed, n: _random(s, seed), "gp": _gp_composite, "gp-objective": _gp_objective,
              "tpe": _tpe, "greedy": _greedy}


def replay(space: TableSearch, optimiser: str, seed: int, budget: int, n_initial: int = 5) -> list[dict]:
    """One search of ``budget`` distinct networks on the table; returns its trials in order, each with the best
    clearing latency so far (NaN before any network clears)."""
    if optimiser not in OPTIMISERS:
        raise ValueError(f"optimiser {optimiser!r} is not one of {', '.join(OPTIMISERS)}")
    n = len(space.lattice)
    if not 1 <= budget <= n:
        raise ValueError(f"budget {budget} is not a number of trials between 1 and the space's {n} networks")
    gen = OPTIMISERS[optimiser](space, seed, n_initial)
    next(gen)
    seen, trials, best, asks, told = {}, [], math.inf, 0, None
    try:
        net = gen.send(None)
        while len(trials) < budget and asks < MAX_ASKS * budget:
            asks += 1
            o = space.outcomes[net]
            if net not in seen:
                seen[net] = o
                if space.clears(o):
                    best = min(best, o["latency_ms"])
                trials.append({"trial": len(trials), "network": Lattice.key(net), "val_correct": o["val_correct"],
                               "latency_ms": o["latency_ms"], "clears": space.clears(o),
                               "best_ms": best if math.isfinite(best) else math.nan, "asks": asks})
            told = o
            net = gen.send(told)
    except StopIteration:  # greedy found no narrower network that clears the bar
        pass
    return trials
