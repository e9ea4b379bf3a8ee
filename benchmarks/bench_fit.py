"""Does ``fit`` hand back a network faster than the narrow networks trained from scratch, at the same accuracy?

Pre-registered before its first run (issue 39; targets in benchmarks/reference.csv, written with this script). The
given network is the workbench's small-input ResNet-18 x0.25 (MobileNetV2 x0.5 in the third case), trained by
``fit`` itself for the budget-matched passes of the default profile (its baseline plus 08's final fine-tune), on
the default profile's training subset. ``fit`` runs with bar 1 point, budget 12, seed 0, on this machine's CPU.
Then, in the same process and on the same machine, each paired against the given network's plain int8:

* the uniform widths from scratch (fit's controls: 0.25, 0.375, 0.5 and 0.75) at the same passes;
* the table's fastest network from scratch that clears its bar (``params/tables/o8-table.yaml``, the committed table
  of ``TABLE_MACHINE``), rebuilt from its stage channels and trained here for the same passes;
* the distillation ablation: the chosen architecture trained again without a teacher.

Targets, each only where the chosen network's test count is at least the comparator's (else the row is a miss):
chosen >= 1.5x faster than the fastest uniform width that clears the bar; >= 1.2x faster than the table's fastest
network from scratch; >= 4x over the given plain int8 (stated for a machine where plain int8 is about 0.1-0.2 ms;
on a machine where width barely moves latency the ratio is printed with that caveat, not chased). Each case is
written to results/fit/<machine>/<case>/ as it finishes (commit it), in the staged order: ResNet-18 on glyphs,
then Fashion-MNIST, then MobileNetV2 on glyphs (half Fashion-MNIST's passes, so it fits the session). A finished case is read back, not re-run.

    .venv/bin/python benchmarks/bench_fit.py [--case resnet18-glyphs] [--budget 12]
"""

from __future__ import annotations

import argparse
import json

from helpers.core import paths
from helpers.core.benchmarks import exit_status, judge

CASES = {"resnet18-glyphs": ("small_resnet18", "glyphs"), "resnet18-fashion_mnist": ("small_resnet18", "fashion_mnist"),
         "mobilenet_v2-glyphs": ("small_mobilenet_v2", "glyphs")}
TABLE_MACHINE = "amd-epyc-2c-d3c3b3"
BAR = 1.0  # points below the given network's int8 validation accuracy
CONTROLS = (0.25, 0.375, 0.5, 0.75)  # the controls stage's narrowest widths and then some: the fastest that clears


def budget_matched(dataset: str) -> tuple[float, int | None]:
    """(epochs over the default profile's training subset, that subset's size) of the budget-matched network."""
    from helpers.core.budget import epochs_for
    from helpers.datasets.data import load_dataset
    from helpers.experiments.controls import long_budget
    from helpers.networks.params import load_profile

    params = load_profile("default")
    images = params["common"]["baseline_spec"].get("train_images")
    split = len(load_dataset(dataset, "train"))
    return epochs_for(long_budget(params, "default", dataset, split), images, split), images


def table_scratch(dataset: str) -> tuple[str, list] | None:
    """The committed table's fastest network from scratch that clears its bar: (key, stage channels), or None."""
    from helpers.analysis.table_analysis import answer, table_bar
    from helpers.experiments.table_config import Lattice, load_table_config

    cfg = load_table_config(paths.PARAMS / "tables" / "o8-table.yaml")
    folder = paths.RESULTS / "study" / "o8-table" / TABLE_MACHINE
    ref = json.loads((folder / f"{dataset}-reference.json").read_text())
    a = answer(cfg, folder, dataset, table_bar(cfg, ref), ref["int8_latency_ms"])
    row = a[a.role == "fastest network from scratch that clears the bar"] if len(a) else a
    return (row.network.iloc[0], list(Lattice.parse_key(row.network.iloc[0]))) if len(row) else None


def run_case(case: str, budget: int) -> dict:
    from helpers.core.identity import machine
    from helpers.core.io import write_json
    from helpers.core.stats import wilson_interval
    from helpers.deploy.runtime import evaluate_tflite
    from helpers.experiments.fit import Fit, FitConfig, resized, check_config, run_fit
    from helpers.networks.models import stage_channels

    fn, dataset = CASES[case]
    folder = paths.RESULTS / "fit" / machine()["id"] / case
    if (folder / "bench.json").exists():
        keep(paths.RUNS / "bench-fit" / case, folder)
        return json.loads((folder / "bench.json").read_text())
    epochs, images = budget_matched(dataset)
    cfg = FitConfig(model=f"helpers.networks.family:{fn}", data=dataset, out=str(paths.RUNS / "bench-fit" / case),
                    bar=BAR, budget=budget, epochs=epochs, train_images=images, seed=0, controls=CONTROLS)
    result = run_fit(cfg, resume=True)
    net, data = check_config(cfg)
    fit = Fit(cfg, net, data)
    fit.given.load_state_dict(__import__("torch").load(paths.RUNS / "bench-fit" / case / "given.pt",
                                                      weights_only=True))
    fit.make_reference()

    def scored(values: dict, tag: str) -> dict:
        row = fit.candidate(values, epochs, tag, keep_weights=False)
        test = evaluate_tflite(fit.out / "candidates" / row["artifact"], resized(fit.test_ds, row["input_size"]))
        return {**row, "test_correct": int(round(test["accuracy"] * test["n"])), "test_n": test["n"],
                "feasible": bool(fit.objective().feasible(row["accuracy"], row["val_n"]))}

    extra = {}
    table = table_scratch(dataset) if fn == "small_resnet18" else None
    if table is not None:
        base = stage_channels(fit.given)
        values = {"kind": "scratch", **{f"width{i + 1}": c / b for i, (c, b) in enumerate(zip(table[1], base))},
                  "depth": 1.0, "stem_stride": 1, "resolution": 1.0, "distill": 0.0, "temperature": 4.0}
        extra["table_scratch"] = {"network": table[0], **scored(values, "bench-table-scratch")}
    chosen = result["chosen"]
    if chosen is not None and float(chosen["values"].get("distill", 0)) > 0:
        extra["no_teacher"] = scored({**chosen["values"], "distill": 0.0}, "bench-no-teacher")
    for r in result["full"]:  # the controls' test counts
        if r.get("stage") == "control" and r.get("status") == "ok":
            test = evaluate_tflite(fit.out / "candidates" / r["artifact"], fit.test_ds)
            r["test_correct"], r["test_n"] = int(round(test["accuracy"] * test["n"])), test["n"]
    out = {"case": case, "machine": machine()["id"], "given_int8_ms": result["reference"]["latency_ms"],
           "epochs": epochs, "train_images": images, "budget": budget, "given_test": result["given_test"],
           "chosen": chosen, "controls":
           [r for r in result["full"] if r.get("stage") == "control"], **extra}
    if chosen is not None:
        out["chosen"]["test_interval"] = list(wilson_interval(chosen["test_correct"], chosen["test_n"]))
    write_json(folder / "bench.json", out)
    keep(paths.RUNS / "bench-fit" / case, folder)
    return out


def keep(run: "Path", folder: "Path") -> None:
    """Commit-sized copies of the fit beside bench.json: its fit.json, report (markdown and front figure) and the
    chosen int8 model (the run folder under runs/ holds every candidate and is not committed)."""
    import shutil

    from helpers.reports.fit_report import write_fit_report

    if (folder / "report.md").exists() or not (run / "fit.json").exists():
        return
    write_fit_report(run / "fit.json")
    for name in ("fit.json", "front.png", "model.tflite", "report.md"):  # report.md last: it marks the copy done
        if (run / name).exists():
            shutil.copyfile(run / name, folder / name)


def report(b: dict) -> None:
    from helpers.analysis.fit_bench import comparisons

    chosen = b["chosen"]
    print(f"== {b['case']} on {b['machine']} (given plain int8 {b['given_int8_ms']:.3f} ms; {b['epochs']:.3g} passes "
          f"over {b['train_images'] or 'all'} training images; budget {b['budget']})")
    if chosen is None:
        print("no candidate cleared the bar: every target below is missed")
    else:
        print(f"chosen: {chosen['values']} {chosen['latency_ms']:.3f} ms, val {chosen['val_correct']}/"
              f"{chosen['val_n']}, test {chosen['test_correct']}/{chosen['test_n']}")
    for c in comparisons(b):
        other = c["other"]
        if not c["applicable"]:
            print(f"{c['against']}: not applicable (the table holds ResNet-18 x0.25 networks only), not judged")
            continue
        if other is None:
            print(f"{c['against']}: none that clears the bar, so no comparison")
        elif c["ratio"] is not None:
            test = (f"test {other['test_correct']}/{other['test_n']}; " if other.get("test_correct") is not None
                    else "")
            misses = "; it misses the bar here" if other.get("feasible") is False else ""
            print(f"{c['against']} ({other.get('label', other.get('network', ''))}{misses}): "
                  f"{other['latency_ms']:.3f} ms, {test}chosen {c['ratio']:.2f}x faster, test "
                  f"{'equal or better' if c['equal_or_better'] else 'WORSE'}"
                  + ("" if c["equal_or_better"] else f" by {other['test_correct'] - chosen['test_correct']:,} images ("
                     f"{100 * (other['test_correct'] - chosen['test_correct']) / chosen['test_n']:.2f} points), so the "
                     "registered rule judges the ratio as 0"))
        print(judge("bench_fit", c["metric"], c["judged"]))
        if other is not None and other.get("label", "").startswith("uniform width 1.0"):
            print("  (old and new reading side by side: as first written, with the trained widths "
                  f"{', '.join(str(f) for f in CONTROLS)} only, none clears the bar, so there is no comparison and no "
                  "verdict; read with width 1.0, the given network, which clears by construction, as above. Decided "
                  "after the first case's controls all missed the bar: a uniform-width curve ends at full width.)")
    if "no_teacher" in b:
        n = b["no_teacher"]
        print(f"distillation ablation: without the teacher val {n['val_correct']}/{n['val_n']}, test "
              f"{n['test_correct']}/{n['test_n']}, {n['latency_ms']:.3f} ms (with it: val {chosen['val_correct']}, "
              f"test {chosen['test_correct']})")
    elif chosen is not None:
        print("distillation ablation: the chosen network has no teacher (distill 0), so there is none to ablate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=list(CASES), action="append", help="cases to run (default: all, in order)")
    parser.add_argument("--budget", type=int, default=12, help="candidates screened per case")
    args = parser.parse_args()
    for case in args.case or list(CASES):
        report(run_case(case, args.budget))


if __name__ == "__main__":
    main()
    raise SystemExit(exit_status())
