"""The O8 study's configuration: its fields, loading a study file and checking every field before anything is
written, its key (what decides its trials), and the pre-registered criterion (``CRITERION``)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from helpers.search.engine import METHODS, SURROGATES, SearchError

CRITERION = {"metric": "latency of the GP's chosen plan / random search's, per seed (paired, same initial points)",
             "statistic": "median over seeds", "interval": 0.90, "success": "upper bound of the interval < 1.0",
             "no_plan": "a method that clears no bar for a seed scores the plain int8 latency (what one would deploy)"}


SCREEN_RULES = ("constant", "calibrated")
BARS = ("baseline", "budget_matched")


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
    bar: str = "baseline"  # the primary bar: baseline (the baseline's accuracy) | budget_matched (see helpers.experiments.controls)
    criterion: dict = field(default_factory=lambda: dict(CRITERION))

    def key(self) -> str:
        """A hash of everything that decides the study's trials (not the seeds or methods run so far)."""
        from helpers.core.identity import config_key

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

    from helpers.core.io import yaml_problem

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

    from helpers.datasets.data import DATASETS, known_dataset
    from helpers.networks.models import MODELS
    from helpers.search.objective import OBJECTIVES
    from helpers.networks.params import per_dataset
    from helpers.networks.params import PROFILES

    number = (int, float)
    if isinstance(cfg.threshold, bool) or not isinstance(cfg.threshold, number) or not 0 <= cfg.threshold < 100:
        raise SearchError(f"{where}: threshold {cfg.threshold!r} must be accuracy points in [0, 100)")
    if cfg.architecture not in MODELS:
        raise SearchError(f"{where}: architecture {cfg.architecture!r} is not one of {', '.join(MODELS)}")
    if not isinstance(cfg.datasets, list) or not cfg.datasets:
        raise SearchError(f"{where}: datasets must be a non-empty list of {', '.join(DATASETS)}")
    for ds in cfg.datasets:
        if not known_dataset(ds):
            raise SearchError(f"{where}: dataset {ds!r} is not one of {', '.join(DATASETS)} or imagefolder:<path>")
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
