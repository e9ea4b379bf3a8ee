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
from helpers.search import METHODS, SURROGATES, SearchError, read_log

CRITERION = {"metric": "latency of the GP's chosen plan / random search's, per seed (paired, same initial points)",
             "statistic": "median over seeds", "interval": 0.90, "success": "upper bound of the interval < 1.0",
             "no_plan": "a method that clears no bar for a seed scores the plain int8 latency (what one would deploy)"}


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
    threshold: float = 1.0
    objective: str = "constrained"
    surrogate: str = "composite"
    profile: str = "default"
    baseline_spec: dict | None = None  # None: the profile's common.baseline_spec
    finetune_images: int | None = None
    val_images: int | None = 2000
    test_images: int | None = None
    criterion: dict = field(default_factory=lambda: dict(CRITERION))

    def key(self) -> str:
        """A hash of everything that decides the study's trials (not the seeds or methods run so far)."""
        from helpers.provenance import config_key

        d = asdict(self)
        for k in ("seeds", "methods"):
            d.pop(k)
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

    from helpers.compress.plan import CompressionPlan, PlanError
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
    cfg = StudyConfig(**raw)
    cfg.seeds = parse_seeds(seeds if seeds is not None else cfg.seeds)
    cfg.methods = list(methods if methods is not None else cfg.methods)
    bad = [m for m in cfg.methods if m not in METHODS]
    if bad or not cfg.methods:
        raise SearchError(f"study config {path}: method {bad[0] if bad else None!r} is not one of {', '.join(METHODS)}")
    if cfg.surrogate not in SURROGATES:
        raise SearchError(f"study config {path}: surrogate {cfg.surrogate!r} is not one of {', '.join(SURROGATES)}")
    for name in ("budget", "n_initial", "final_runs"):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise SearchError(f"study config {path}: {name} {v!r} must be a whole number of at least 1")
    if cfg.budget < cfg.n_initial:
        raise SearchError(f"study config {path}: budget {cfg.budget} is smaller than n_initial {cfg.n_initial}; the GP "
                          "would never propose: raise the budget or lower n_initial")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(cfg.name)):
        raise SearchError(f"study config {path}: name {cfg.name!r} must be letters, digits, '-', '_' or '.'")
    try:
        free = CompressionPlan.from_dict(cfg.template).free_parameters()
    except PlanError as exc:
        raise SearchError(f"study config {path}, template: {exc}") from None
    if not free:
        raise SearchError(f"study config {path}, template: no free parameters to search")
    return cfg


def record_profile(cfg: StudyConfig) -> str:
    """The name the study's run record, plan artifacts and trial provenance go under (see ``paths.results_dir``)."""
    return f"{'smoke/' if cfg.profile == 'smoke' else ''}study/{cfg.name}"


def study_dir(cfg: StudyConfig, machine_id: str) -> Path:
    """The study's folder for this machine: committed under results/study/ (smoke: runs/smoke/study/)."""
    return paths.results_dir(record_profile(cfg), machine_id)


def open_folder(cfg: StudyConfig, resume: bool) -> Path:
    """The study folder, created with ``study.json`` or checked against it.

    Refused in one sentence: a folder of the same name holding another config; a folder with trials and no
    ``--resume``; a ``--resume`` on a machine that has no part of the study while another machine has (its
    latencies would mix machines: start it whole here without ``--resume``).
    """
    from helpers.io import write_json
    from helpers.provenance import machine

    folder = study_dir(cfg, machine()["id"])
    meta = folder / "study.json"
    if meta.exists():
        old = json.loads(meta.read_text())
        if old.get("key") != cfg.key():
            raise SearchError(f"results folder {folder} holds study {cfg.name!r} with another config (key "
                              f"{old.get('key')} vs {cfg.key()}); give the changed study a new name or delete the folder")
        if not resume and any(folder.glob("*.jsonl")):
            raise SearchError(f"study {cfg.name!r} already has trials in {folder}; pass --resume to continue it")
    else:
        others = ([p.name for p in folder.parent.iterdir() if (p / "study.json").exists() and p != folder]
                  if folder.parent.exists() else [])
        if resume and others:
            raise SearchError(f"study {cfg.name!r} was run on machine(s) {', '.join(others)}, not on this one "
                              f"({folder.name}); latencies of one study come from one machine: start it here "
                              "without --resume (a new folder) or resume it on that machine")
        write_json(meta, {"key": cfg.key(), "config": asdict(cfg), "criterion": cfg.criterion})
    return folder


def run_study(cfg: StudyConfig, resume: bool = False, log=print, progress: bool = True) -> pd.DataFrame:
    """Run (or resume) the study; returns the chosen plans (one row per dataset, seed and method).

    Every trial goes to its log as it finishes and ``chosen.csv`` is rewritten after each search, so a study
    cut short keeps all it finished. A tqdm bar over the study's trials shows its ETA.
    """
    from tqdm.auto import tqdm

    from helpers.baselines import BaselineSpec
    from helpers.compress.plan import CompressionPlan
    from helpers.data import load_dataset
    from helpers.io import write_json
    from helpers.params import per_dataset
    from helpers.pipeline import context
    from helpers.provenance import current_record
    from helpers.references import reference_point
    from helpers.runner import load_profile
    from helpers.search import Objective, confirm_front, run_search, stored_reference
    from helpers.trial import NetworkKeyedTrial, PlanTrial, with_finetune_epochs

    folder = open_folder(cfg, resume)
    profile = record_profile(cfg)
    before = json.loads((folder / "run_record.json").read_text()) if (folder / "run_record.json").exists() else None
    record = current_record(profile)  # the study's own run record, characterised, in its folder; every trial names it
    if before and before.get("id") != record["id"]:  # a resume under other code or installs: keep the earlier record
        write_json(folder / "run_records" / f"{before['id']}.json", before)
    spec = BaselineSpec.parse(cfg.baseline_spec or load_profile(cfg.profile)["common"]["baseline_spec"])
    template = CompressionPlan.from_dict(cfg.template)
    free = template.free_parameters()
    final_epochs_of = per_dataset("final_epochs", cfg.final_epochs, cfg.datasets)
    slack_of = per_dataset("screen_slack", cfg.screen_slack, cfg.datasets)
    per_search = cfg.budget + cfg.final_runs
    total = len(cfg.datasets) * len(cfg.seeds) * len(cfg.methods) * per_search
    bar = tqdm(total=total, desc=f"study {cfg.name}", unit="trial", disable=not progress)
    chosen = []
    for ds in cfg.datasets:
        model, rec = spec.build(cfg.architecture, ds)
        ctx = context(ds, cfg.finetune_images, cfg.val_images)
        ref = stored_reference(folder / f"{ds}-reference.json", lambda: reference_point(model, rec, ctx))
        pair = ref["latency_reference"]
        obj = Objective(cfg.objective, ref["fp32_val_accuracy"], cfg.threshold, ref["int8_latency_ms"])
        screen = NetworkKeyedTrial(PlanTrial(template, model, rec, ctx, profile, reference=pair),
                                   folder / f"{ds}-networks-screen.jsonl")
        final_epochs = final_epochs_of[ds]
        final = NetworkKeyedTrial(PlanTrial(with_finetune_epochs(template, final_epochs), model, rec, ctx,
                                            profile, reference=pair),
                                  folder / f"{ds}-networks-final{final_epochs}.jsonl")
        test_ds = load_dataset(ds, "test").subset(cfg.test_images)
        fp32_test = _fp32_test(folder, ds, ref, test_ds)
        for seed in cfg.seeds:
            for m in cfg.methods:
                tag = f"{ds}-s{seed}-{m}"
                before = len(read_log(folder / f"{tag}.jsonl")) + len(read_log(folder / f"{tag}-final.jsonl"))
                bar.update(min(before, per_search))

                def tick(row, tag=tag):
                    bar.update(1)
                    bar.set_postfix_str(f"{tag} trial {row['trial']}")

                res = run_search(screen, free, obj.lowered(slack_of[ds]), cfg.budget,
                                 folder / f"{tag}.jsonl", m, seed, cfg.n_initial, surrogate=cfg.surrogate,
                                 on_trial=tick)
                fin = confirm_front(res.trials[:cfg.budget], obj, final, folder / f"{tag}-final.jsonl",
                                    cfg.final_runs, on_trial=tick)
                chosen.append(_chosen_row(ds, seed, m, fin, ref, test_ds, fp32_test))
                bar.update(max(0, per_search - cfg.budget - len(fin.trials)))  # a front shorter than final_runs
                _write_chosen(folder, chosen)
                log(f"{tag}: {chosen[-1]['summary']}")
    bar.close()
    return pd.DataFrame(chosen)


def _fp32_test(folder: Path, ds: str, ref: dict, test_ds) -> float:
    """The fp32 artifact's test accuracy (the test bar's base), computed once per dataset and kept in the folder."""
    from helpers.runtime import evaluate_tflite

    path = folder / f"{ds}-fp32-test.json"
    if not path.exists():
        from helpers.io import write_json

        write_json(path, {"accuracy": evaluate_tflite(ref["fp32_artifact"], test_ds)["accuracy"], "n": len(test_ds)})
    return json.loads(path.read_text())["accuracy"]


def _chosen_row(ds, seed, method, fin, ref, test_ds, fp32_test) -> dict:
    from helpers.runtime import evaluate_tflite

    row = {"dataset": ds, "seed": seed, "method": method, "int8_latency_ms": ref["int8_latency_ms"],
           "fp32_latency_ms": ref["fp32_latency_ms"], "fp32_val_accuracy": ref["fp32_val_accuracy"],
           "fp32_test_accuracy": fp32_test, "final_runs": len(fin.trials)}
    if fin.best is None:
        return {**row, "chosen": None, "latency_ms": np.nan, "val_accuracy": np.nan, "test_accuracy": np.nan,
                "test_n": len(test_ds), "summary": f"no final run cleared the bar ({fin.message})"}
    b = fin.best
    test = evaluate_tflite(b["artifact"], test_ds)["accuracy"]
    return {**row, "chosen": json.dumps(b["values"], sort_keys=True), "latency_ms": b["latency_ms"],
            "val_accuracy": b["accuracy"], "test_accuracy": test, "test_n": len(test_ds),
            "summary": f"chosen {b['values']}: {ref['int8_latency_ms'] / b['latency_ms']:.2f}x vs plain int8, "
                       f"validation {100 * b['accuracy']:.2f}%, test {100 * test:.2f}%"}


def _write_chosen(folder: Path, rows: list[dict]) -> None:
    from helpers.io import atomic_path

    old = pd.read_csv(folder / "chosen.csv") if (folder / "chosen.csv").exists() else pd.DataFrame()
    new = pd.DataFrame(rows).drop(columns=["summary"])
    both = pd.concat([old, new]).drop_duplicates(["dataset", "seed", "method"], keep="last") if len(old) else new
    with atomic_path(folder / "chosen.csv") as tmp:
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
    """How well screening predicts the long fine-tune, per dataset: Spearman rank correlation of screening and
    final accuracy over every final run, and how many final runs that clear the real bar screened under it."""
    from scipy.stats import spearmanr

    rows = []
    for f in sorted(folder.glob("*-final.jsonl")):
        ds = f.name.split("-s")[0]
        for r in read_log(f):
            if r.get("status") == "ok":
                rows.append({"dataset": ds, "screen": r["screen_accuracy"], "final": r["accuracy"], "passes": r["feasible"]})
    out = []
    for ds, d in pd.DataFrame(rows, columns=["dataset", "screen", "final", "passes"]).groupby("dataset"):
        with warnings.catch_warnings():  # all final runs at one accuracy: no rank correlation (NaN), said as such
            warnings.simplefilter("ignore")
            rho = spearmanr(d.screen, d.final).statistic if len(d) > 2 else np.nan
        out.append({"dataset": ds, "final_runs": len(d), "spearman": float(rho), "passing": int(d.passes.sum()),
                    "mean_gain_points": float(100 * (d.final - d.screen).mean())})
    return pd.DataFrame(out)


def write_figures(cfg: StudyConfig, folder: Path) -> list[Path]:
    """The study's figures (convergence bands, Pareto fronts with the chosen plans, screening vs final) as PNG
    in ``<folder>/figures/``, drawn from the logs alone; the study command is their one producer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from helpers.io import atomic_path
    from helpers.plots import screening_vs_final, study_convergence, study_pareto

    chosen = pd.read_csv(folder / "chosen.csv") if (folder / "chosen.csv").exists() else pd.DataFrame(
        columns=["dataset", "method", "latency_ms", "val_accuracy"])
    out = []
    for name, fig in (("study_convergence", study_convergence(folder, cfg.datasets, cfg.methods)),
                      ("study_pareto", study_pareto(folder, cfg.datasets, cfg.methods, chosen)),
                      ("study_screening_vs_final", screening_vs_final(folder, cfg.datasets))):
        fig.tight_layout()
        with atomic_path(folder / "figures" / f"{name}.png") as tmp:
            fig.savefig(tmp, dpi=120, format="png")
        plt.close(fig)
        out.append(folder / "figures" / f"{name}.png")
    return out


def cost_table(folder: Path) -> pd.DataFrame:
    """Mean seconds per trial by phase (fine-tune, other compression, export, timing, accuracy), screening and
    final runs apart, over the trials that ran (not those that reused a network's outcome)."""
    rows = []
    for p in sorted(folder.glob("*-s*-*.jsonl")):
        stage = "final" if p.stem.endswith("-final") else "screening"
        for r in read_log(p):
            if r.get("status") == "ok" and isinstance(r.get("cost"), dict) and not r.get("same_network_as"):
                rows.append({"stage": stage, **r["cost"], "total_s": r["seconds"]})
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    return df.groupby("stage").agg(["mean", "count"]).xs("mean", axis=1, level=1).assign(
        trials=df.groupby("stage").size())
