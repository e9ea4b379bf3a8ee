"""Wiring a search on a real baseline: the ``search`` command's config (checked whole), the stored reference, the
screening and final trials (``prepare``, shared with the study), and the command's driver (``search_from_config``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from helpers.search.objective import OBJECTIVES, Objective, SearchError
from helpers.search.proposals import dimensions
from helpers.search.engine import METHODS, SURROGATES, SearchResult, confirm_front, run_search
from helpers.search.store import check_log_path, default_log, network_stores, read_log, search_files, stored_reference


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
        from helpers.core.io import yaml_problem

        raise SearchError(f"search config {path} is not valid YAML ({yaml_problem(exc)}); fix the syntax there") from None
    defaults = {"objective": "constrained", "threshold": 1.0, "budget": 10, "method": "gp", "seed": 0, "n_initial": 5,
                "acq_func": "gp_hedge", "surrogate": "composite", "profile": "default", "finetune_images": None, "val_images": 2000,
                "trial": "plan", "sleep_s": 0.0, "log": str(default_log(path.resolve())),
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
        if isinstance(b, dict) and "checkpoint" in b:  # a baseline checkpoint (e.g. imported): its sidecar says the rest
            from helpers.core import paths
            from helpers.networks.checkpoints import read_sidecar

            given = Path(b["checkpoint"]).expanduser()  # relative: beside the config, else from the repository
            ckpt = next((c for c in (path.parent / given, paths.resolve(given)) if c.is_file()), given)
            if not Path(ckpt).is_file():
                raise SearchError(f"search config {path}, field 'baseline.checkpoint': {b['checkpoint']} does not exist; "
                                  "give a .pt file under runs/checkpoints/ (e.g. from `python -m helpers baseline import`)")
            side = read_sidecar(ckpt)["config"]
            cfg["baseline"] = b = {**b, "checkpoint": str(ckpt), "model": side["model"], "dataset": side["dataset"]}
        if not isinstance(b, dict) or not {"model", "dataset"} <= set(b):
            raise SearchError(f"search config {path}, field 'baseline': give a mapping with at least model and dataset, "
                              "or a checkpoint")
        from helpers.networks.models import MODELS

        if "checkpoint" not in b and b["model"] not in MODELS:
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


@dataclass
class Prepared:
    """What a search on a real baseline needs: the stored reference point, the screening trial and (with a
    long fine-tune) the final trial, both timed against the plain int8 artifact."""

    reference: dict
    screen: Callable
    final: Callable | None


def prepare(template, model, record: dict, ctx, profile: str, reference_path: str | Path, final_epochs=None,
            networks: str | Path | None = None, executor=None, data: tuple | None = None,
            command: bool | Path = False) -> Prepared:
    """The one wiring of a search on a real baseline, used by ``search_from_config`` and ``study.run_study``.

    The reference (plain int8 and fp32 artifacts, their latency and validation accuracy) is measured once and
    kept at ``reference_path``; trials are timed against the plain int8 artifact in alternating blocks. With
    ``networks`` (a path stem), each trial is keyed by the network it produces and a network already run
    returns its first outcome (``trial.NetworkKeyedTrial``; screening and final runs in separate stores).
    With ``executor`` (a Dask client or any concurrent.futures executor) the trials run there as small specs
    (``cluster.RemoteTrial``); ``data`` is then (dataset, finetune_images, val_images, seed) of ``ctx`` and the
    torch threads of a worker.
    """
    from helpers.search.references import reference_point
    from helpers.search.trial import NetworkKeyedTrial, PlanTrial, with_finetune_epochs

    from helpers.search.references import remade_reference

    ref = stored_reference(reference_path, lambda: reference_point(model, record, ctx),
                           rebuild=lambda: remade_reference(model, record, ctx))
    pair = ref["latency_reference"]
    if executor is not None:
        from helpers.search.cluster import RemoteTrial, trial_spec

        def make(plan):
            return RemoteTrial(trial_spec(record, data, plan, profile, pair[1]), executor, plan, model, ctx)
    else:
        def make(plan):
            return PlanTrial(plan, model, record, ctx, profile, reference=pair, command=command)

    screen = make(template)
    final = make(with_finetune_epochs(template, final_epochs)) if final_epochs else None
    if networks is not None:
        screen_store, final_store = network_stores(networks, final_epochs)
        screen = NetworkKeyedTrial(screen, screen_store)
        if final is not None:
            final = NetworkKeyedTrial(final, final_store)
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
        from helpers.core import paths

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
        from helpers.networks.baselines import baseline
        from helpers.search.pipeline import baseline_context

        b = cfg["baseline"]
        if "checkpoint" in b:
            from helpers.networks.checkpoints import load_model, read_sidecar

            model, _ = load_model(b["checkpoint"])
            record = {**read_sidecar(b["checkpoint"]), "path": b["checkpoint"]}
        else:
            model, record = baseline(b["model"], b["dataset"], b.get("width", 1.0), b.get("epochs", 1.0),
                                     b.get("batch_size", 256), b.get("lr", 0.1), b.get("train_images"))
        ctx = baseline_context(record, cfg["finetune_images"], cfg["val_images"], cfg["seed"])
        s = prepare(template, model, record, ctx, cfg["profile"], search_files(log_path)["reference"],
                    cfg["final_epochs"], command=search_files(log_path)["records"])  # beside the log, not in results/
        ref, trial_fn, final_fn = s.reference, s.screen, s.final
        ref = {**ref, "val_n": len(ctx.val_ds)}
    objective = Objective(cfg["objective"], ref["fp32_val_accuracy"], cfg["threshold"], ref["int8_latency_ms"],
                          baseline_n=ref.get("val_n"))

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

    final_log = search_files(log_path, cfg["final_epochs"])["final"]
    return confirm_front(result.trials[:budget], objective, final_fn, final_log, cfg["final_runs"], report_final), ref


def chosen_on_test(cfg: dict, best: dict | None, test_images: int | None = None) -> dict | None:
    """The chosen plan's deployed artifact scored once on the test split of its baseline's data, at its input size
    and channels: {correct, n, accuracy}; None without a chosen plan or an artifact on this machine."""
    if not best or cfg["trial"] != "plan" or not best.get("artifact"):
        return None
    from helpers.core import paths
    from helpers.datasets.data import load_dataset
    from helpers.deploy.runtime import evaluate_tflite

    artifact = paths.resolve(best["artifact"])
    if not Path(artifact).is_file():
        return None
    b = cfg["baseline"]
    size, channels = 32, None
    if "checkpoint" in b:
        from helpers.networks.checkpoints import read_sidecar

        side = read_sidecar(b["checkpoint"])["config"]
        size, channels = side.get("input_size", 32), side.get("in_channels")
    test = load_dataset(b["dataset"], "test", size, channels).subset(test_images)
    acc = evaluate_tflite(artifact, test)["accuracy"]
    return {"correct": int(round(acc * len(test))), "n": len(test), "accuracy": acc}
