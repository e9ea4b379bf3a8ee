"""Argument parsing for ``python -m helpers``; each sub-command is a thin call into the package."""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1 (counts of images, trials, threads, repeats)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give a count of at least 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a count; give a whole number of at least 1")
    return value


def _cmd_run(args) -> int:
    from helpers.runner import run_chain

    rows = run_chain(args.profile, args.only)
    total = sum(r["seconds"] for r in rows)
    print(f"chain '{args.profile}' finished: {len(rows)} notebook(s) in {total:.0f} s")
    return 0


def _cmd_study(args) -> int:
    import pandas as pd

    from helpers.reports.plots import write_study_figures
    from helpers.experiments.study import run_study
    from helpers.experiments.study_analysis import cost_table, fidelity, verdict
    from helpers.experiments.study_config import load_study

    from helpers.search.cluster import executor_for

    cfg = load_study(args.config, args.seeds, args.methods)  # checked whole before any baseline is touched
    planned = len(load_study(args.config).seeds) if args.seeds is not None else len(cfg.seeds)  # the registered seeds
    with executor_for(args.workers, args.scheduler) as executor:
        _, folder = run_study(cfg, args.resume, progress=not args.json, executor=executor,
                              worker_threads=args.worker_threads)
    from helpers.search.store import StudyLayout

    layout = StudyLayout(folder)
    chosen = pd.read_csv(layout.chosen)  # every seed and method run so far, not only this call's
    v = verdict(chosen, cfg.criterion, planned_seeds=planned)
    write_study_figures(cfg.datasets, cfg.methods, folder)
    if args.json:
        print(json.dumps({"chosen": chosen.to_dict("records"), "verdict": v.to_dict("records")}, indent=2, default=str))
        return 0
    print(f"criterion (pre-registered): {cfg.criterion['statistic']} of {cfg.criterion['metric']}; "
          f"{cfg.criterion['success']}")
    print(v.round(3).to_string(index=False) if len(v) else "no dataset has chosen plans of both gp and random yet")
    f = fidelity(folder)
    if len(f):
        print(f.round(3).to_string(index=False))
    c = cost_table(folder)
    if len(c):
        print("seconds per trial by phase:\n" + c.round(1).to_string())
    from helpers.analysis.curve import answer_for

    for r in chosen.itertuples():  # each chosen plan against narrow networks trained from scratch (make controls)
        ref_path = layout.reference(r.dataset)
        ref = json.loads(ref_path.read_text()) if ref_path.exists() else {"fp32_val_accuracy": r.fp32_val_accuracy}
        speedup = None if r.latency_ms != r.latency_ms else r.int8_latency_ms / r.latency_ms
        print(f"control, {r.dataset} seed {r.seed} {r.method}: " + answer_for(
            cfg.profile, cfg.architecture, r.dataset, ref, speedup, int(cfg.val_images or 1), cfg.threshold,
            None if speedup is None else r.val_accuracy))
    return 0


def _cmd_controls(args) -> int:
    from helpers.experiments.controls import load_controls, run_controls
    from helpers.core.identity import machine

    if args.stage == "portable":
        from helpers.experiments.controls import check_portable
        from helpers.experiments.portable import check_sentence

        check = check_portable(args.profile, args.key, progress=not args.quiet)  # nothing to check: one sentence
        print(check_sentence(check))
        return 0 if check["portable"] else 1
    if args.key:
        print("error: --key goes with --stage portable (the control to retrain here)", file=sys.stderr)
        return 2
    if args.stage in ("curve", "all"):
        run_controls(args.profile, progress=not args.quiet, fresh=args.fresh)
    if args.stage in ("scratch-b", "all"):
        from helpers.records.figures import load_table
        from helpers.experiments.scratch_b import run_scratch_b

        if args.stage == "scratch-b" or load_table("search_summary", args.profile) is not None:
            run_scratch_b(args.profile, args.study, progress=not args.quiet)
        else:
            print(f"Scratch-B skipped: 08 has not run on this machine ({machine()['id']}) for profile {args.profile!r}; "
                  "run the chain, then `python -m helpers controls --stage scratch-b`")
    table = load_controls(args.profile)
    if table is not None:
        cols = ["model", "dataset", "kind", "fraction", "channels", "budget", "speedup_vs_int8", "int8_val_accuracy",
                "int8_test_accuracy"]
        print(table[cols].round(4).to_string(index=False))
    return 0


def _cmd_table(args) -> int:
    from helpers.search.cluster import executor_for
    from helpers.experiments.table import STAGES, build_table
    from helpers.experiments.table_config import load_table_config

    cfg = load_table_config(args.config)  # checked whole before any baseline is touched
    stages = STAGES if args.stage == "all" else (args.stage,)
    with executor_for(args.workers, args.scheduler) as executor:
        folder = build_table(cfg, args.resume, stages, executor=executor, progress=not args.quiet,
                             datasets=args.datasets)
    from helpers.reports.table_report import build_summary

    print("\n".join(build_summary(cfg, folder)))
    return 0


def _cmd_retime(args) -> int:
    from helpers.experiments.retime import run_retime

    from helpers.core import paths

    log = run_retime(args.scope, args.networks, args.limit, progress=not args.quiet)
    print(f"this machine's latencies: {paths.portable(log)}")
    return 0


def _cmd_replay(args) -> int:
    from helpers.experiments.table_config import load_table_config
    from helpers.reports.table_report import run_replays

    cfg = load_table_config(args.config)
    if args.live:
        from helpers.reports.table_report import run_live_check

        print("\n".join(run_live_check(cfg, progress=not args.json)))
        return 0
    if args.redraw:
        from helpers.reports.table_report import run_redraws

        print("\n".join(run_redraws(cfg, args.machine, args.redraw)))
        return 0
    lines = run_replays(cfg, args.machine, args.seeds, args.optimisers, as_json=args.json)
    print("\n".join(lines))
    return 0


def _cmd_baseline(args) -> int:
    from helpers.networks.baselines import import_baseline

    rec = import_baseline(args.arch, args.weights, args.data, args.input_size, progress=not args.json, out=args.out)
    if args.json:
        print(json.dumps(rec, indent=2, default=str))
    else:
        m = rec["metrics"]
        print(f"imported {args.arch} for {args.data} at {args.input_size}x{args.input_size}: validation "
              f"{100 * m['val_accuracy']:.2f}% of {m['val_n']} images, {m['macs'] / 1e6:.1f} M MACs; checkpoint {rec['path']}")
    return 0


def _cmd_report(args) -> int:
    from helpers.core import paths
    from helpers.reports.report import (ANSWER_BEGIN, ANSWER_END, RESULTS_PAGE, build_answer, build_report,
                                        readme_section, write_readme)

    text = build_report(args.profile)
    pages = [(RESULTS_PAGE, text, {}, "results")]
    if args.profile == "default":  # the answer is drawn from the committed default results and studies
        pages.append((paths.README, build_answer(), {"begin": ANSWER_BEGIN, "end": ANSWER_END}, "answer"))
    if args.check:
        stale = [(page, what) for page, body, marks, what in pages if readme_section(page, **marks) != body]
        for page, what in stale:
            print(f"error: the {what} section of {paths.portable(page)} differs from the committed tables; run "
                  "`python -m helpers report --write`", file=sys.stderr)
        if stale:
            return 1
        print(" and ".join(f"{paths.portable(page)}'s {what}" for page, _, _, what in pages)
              + " match the committed tables")
        return 0
    if args.write:
        for page, body, marks, what in pages:
            write_readme(page, body, **marks)
            print(f"wrote the {what} section of {paths.portable(page)}")
        return 0
    print(text, end="")
    return 0


def _cmd_book(args) -> int:
    import time
    from pathlib import Path

    from helpers.core import paths
    from helpers.reports.book import book_check, build_book

    t0 = time.perf_counter()
    index = build_book(args.profile, args.machine, Path(args.out) if args.out else None)
    problems = book_check(index)
    print(f"book of profile '{args.profile}' in {time.perf_counter() - t0:.1f} s: {paths.portable(index)}")
    if args.check:
        from helpers.reports.browser import read_book

        seen = read_book(index, index.parent / "screenshots")
        problems += seen["problems"]
        print(f"read {seen['pages']} pages in headless Chromium; screenshots in {paths.portable(index.parent / 'screenshots')}")
    for line in problems:
        print(f"problem: {line}", file=sys.stderr)
    return 1 if problems else 0


def _print(obj, as_json: bool) -> None:
    if as_json:
        print(json.dumps(obj, indent=2, default=str))
    else:
        for k, v in obj.items():
            print(f"{k:>26}: {v}")


def _cmd_export(args) -> int:
    from helpers.networks.checkpoints import load_model
    from helpers.datasets.data import calibration_batches, load_dataset
    from helpers.deploy.export_cache import export_tflite

    from pathlib import Path

    if Path(args.out).is_dir():  # answered before the minute of conversion, not after it
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), args.out)
    model, cfg = load_model(args.checkpoint)
    calib = None
    if args.mode == "int8":
        ds = load_dataset(cfg["dataset"], "train", cfg["input_size"], cfg["in_channels"])
        calib = calibration_batches(ds, args.calibration_images)
    out = export_tflite(model, args.out, args.mode, calib, cfg["input_size"], cfg["in_channels"],
                        per_channel=not args.per_tensor)
    print(f"wrote {out} ({out.stat().st_size} bytes, {args.mode})")
    return 0


def _cmd_inspect(args) -> int:
    from helpers.deploy.inspection import inspect_tflite

    rep = inspect_tflite(args.model)
    d = rep.to_dict(with_ops=args.ops)
    if not args.json:
        d["float_tensors"] = len(d["float_tensors"])
    _print(d, args.json)
    return 0


def _cmd_bench(args) -> int:
    from helpers.deploy.inspection import inspect_tflite
    from helpers.deploy.latency import measure_tflite

    info = inspect_tflite(args.model)  # a malformed file is answered in one sentence before the interpreter reads it
    model, library = args.model, None
    if args.delegate == "edgetpu":
        from helpers.deploy.edgetpu import DELEGATE_LIBRARY, delegate_available, report

        if not delegate_available():
            raise ValueError(f"--delegate edgetpu: no Edge TPU answers here ({DELEGATE_LIBRARY} does not load with a "
                             "device); run on a Coral host or leave out --delegate to time the CPU")
        if not info.compiled_for_edgetpu:
            model = report(args.model).compiled_model
            if not model:
                raise ValueError(f"--delegate edgetpu: {args.model} is not compiled for the Edge TPU and "
                                 "edgetpu_compiler is not on PATH; compile it first (python -m helpers edgetpu)")
        library = DELEGATE_LIBRARY
    res = measure_tflite(model, args.threads, repeats=args.repeats, delegate_library=library)
    _print(res.row() if args.json else {k: v for k, v in res.row().items() if not k.startswith("v_")}, args.json)
    if res.noisy:
        print(f"warning: {res.note}", file=sys.stderr)
    return 0


def _cmd_edgetpu(args) -> int:
    from helpers.deploy.edgetpu import report

    rep = report(args.model, args.out_dir).to_dict()
    if args.json:
        _print(rep, True)
        return 0
    placed = rep.pop("placement")
    rep.pop("operators")
    _print(rep, False)
    print("placement (file order):")
    for p in placed:
        print(f"  {p['index']:>4}  {p['op']:<28} {p['device']:<8} {p.get('reason_kind', '')}"
              + (f": {p['reason']}" if p.get("reason") else ""))
    return 0


def _cmd_compress(args) -> int:
    from helpers.compress import Context
    from helpers.compress.plan import CompressionPlan
    from helpers.datasets.data import load_dataset

    from pathlib import Path

    from helpers.core.io import check_output_folder

    if not Path(args.plan).is_file():
        raise FileNotFoundError(f"plan file {args.plan} does not exist; give the path of a plan YAML file")
    plan = CompressionPlan.from_yaml(Path(args.plan))  # validated before the checkpoint is even read
    free = plan.free_parameters()
    if free:
        raise ValueError(f"plan {args.plan} has free parameters ({', '.join(f['name'] for f in free)}); give each a "
                         "value to compress, or search them with `python -m helpers search`")
    check_output_folder(args.out, ("model.tflite", "record.json"))  # before any training
    from helpers.networks.checkpoints import load_model

    model, cfg = load_model(args.checkpoint)
    size, ch = cfg["input_size"], cfg["in_channels"]
    ctx = Context(train_ds=load_dataset(cfg["dataset"], "train", size, ch).subset(args.finetune_images),
                  val_ds=load_dataset(cfg["dataset"], "val", size, ch), input_size=cfg["input_size"],
                  in_channels=cfg["in_channels"], progress=not args.json)
    from helpers.search.pipeline import run_plan
    from helpers.records.provenance import light_record

    res = run_plan(plan, model, ctx, args.out, val_images=args.val_images, provenance={"run_record": light_record()})
    res.pop("model")
    if args.json:
        print(json.dumps(res, indent=2, default=str))
    else:
        for step in res["steps"]:
            for c in step["checks"]:
                print(f"{step['method']:>12} | {c['status']:>11} | {c['check']}: expected {c['expected']}, "
                      f"measured {c['measured']} ({c['where']})")
        lat = res.get("latency", {})
        print(f"artifact {res['artifact']} ({res['mode']}, full-integer {res['full_integer']}): "
              f"{lat.get('median_ms', float('nan')):.4f} ms median, validation accuracy {100 * res['val_accuracy']:.2f}%")
    return 0 if res["all_checks_pass"] else 1


def _cmd_search(args) -> int:
    from helpers.experiments.experiment import search_from_config

    from helpers.experiments.experiment import load_config

    # with --json, stdout holds the JSON alone: the trials' progress lines go to stderr
    log = (lambda line: print(line, file=sys.stderr)) if args.json else print
    result, ref = search_from_config(args.config, args.budget, args.resume, log=log)
    cfg, b = load_config(args.config), result.best
    control = None
    if cfg["trial"] != "synthetic":  # the chosen plan against narrow networks trained from scratch (make controls)
        from helpers.analysis.curve import answer_for

        control = answer_for(cfg["profile"], cfg["baseline"]["model"], cfg["baseline"]["dataset"], ref,
                             ref["int8_latency_ms"] / b["latency_ms"] if b else None,
                             int((b or {}).get("val_n") or cfg["val_images"] or 1), cfg["threshold"],
                             b["accuracy"] if b else None)
    from helpers.experiments.experiment import chosen_on_test

    test = chosen_on_test(cfg, b)  # the verdict on test, once, after selection on validation
    from helpers.core import paths

    chosen = str(paths.resolve(b["artifact"])) if b and b.get("artifact") else None  # a path that works from here
    out = {"trials": len(result.trials), "best": result.best, "pareto": result.pareto, "closest": result.closest,
           "message": result.message, "reference": ref, "control": control, "test": test, "chosen_artifact": chosen}
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return 0
    if b:
        print(f"best feasible plan: {b['values']} -> accuracy {100 * b['accuracy']:.2f}%, {b['latency_ms']:.4f} ms "
              f"({ref['int8_latency_ms'] / b['latency_ms']:.2f}x faster than plain int8)")
    else:
        print(result.message)
    if test:
        print(f"chosen plan on test (the deployed int8 artifact): {test['correct']} of {test['n']} correct "
              f"({100 * test['accuracy']:.2f}%)")
    if control:
        print(f"control: {control}")
    return 0


def _fractions(text: str) -> tuple:
    """An argparse type: comma-separated fractions in (0, 1] (fit's control widths)."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of fractions, e.g. 0.5,0.75") from None
    if not all(0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: each width must be a fraction in (0, 1], e.g. 0.5,0.75")
    return values


def _cmd_fit(args) -> int:
    from helpers.experiments.fit import FitConfig, run_fit
    from helpers.reports.fit_report import recommendation, write_fit_report
    from helpers.search.cluster import executor_for

    cfg = FitConfig(model=args.model, data=args.data, out=args.out, weights=args.weights, input_size=args.input_size,
                    bar=args.bar, target=args.target, budget=args.budget, epochs=args.epochs,
                    train_images=args.train_images, val_images=args.val_images, test_images=args.test_images,
                    seed=args.seed, controls=args.controls)
    log = (lambda line: print(line, file=sys.stderr)) if args.json else print
    from helpers.experiments.fit import check_config

    checked = check_config(cfg)  # every bad input is one sentence before a worker starts or a file is written
    with executor_for(args.workers, args.scheduler) as executor:
        result = run_fit(cfg, args.resume, progress=not (args.json or args.quiet), log=log, executor=executor,
                         n_parallel=args.workers or (2 if args.scheduler else 1), checked=checked)
    report = write_fit_report(os.path.join(args.out, "fit.json"))
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k not in ("screened", "full")}, indent=2, default=str))
        return 0
    print(recommendation(result))
    print(f"report: {report}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from helpers.networks.params import PROFILES

    parser = argparse.ArgumentParser(prog="python -m helpers",
                                     description="Latency-aware compression workbench for edge inference.")
    parser.add_argument("--verbose", action="store_true",
                        help="show the libraries' log lines (TensorFlow, absl, torch) that are hidden by default")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="execute the notebook chain with Papermill",
                       description="Execute notebooks/NN_*.ipynb in order with params/<profile>.yaml; "
                                   "executed copies go to runs/<profile>/.")
    p.add_argument("--profile", default="default", choices=PROFILES, help="parameter profile (default: default)")
    p.add_argument("--only", help="comma-separated notebook prefixes, e.g. 01,02")
    p.set_defaults(func=_cmd_run)

    from helpers.deploy.export import MODES

    p = sub.add_parser("export", help="export a checkpoint to .tflite",
                       description="Export a trained checkpoint (.pt with its .json sidecar) to TensorFlow Lite.")
    p.add_argument("checkpoint", help="checkpoint .pt file (its .json sidecar must sit beside it)")
    p.add_argument("--mode", default="int8", choices=MODES, help="fp32, full-integer int8 (default), fp16, dynamic")
    p.add_argument("--out", required=True, help="output .tflite path")
    p.add_argument("--calibration-images", type=positive, default=100, help="training images for int8 calibration (default 100)")
    p.add_argument("--per-tensor", action="store_true", help="per-tensor instead of per-channel int8 weights")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("inspect", help="list a .tflite's ops, dtypes and sizes",
                       description="Inspect a .tflite: full_integer, ops (counts by type), size_bytes, float tensors.")
    p.add_argument("model", help=".tflite file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--ops", action="store_true", help="include every op with its tensors")
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("bench", help="time a .tflite on the edge runtime",
                       description="Median, IQR and CV of one inference (blocks of calls, warm-up, noise guard).")
    p.add_argument("model", help=".tflite file")
    p.add_argument("--threads", type=positive, default=1, help="interpreter threads (default 1)")
    p.add_argument("--repeats", type=positive, default=25, help="timed blocks (default 25)")
    p.add_argument("--delegate", choices=["cpu", "edgetpu"], default="cpu",
                   help="cpu (LiteRT's default delegates here) or edgetpu (the Edge TPU delegate; the model is compiled "
                        "first where it is not; one sentence and exit 2 without a device)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("edgetpu", help="where each op would run: Edge TPU or CPU (compiler report or offline rules)",
                       description="Compile with edgetpu_compiler when it is on PATH and parse its report; otherwise "
                                   "place every operator on the Edge TPU or the CPU by Coral's rules for compiler "
                                   "16, with the reason for each CPU op. A compiled model is read, not re-compiled.")
    p.add_argument("model", help=".tflite file (int8/uint8 parts go to the Edge TPU, float parts stay on the CPU)")
    p.add_argument("--out-dir", help="where the compiler writes MODEL_edgetpu.tflite")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_edgetpu)

    p = sub.add_parser("compress", help="apply a compression plan (YAML) to a checkpoint",
                       description="Validate PLAN, apply it to the checkpoint, export, verify every step, and "
                                   "measure the artifact's latency and validation accuracy. Exit 1 if a check fails.")
    p.add_argument("plan", help="plan YAML file")
    p.add_argument("--checkpoint", required=True, help="baseline checkpoint .pt (with its .json sidecar)")
    p.add_argument("--out", required=True, help="output folder for model.tflite and record.json")
    p.add_argument("--finetune-images", type=positive, default=None, help="training images used for fine-tuning (default all)")
    p.add_argument("--val-images", type=positive, default=None, help="validation images evaluated (default all)")
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.set_defaults(func=_cmd_compress)

    p = sub.add_parser("search", help="Bayesian optimisation of a plan template (resumable)",
                       description="Search the free parameters of a plan template against accuracy and latency. "
                                   "Every finished trial is appended to the config's JSON-lines log.")
    p.add_argument("config", help="search config YAML (baseline, template, objective, threshold, budget, method)")
    p.add_argument("--budget", type=positive, help="number of trials (overrides the config)")
    p.add_argument("--resume", action="store_true", help="continue from the existing trial log")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("study", help="the O8 study: GP vs random search over seeds and datasets (resumable)",
                       description="Run the study CONFIG describes into results/study/<name>/<machine>/ and print its "
                                   "pre-registered verdict. Every finished trial is logged; --resume continues a "
                                   "study cut short exactly as if it had not stopped.")
    p.add_argument("config", help="study config YAML (e.g. params/studies/o8.yaml)")
    p.add_argument("--seeds", help="seeds to run, e.g. 0-4 or 0,2 (default: the config's)")
    p.add_argument("--methods", nargs="+", help="search methods to run (default: the config's)")
    p.add_argument("--resume", action="store_true", help="continue the study's existing logs")
    p.add_argument("--json", action="store_true", help="print chosen plans and verdict as JSON")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--workers", type=positive, help="run the trials on a local Dask cluster of N worker processes")
    g.add_argument("--scheduler", help="run the trials on the Dask cluster whose scheduler is at ADDRESS "
                                       "(e.g. tcp://host:8786); this machine stays the study's target")
    p.add_argument("--worker-threads", type=positive, default=1,
                   help="torch threads per trial on a worker (default 1; timing always uses 1 thread)")
    p.set_defaults(func=_cmd_study)

    p = sub.add_parser("controls", help="narrow networks trained from scratch: the controls of every compression claim",
                       description="Train the profile's controls (budget-matched baseline, uniform widths, the "
                                   "baseline at multiples of its budget) from scratch, export them with the canonical "
                                   "int8 recipe, time them paired against plain int8 and score them on validation and "
                                   "test into results/<profile>/<machine>/controls.csv; then Scratch-B of 08's chosen "
                                   "plans (scratch_b.csv). Rows already measured on this machine are kept.")
    p.add_argument("--profile", default="default", choices=PROFILES, help="parameter profile (default: default)")
    p.add_argument("--stage", default="all", choices=("curve", "scratch-b", "all", "portable"),
                   help="curve: the controls table; scratch-b: re-train 08's chosen plans from scratch; all (default); "
                        "portable: retrain one control of the machine whose controls `retime --scope controls` "
                        "re-timed here and compare its counts, so reports may use that machine's accuracy with this "
                        "machine's latencies")
    p.add_argument("--key", help="with --stage portable: the control to retrain (default: the uniform width that "
                                 "trained fastest there)")
    p.add_argument("--fresh", action="store_true", help="measure every control again instead of keeping this "
                                                       "machine's rows")
    p.add_argument("--study", help="with --stage scratch-b: re-train the chosen plans of this study config (e.g. "
                                   "params/studies/o8.yaml) instead of 08's; plans made elsewhere are built again here")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_controls)

    p = sub.add_parser("table", help="the tabular benchmark: every network of a discrete space measured once (resumable)",
                       description="Measure every network of the space CONFIG describes (ResNet-18's per-stage channel "
                                   "counts): pruned from the baseline, fine-tuned, exported int8, timed paired against "
                                   "plain int8 and scored as counts; then Scratch-B of the front, the uniform widths and "
                                   "a random subset, and a second training seed of a random subset. Rows go to "
                                   "results/study/<name>/<machine>/ as they finish; rows measured on other machines "
                                   "under the same config count (accuracy is portable), and the latencies the analysis "
                                   "uses are every network re-timed on one machine (--stage retime).")
    p.add_argument("config", help="table config YAML (e.g. params/tables/o8-table.yaml)")
    p.add_argument("--resume", action="store_true", help="continue the table (its rows from any machine count)")
    p.add_argument("--stage", default="all", choices=("inherit", "retime", "scratch", "seed1", "all"),
                   help="inherit: the pruned networks; retime: every network's architecture timed on this machine (the "
                        "latencies the analysis uses); scratch: Scratch-B (after every inherit row, re-timed here); "
                        "seed1: the second training seed; all (default)")
    p.add_argument("--datasets", nargs="+", metavar="NAME", help="only these of the config's datasets (default: all)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--workers", type=positive, help="build the pruned networks on a local Dask cluster of N processes")
    g.add_argument("--scheduler", help="build them on the Dask cluster at ADDRESS; this machine stays the target")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_table)

    p = sub.add_parser("replay", help="optimisers replayed on a measured table, with the pre-registered verdict",
                       description="Replay every optimiser of CONFIG (GP, TPE, random, greedy) for its seeds on this "
                                   "machine's finished table; write the trajectories and the verdicts beside it and "
                                   "print them.")
    p.add_argument("config", help="table config YAML (e.g. params/tables/o8-table.yaml)")
    p.add_argument("--machine", help="replay the table measured on this machine id (default: this machine)")
    p.add_argument("--seeds", type=positive, help="replays per optimiser (default: the config's)")
    p.add_argument("--optimisers", nargs="+", help="optimisers to replay (default: the config's)")
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    p.add_argument("--redraw", type=positive, metavar="DRAWS",
                   help="instead: the registered comparisons with every validation count redrawn DRAWS times (e.g. "
                        "200) with the measured training-seed spread, the committed replays' paths held fixed "
                        "(descriptive): <dataset>-redraw.csv")
    p.add_argument("--live", action="store_true", help="instead: GP and random search, seeds 0 and 1, run live on the "
                                                      "config's first dataset (each network built and timed now) "
                                                      "and compared with their replays on this machine's table")
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser("retime", help="re-time the committed networks on this machine, without training (resumable)",
                       description="Rebuild every committed network of a scope from its spec (architecture, dataset, "
                                   "stage channels, a study's pruning step) with seeded weights, export it int8 and time it paired against "
                                   "this machine's plain int8; one JSON line per row in results/retime/<machine>/"
                                   "latency.jsonl, so a run cut short goes on with the same command.")
    p.add_argument("--scope", default="all", help="controls, table, studies (their chosen plans) or all (chain: not "
                                                  "re-timed; make run re-runs it)")
    p.add_argument("--networks", default="answer", help="table: answer (the front, the uniform widths and the fastest "
                                                        "networks that clear the bar) or all (the whole space)")
    p.add_argument("--limit", type=positive, help="stop after this many new rows (the next call goes on)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_retime)

    p = sub.add_parser("fit", help="the fastest deployable int8 model of your network and data under your bar",
                       description="Search smaller networks of your network's family trained from scratch (width per "
                                   "stage, depth, stem stride, input resolution), with and without distillation from "
                                   "your network, and structured-pruned copies of it, by Bayesian optimisation with "
                                   "successive halving; each candidate exported int8 and timed here against your "
                                   "network's plain int8. Writes model.tflite, model.pt, fit.json and report.md to "
                                   "--out; resumable with --resume.")
    p.add_argument("--model", required=True, help="a torchvision classification name (resnet18, mobilenet_v2, ...) or "
                                                  "module:function returning an nn.Module (num_classes= is passed "
                                                  "when it takes it)")
    p.add_argument("--weights", help="the network's trained state_dict (loaded with weights_only); without it the "
                                     "network is trained here for --epochs first")
    p.add_argument("--data", required=True, help="fashion_mnist, glyphs, cifar10, cifar100 or imagefolder:DIR")
    p.add_argument("--input-size", type=positive, default=32, help="square input size in pixels (default 32)")
    p.add_argument("--bar", type=float, default=1.0, help="accuracy points below your network's own int8 validation "
                                                          "accuracy still acceptable (default 1)")
    p.add_argument("--target", default="cpu", help="cpu (LiteRT here) or edgetpu (the Edge TPU delegate where present,"
                                                   " else this CPU's latency for networks whose every op maps to it)")
    p.add_argument("--budget", type=positive, default=12, help="candidates screened (default 12); the best third are "
                                                               "trained for the full passes")
    p.add_argument("--epochs", type=float, default=1.0, help="training passes of a full-budget candidate (default 1)")
    p.add_argument("--train-images", type=positive, help="seeded training subset (default: the whole split)")
    p.add_argument("--val-images", type=positive, help="seeded validation subset (default: the whole split)")
    p.add_argument("--test-images", type=positive, help="seeded test subset (default: the whole split)")
    p.add_argument("--seed", type=int, default=0, help="seed of the search and of every training run")
    p.add_argument("--controls", type=_fractions, default=(0.5, 0.75),
                   help="uniform widths trained from scratch as controls, comma-separated (default 0.5,0.75)")
    p.add_argument("--workers", type=positive, help="candidates trained at once on a local Dask cluster")
    p.add_argument("--scheduler", help="address of a running Dask scheduler")
    p.add_argument("--out", required=True, help="the folder for the model, its report and the logs")
    p.add_argument("--resume", action="store_true", help="go on with the fit in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the result as JSON (progress lines go to stderr)")
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser("baseline", help="bring your own network: import a torchvision state_dict as a baseline")
    bsub = p.add_subparsers(dest="action", required=True)
    b = bsub.add_parser("import", help="import a torchvision architecture's state_dict as a baseline checkpoint",
                        description="Build torchvision's ARCH for DATASET's classes, load the state_dict in FILE "
                                    "(weights_only; a pickled module is refused), score it on validation and write a "
                                    "checkpoint with the usual sidecar under runs/checkpoints/, which export, compress, "
                                    "search, study and the controls then take like any baseline.")
    b.add_argument("--arch", required=True, help="a torchvision classification architecture, e.g. mobilenet_v2")
    b.add_argument("--weights", required=True, help="the state_dict file (torch.save(model.state_dict(), FILE))")
    b.add_argument("--data", required=True, help="the dataset: a name or imagefolder:<path>")
    b.add_argument("--input-size", type=positive, default=224, help="square input size in pixels (default 224)")
    b.add_argument("--out", help="where the checkpoint goes (.pt; default: runs/checkpoints/<arch>-<data>-<key>.pt)")
    b.add_argument("--json", action="store_true", help="print the checkpoint's record as JSON")
    b.set_defaults(func=_cmd_baseline)

    p = sub.add_parser("report", help="docs/results.md and the README's answer, generated from results/",
                       description="Print the results section generated from the committed tables of a profile.")
    p.add_argument("--profile", default="default", choices=PROFILES,
                   help="profile whose results/<profile>/ tables are reported")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--write", action="store_true", help="write them between their markers (docs/results.md, README.md)")
    g.add_argument("--check", action="store_true", help="exit 1 if either page's generated section differs")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("book", help="the executed chapters, results and studies as one static HTML site (no kernel)",
                       description="Render the committed executed chapters of one machine, the answer, the docs pages, the results and the "
                                   "study reports into runs/book/<profile>/ (open its index.html).")
    p.add_argument("--profile", default="default", choices=PROFILES, help="profile whose chapters are rendered")
    p.add_argument("--machine", help="machine id whose chapters are rendered (default: this machine, else the newest)")
    p.add_argument("--out", help="folder of the site (default runs/book/<profile>/); replaced")
    p.add_argument("--check", action="store_true",
                   help="also open every page in headless Chromium: console errors, images, internal links; screenshots")
    p.set_defaults(func=_cmd_book)
    return parser


def explain(exc: BaseException) -> str | None:
    """One sentence for an expected failure (bad input, a path, YAML, a missing key); None for a genuine bug."""
    import struct

    import yaml

    from helpers.core.io import yaml_problem

    if isinstance(exc, yaml.YAMLError):
        return f"malformed YAML ({yaml_problem(exc)}); fix the syntax there"
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError) and exc.filename:
        # a rename of a temporary file onto the output names the output (filename2), not the temporary file
        return f"{exc.strerror or exc} for {exc.filename2 or exc.filename}; choose a path that can be written or read there"
    if isinstance(exc, KeyError):
        return f"the input lacks the field {exc.args[0]!r}; add it (or use a file this workbench wrote)"
    if isinstance(exc, struct.error):
        return f"a binary input is truncated or corrupt ({exc}); make it again"
    if isinstance(exc, (ValueError, FileNotFoundError, RuntimeError, OSError)):
        return str(exc)
    return None


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the sub-command: the one error boundary of the CLI.

    Expected failures print one sentence and exit 2; anything else is a bug in the workbench and prints
    its traceback with a line saying so (exit 1).
    """
    args = build_parser().parse_args(argv)
    if args.verbose:
        from helpers.core.quiet import verbose

        verbose()
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted; finished trials and outputs are kept, resume with the same command", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the boundary: explained or reported as a bug
        sentence = explain(exc)
        if sentence is None:
            import traceback

            traceback.print_exc()
            print(f"error: this is a bug in the workbench, not in your input ({type(exc).__name__}); please report "
                  "it with the traceback above", file=sys.stderr)
            return 1
        print(f"error: {sentence}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
