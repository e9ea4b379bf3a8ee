"""Latency re-timed on this machine, without training: every committed network that has a network spec is rebuilt
from the spec, exported int8 and timed paired against this machine's plain int8 (``python -m helpers retime``).

Latency is a property of a network's graph and the machine; accuracy is a property of its trained weights. An int8
network's latency does not depend on its weights' values (``benchmarks/bench_retime.py``: worst median ratio 1.0025
for pruned networks fine-tuned or not), so a network is rebuilt here from its spec with seeded random weights
(calibrated on real images of its dataset), and the plain int8 reference is the baseline architecture built the
same way. The timing is the workbench's one paired timing (``latency.measure_tflite_paired``: candidate and
reference in alternating blocks, one interpreter thread), as everywhere else.

A **spec** is what rebuilds the graph: architecture, dataset (its classes, input channels and size) and the four
stage channel counts (ResNet-18, the only architecture whose committed rows carry them), plus, for a study's plan,
the plan's graph-changing steps applied to that network. Scopes:

* ``controls``: every row of ``results/default/<machine>/controls.csv`` (the baselines, the budget-matched
  networks and the uniform widths trained from scratch; their ``channels`` column is the spec);
* ``table``: each committed table's answer networks per dataset (``--networks answer``: the front and the uniform
  widths that Scratch-B trained, and the fastest pruned and from-scratch networks that clear the bar) or every network
  of its space (``--networks all``; 576 networks);
* ``studies``: each committed study's chosen plan per dataset, seed and method (``chosen.csv``): the study's baseline
  built from its profile's width, the plan's structured-pruning steps applied with the chosen values (fine-tuning
  left out, as it moves weights, not the graph; the importance criterion replaced by L1, as with one ratio per layer
  it chooses which channels go, not how many), then int8. The rebuilt network's MACs must equal the MACs the study
  logged for that artifact, or the row is written as ``mismatch`` and not used. A plan with any other step (low-rank,
  clustering, unstructured) is not rebuilt: ``bench_retime`` shows weights do not move latency for structured pruning
  only, so such a plan keeps its measured latency;
* ``chain``: refused in one sentence (its tables carry plan labels, not specs; ``make run`` re-runs it in minutes).

Rows go to ``results/retime/<machine>/latency.jsonl`` (one JSON line per committed row, written as it is timed), so a
run cut short, even by SIGKILL, goes on where it stopped; the plain int8 references to ``references.jsonl`` beside it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from helpers.core import paths

SCOPES = ("controls", "table", "studies", "all")
REFUSED = {"chain": "the chain's tables carry plan labels, not network specs (`make run` re-runs the chain on this "
                    "machine in minutes)"}
REBUILT = {"structured"}  # steps whose graph a seeded network reproduces (bench_retime); training and ptq are dropped
DROPPED = {"finetune", "ptq"}
NETWORKS = ("answer", "all")
CALIBRATION = 32  # real images of the dataset: the full-integer recipe needs representative inputs, latency does not


@dataclass(frozen=True)
class Network:
    """One committed row's network: where it comes from and the spec that rebuilds its graph."""

    scope: str
    source: str  # the committed table (repository-relative)
    key: str  # the row's id within the source
    architecture: str
    dataset: str
    channels: tuple  # the four stage output channel counts
    reference: tuple  # the baseline's stage channels (its plain int8 is the reference)
    plan: str = ""  # a study's rebuilt steps (JSON list of {method, params}) applied to ``channels``; "" for none
    macs: int | None = None  # what the study logged for the network: the rebuilt one must have the same

    def spec_id(self) -> str:
        spec = [self.architecture, self.dataset, list(self.channels)] + ([self.plan] if self.plan else [])
        return hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:12]


def out_dir(machine_id: str | None = None) -> Path:
    """``results/retime/<machine>/``, this machine's by default."""
    from helpers.core.identity import machine

    return paths.retime_dir(machine_id or machine()["id"])


def committed_networks(scope: str, networks: str = "answer", root: Path | None = None) -> list[Network]:
    """Every committed network of ``scope`` (one per source row; the same spec in two rows is timed once). Raises
    ValueError in one sentence for a scope or network set this command does not take."""
    if scope in REFUSED:
        raise ValueError(f"scope {scope!r} cannot be re-timed yet: {REFUSED[scope]}; use one of {', '.join(SCOPES)}")
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}")
    if networks not in NETWORKS:
        raise ValueError(f"unknown network set {networks!r}; use one of {', '.join(NETWORKS)}")
    root = Path(root) if root else paths.RESULTS
    out = []
    if scope in ("controls", "all"):
        out += _control_networks(root)
    if scope in ("table", "all"):
        out += _table_networks(root, networks)
    if scope in ("studies", "all"):
        out += _study_networks(root)
    return out


def _study_networks(root: Path) -> list[Network]:
    """Each committed study's chosen plans (one per dataset, seed and method) whose steps a seeded network rebuilds."""
    import pandas as pd

    from helpers.compress.plan import CompressionPlan
    from helpers.search.store import StudyLayout, read_log

    out = []
    for layout in StudyLayout.committed(root / "study"):
        if not layout.chosen.exists():
            continue
        cfg = json.loads(layout.meta.read_text())["config"]
        template = CompressionPlan.from_dict(cfg["template"])
        if {s.method for s in template.steps} - REBUILT - DROPPED:
            continue  # keeps its measured latency (see the module's docstring)
        reference = _baseline_channels(cfg["profile"], cfg["architecture"])
        macs = {(x["dataset"], json.dumps(r["values"], sort_keys=True)): r.get("macs")
                for x in layout.logs(final=True) for r in read_log(x["path"]) if r.get("status") == "ok"}
        for r in pd.read_csv(layout.chosen).itertuples():
            if not isinstance(r.chosen, str) or not r.chosen.startswith("{"):
                continue  # no plan cleared the bar: the criterion scores plain int8 (the reference) for it
            values = json.loads(r.chosen)
            plan = template.with_values(values)
            steps = [{"method": st.method, "params": {**st.params, "importance": "l1"}} for st in plan.steps
                     if st.method in REBUILT]
            out.append(Network("studies", paths.portable(layout.chosen), f"{r.dataset}-s{r.seed}-{r.method}",
                               cfg["architecture"], r.dataset, reference, reference, json.dumps(steps, sort_keys=True),
                               macs.get((r.dataset, json.dumps(values, sort_keys=True)))))
    return out


def _control_networks(root: Path) -> list[Network]:
    import pandas as pd

    def parse(text) -> tuple:
        return tuple(int(c) for c in text.split("/"))

    out = []
    for csv in sorted(root.glob("default/*/controls.csv")):
        df = pd.read_csv(csv)
        df = df[(df.model == "resnet18") & df.channels.notna()]
        base = {r.dataset: parse(r.channels) for r in df[df.kind == "baseline"].itertuples()}
        for r in df.itertuples():
            if r.dataset in base:
                out.append(Network("controls", paths.portable(csv), r.key, r.model, r.dataset, parse(r.channels),
                                   base[r.dataset]))
    return out


def _table_networks(root: Path, networks: str) -> list[Network]:
    """Each committed table's networks per dataset, once per table (a table committed on several machines is one
    table: its rows count for all of them). The answer set is drawn where the table is re-timed (its front and
    fastest networks need one machine's latencies); the source names that folder's rows."""
    from helpers.experiments.table import scratch_groups, table_frame
    from helpers.experiments.table_config import Lattice, TableConfig
    from helpers.search.store import TableLayout

    out, done = [], set()
    for layout in TableLayout.committed(root / "study"):
        cfg = TableConfig(**json.loads(layout.meta.read_text())["config"])
        reference = _baseline_channels(cfg.profile, cfg.architecture)
        for ds in cfg.datasets:
            df = table_frame(layout.folder, ds)
            if (cfg.name, ds) in done or not len(df) or (networks == "answer" and df.latency_ms.isna().any()):
                continue  # done, empty, or not re-timed here (another folder of the same table may be)
            done.add((cfg.name, ds))
            if networks == "all":
                nets = list(cfg.lattice().networks())
            else:
                groups = scratch_groups(cfg, df.to_dict("records"), cfg.lattice().widest())
                nets = [*groups["front"], *groups["uniform"]]
                nets += [Lattice.parse_key(k) for k in _fastest_clearing(cfg, layout, ds, df)]
            for n in dict.fromkeys(tuple(n) for n in nets):
                out.append(Network("table", paths.portable(layout.rows(ds)), Lattice.key(n), cfg.architecture, ds,
                                   tuple(n), reference))
    return out


def _fastest_clearing(cfg, layout, ds: str, df) -> list[str]:
    """The fastest pruned and the fastest from-scratch network that clear the bar on validation (where the folder's
    rows are re-timed), as keys: the two networks the answer compares."""
    from fractions import Fraction

    from helpers.core.bars import bar_fraction

    if not layout.reference(ds).exists() or df.latency_ms.isna().any():
        return []
    ref = json.loads(layout.reference(ds).read_text())
    bar = bar_fraction(ref["matched_val_correct"], ref["val_n"], cfg.threshold)
    keys = []
    for kind in ("inherit", "scratch"):
        rows = df[(df.kind == kind) & df.latency_ms.notna()]
        ok = rows[[Fraction(int(r.val_correct), int(r.val_n)) >= bar for r in rows.itertuples()]] if len(rows) else rows
        if len(ok):
            keys.append(ok.sort_values("latency_ms").network.iloc[0])
    return keys


def _baseline_channels(profile: str, architecture: str) -> tuple:
    """The stage channels of the profile's baseline of ``architecture`` (the table prunes it)."""
    from helpers.networks.models import build_model, stage_channels
    from helpers.networks.params import load_profile

    width = float(load_profile(profile)["common"]["baseline_spec"]["widths"][architecture])
    return tuple(stage_channels(build_model(architecture, 10, 1, width)))


def run_retime(scope: str, networks: str = "answer", limit: int | None = None, progress: bool = True,
               log=print, root: Path | None = None) -> Path:
    """Re-time every committed network of ``scope`` not yet timed on this machine (see the module's docstring);
    ``limit`` stops after that many new rows (the rest waits for the next call). Returns the scope's log. Raises
    ValueError in one sentence, before anything is written, for a bad scope or a scope with nothing committed."""
    from tqdm.auto import tqdm

    from helpers.core.quiet import progress_enabled
    from helpers.records.provenance import command_record
    from helpers.search.store import append_log, read_log

    todo_all = committed_networks(scope, networks, root)
    if not todo_all:
        raise ValueError(f"nothing committed to re-time in scope {scope!r}: no "
                         + {"controls": "results/default/<machine>/controls.csv with ResNet-18 rows",
                            "table": "results/study/<name>/<machine>/ table with rows",
                            "studies": "results/study/<name>/<machine>/chosen.csv with a chosen structured-pruning plan",
                            "all": "controls, table or study rows"}[scope] + " under " + paths.portable(root or paths.RESULTS))
    folder = out_dir()
    log_path = folder / "latency.jsonl"  # every scope's rows, one per (source, key): a network is timed once here
    done = {(r["source"], r["key"]) for r in read_log(log_path, trials_only=False) if r.get("status") in ("ok", "mismatch")}
    todo = [n for n in todo_all if (n.source, n.key) not in done][:limit]
    log(f"re-time {scope}: {len(todo_all)} networks committed, {len(done)} timed here already, {len(todo)} now "
        f"(machine {folder.name})")
    if not todo:
        return log_path
    record = command_record("retime", folder)
    timed: dict[str, dict] = {}
    bar = tqdm(todo, desc=f"re-time {scope}", unit="network", disable=not (progress and progress_enabled()))
    for n in bar:
        t0 = time.perf_counter()
        ref = _reference(n, folder, record["id"])
        if n.spec_id() not in timed:
            timed[n.spec_id()] = _time(n, ref)
        made = timed[n.spec_id()]
        status = "mismatch" if n.macs is not None and made["macs"] != n.macs else "ok"
        append_log(log_path, {**asdict(n), "channels": list(n.channels), "reference": list(n.reference),
                              "status": status, **made,
                              "reference_ms": ref["int8_ms"], "machine": folder.name, "run_record": record["id"],
                              "seconds": round(time.perf_counter() - t0, 2)})
    bar.close()
    return log_path


_REFERENCES: dict = {}


def _reference(n: Network, folder: Path, record_id: str) -> dict:
    """This machine's plain int8 reference for ``n``'s architecture and dataset (the baseline architecture with seeded
    weights, exported once and timed once; kept in ``references.jsonl``)."""
    from helpers.deploy.latency import measure_tflite
    from helpers.search.store import append_log, read_log

    key = (n.architecture, n.dataset, tuple(n.reference))
    if key in _REFERENCES and _REFERENCES[key]["path"].exists():
        return _REFERENCES[key]
    path, _ = _artifact(n.architecture, n.dataset, n.reference)
    stored = [r for r in read_log(folder / "references.jsonl", trials_only=False)
              if (r["architecture"], r["dataset"], tuple(r["channels"])) == key and r["sha256"] == _sha(path)]
    if stored:
        ref = {**stored[-1], "path": path}
    else:
        lat = measure_tflite(path)
        ref = {"architecture": n.architecture, "dataset": n.dataset, "channels": list(n.reference),
               "int8_ms": lat.median_ms, "iqr_ms": lat.iqr_ms, "sha256": _sha(path), "run_record": record_id}
        append_log(folder / "references.jsonl", ref)
        ref = {**ref, "path": path}
    _REFERENCES[key] = ref
    return ref


def _time(n: Network, ref: dict) -> dict:
    from helpers.deploy.latency import measure_tflite_paired

    path, macs = _artifact(n.architecture, n.dataset, n.channels, n.plan)
    p = measure_tflite_paired(path, ref["path"])
    return {"latency_ms": p.ratio * ref["int8_ms"], "ratio": p.ratio, "ratio_iqr": p.ratio_iqr, "noisy": p.noisy,
            "speedup_vs_int8": 1 / p.ratio, "spec": n.spec_id(), "macs": macs}


def rebuild(architecture: str, dataset: str, channels, plan: str = ""):
    """The network of a spec with seeded weights (a study's steps applied), in eval mode, and its dataset's val split."""
    import torch

    from helpers.compress.plan import CompressionPlan
    from helpers.compress.registry import Context
    from helpers.datasets.data import load_dataset
    from helpers.networks.models import build_model

    val = load_dataset(dataset, "val")
    torch.manual_seed(0)
    model = build_model(architecture, val.num_classes, val.in_channels, channels=list(channels)).eval()
    if plan:
        steps = [{"method": st["method"], **st["params"]} for st in json.loads(plan)]
        ctx = Context(input_size=val.images.shape[-1], in_channels=val.in_channels)
        model, _, _ = CompressionPlan.from_dict({"steps": steps}).run_steps(model, ctx)
    return model.eval(), val


def _artifact(architecture: str, dataset: str, channels, plan: str = "") -> tuple[Path, int]:
    """The int8 artifact of a network built from its spec with seeded weights (cached under runs/retime/ by spec) and
    the network's MACs."""
    from helpers.core.identity import EXPORT_CODE, code_digest
    from helpers.deploy.export_cache import export_tflite
    from helpers.networks.models import count_macs_params

    model, val = rebuild(architecture, dataset, channels, plan)
    macs = count_macs_params(model, val.images.shape[-1], val.in_channels)[0]
    name = json.dumps([architecture, dataset, list(channels), code_digest(*EXPORT_CODE)] + ([plan] if plan else []))
    path = paths.RUNS / "retime" / f"{hashlib.sha256(name.encode()).hexdigest()[:16]}.tflite"
    if path.exists():
        return path, macs
    calib = [val.images[i:i + 1].float() for i in range(min(CALIBRATION, len(val)))]
    path.parent.mkdir(parents=True, exist_ok=True)
    return export_tflite(model, path, "int8", calib, input_size=val.images.shape[-1], in_channels=val.in_channels), macs


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
