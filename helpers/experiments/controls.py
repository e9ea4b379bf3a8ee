"""Controls of every compression claim: networks trained from scratch for a plan's budget, measured like plans.

Three kinds, each trained with the baseline's recipe (``BaselineSpec``: batch, learning rate, training subset,
seed), exported with the canonical int8 recipe (``artifacts.plain_int8``'s), timed paired against the baseline's
plain int8 artifact and scored as the deployed artifact on validation and test:

- ``budget_matched``: the unpruned baseline trained for the budget of the long-fine-tuned plans (baseline passes
  plus 08's final fine-tune); its fp32 validation accuracy gives the budget-matched bar;
- ``uniform``: the same architecture at uniform widths, each stage's channels the baseline's times a fraction,
  rounded to multiples of ``round_to`` as the plans round theirs, for the same budget: the curve plans must beat;
- ``convergence``: the baseline at multiples of its own budget (01 draws them; ``baseline`` is the 1x row).

``scratch_b`` re-trains a chosen plan's pruned architecture from random initialisation for the plan's budget
(Liu et al. 2019): does inheriting the baseline's weights help? Trained networks are cached like baselines
(runs/checkpoints); the tables (``controls.csv``, ``scratch_b.csv``) and the per-image test correctness
(``controls_predictions.npz``) go to results/<profile>/<machine>/ and are rewritten after every row, so a run
cut short keeps what it measured and the next skips it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.core.budget import epochs_for, passes
from helpers.networks.models import MODELS, uniform_channels

KINDS = ("baseline", "convergence", "budget_matched", "uniform")


@dataclass(frozen=True)
class ControlsSpec:
    """The profile's ``controls`` section: which networks, datasets, width fractions, rounding and budgets.

    ``fractions`` are shares of the baseline's stage channels (each in (0, 1)); ``budget`` maps dataset -> passes
    over the training split (None: the budget of 08's long-fine-tuned plans, see :func:`long_budget`);
    ``convergence`` lists multiples of the baseline's own budget.
    """

    datasets: list
    architectures: list = field(default_factory=lambda: ["resnet18"])
    fractions: list = field(default_factory=lambda: [0.375, 0.5, 0.625, 0.75])
    round_to: int = 8
    convergence: list = field(default_factory=lambda: [1, 2, 4])
    budget: dict | None = None

    @classmethod
    def parse(cls, section) -> "ControlsSpec":
        """A spec from the profile's ``controls`` mapping; every bad field is one sentence, before any training."""
        from dataclasses import fields

        from helpers.datasets.data import DATASETS, known_dataset

        if not isinstance(section, dict):
            raise ValueError("the profile has no 'controls' section; add one with datasets, fractions and round_to "
                             "(see params/default.yaml)")
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(section) - set(names))
        if unknown:
            raise ValueError(f"controls has unknown key(s) {', '.join(unknown)}; it takes {', '.join(names)}")
        if "datasets" not in section:
            raise ValueError("controls lacks datasets; list the datasets whose controls are trained")
        spec = cls(**section)
        for ds in spec.datasets:
            if not known_dataset(ds):
                raise ValueError(f"controls: unknown dataset {ds!r}; choose from {', '.join(DATASETS)} or "
                                 "imagefolder:<path>")
        for arch in spec.architectures:
            if arch not in MODELS:
                raise ValueError(f"controls: unknown architecture {arch!r}; choose from {', '.join(MODELS)}")
        if not isinstance(spec.round_to, int) or isinstance(spec.round_to, bool) or spec.round_to < 1:
            raise ValueError(f"controls.round_to must be a whole number of at least 1, not {spec.round_to!r}")
        for f in spec.fractions:
            if not isinstance(f, (int, float)) or not 0 < f < 1:
                raise ValueError(f"controls.fractions: {f!r} is not a share of the baseline's channels in (0, 1)")
        for k in spec.convergence:
            if not isinstance(k, (int, float)) or k <= 0:
                raise ValueError(f"controls.convergence: {k!r} is not a positive multiple of the baseline's budget")
        for ds, b in (spec.budget or {}).items():
            if not isinstance(b, (int, float)) or b <= 0:
                raise ValueError(f"controls.budget for {ds}: {b!r} is no budget; give a positive number of passes over "
                                 "the training split")
        return spec

    def channels(self, base: list) -> dict:
        """{fraction: stage channels} of the uniform widths; a fraction that rounds a stage to no channel raises."""
        return {f: uniform_channels(base, f, self.round_to) for f in self.fractions}


def long_budget(profile_params: dict, profile: str, dataset: str, split_images: int) -> float:
    """The budget of 08's long-fine-tuned plans in a profile: the baseline's passes plus the final fine-tune's
    (08's ``final_epochs``, else 06's) over 08's fine-tuning images, as passes over a split of ``split_images``."""
    from helpers.networks.baselines import BaselineSpec
    from helpers.networks.params import effective_parameters

    spec = BaselineSpec.parse(profile_params["common"]["baseline_spec"])
    base = passes(spec.epochs[dataset], spec.train_images, split_images)
    p08 = effective_parameters("08", profile_params, profile)
    final = p08["final_epochs"] if p08.get("final_epochs") is not None else \
        effective_parameters("06", profile_params, profile)["final_epochs"]
    final = final[dataset] if isinstance(final, dict) else final
    return base + passes(final, p08.get("finetune_images"), split_images)


def planned(spec: ControlsSpec, baseline_spec, profile_params: dict, profile: str, arch: str, dataset: str,
            split_images: int, base_channels: list) -> list[dict]:
    """The controls of one architecture and dataset, in training order: kind, fraction, channels, budget, epochs."""
    train_images, epochs = baseline_spec.train_images, baseline_spec.epochs[dataset]
    base_budget = passes(epochs, train_images, split_images)
    budget = (spec.budget or {}).get(dataset) or long_budget(profile_params, profile, dataset, split_images)
    run = epochs_for(budget, train_images, split_images)
    # the baseline's own epochs are used as given (not via passes and back), so its cached checkpoint is found
    rows = [{"kind": "baseline", "fraction": 1.0, "channels": None, "budget": base_budget, "epochs": epochs}]
    rows += [{"kind": "convergence", "fraction": 1.0, "channels": None, "budget": k * base_budget, "epochs": k * epochs}
             for k in spec.convergence if k != 1]
    rows.append({"kind": "budget_matched", "fraction": 1.0, "channels": None, "budget": budget, "epochs": run})
    channels = spec.channels(base_channels) if arch == "resnet18" else {}
    rows += [{"kind": "uniform", "fraction": f, "channels": channels.get(f), "budget": budget, "epochs": run}
             for f in spec.fractions]
    return rows


def _control_args(arch: str, dataset: str, row: dict, baseline_spec) -> tuple[tuple, dict]:
    width = baseline_spec.widths[arch] * (row["fraction"] if arch != "resnet18" else 1.0)
    return ((arch, dataset, width, row["epochs"], baseline_spec.batch_size, baseline_spec.lr, baseline_spec.train_images),
            {"seed": baseline_spec.seed, "channels": row["channels"], "val_images": baseline_spec.val_images})


def train_control(arch: str, dataset: str, row: dict, baseline_spec, progress: bool = True):
    """(model, checkpoint record) of one control, trained from scratch with the baseline's recipe (cached)."""
    from helpers.networks.baselines import baseline

    args, kwargs = _control_args(arch, dataset, row, baseline_spec)
    return baseline(*args, progress=progress, **kwargs)


def control_key(arch: str, dataset: str, row: dict, baseline_spec) -> str:
    """The table key of one control (its kind and checkpoint), known before it is trained."""
    from helpers.networks.baselines import checkpoint_path

    args, kwargs = _control_args(arch, dataset, row, baseline_spec)
    return f"{row['kind']}-{checkpoint_path(*args, **kwargs).stem}"


def measure_artifact(artifact: Path, reference: Path, val_ds, test_ds, threads: int = 1) -> tuple[dict, np.ndarray]:
    """Figures of one int8 artifact: speed-up over ``reference`` (paired timing) with its IQR, accuracy on validation
    and test (fractions, with counts); and its per-image test correctness (booleans) for paired comparisons."""
    from helpers.deploy.latency import measure_tflite_paired
    from helpers.deploy.runtime import evaluate_tflite

    p = measure_tflite_paired(artifact, reference, threads)
    val = evaluate_tflite(artifact, val_ds, None, threads)
    test = evaluate_tflite(artifact, test_ds, None, threads)
    correct = test["predictions"] == test_ds.targets.numpy()
    return {"speedup_vs_int8": 1 / p.ratio, "speedup_iqr": p.ratio_iqr / p.ratio ** 2, "ratio_to_int8": p.ratio,
            "noisy": p.noisy, "int8_val_accuracy": val["accuracy"], "val_n": val["n"],
            "int8_val_correct": int(round(val["accuracy"] * val["n"])), "int8_test_accuracy": test["accuracy"],
            "test_n": test["n"], "int8_test_correct": int(correct.sum())}, correct


def measure(model, artifact: Path, reference: Path, val_ds, test_ds, threads: int = 1) -> tuple[dict, np.ndarray]:
    """:func:`measure_artifact` plus the PyTorch model's fp32 accuracy on validation and test, MACs and parameters."""
    from helpers.networks.models import count_macs_params
    from helpers.networks.train import evaluate

    figures, correct = measure_artifact(artifact, reference, val_ds, test_ds, threads)
    macs, params = count_macs_params(model, test_ds.images.shape[-1], test_ds.in_channels)
    return {**figures, "macs": macs, "params": params, "fp32_val_accuracy": evaluate(model, val_ds)["accuracy"],
            "fp32_test_accuracy": evaluate(model, test_ds)["accuracy"]}, correct


def planned_work(profile: str) -> tuple:
    """(baseline spec, [(architecture, dataset, planned rows)]) of the profile's ``controls`` section; every bad field
    is one sentence (ValueError) before anything trains."""
    from helpers.datasets.data import load_dataset
    from helpers.networks.baselines import BaselineSpec
    from helpers.networks.models import build_model, stage_channels
    from helpers.networks.params import load_profile

    params = load_profile(profile)
    spec = ControlsSpec.parse(params.get("controls"))
    bspec = BaselineSpec.parse((params.get("common") or {}).get("baseline_spec"))
    work = []
    for arch in spec.architectures:
        for ds in spec.datasets:
            for what, table, key in (("widths", bspec.widths, arch), ("epochs", bspec.epochs, ds)):
                if key not in table:
                    raise ValueError(f"baseline_spec.{what} has no entry for {key!r}; the controls need one")
            train = load_dataset(ds, "train")
            base = stage_channels(build_model(arch, train.num_classes, train.in_channels, bspec.widths[arch]))
            work.append((arch, ds, planned(spec, bspec, params, profile, arch, ds, len(train), base)))
    return bspec, work


def run_controls(profile: str, progress: bool = True, log=print, fresh: bool = False) -> Path:
    """Train and measure every control of the profile's ``controls`` section on this machine; returns the table's path.

    Rows already in this machine's controls.csv (same checkpoint) are kept, not measured again, unless ``fresh``.
    The whole spec is checked (one sentence, nothing written) before the first network trains.
    """
    from helpers.core import paths
    from helpers.deploy.artifacts import plain_int8
    from helpers.datasets.data import load_dataset
    from helpers.records.figures import load_table, save_table
    from helpers.networks.models import stage_channels
    from helpers.networks.params import load_profile

    common = load_profile(profile).get("common") or {}
    bspec, work = planned_work(profile)  # every check before training
    old = None if fresh else load_table("controls", profile)
    rows = [] if old is None else old.drop(columns=["run_record"]).to_dict("records")
    preds = dict(load_predictions(profile)) if not fresh else {}
    done = {r["key"] for r in rows if r["key"] in preds}
    for arch, ds, todo in work:
        val_ds = load_dataset(ds, "val").subset(common.get("val_images"))
        test_ds = load_dataset(ds, "test").subset(common.get("test_images"))
        reference = None
        for r in todo:
            key = control_key(arch, ds, r, bspec)
            if key in done:  # measured on this machine already: not trained again (a fresh clone has no checkpoints)
                continue
            if reference is None:
                reference = plain_int8(*bspec.build(arch, ds, progress=progress))
            model, rec = train_control(arch, ds, r, bspec, progress)
            artifact = plain_int8(model, rec)
            figures, correct = measure(model, artifact, reference, val_ds, test_ds)
            row = {"key": key, "model": arch, "dataset": ds, "kind": r["kind"], "fraction": r["fraction"],
                   "channels": "/".join(map(str, stage_channels(model))), "budget": r["budget"], "epochs": r["epochs"],
                   "train_s": rec["metrics"].get("train_seconds"), **figures,
                   "checkpoint": paths.portable(rec["path"]), "artifact": paths.portable(artifact)}
            rows = [x for x in rows if x["key"] != key] + [row]
            preds[key] = correct
            save_predictions(profile, preds)
            save_table(pd.DataFrame(rows), "controls", profile, command=True)
            what = f"uniform x{r['fraction']:g}" if r["kind"] == "uniform" else r["kind"]
            log(f"{arch} {ds} {what} ({row['channels']}, {r['budget']:.2f} passes): "
                f"{row['speedup_vs_int8']:.2f}x over plain int8, int8 validation {100 * row['int8_val_accuracy']:.2f}%, "
                f"test {100 * row['int8_test_accuracy']:.2f}%")
    from helpers.records.provenance import record_path

    path = record_path(profile).parent / "controls.csv"
    return path if path.exists() else None


def predictions_path(profile: str, machine_id: str | None = None) -> Path:
    """Where the per-image test correctness of the controls (and Scratch-B rows) lives beside controls.csv (this
    machine's, or ``machine_id``'s)."""
    from helpers.core import paths
    from helpers.records.provenance import record_path

    if machine_id:
        return paths.results_dir(profile, machine_id) / "controls_predictions.npz"
    return record_path(profile).parent / "controls_predictions.npz"


def load_predictions(profile: str, machine_id: str | None = None) -> dict:
    """{row key: per-image test correctness (booleans)} of this machine's controls (or ``machine_id``'s: pass a
    ported table's ``accuracy_machine``); {} when none were measured."""
    path = predictions_path(profile, machine_id)
    if not path.exists():
        return {}
    with np.load(path) as z:
        return {k: np.unpackbits(z[k])[: int(z[f"{k}__n"])].astype(bool) for k in z.files if not k.endswith("__n")}


def save_predictions(profile: str, preds: dict) -> None:
    from helpers.core.io import atomic_path

    packed = {}
    for k, v in preds.items():
        packed[k], packed[f"{k}__n"] = np.packbits(np.asarray(v, bool)), np.array(len(v))
    path = predictions_path(profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **packed)


def load_controls(profile: str) -> pd.DataFrame | None:
    """This machine's controls table of ``profile``; else another machine's controls re-timed here whose accuracy a
    control retrained here showed portable (``portable.ported_controls``: its rows name both machines); None when
    neither exists."""
    from helpers.experiments.portable import ported_controls
    from helpers.records.figures import load_table

    table = load_table("controls", profile)
    return table if table is not None else ported_controls(profile)


def predictions_for(profile: str, controls: pd.DataFrame | None) -> dict:
    """The per-image test correctness that goes with a table of :func:`load_controls` (the trained machine's)."""
    ported = controls is not None and "accuracy_machine" in controls and len(controls)
    return load_predictions(profile, controls.accuracy_machine.iloc[0] if ported else None)


def convergence(profile: str) -> tuple[pd.DataFrame | None, list[str]]:
    """The baseline at multiples of its budget (01): the table and :func:`convergence_lines`; without controls on
    this machine, (None, one sentence)."""
    from helpers.core.identity import machine

    table = load_controls(profile)
    if table is None:
        return None, [f"the baseline's convergence is not measured on this machine ({machine()['id']}): run "
                      "`python -m helpers controls` (make controls)"]
    t = table[table.kind.isin(["baseline", "convergence"])].sort_values(["model", "dataset", "budget"])
    cols = ["model", "dataset", "kind", "budget", "epochs", "fp32_val_accuracy", "int8_val_accuracy",
            "int8_test_accuracy", "test_n", "train_s"]
    return t[cols], convergence_lines(table)


def convergence_lines(table: pd.DataFrame) -> list[str]:
    """One line per architecture and dataset: int8 test accuracy at each multiple of the baseline's budget, the gain
    of each step and whether the last is beyond the noise of a difference of two accuracies (a plateau or not)."""
    from helpers.core.stats import difference_noise

    t = table[table.kind.isin(["baseline", "convergence"])].sort_values(["model", "dataset", "budget"])
    lines = []
    for (model, ds), g in t.groupby(["model", "dataset"]):
        base = g[g.kind == "baseline"].budget.iloc[0] if (g.kind == "baseline").any() else g.budget.min()
        steps = [f"{100 * r.int8_test_accuracy:.2f}% at {r.budget / base:g}x ({r.budget:.2f} passes)"
                 for r in g.itertuples()]
        gains = np.diff(100 * g.int8_test_accuracy.to_numpy())
        noise = 100 * difference_noise(float(g.int8_test_accuracy.mean()), int(g.test_n.iloc[0]))
        last = gains[-1] if len(gains) else 0.0
        state = ("still improving: the last doubling adds more than the noise" if last > noise else
                 "at a plateau within the noise for the last doubling")
        lines.append(f"{model} {ds}: int8 test {'; '.join(steps)}; gains {', '.join(f'{x:+.2f}' for x in gains)} "
                     f"points (noise +/- {noise:.2f}): {state}")
    return lines


def _planned_row(profile: str, key: str) -> tuple[str, str, dict, object]:
    """(architecture, dataset, planned row, baseline spec) of the control whose key on this machine is ``key``;
    ValueError when this machine would train no control under that key (another recipe or precision)."""
    bspec, work = planned_work(profile)
    keys = []
    for arch, ds, rows in work:
        for row in rows:
            k = control_key(arch, ds, row, bspec)
            if k == key:
                return arch, ds, row, bspec
            keys.append(k)
    raise ValueError(f"this machine would train no control under the key {key} (its keys here: {', '.join(keys)}): "
                     "the recipe or the training precision differs, so the accuracy is not shown portable")


def check_portable(profile: str = "default", key: str | None = None, progress: bool = True, log=print) -> dict:
    """Retrain one re-timed control of another machine here and compare its counts (``helpers.experiments.portable``
    says why and how reports use the result); ``key`` picks the control (default: the uniform width that trained
    fastest there). Writes and returns the check. Raises ValueError in one sentence, before any training, when there
    is nothing to check."""
    import time

    from helpers.core.identity import machine
    from helpers.core import paths
    from helpers.core.io import write_json
    from helpers.datasets.data import load_dataset
    from helpers.deploy.artifacts import plain_int8
    from helpers.deploy.runtime import evaluate_tflite
    from helpers.experiments.portable import check_path, source_of
    from helpers.networks.params import load_profile
    from helpers.records.provenance import command_record

    here = machine()["id"]
    if (paths.results_dir(profile, here) / "controls.csv").exists():
        raise ValueError(f"the controls of profile {profile!r} are measured on this machine ({here}) already: their "
                         "accuracy needs no carrying over")
    source = source_of(profile, here)
    there = pd.read_csv(paths.resolve(source))
    if key is None:
        uniform = there[there.kind == "uniform"]
        if not len(uniform):
            raise ValueError(f"{source} has no uniform-width control to retrain; name one with --key")
        key = uniform.sort_values("train_s").key.iloc[0]
    if key not in set(there.key):
        raise ValueError(f"{key!r} is no control of {source}; pick one of: {', '.join(there.key)}")
    row = there.set_index("key").loc[key]
    arch, ds, plan_row, bspec = _planned_row(profile, key)
    predictions = load_predictions(profile, Path(source).parent.name)
    common = load_profile(profile).get("common") or {}
    t0 = time.perf_counter()
    log(f"retraining {key} here ({here}) to compare with {source}")
    model, rec = train_control(arch, ds, plan_row, bspec, progress)
    artifact = plain_int8(model, rec)
    val_ds = load_dataset(ds, "val").subset(common.get("val_images"))
    test_ds = load_dataset(ds, "test").subset(common.get("test_images"))
    val, test = evaluate_tflite(artifact, val_ds), evaluate_tflite(artifact, test_ds)
    correct = test["predictions"] == test_ds.targets.numpy()
    mine = {"val_correct": int(round(val["accuracy"] * val["n"])), "val_n": int(val["n"]),
            "test_correct": int(correct.sum()), "test_n": int(test["n"])}
    theirs = {"val_correct": int(row.int8_val_correct), "val_n": int(row.val_n),
              "test_correct": int(row.int8_test_correct), "test_n": int(row.test_n)}
    agree = int((correct == predictions[key]).sum()) if key in predictions and len(predictions[key]) == len(correct) \
        else None
    check = {"profile": profile, "source": source, "key": key, "kind": row.kind, "channels": row.channels,
             "budget": float(row.budget), "here": mine, "there": theirs, "test_images_agree": agree,
             "portable": mine == theirs, "machine": here, "accuracy_machine": Path(source).parent.name,
             "train_s": rec["metrics"].get("train_seconds"), "seconds": round(time.perf_counter() - t0, 1),
             "run_record": command_record("retime", check_path(profile).parent)["id"]}
    check_path(profile).parent.mkdir(parents=True, exist_ok=True)
    write_json(check_path(profile), check)
    return check
