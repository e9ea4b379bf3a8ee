"""O8 as an experiment, run (config: ``study_config``; analysis: ``study_analysis``): GP against simpler search, several seeds, both datasets, equal fidelity, one verdict.

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
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.core import paths
from helpers.search.engine import SearchError
from helpers.experiments.study_analysis import _used_slack, calibrated_slack
from helpers.experiments.study_config import StudyConfig, load_study
from helpers.search.store import StudyLayout, known_test, read_log, write_chosen


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
    from helpers.core.io import write_json
    from helpers.core.identity import machine

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
    from helpers.core.identity import machine

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

    from helpers.core.quiet import progress_enabled

    from helpers.networks.baselines import BaselineSpec
    from helpers.compress.plan import CompressionPlan
    from helpers.datasets.data import load_dataset
    from helpers.core.io import write_json
    from helpers.networks.params import per_dataset
    from helpers.search.pipeline import context
    from helpers.networks.params import load_profile
    from helpers.experiments.experiment import prepare
    from helpers.search.engine import Objective, confirm_front, run_search

    folder = open_folder(cfg, resume, within)
    layout = StudyLayout(folder)
    profile = within or record_profile(cfg)
    record = layout.current_record(profile)  # the study's own, characterised, in its folder; every trial names it
    if executor is not None:
        from helpers.search.cluster import workers

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
               disable=not (progress and progress_enabled()))  # no bar inside the chain's kernels
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
        obj = Objective(cfg.objective, ref["fp32_val_accuracy"], cfg.threshold, ref["int8_latency_ms"],
                        baseline_n=len(ctx.val_ds))
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
        known = known_test(folder, ds, seed, m)
        remake = getattr(s.final, "trial", s.final)  # the plan trial behind the network store: runs the plan again
        row = {**_chosen_row(ds, seed, m, fin, ref, test_ds, fp32_test, executor, known, remake),
               "screen_slack": slack}
        with lock:
            chosen.append(row)
            bar.update(max(0, cfg.final_runs - len(fin.trials)))  # a front shorter than final_runs: never counted
            write_chosen(folder, chosen)
            log(f"{tag}: {row['summary']}")

    if executor is None:
        for t in tags:
            search(t)
    else:
        from concurrent.futures import ThreadPoolExecutor

        from helpers.search.cluster import slots

        with ThreadPoolExecutor(max_workers=slots(executor)) as pool:
            list(pool.map(search, tags))  # re-raises the first search that failed
    bar.close()
    return pd.DataFrame(chosen), folder


def search_slack(cfg: StudyConfig, folder: Path, ds: str, seed: int, bar: float, prior: float) -> float:
    """The screening slack of one seed's searches on ``ds`` (every method of a seed gets the same one).

    ``constant``: ``prior`` (the config's ``screen_slack``). ``calibrated``: :func:`calibrated_slack` over the
    final runs of the other seeds logged so far, fixed the first time and kept in ``<ds>-s<seed>.slack.json``,
    so a resumed study replays each search with the slack it ran under.
    """
    if cfg.screen_rule == "constant":
        return float(prior)
    from helpers.core.io import write_json

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
    from helpers.deploy.artifacts import deploy
    from helpers.core.budget import baseline_passes, epochs_for, passes
    from helpers.experiments.controls import train_control
    from helpers.deploy.runtime import evaluate_tflite

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
    from helpers.deploy.runtime import evaluate_tflite

    path = StudyLayout(folder).fp32_test(ds)
    if not path.exists():
        from helpers.core.io import write_json

        write_json(path, {"accuracy": evaluate_tflite(paths.resolve(ref["fp32_artifact"]), test_ds)["accuracy"],
                          "n": len(test_ds)})
    return json.loads(path.read_text())["accuracy"]


def _chosen_row(ds, seed, method, fin, ref, test_ds, fp32_test, executor=None, known: dict | None = None,
                remake=None) -> dict:
    from helpers.deploy.runtime import evaluate_tflite

    row = {"dataset": ds, "seed": seed, "method": method, "int8_latency_ms": ref["int8_latency_ms"],
           "fp32_latency_ms": ref["fp32_latency_ms"], "fp32_val_accuracy": ref["fp32_val_accuracy"],
           "fp32_test_accuracy": fp32_test, "final_runs": len(fin.trials)}
    if fin.best is None:
        return {**row, "chosen": None, "latency_ms": np.nan, "val_accuracy": np.nan, "test_accuracy": np.nan,
                "test_n": len(test_ds), "summary": f"no final run cleared the bar ({fin.message})"}
    b = fin.best
    chosen = json.dumps(b["values"], sort_keys=True)
    if chosen in (known or {}):
        test = float(known[chosen])
    elif paths.resolve(b["artifact"]).is_file():
        test = evaluate_tflite(paths.resolve(b["artifact"]), test_ds)["accuracy"]
    elif executor is None and remake is not None:  # run on this machine before its runs/ was lost: made again
        test = _remade_test(remake, b, test_ds)
    else:  # made on another machine of the cluster: scored there, on the same test split
        from helpers.search.cluster import evaluate_where_made

        test = evaluate_where_made(executor, b, ds, test_ds)
    return {**row, "chosen": chosen, "latency_ms": b["latency_ms"],
            "val_accuracy": b["accuracy"], "test_accuracy": test, "test_n": len(test_ds), "artifact": b["artifact"],
            "budget": b.get("budget"), "summary": f"chosen {b['values']}: {ref['int8_latency_ms'] / b['latency_ms']:.2f}x vs plain int8, "
                       f"validation {100 * b['accuracy']:.2f}%, test {100 * test:.2f}%"}


def _remade_test(remake, best: dict, test_ds) -> float:
    """Test accuracy of a chosen final run whose artifact is gone (a network run before this clone): the plan is run
    again (deterministic training and export) and scored when its validation accuracy is the logged one exactly."""
    from helpers.deploy.runtime import evaluate_tflite

    again = remake(best["values"])
    if again["accuracy"] != best["accuracy"]:
        raise RuntimeError(f"the chosen plan {best['values']} run again scores {again['accuracy']} on validation, not the "
                           f"logged {best['accuracy']}: not the same network; run the study where its artifacts are")
    return evaluate_tflite(paths.resolve(again["artifact"]), test_ds)["accuracy"]
