"""The tabular benchmark's measurements: every network of a discrete space pruned from the baseline, fine-tuned at
the deciding fidelity, exported, timed paired against plain int8 and scored as counts, once per dataset.

Rows go to ``<dataset>-table.jsonl`` in results/study/<name>/<machine>/ as each network finishes (``kind``:
``inherit`` the pruned-and-fine-tuned network; ``scratch`` the same architecture trained from random initialisation
for the same total budget, Scratch-B; ``seed1`` the pruned network fine-tuned again with training seed 1), so a
build cut short loses at most the network in progress and the next call goes on from there. Networks are built in
a seeded random order, so a partial table is a uniform sample of the space. The pruned networks are independent
jobs: with a Dask executor they run through ``cluster`` (latency as each worker's paired ratio); Scratch-B rows and
the reference run here.

Accuracy is portable between machines, latency is not. Training and export are deterministic (a table continued on
another machine first checks that the baseline's plain int8 artifact made there has the stored sha256), so rows
measured on several machines under one config form one table: each folder's rows count for all of them. The
latencies the analysis uses come from one machine, the one whose folder is replayed: the ``retime`` stage exports
every network of the space there (pruned from the baseline, no fine-tuning: an int8 network's speed depends on its
shapes, not on its weights' values) and times it paired against that machine's plain int8, in one pass, into
``<dataset>-latency.jsonl``. The rows keep the latency measured when they were built, as a record.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from helpers.core import paths
from helpers.experiments.table_config import Lattice, TableConfig
from helpers.search.store import TableLayout, append_log, read_log

STAGES = ("inherit", "retime", "scratch", "seed1")


def record_profile(cfg: TableConfig) -> str:
    return f"{'smoke/' if cfg.profile == 'smoke' else ''}study/{cfg.name}"


def table_dir(cfg: TableConfig, machine_id: str) -> Path:
    return paths.results_dir(record_profile(cfg), machine_id)


def open_table(cfg: TableConfig, resume: bool) -> Path:
    """This machine's table folder, created with ``table.json`` or checked against it (another config, or rows
    here or on another machine without ``--resume``: one sentence)."""
    from helpers.core.identity import machine
    from helpers.core.io import write_json

    folder = table_dir(cfg, machine()["id"])
    layout = TableLayout(folder)
    if layout.meta.exists():
        old = json.loads(layout.meta.read_text())
        if old.get("key") != cfg.key():
            raise ValueError(f"results folder {folder} holds table {cfg.name!r} under another config (key "
                             f"{old.get('key')} vs {cfg.key()}); give the changed table a new name or delete the folder")
        if not resume and layout.has_rows():
            raise ValueError(f"table {cfg.name!r} already has rows in {folder}; pass --resume to continue it")
    else:
        elsewhere = [p.name for p in siblings(folder.parent, cfg.key()) if TableLayout(p).has_rows()]
        if elsewhere and not resume:
            raise ValueError(f"table {cfg.name!r} already has rows measured on {', '.join(elsewhere)}; pass --resume "
                             "to continue it on this machine (their accuracy counts here, latency is re-timed here)")
        write_json(layout.meta, {"key": cfg.key(), "config": asdict(cfg)})
    return folder


def siblings(root: Path, key: str, but: Path | None = None) -> list[Path]:
    """The machines' folders under ``root`` (results/study/<name>/) holding this table under config ``key``, in
    name order."""
    return [layout.folder for layout in TableLayout.committed(root.parent) if layout.folder.parent == root
            and layout.folder != but and json.loads(layout.meta.read_text()).get("key") == key]


def table_rows(folder: Path, dataset: str) -> list[dict]:
    """A dataset's rows from every machine that measured this table (same config key): the other machines' first,
    then ``folder``'s own, each with ``machine`` (the folder it was measured in)."""
    key = json.loads(TableLayout(folder).meta.read_text()).get("key")
    return [{**r, "machine": f.name} for f in [*siblings(folder.parent, key, but=folder), folder]
            for r in read_log(TableLayout(f).rows(dataset))]


def network_plan(cfg: TableConfig, channels, base, dataset: str, seed: int = 0, tag: str = "") -> dict:
    """The plan that makes one network of the space: per-stage pruning to ``channels``, the long fine-tune, PTQ
    (the training seed and ``tag`` are in its name, so each seed's and each live run's artifact has its own
    folder). The stem is pruned with layer1: their outputs are one group (identity shortcuts), so layer1's count is
    the stem's, as in a uniform-width network."""
    return {"name": f"table-{Lattice.key(channels)}" + (f"-seed{seed}" if seed else "") + (f"-{tag}" if tag else ""),
            "steps": [{"method": "structured", "ratio": 0.0, "stage_ratios": cfg.lattice().ratios(channels, base),
                       "importance": cfg.importance, "round_to": cfg.round_to, "keep_stem": False},
                      {"method": "finetune", "epochs": cfg.epochs(dataset), "lr": cfg.finetune_lr,
                       "batch_size": cfg.finetune_batch},
                      {"method": "ptq", "calibration": cfg.calibration}]}


def check_space(cfg: TableConfig, model, ctx, base) -> None:
    """Every stage's counts fit the baseline, and the narrowest and widest networks prune to exactly their counts
    (torch-pruning's rounding), before any training; one sentence otherwise."""
    from helpers.networks.models import stage_channels
    from helpers.experiments.scratch_b import pruned_architecture

    lat = cfg.lattice()
    for (stage, choices), b in zip(lat.stages.items(), base):
        if max(choices) > b:
            raise ValueError(f"space.{stage}: {max(choices)} channels is more than the baseline's {b}; the space can "
                             "only narrow the baseline")
    for channels in (tuple(v[0] for v in lat.stages.values()), lat.widest()):
        got = stage_channels(pruned_architecture(network_plan(cfg, channels, base, ctx.train_ds.name), model, ctx))
        if tuple(got) != tuple(channels):
            raise ValueError(f"pruning to {Lattice.key(channels)} gave {Lattice.key(got)} channels; choose counts that "
                             f"are multiples of round_to {cfg.round_to}")


def ordered(cfg: TableConfig) -> list[tuple]:
    """The space's networks in the table's seeded random build order."""
    nets = cfg.lattice().networks()
    return [nets[i] for i in np.random.default_rng(cfg.order_seed).permutation(len(nets))]


def front(rows: list[dict]) -> list[str]:
    """Networks of the inherit rows on the validation-accuracy / latency Pareto front (none faster and as good)."""
    inherit = sorted((r for r in rows if r["kind"] == "inherit"), key=lambda r: (r["latency_ms"], -r["val_correct"]))
    out, best = [], -1
    for r in inherit:
        if r["val_correct"] > best:
            out.append(r["network"])
            best = r["val_correct"]
    return out


def scratch_groups(cfg: TableConfig, rows: list[dict], base) -> dict[str, list[tuple]]:
    """Scratch-B's networks by why they were picked: ``front`` (the inherit rows' front), ``uniform`` (the uniform
    widths that lie in the space and not on the front), ``random`` (``cfg.scratch_b`` others drawn, seeded)."""
    from helpers.networks.models import uniform_channels

    space = set(cfg.lattice().networks())
    fr = [Lattice.parse_key(k) for k in front(rows)]
    uniform = []
    for f in cfg.uniform:
        u = tuple(uniform_channels(list(base), f, cfg.round_to))
        if u in space and u not in fr and u not in uniform:
            uniform.append(u)
    rest = [n for n in ordered(cfg) if n not in fr + uniform and any(r["network"] == Lattice.key(n) for r in rows)]
    rng = np.random.default_rng(cfg.order_seed + 1)
    return {"front": fr, "uniform": uniform,
            "random": [rest[i] for i in sorted(rng.choice(len(rest), min(cfg.scratch_b, len(rest)), replace=False))]}


def scratch_networks(cfg: TableConfig, rows: list[dict], base) -> list[tuple]:
    """Scratch-B's networks: the front, the uniform widths that lie in the space, then ``cfg.scratch_b`` others drawn
    at random (seeded); in that order."""
    return [n for group in scratch_groups(cfg, rows, base).values() for n in group]


def seed_networks(cfg: TableConfig) -> list[tuple]:
    nets = ordered(cfg)
    rng = np.random.default_rng(cfg.order_seed + 2)
    return [nets[i] for i in sorted(rng.choice(len(nets), min(cfg.second_seed, len(nets)), replace=False))]


def build_table(cfg: TableConfig, resume: bool = False, stages=STAGES, executor=None, log=print,
                progress: bool = True, datasets=None) -> Path:
    """Measure every network of ``cfg`` not yet in this machine's table, stage by stage, dataset by dataset (all of
    the config's, or those of ``datasets``, in the config's order); returns the folder."""
    from tqdm.auto import tqdm

    from helpers.networks.baselines import BaselineSpec
    from helpers.datasets.data import load_dataset
    from helpers.networks.models import stage_channels
    from helpers.networks.params import load_profile
    from helpers.search.pipeline import context

    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise ValueError(f"stage {bad[0]!r} is not one of {', '.join(STAGES)}")
    other = [d for d in datasets or () if d not in cfg.datasets]
    if other:
        raise ValueError(f"dataset {other[0]!r} is not in the table's config (its datasets: "
                         f"{', '.join(cfg.datasets)}); name one of those or add it to the config under a new name")
    folder = open_table(cfg, resume)
    layout = TableLayout(folder)
    layout.current_record(record_profile(cfg))  # keeps the record it replaces
    bspec = BaselineSpec.parse(load_profile(cfg.profile)["common"]["baseline_spec"])
    for ds in [d for d in cfg.datasets if not datasets or d in datasets]:
        model, rec = bspec.build(cfg.architecture, ds, progress=progress)
        base = stage_channels(model)
        ctx = context(ds, cfg.finetune_images, cfg.val_images)
        check_space(cfg, model, ctx, base)
        test_ds = load_dataset(ds, "test").subset(cfg.test_images)
        ref = table_reference(cfg, layout, ds, model, rec, ctx, bspec, progress)
        rows = table_rows(folder, ds)
        work = []
        if "inherit" in stages:
            work += [("inherit", n) for n in ordered(cfg)]
        if "seed1" in stages:
            work += [("seed1", n) for n in seed_networks(cfg)]
        todo = [(k, n) for k, n in work if not _has(rows, k, n)]
        bar = tqdm(total=len(todo), desc=f"table {cfg.name} {ds}", unit="network", disable=not progress)
        runner = NetworkRunner(cfg, model, rec, ctx, ref, record_profile(cfg), executor, ds)
        for kind, n in todo:
            row = runner(kind, n, base, test_ds)
            append_log(layout.rows(ds), {"trial": len(rows), "values": {"channels": list(n)}, **row})
            rows.append(row)
            bar.update(1)
        bar.close()
        if "retime" in stages:
            retime(cfg, layout, ds, runner, base, progress)
        if "scratch" in stages:
            if any(not _has(rows, "inherit", n) for n in ordered(cfg)):
                log(f"{ds}: Scratch-B waits until every network has its inherit row (its front decides the networks)")
                continue
            timed = table_frame(folder, ds)
            if timed.latency_ms.isna().any():
                log(f"{ds}: Scratch-B waits until every network is re-timed here (--stage retime: the front is drawn "
                    "with this machine's latencies)")
                continue
            for n in scratch_networks(cfg, timed.to_dict("records"), base):
                if _has(rows, "scratch", n):
                    continue
                row = scratch_row(cfg, n, model, rec, ctx, ref, bspec, test_ds, progress)
                append_log(layout.rows(ds), {"trial": len(rows), "values": {"channels": list(n)}, **row})
                rows.append(row)
                log(f"{ds} scratch {row['network']}: validation {row['val_correct']}/{row['val_n']}, "
                    f"{ref['int8_latency_ms'] / row['latency_ms']:.2f}x over plain int8")
    return folder


def retime(cfg: TableConfig, layout: TableLayout, dataset: str, runner, base, progress: bool = True) -> None:
    """Every network of the space not yet re-timed on this machine: its architecture exported int8 and timed paired
    against this machine's plain int8, one JSON line each in ``<dataset>-latency.jsonl`` (always here, never on a
    Dask worker: these are the latencies the analysis compares)."""
    from tqdm.auto import tqdm

    rows = retimed(layout.folder, dataset)
    done = {r["network"] for r in rows}
    todo = [n for n in ordered(cfg) if Lattice.key(n) not in done]
    for i, n in enumerate(tqdm(todo, desc=f"re-time {cfg.name} {dataset}", unit="network", disable=not progress)):
        append_log(layout.latencies(dataset), {"trial": len(rows) + i, "values": {"channels": list(n)},
                                               **runner.retime(n, base)})


def retimed(folder: Path, dataset: str) -> list[dict]:
    """The networks re-timed on ``folder``'s machine (``retime``), one row each."""
    return [r for r in read_log(TableLayout(folder).latencies(dataset)) if r.get("status") == "ok"]


def _has(rows: list[dict], kind: str, channels) -> bool:
    key = Lattice.key(channels)
    return any(r["kind"] == kind and r["network"] == key and r.get("status") == "ok" for r in rows)


class NetworkRunner:
    """One pruned network: the plan run here (``trial.PlanTrial``) or on a Dask worker (``cluster.RemoteTrial``)."""

    def __init__(self, cfg, model, rec, ctx, ref, profile, executor, dataset):
        self.cfg, self.model, self.rec, self.ctx, self.ref = cfg, model, rec, ctx, ref
        self.profile, self.executor, self.dataset = profile, executor, dataset

    def retime(self, channels, base) -> dict:
        """One network's architecture (the plan without its fine-tune) exported int8 and timed here."""
        from helpers.compress.plan import CompressionPlan
        from helpers.search.trial import PlanTrial

        plan = network_plan(self.cfg, channels, base, self.dataset, tag="retime")
        plan["steps"] = [s for s in plan["steps"] if s["method"] != "finetune"]
        pair = self.ref["latency_reference"]
        t0 = time.perf_counter()
        out = PlanTrial(CompressionPlan.from_dict(plan), self.model, self.rec, self.ctx, self.profile,
                        reference=(pair[0], pair[1]))({})
        return {"network": Lattice.key(channels), "status": "ok", "latency_ms": out["latency_ms"],
                "ratio": out["latency_ms"] / pair[1], "latency_iqr_ms": out["latency_iqr_ms"], "macs": out["macs"],
                "size_kB": out["size_kB"], "full_integer": out["full_integer"],
                "seconds": round(time.perf_counter() - t0, 2), "run_record": out["run_record"],
                "artifact": out["artifact"]}

    def __call__(self, kind: str, channels, base, test_ds) -> dict:
        from helpers.core.bars import correct_count
        from helpers.compress.plan import CompressionPlan
        from helpers.deploy.runtime import evaluate_tflite

        seed = 1 if kind == "seed1" else 0  # "live": a network measured again for a live search, as "inherit"
        plan = CompressionPlan.from_dict(network_plan(self.cfg, channels, base, self.dataset, seed,
                                                      "live" if kind == "live" else ""))
        pair = self.ref["latency_reference"]
        t0 = time.perf_counter()
        if self.executor is None:
            from dataclasses import replace

            from helpers.search.trial import PlanTrial

            # the same images, another training seed (fine-tuning order, calibration draw); validation unchanged
            ctx = self.ctx if seed == 0 else replace(self.ctx, seed=seed, state={})
            out = PlanTrial(plan, self.model, self.rec, ctx, self.profile, reference=(pair[0], pair[1]))({})
            test = evaluate_tflite(paths.resolve(out["artifact"]), test_ds)["accuracy"]
        else:
            from helpers.search.cluster import RemoteTrial, evaluate_where_made, trial_spec

            spec = trial_spec(self.rec, (self.dataset, self.cfg.finetune_images, self.cfg.val_images, seed, 1), plan,
                              self.profile, pair[1])
            out = RemoteTrial(spec, self.executor, plan, self.model, self.ctx)({})
            test = evaluate_where_made(self.executor, out, self.dataset, test_ds)
        return {"kind": kind, "network": Lattice.key(channels), "status": "ok", "training_seed": seed,
                "val_correct": correct_count(out["accuracy"], out["val_n"]), "val_n": out["val_n"],
                "test_correct": correct_count(test, len(test_ds)), "test_n": len(test_ds),
                "latency_ms": out["latency_ms"], "ratio": out["latency_ms"] / pair[1],
                "latency_iqr_ms": out["latency_iqr_ms"], "macs": out["macs"], "size_kB": out["size_kB"],
                "full_integer": out["full_integer"], "checks_fail": out["checks_fail"], "budget": out.get("budget"),
                "cost": out["cost"], "seconds": round(time.perf_counter() - t0, 2), "run_record": out["run_record"],
                "artifact": out["artifact"], "worker": out.get("worker")}


def table_reference(cfg: TableConfig, layout: TableLayout, ds: str, model, rec, ctx, bspec, progress: bool) -> dict:
    """The dataset's reference (``references.reference_point``, kept once) plus the bar's source: the unpruned
    network trained from scratch for the table's budget (budget-matched), its fp32 validation count."""
    from helpers.core.budget import epochs_for, total_passes
    from helpers.experiments.controls import train_control
    from helpers.search.references import reference_point, remade_reference
    from helpers.networks.train import evaluate
    from helpers.search.store import stored_reference

    def measure():
        point = reference_point(model, rec, ctx)
        widest = cfg.lattice().widest()
        plan = network_plan(cfg, widest, widest, ds)
        budget = total_passes(rec, plan, cfg.finetune_images, ctx.split_images)
        row = {"kind": "budget_matched", "fraction": 1.0, "channels": None, "budget": budget,
               "epochs": epochs_for(budget, bspec.train_images, ctx.split_images)}
        matched, mrec = train_control(cfg.architecture, ds, row, bspec, progress)
        acc = evaluate(matched, ctx.val_ds)["accuracy"]
        return {**point, "budget": budget, "matched_checkpoint": paths.portable(mrec["path"]),
                "matched_val_correct": int(round(acc * len(ctx.val_ds))), "val_n": len(ctx.val_ds),
                "baseline_val_correct": int(round(point["fp32_val_accuracy"] * len(ctx.val_ds)))}

    def adopt(other: Path) -> dict:
        """The bar of the table's first machine (accuracy is portable: the baseline made here must be the same
        network, its plain int8 artifact the same bytes), with this machine's latencies."""
        from helpers.search.store import same_network

        there = json.loads(TableLayout(other).reference(ds).read_text())
        point = reference_point(model, rec, ctx)
        same, checked = same_network(there, point["latency_reference"][0], point)
        if not same:
            raise ValueError(f"the {ds} baseline made on this machine is not the network the table was started on in "
                             f"{paths.portable(other)} (not {checked}); build the table under a new name here")
        keep = ("budget", "matched_checkpoint", "matched_val_correct", "val_n", "baseline_val_correct")
        return {**point, **{k: there[k] for k in keep}, "bar_from": other.name}

    if not layout.reference(ds).exists():
        first = [f for f in siblings(layout.folder.parent, cfg.key(), but=layout.folder)
                 if TableLayout(f).reference(ds).exists()]
        if first:
            return stored_reference(layout.reference(ds), lambda: adopt(first[0]))
    return stored_reference(layout.reference(ds), measure, rebuild=lambda: remade_reference(model, rec, ctx))


def scratch_row(cfg: TableConfig, channels, model, rec, ctx, ref, bspec, test_ds, progress: bool) -> dict:
    """Scratch-B of one network: its architecture re-initialised and trained with the baseline's recipe for the
    table's total budget, exported int8, timed paired against plain int8 and scored as counts."""
    from helpers.core.budget import epochs_for
    from helpers.experiments.controls import measure_artifact
    from helpers.datasets.data import calibration_batches, load_dataset
    from helpers.deploy.export_cache import export_tflite
    from helpers.core.identity import config_key
    from helpers.networks.models import stage_channels
    from helpers.records.provenance import current_record
    from helpers.experiments.scratch_b import pruned_architecture, train_scratch

    from helpers.networks.models import count_macs_params

    t0 = time.perf_counter()
    base = stage_channels(model)
    plan = network_plan(cfg, channels, base, ctx.train_ds.name)
    train_all = load_dataset(ctx.train_ds.name, "train")
    epochs = epochs_for(ref["budget"], bspec.train_images, len(train_all))
    net = train_scratch(pruned_architecture(plan, model, ctx), train_all.subset(bspec.train_images, seed=bspec.seed),
                        epochs, bspec, progress)
    key = config_key({"plan": plan, "baseline": Path(rec["path"]).stem, "budget": ref["budget"], "scratch": True})
    out = paths.run_dir(record_profile(cfg)) / "scratch-b" / key / "model.tflite"
    export_tflite(net, out, "int8", calibration_batches(train_all, cfg.calibration), ctx.input_size, ctx.in_channels)
    fig, _ = measure_artifact(out, paths.resolve(ref["latency_reference"][0]), ctx.val_ds, test_ds)
    macs, _ = count_macs_params(net, ctx.input_size, ctx.in_channels)
    return {"kind": "scratch", "network": Lattice.key(channels), "status": "ok", "training_seed": bspec.seed,
            "val_correct": fig["int8_val_correct"], "val_n": fig["val_n"], "test_correct": fig["int8_test_correct"],
            "test_n": fig["test_n"], "latency_ms": fig["ratio_to_int8"] * ref["int8_latency_ms"],
            "ratio": fig["ratio_to_int8"], "macs": macs,
            "latency_iqr_ms": fig["speedup_iqr"] * fig["ratio_to_int8"] ** 2 * ref["int8_latency_ms"],
            "budget": ref["budget"], "epochs": epochs, "seconds": round(time.perf_counter() - t0, 2),
            "run_record": current_record(record_profile(cfg))["id"], "artifact": paths.portable(out)}


def table_frame(folder: Path, dataset: str):
    """A dataset's table as a data frame: the rows of every machine that measured it (one per network and kind; the
    last row of a repeat wins, this folder's own last), with ``built_latency_ms`` the latency measured when the row
    was built and ``latency_ms``, ``ratio``, ``latency_iqr_ms`` this folder's re-timing (NaN where not re-timed)."""
    import pandas as pd

    df = pd.DataFrame(table_rows(folder, dataset))
    if not len(df):
        return df
    df = df[df.status == "ok"].drop_duplicates(["kind", "network"], keep="last").reset_index(drop=True)
    df = df.rename(columns={"latency_ms": "built_latency_ms", "ratio": "built_ratio",
                            "latency_iqr_ms": "built_latency_iqr_ms"})
    timed = {r["network"]: r for r in retimed(folder, dataset)}
    for col in ("latency_ms", "ratio", "latency_iqr_ms"):
        df[col] = [timed[n][col] if n in timed else float("nan") for n in df.network]
    return df


class LiveOutcomes(dict):
    """A table's oracle that measures instead of looking up: each network asked for is built now (as the table
    builds it, kind ``live``) and kept in ``<ds>-live.jsonl``, so live searches that meet a network reuse it."""

    def __init__(self, cfg: TableConfig, folder: Path, dataset: str, progress: bool = False):
        super().__init__()
        from helpers.networks.baselines import BaselineSpec
        from helpers.datasets.data import load_dataset
        from helpers.networks.models import stage_channels
        from helpers.networks.params import load_profile
        from helpers.search.pipeline import context

        bspec = BaselineSpec.parse(load_profile(cfg.profile)["common"]["baseline_spec"])
        model, rec = bspec.build(cfg.architecture, dataset, progress=progress)
        self.base, self.layout = stage_channels(model), TableLayout(folder)
        self.layout.current_record(record_profile(cfg))  # keeps the record it replaces
        ctx = context(dataset, cfg.finetune_images, cfg.val_images)
        self.test_ds = load_dataset(dataset, "test").subset(cfg.test_images)
        ref = json.loads(self.layout.reference(dataset).read_text())
        self.runner = NetworkRunner(cfg, model, rec, ctx, ref, record_profile(cfg), None, dataset)
        self.path = self.layout.live_store(dataset)
        for r in read_log(self.path):
            if r.get("status") == "ok":
                dict.__setitem__(self, Lattice.parse_key(r["network"]), r)

    def __missing__(self, channels):
        row = {**self.runner("live", channels, self.base, self.test_ds), "kind": "live"}
        append_log(self.path, {"trial": len(self), "values": {"channels": list(channels)}, **row})
        self[channels] = row
        return row
