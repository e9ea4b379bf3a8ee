"""O8 as an experiment: GP against simpler search, several seeds, both datasets, equal fidelity, one verdict.

A study is, for each dataset, seed and method: a search with the same budget and (per seed) the same initial
random points, then the same second fidelity for every method (its own screening front re-run with the long
fine-tune, the same number of final runs, the same bisection rule), and that method's chosen plan: the
fastest final run that clears the real bar on validation, scored once on test. The verdict is the one the
study config pre-registers (``criterion``), computed by :func:`verdict` from the chosen plans.

Everything a study needs to be re-read lies in its committed folder ``results/study/<name>/<machine>/``
(smoke: under runs/): ``study.json`` (the config and its key), ``run_record.json``, one JSON-lines log per
search and per final stage, the per-dataset reference (plain int8 latency, measured once) and
``chosen.csv``. A killed study resumes with ``--resume`` as if it had never stopped (``search.run_search``
replays each log); one study's latencies all come from one machine (its folder is per machine).
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import paths
from helpers.search import METHODS, SURROGATES, SearchError
from helpers.trials import StudyLayout, read_log

CRITERION = {"metric": "latency of the GP's chosen plan / random search's, per seed (paired, same initial points)",
             "statistic": "median over seeds", "interval": 0.90, "success": "upper bound of the interval < 1.0",
             "no_plan": "a method that clears no bar for a seed scores the plain int8 latency (what one would deploy)"}


SCREEN_RULES = ("constant", "calibrated")
BARS = ("baseline", "budget_matched")
#: final runs a calibrated screening rule needs before it replaces the prior slack (two seeds of two methods'
#: two final runs: fewer points than that move a fitted line more than they inform it)
MIN_CALIBRATION_RUNS = 8


@dataclass
class StudyConfig:
    """A study, read from YAML (:func:`load_study`); ``criterion`` is the pre-registered verdict rule."""

    name: str
    template: dict
    datasets: list = field(default_factory=lambda: ["fashion_mnist", "glyphs"])
    architecture: str = "resnet18"
    seeds: list = field(default_factory=lambda: [0, 1, 2, 3, 4])
    methods: list = field(default_factory=lambda: ["gp", "random"])
    budget: int = 20
    n_initial: int = 5
    final_runs: int = 2
    final_epochs: dict | float = 2.0
    screen_slack: dict | float = 3.0
    screen_rule: str = "constant"  # constant: screen_slack | calibrated: fitted on earlier seeds' final runs
    threshold: float = 1.0
    objective: str = "constrained"
    surrogate: str = "composite"
    profile: str = "default"
    baseline_spec: dict | None = None  # None: the profile's common.baseline_spec
    finetune_images: int | None = None
    val_images: int | None = 2000
    test_images: int | None = None
    bar: str = "baseline"  # the primary bar: baseline (the baseline's accuracy) | budget_matched (see helpers.controls)
    criterion: dict = field(default_factory=lambda: dict(CRITERION))

    def key(self) -> str:
        """A hash of everything that decides the study's trials (not the seeds or methods run so far)."""
        from helpers.identity import config_key

        d = asdict(self)
        for k in ("seeds", "methods"):
            d.pop(k)
        if d["screen_rule"] == "constant":  # added after the first study: its absence keeps that study's key
            d.pop("screen_rule")
        if d["bar"] == "baseline":  # likewise
            d.pop("bar")
        return config_key(d)


def parse_seeds(text) -> list[int]:
    """'0-4', '0,2,5' or a list of whole numbers; ValueError in one sentence otherwise."""
    if isinstance(text, list):
        items = text
    else:
        m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", str(text))
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise ValueError(f"seed range {text!r} runs backwards; write it low-high, e.g. 0-4")
            return list(range(lo, hi + 1))
        items = [s.strip() for s in str(text).split(",")]
    try:
        seeds = [int(s) for s in items]
    except (TypeError, ValueError):
        raise ValueError(f"seeds {text!r} are malformed; give a range like 0-4 or a list like 0,1,2") from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds {text!r} must be distinct whole numbers >= 0, at least one")
    return seeds


def load_study(path: str | Path, seeds=None, methods=None) -> StudyConfig:
    """The study config at ``path`` (YAML), checked whole; ``seeds``/``methods`` override the file's lists."""
    import yaml

    from helpers.io import yaml_problem

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"study config {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SearchError(f"study config {path} is not valid YAML ({yaml_problem(exc)}); fix the syntax there") from None
    if not isinstance(raw, dict):
        raise SearchError(f"study config {path} must be a mapping of fields, not a {type(raw).__name__}")
    known = set(StudyConfig.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SearchError(f"study config {path}: unknown field {unknown[0]!r}; known: {', '.join(sorted(known))}")
    for need in ("name", "template"):
        if need not in raw:
            raise SearchError(f"study config {path}: missing {need!r}")
    return check(StudyConfig(**raw), f"study config {path}", seeds, methods)


def check(cfg: StudyConfig, where: str, seeds=None, methods=None) -> StudyConfig:
    """``cfg`` with its seeds parsed and every field checked; SearchError naming ``where`` and the fix otherwise."""
    from helpers.compress.plan import CompressionPlan, PlanError

    cfg.seeds = parse_seeds(seeds if seeds is not None else cfg.seeds)
    cfg.methods = list(methods if methods is not None else cfg.methods)
    bad = [m for m in cfg.methods if m not in METHODS]
    if bad or not cfg.methods:
        raise SearchError(f"{where}: method {bad[0] if bad else None!r} is not one of {', '.join(METHODS)}")
    if cfg.screen_rule not in SCREEN_RULES:
        raise SearchError(f"{where}: screen_rule {cfg.screen_rule!r} is not one of {', '.join(SCREEN_RULES)}")
    if cfg.bar not in BARS:
        raise SearchError(f"{where}: bar {cfg.bar!r} is not one of {', '.join(BARS)}")
    if cfg.surrogate not in SURROGATES:
        raise SearchError(f"{where}: surrogate {cfg.surrogate!r} is not one of {', '.join(SURROGATES)}")
    for name in ("budget", "n_initial", "final_runs"):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise SearchError(f"{where}: {name} {v!r} must be a whole number of at least 1")
    if cfg.budget < cfg.n_initial:
        raise SearchError(f"{where}: budget {cfg.budget} is smaller than n_initial {cfg.n_initial}; the GP "
                          "would never propose: raise the budget or lower n_initial")
    _check_fields(cfg, where)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(cfg.name)):
        raise SearchError(f"{where}: name {cfg.name!r} must be letters, digits, '-', '_' or '.'")
    try:
        free = CompressionPlan.from_dict(cfg.template).free_parameters()
    except PlanError as exc:
        raise SearchError(f"{where}, template: {exc}") from None
    if not free:
        raise SearchError(f"{where}, template: no free parameters to search")
    return cfg


def _check_fields(cfg: StudyConfig, where: str) -> None:
    """Threshold, architecture, datasets, objective, per-dataset values, sizes and the criterion, each refused in one
    sentence before the study writes anything."""
    import math

    from helpers.data import DATASETS
    from helpers.models import MODELS
    from helpers.objective import OBJECTIVES
    from helpers.params import per_dataset
    from helpers.params import PROFILES

    number = (int, float)
    if isinstance(cfg.threshold, bool) or not isinstance(cfg.threshold, number) or not 0 <= cfg.threshold < 100:
        raise SearchError(f"{where}: threshold {cfg.threshold!r} must be accuracy points in [0, 100)")
    if cfg.architecture not in MODELS:
        raise SearchError(f"{where}: architecture {cfg.architecture!r} is not one of {', '.join(MODELS)}")
    if not isinstance(cfg.datasets, list) or not cfg.datasets:
        raise SearchError(f"{where}: datasets must be a non-empty list of {', '.join(DATASETS)}")
    for ds in cfg.datasets:
        if ds not in DATASETS:
            raise SearchError(f"{where}: dataset {ds!r} is not one of {', '.join(DATASETS)}")
    if cfg.objective not in OBJECTIVES:
        raise SearchError(f"{where}: objective {cfg.objective!r} is not one of {', '.join(OBJECTIVES)}")
    if cfg.profile not in PROFILES:
        raise SearchError(f"{where}: profile {cfg.profile!r} is not one of {', '.join(PROFILES)}")
    for name in ("final_epochs", "screen_slack"):
        try:
            values = per_dataset(name, getattr(cfg, name), cfg.datasets)
        except ValueError as exc:
            raise SearchError(f"{where}: {exc}") from None
        for ds, v in values.items():
            if isinstance(v, bool) or not isinstance(v, number) or not math.isfinite(v) or \
                    (name == "final_epochs" and v <= 0):
                raise SearchError(f"{where}: {name} for {ds} is {v!r}; give a "
                                  f"{'positive number of passes' if name == 'final_epochs' else 'number of points'}")
    for name in ("finetune_images", "val_images", "test_images"):
        v = getattr(cfg, name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise SearchError(f"{where}: {name} {v!r} must be a whole number of at least 1 or null (all)")
    crit = cfg.criterion
    if not isinstance(crit, dict) or sorted(crit) != sorted(CRITERION):
        raise SearchError(f"{where}: criterion must give {', '.join(CRITERION)}")
    level = crit["interval"]
    if isinstance(level, bool) or not isinstance(level, number) or not 0 < level < 1:
        raise SearchError(f"{where}: criterion interval {level!r} must be a coverage in (0, 1), e.g. 0.90")


def chain_study(**fields) -> StudyConfig:
    """08's one-seed study inside the chain: checked like a study file and named by its config's key, so changed
    parameters start a new folder and a re-run of the chain resumes the same one."""
    cfg = check(StudyConfig(name="08", **fields), "notebook 08's study")
    cfg.name = f"08-{cfg.key()[:10]}"
    return cfg


def record_profile(cfg: StudyConfig) -> str:
    """The name the study's run record, plan artifacts and trial provenance go under (see ``paths.results_dir``)."""
    return f"{'smoke/' if cfg.profile == 'smoke' else ''}study/{cfg.name}"


def study_dir(cfg: StudyConfig, machine_id: str, within: str | None = None) -> Path:
    """The study's folder for this machine: committed under results/study/ (smoke: runs/smoke/study/); a study
    run inside the chain of profile ``within`` (08) keeps its logs with that chain's: runs/<profile>/study/."""
    if within:
        return paths.run_dir(within) / "study" / cfg.name / machine_id
    return paths.results_dir(record_profile(cfg), machine_id)


def open_folder(cfg: StudyConfig, resume: bool, within: str | None = None) -> Path:
    """The study folder, created with ``study.json`` or checked against it.

    Refused in one sentence: a folder of the same name holding another config; a folder with trials and no
    ``--resume``; a ``--resume`` on a machine that has no part of the study while another machine has (its
    latencies would mix machines: start it whole here without ``--resume``).
    """
    from helpers.io import write_json
    from helpers.identity import machine

    folder = study_dir(cfg, machine()["id"], within)
    layout = StudyLayout(folder)
    meta = layout.meta
    if meta.exists():
        old = json.loads(meta.read_text())
        if old.get("key") != cfg.key():
            raise SearchError(f"results folder {folder} holds study {cfg.name!r} with another config (key "
                              f"{old.get('key')} vs {cfg.key()}); give the changed study a new name or delete the folder")
        if not resume and layout.has_trials():
            raise SearchError(f"study {cfg.name!r} already has trials in {folder}; pass --resume to continue it")
    else:
        others = ([p.name for p in folder.parent.iterdir() if StudyLayout(p).meta.exists() and p != folder]
                  if folder.parent.exists() else [])
        if resume and others:
            raise SearchError(f"study {cfg.name!r} was run on machine(s) {', '.join(others)}, not on this one "
                              f"({folder.name}); latencies of one study come from one machine: start it here "
                              "without --resume (a new folder) or resume it on that machine")
        write_json(meta, {"key": cfg.key(), "config": asdict(cfg), "criterion": cfg.criterion})
    return folder


def committed(path: str | Path) -> Path | None:
    """The folder of the study at ``path`` (relative paths: from the repository root) to draw: this machine's if
    it has one, else the machine's with the most finished searches; None when no machine has run this config yet."""
    from helpers.identity import machine

    path = Path(path)
    cfg = load_study(path if path.is_absolute() or path.exists() else paths.ROOT / path)  # notebooks run in notebooks/
    here = machine()["id"]
    layouts = [StudyLayout(f) for f in study_dir(cfg, here).parent.glob("*")]
    folders = [x for x in layouts if x.meta.exists() and json.loads(x.meta.read_text()).get("key") == cfg.key()]

    def rank(x: StudyLayout):
        return (x.folder.name == here, len(pd.read_csv(x.chosen)) if x.chosen.exists() else 0)

    return max(folders, key=rank).folder if folders else None


def run_study(cfg: StudyConfig, resume: bool = False, log=print, progress: bool = True,
              within: str | None = None, executor=None, worker_threads: int = 1) -> tuple[pd.DataFrame, Path]:
    """Run (or resume) the study; returns the chosen plans (one row per dataset, seed and method) and its folder.

    Every trial goes to its log as it finishes and ``chosen.csv`` is rewritten after each search, so a study
    cut short keeps all it finished. A tqdm bar over the study's trials shows its ETA (from the trials run in
    this call: those replayed from the logs count as done from the start). ``within``: the chain profile the
    study runs inside (notebook 08): its logs go beside that chain's and its trials name that chain's run record.

    ``executor`` (a Dask client, see ``cluster``, or any concurrent.futures executor): the trials run there as
    small specs and as many searches as it has slots run side by side, each search in order exactly as alone;
    this process (the client) writes every log, and its machine is the study's target (references, latency
    units, test accuracy); every worker's machine goes to ``workers.json``. ``worker_threads``: torch threads per
    trial on a worker.
    """
    import threading

    from tqdm.auto import tqdm

    from helpers.baselines import BaselineSpec
    from helpers.compress.plan import CompressionPlan
    from helpers.data import load_dataset
    from helpers.io import write_json
    from helpers.params import per_dataset
    from helpers.pipeline import context
    from helpers.provenance import current_record
    from helpers.params import load_profile
    from helpers.experiment import prepare
    from helpers.search import Objective, confirm_front, run_search

    folder = open_folder(cfg, resume, within)
    layout = StudyLayout(folder)
    profile = within or record_profile(cfg)
    before = json.loads(layout.run_record.read_text()) if layout.run_record.exists() else None
    record = current_record(profile)  # the study's own run record, characterised, in its folder; every trial names it
    if before and before.get("id") != record["id"]:  # a resume under other code or installs: keep the earlier record
        write_json(layout.earlier_record(before["id"]), before)
    if executor is not None:
        from helpers.cluster import workers

        write_json(layout.workers, {"target": record["machine"], "workers": workers(executor)})
    spec = BaselineSpec.parse(cfg.baseline_spec or load_profile(cfg.profile)["common"]["baseline_spec"])
    template = CompressionPlan.from_dict(cfg.template)
    free = template.free_parameters()
    final_epochs_of = per_dataset("final_epochs", cfg.final_epochs, cfg.datasets)
    slack_of = per_dataset("screen_slack", cfg.screen_slack, cfg.datasets)
    per_search = cfg.budget + cfg.final_runs
    tags = [(ds, seed, m, layout.tag(ds, seed, m)) for ds in cfg.datasets for seed in cfg.seeds for m in cfg.methods]
    done = sum(min(per_search, len(read_log(layout.log(ds, seed, m))) + len(read_log(layout.log(ds, seed, m, True))))
               for ds, seed, m, _ in tags)
    bar = tqdm(total=len(tags) * per_search, initial=done, desc=f"study {cfg.name}", unit="trial",
               disable=not progress)
    setups = {}
    for ds in cfg.datasets:  # on the client: baselines, references (the target machine's), test sets
        model, rec = spec.build(cfg.architecture, ds)
        ctx = context(ds, cfg.finetune_images, cfg.val_images)
        s = prepare(template, model, rec, ctx, profile, layout.reference(ds), final_epochs_of[ds],
                    networks=layout.networks(ds), executor=executor,
                    data=(ds, cfg.finetune_images, cfg.val_images, 0, worker_threads))
        test_ds = load_dataset(ds, "test").subset(cfg.test_images)
        ref, fp32_test = s.reference, _fp32_test(folder, ds, s.reference, test_ds)
        if cfg.bar == "budget_matched":  # the unpruned network trained from scratch for the plans' budget sets the bar
            ref, fp32_test = matched_reference(cfg, spec, rec, ds, ctx, test_ds, final_epochs_of[ds], s.reference)
        obj = Objective(cfg.objective, ref["fp32_val_accuracy"], cfg.threshold, ref["int8_latency_ms"])
        setups[ds] = (s, obj, test_ds, fp32_test, ref)
    chosen, lock = [], threading.Lock()

    def search(t) -> None:
        ds, seed, m, tag = t
        s, obj, test_ds, fp32_test, ref = setups[ds]

        def tick(row):  # trials run now (replayed ones are counted in ``done``)
            bar.update(1)
            bar.set_postfix_str(f"{tag} trial {row['trial']}")

        with lock:  # both methods of a seed get one slack (a calibrated one is fixed when the first asks)
            slack = search_slack(cfg, folder, ds, seed, obj.bar, slack_of[ds])
        res = run_search(s.screen, free, obj.lowered(slack), cfg.budget, layout.log(ds, seed, m), m, seed,
                         cfg.n_initial, surrogate=cfg.surrogate, on_trial=tick)
        fin = confirm_front(res.trials[:cfg.budget], obj, s.final, layout.log(ds, seed, m, True), cfg.final_runs,
                            on_trial=tick)
        row = {**_chosen_row(ds, seed, m, fin, ref, test_ds, fp32_test, executor), "screen_slack": slack}
        with lock:
            chosen.append(row)
            bar.update(max(0, cfg.final_runs - len(fin.trials)))  # a front shorter than final_runs: never counted
            _write_chosen(folder, chosen)
            log(f"{tag}: {row['summary']}")

    if executor is None:
        for t in tags:
            search(t)
    else:
        from concurrent.futures import ThreadPoolExecutor

        from helpers.cluster import slots

        with ThreadPoolExecutor(max_workers=slots(executor)) as pool:
            list(pool.map(search, tags))  # re-raises the first search that failed
    bar.close()
    return pd.DataFrame(chosen), folder


def calibrated_slack(finals: list[dict], bar: float, prior: float,
                     min_runs: int | None = None) -> tuple[float, str]:
    """The screening slack (points) a model of the long fine-tune gives, and how it was found.

    A least-squares line of final accuracy on screening accuracy over ``finals`` (final runs, each with
    ``screen_accuracy`` and ``accuracy``); the slack is how far under ``bar`` (a fraction) the screening accuracy
    may lie whose predicted final accuracy reaches the bar, clipped to [0, 50] points. ``prior`` stands until
    ``min_runs`` (default ``MIN_CALIBRATION_RUNS``) final runs exist, and whenever the line does not rise
    (screening then orders nothing). Written here because it is two lines of numpy; a fuller model (plan values as covariates) waits for data.
    """
    min_runs = MIN_CALIBRATION_RUNS if min_runs is None else min_runs
    pts = np.array([(r["screen_accuracy"], r["accuracy"]) for r in finals if r.get("status") == "ok"], float)
    if len(pts) < min_runs:
        return float(prior), f"prior ({len(pts)} final runs, fewer than {min_runs})"
    if np.ptp(pts[:, 0]) == 0:
        return float(prior), "prior (every final run screened at one accuracy)"
    slope, icpt = np.polyfit(pts[:, 0], pts[:, 1], 1)
    if slope <= 0:
        return float(prior), f"prior (fitted slope {slope:.2f}: screening does not order final accuracy)"
    screen_at_bar = (bar - icpt) / slope
    slack = float(np.clip(100 * (bar - screen_at_bar), 0.0, 50.0))
    return round(slack, 2), f"fit on {len(pts)} final runs: final = {icpt:.3f} + {slope:.2f} x screening"


def search_slack(cfg: StudyConfig, folder: Path, ds: str, seed: int, bar: float, prior: float) -> float:
    """The screening slack of one seed's searches on ``ds`` (every method of a seed gets the same one).

    ``constant``: ``prior`` (the config's ``screen_slack``). ``calibrated``: :func:`calibrated_slack` over the
    final runs of the other seeds logged so far, fixed the first time and kept in ``<ds>-s<seed>.slack.json``,
    so a resumed study replays each search with the slack it ran under.
    """
    if cfg.screen_rule == "constant":
        return float(prior)
    from helpers.io import write_json

    path = StudyLayout(folder).slack(ds, seed)
    if not path.exists():
        finals = [r for x in StudyLayout(folder).logs(ds, final=True) if x["seed"] != seed for r in read_log(x["path"])]
        slack, how = calibrated_slack(finals, bar, prior)
        write_json(path, {"slack_points": slack, "how": how})
    return _used_slack(folder, ds, seed, prior)


def matched_reference(cfg: StudyConfig, spec, record: dict, ds: str, ctx, test_ds, final_epochs: float,
                      reference: dict) -> tuple[dict, float]:
    """(reference with the budget-matched baseline's fp32 validation accuracy, its fp32 test accuracy): the unpruned
    network trained from scratch (``controls.train_control``) for the baseline's passes plus the final fine-tune's."""
    from helpers.artifacts import deploy
    from helpers.budget import baseline_passes, epochs_for, passes
    from helpers.controls import train_control
    from helpers.runtime import evaluate_tflite

    split = ctx.split_images
    budget = baseline_passes(record, split) + passes(final_epochs, cfg.finetune_images, split)
    row = {"kind": "budget_matched", "fraction": 1.0, "channels": None, "budget": budget,
           "epochs": epochs_for(budget, spec.train_images, split)}
    model, rec = train_control(cfg.architecture, ds, row, spec, progress=False)
    fp32 = deploy(model, rec, "fp32")
    return ({**reference, "fp32_val_accuracy": evaluate_tflite(fp32, ctx.val_ds)["accuracy"], "bar": "budget_matched",
             "matched_checkpoint": Path(rec["path"]).name, "matched_budget": budget},
            evaluate_tflite(fp32, test_ds)["accuracy"])


def _fp32_test(folder: Path, ds: str, ref: dict, test_ds) -> float:
    """The fp32 artifact's test accuracy (the test bar's base), computed once per dataset and kept in the folder."""
    from helpers.runtime import evaluate_tflite

    path = StudyLayout(folder).fp32_test(ds)
    if not path.exists():
        from helpers.io import write_json

        write_json(path, {"accuracy": evaluate_tflite(paths.resolve(ref["fp32_artifact"]), test_ds)["accuracy"],
                          "n": len(test_ds)})
    return json.loads(path.read_text())["accuracy"]


def _chosen_row(ds, seed, method, fin, ref, test_ds, fp32_test, executor=None) -> dict:
    from helpers.runtime import evaluate_tflite

    row = {"dataset": ds, "seed": seed, "method": method, "int8_latency_ms": ref["int8_latency_ms"],
           "fp32_latency_ms": ref["fp32_latency_ms"], "fp32_val_accuracy": ref["fp32_val_accuracy"],
           "fp32_test_accuracy": fp32_test, "final_runs": len(fin.trials)}
    if fin.best is None:
        return {**row, "chosen": None, "latency_ms": np.nan, "val_accuracy": np.nan, "test_accuracy": np.nan,
                "test_n": len(test_ds), "summary": f"no final run cleared the bar ({fin.message})"}
    b = fin.best
    if paths.resolve(b["artifact"]).is_file():
        test = evaluate_tflite(paths.resolve(b["artifact"]), test_ds)["accuracy"]
    else:  # made on another machine of the cluster: scored there, on the same test split
        from helpers.cluster import evaluate_where_made

        test = evaluate_where_made(executor, b, ds, test_ds)
    return {**row, "chosen": json.dumps(b["values"], sort_keys=True), "latency_ms": b["latency_ms"],
            "val_accuracy": b["accuracy"], "test_accuracy": test, "test_n": len(test_ds), "artifact": b["artifact"],
            "budget": b.get("budget"), "summary": f"chosen {b['values']}: {ref['int8_latency_ms'] / b['latency_ms']:.2f}x vs plain int8, "
                       f"validation {100 * b['accuracy']:.2f}%, test {100 * test:.2f}%"}


def _write_chosen(folder: Path, rows: list[dict]) -> None:
    from helpers.io import atomic_path

    chosen = StudyLayout(folder).chosen
    old = pd.read_csv(chosen) if chosen.exists() else pd.DataFrame()
    new = pd.DataFrame(rows).drop(columns=["summary"])
    both = pd.concat([old, new]).drop_duplicates(["dataset", "seed", "method"], keep="last") if len(old) else new
    with atomic_path(chosen) as tmp:
        both.sort_values(["dataset", "seed", "method"]).to_csv(tmp, index=False)


def verdict(chosen: pd.DataFrame, criterion: dict = CRITERION, resamples: int = 10_000, seed: int = 0,
            planned_seeds: int | None = None) -> pd.DataFrame:
    """The pre-registered verdict per dataset: the GP's chosen latency over random search's, per seed, its median
    and bootstrap interval, and whether the success rule holds. A missing plan scores plain int8's latency.

    With ``planned_seeds`` (the study's number of seeds), a dataset with fewer finished seeds gets the figures
    so far and the verdict "interim", never a claim: the criterion was registered for the whole study."""
    rows = []
    level = float(criterion.get("interval", 0.90))
    for ds, d in chosen.groupby("dataset"):
        lat = d.assign(latency_ms=d.latency_ms.fillna(d.int8_latency_ms)).pivot(index="seed", columns="method",
                                                                                  values="latency_ms")
        if not {"gp", "random"} <= set(lat.columns):
            continue
        ratios = (lat["gp"] / lat["random"]).dropna().to_numpy()
        if len(ratios) == 0:
            continue
        rng = np.random.default_rng(seed)
        boots = np.median(rng.choice(ratios, (resamples, len(ratios)), replace=True), axis=1)
        lo, hi = np.quantile(boots, [(1 - level) / 2, 1 - (1 - level) / 2])
        rows.append({"dataset": ds, "seeds": len(ratios), "median_ratio": float(np.median(ratios)), "lo": float(lo),
                     "hi": float(hi), "gp_wins": int((ratios < 1).sum()), "ties": int((ratios == 1).sum()),
                     "met": bool(hi < 1.0),
                     "verdict": ("GP faster (criterion met)" if hi < 1.0 else
                                 "random search faster" if lo > 1.0 else "no difference shown (criterion not met)")})
        if planned_seeds and len(ratios) < planned_seeds:
            rows[-1].update(met=False, verdict=f"interim ({len(ratios)} of {planned_seeds} seeds): no verdict yet")
    return pd.DataFrame(rows)


def fidelity(folder: Path) -> pd.DataFrame:
    """How well screening predicts the long fine-tune, per dataset, over every final run: the Spearman rank
    correlation of screening and final accuracy, how many final runs clear the real bar, the mean gain, and
    (given the study's ``study.json`` and references) how many that clear it had screened under their search's
    screening bar (``rejected_passing``: plans the screening rule called infeasible), the slack used and the
    slack :func:`calibrated_slack` fits on all of them (what a calibrated rule would use next)."""
    from scipy.stats import spearmanr

    layout = StudyLayout(folder)
    meta = json.loads(layout.meta.read_text())["config"] if layout.meta.exists() else None
    rows = []
    for x in layout.logs(final=True):
        ds, seed = x["dataset"], x["seed"]
        for r in read_log(x["path"]):
            if r.get("status") == "ok":
                rows.append({"dataset": ds, "seed": seed, "screen": r["screen_accuracy"], "final": r["accuracy"],
                             "passes": r["feasible"], "row": r})
    out = []
    for ds, d in pd.DataFrame(rows, columns=["dataset", "seed", "screen", "final", "passes", "row"]).groupby("dataset"):
        with warnings.catch_warnings():  # all final runs at one accuracy: no rank correlation (NaN), said as such
            warnings.simplefilter("ignore")
            rho = spearmanr(d.screen, d.final).statistic if len(d) > 2 else np.nan
        row = {"dataset": ds, "final_runs": len(d), "spearman": float(rho), "passing": int(d.passes.sum()),
               "mean_gain_points": float(100 * (d.final - d.screen).mean())}
        ref = layout.reference(ds)
        if meta is not None and ref.exists():
            bar = json.loads(ref.read_text())["fp32_val_accuracy"] - meta["threshold"] / 100
            prior = meta["screen_slack"][ds] if isinstance(meta["screen_slack"], dict) else meta["screen_slack"]
            used = {seed: _used_slack(folder, ds, seed, prior) for seed in d.seed.unique()}
            under = d.screen < bar - d.seed.map(used) / 100 - 1e-9
            row.update(rejected_passing=int((d.passes & under).sum()), slack_used=float(np.median(list(used.values()))),
                       calibrated_slack=calibrated_slack(list(d.row), bar, prior)[0])
        out.append(row)
    return pd.DataFrame(out)


def _used_slack(folder: Path, ds: str, seed: int, prior: float) -> float:
    """The slack a seed's searches ran under: its calibrated slack file, else the constant ``prior``."""
    path = StudyLayout(folder).slack(ds, seed)
    return float(json.loads(path.read_text())["slack_points"]) if path.exists() else float(prior)


def cost_table(folder: Path) -> pd.DataFrame:
    """Mean seconds per trial by phase (fine-tune, other compression, export, timing, accuracy), screening and
    final runs apart, over the trials that ran (not those that reused a network's outcome)."""
    rows = []
    for x in StudyLayout(folder).logs():
        stage = "final" if x["final"] else "screening"
        for r in read_log(x["path"]):
            if r.get("status") == "ok" and isinstance(r.get("cost"), dict) and not r.get("same_network_as"):
                rows.append({"stage": stage, **r["cost"], "total_s": r["seconds"]})
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    return df.groupby("stage").agg(["mean", "count"]).xs("mean", axis=1, level=1).assign(
        trials=df.groupby("stage").size())
