"""Where a search looks next: skopt dimensions of a template's free parameters, a coarse grid, and the
composite-GP proposals (expected improvement of the objective under GPs of accuracy and latency)."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np

from helpers.search.objective import Objective, SearchError


def dimensions(free: list[dict]):
    """skopt dimensions for a plan template's free parameters (Real, Integer or Categorical)."""
    from skopt.space import Categorical, Integer, Real

    dims = []
    for f in free:
        if "choices" in f:
            dims.append(Categorical(list(f["choices"]), name=f["name"]))
        elif f["kind"] == "int":
            dims.append(Integer(int(f["low"]), int(f["high"]), name=f["name"]))
        else:
            dims.append(Real(float(f["low"]), float(f["high"]), name=f["name"]))
    if not dims:
        raise SearchError("the plan template has no free parameters; mark some as {low: .., high: ..} or {choices: [..]}")
    return dims



def grid_points(dims, budget: int, seed: int) -> list[list]:
    """A coarse grid (about budget^(1/d) levels per numeric dimension), in seeded random order."""
    from skopt.space import Categorical, Integer

    levels = max(2, int(math.floor(budget ** (1 / len(dims)))))
    axes = []
    for d in dims:
        if isinstance(d, Categorical):
            axes.append(list(d.categories))
        elif isinstance(d, Integer):
            axes.append(sorted(set(int(round(v)) for v in np.linspace(d.low, d.high, levels))))
        else:
            axes.append(list(np.linspace(d.low, d.high, levels)))
    grid = [list(p) for p in itertools.product(*axes)]
    np.random.default_rng(seed).shuffle(grid)
    return grid



def composite_proposals(space, done: list[dict], names: list[str], objective: Objective, k: int, seed: int,
                        candidates: int = 2000, samples: int = 64, pool: np.ndarray | None = None) -> list[list]:
    """``k`` points by expected improvement of the objective under two GPs, one per measured quantity.

    The objective is a known function of two measurements that each vary smoothly with the parameters,
    but the constrained objective has a kink at the accuracy bar, which one GP on the scalar blurs: on
    benchmarks/bench_search.py's proxy of 08's space (20 seeds) skopt's GP on the objective reached random
    search's 40-trial best within 20 trials in 9/20 seeds. So, as in composite-function BO (Astudillo & Frazier,
    ICML 2019), skopt's GP regressor (``cook_estimator("GP")``) models validation accuracy and log latency
    on skopt's normalised space, and the expected improvement over the best objective so far is estimated
    by drawing ``samples`` accuracy and latency values from the two posteriors at ``candidates`` random
    points plus as many again around the incumbent; the same proxy then reached it in 19/20 seeds. skopt
    has no acquisition over several outputs and BoTorch, which has, would be a second BO stack beside
    skopt, hence this function. Failed trials count as zero accuracy at the slowest latency seen. A batch
    (``k`` > 1) is filled one point at a time, each chosen point added with its predicted means (the
    kriging believer, a constant liar that lies with the GP's own prediction). ``pool`` (points in the
    transformed space) replaces the random candidates when the space is finite and enumerable: the
    acquisition is then maximised over exactly those points (a tabular space's networks not yet measured),
    and a chosen point leaves the pool.
    """
    from skopt.utils import cook_estimator

    rng = np.random.RandomState(seed * 1_000_003 + len(done))
    ok = [t for t in done if t.get("status") == "ok"]
    slowest = max(t["latency_ms"] for t in ok)
    X = space.transform([[t["values"][n] for n in names] for t in done]).tolist()
    acc = [t["accuracy"] if t.get("status") == "ok" else 0.0 for t in done]
    lat = [math.log(t["latency_ms"] if t.get("status") == "ok" else slowest) for t in done]
    objectives = [t["objective"] if t.get("status") == "ok" else np.inf for t in done]
    best, incumbent = min(objectives), np.array(X[int(np.argmin(objectives))])
    points = []
    for _ in range(k):
        if pool is not None and not len(pool):
            break
        cand = pool if pool is not None else np.vstack([
            space.transform(space.rvs(candidates, random_state=rng)),
            np.clip(incumbent + rng.normal(0, 0.05, (candidates, len(incumbent))), 0, 1)])
        with warnings.catch_warnings():  # few points: length scales at their bounds, variances rounded below 0
            warnings.simplefilter("ignore", category=UserWarning)
            gps = [cook_estimator("GP", space=space, random_state=seed).fit(np.array(X), np.array(y)) for y in (acc, lat)]
            (ma, sa), (ml, sl) = (gp.predict(cand, return_std=True) for gp in gps)
        za, zl = rng.standard_normal((samples, 1)), rng.standard_normal((samples, 1))
        draws = objective.values(ma + sa * za, np.exp(ml + sl * zl))
        ei = np.maximum(best - draws, 0).mean(0)
        i = int(np.argmax(ei)) if ei.max() > 0 else int(np.argmin(draws.mean(0)))
        points.append(space.inverse_transform(cand[i:i + 1])[0])
        if pool is not None:
            pool = np.delete(pool, i, axis=0)
        X.append(space.transform([points[-1]])[0].tolist())  # the point as proposed (integers, choices snapped)
        acc.append(float(ma[i]))
        lat.append(float(ml[i]))
    return points


