"""``fit``: the fastest deployable int8 model of a user's network and data that clears their accuracy bar.

One search space holds three kinds of candidate, so the comparison the workbench's own table made (narrow networks
from scratch beat pruned ones) happens inside the search instead of in a footnote:

* ``scratch``: a smaller member of the given network's family (``helpers.networks.family``: width per stage, depth,
  stem stride) trained from scratch, at a searched input resolution;
* the same with knowledge distillation from the given network (``distill`` > 0, its temperature searched): the
  existing training path's teacher (Hinton et al. 2015);
* ``prune``: the given network itself, structured-pruned by torch-pruning to the candidate's mean width and fine-tuned
  (with distillation when ``distill`` > 0) for the same passes: the workbench's compression plan.

Each candidate is exported int8 and scored as deployed: its validation count against the bar (the given network's own
int8 validation count minus ``bar`` points, compared as counts) and its latency timed paired against the given
network's plain int8 on this machine. The GP (``engine.run_search``; the tabular benchmark's winner) proposes.
Screening is successive halving with two rungs and eta = 3 (Hyperband's default; Li et al. 2018): every proposal
trains for a third of the passes, the best third by objective is trained again for all of them. Two rungs, because
with a budget of tens of candidates a third rung would promote one network, and a rung is what a resumed run must
repeat exactly. The controls (uniform widths from scratch, full passes, no teacher) are trained beside them. The
chosen network is the fastest full-budget candidate that clears the bar on validation; it is scored on test once.

Everything lands in ``--out``: ``config.json`` (what was asked; a resumed run must ask the same), ``screen.jsonl``
and ``full.jsonl`` (one line per finished candidate, so SIGKILL loses at most the one in flight), ``candidates/``
(each candidate's int8 artifact and, at full budget, its weights), then ``model.tflite``, ``model.pt``,
``fit.json`` and ``report.md`` (``helpers.reports.fit_report``).
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["TARGETS", "ETA", "Fit", "FitConfig", "FitError", "load_network", "check_config", "free_dimensions", "resized",
           "run_fit"]

TARGETS = ("cpu", "edgetpu")
ETA = 3  # successive halving: a third of the passes to screen, the best third promoted
RESOLUTIONS = (0.5, 0.75, 1.0)
TEMPERATURES = (2.0, 4.0, 8.0)
CONTROL_FRACTIONS = (0.5, 0.75)


class FitError(ValueError):
    """A fit's input is unusable; the message names the value and the fix."""


@dataclass(frozen=True)
class FitConfig:
    """What ``fit`` is asked (``python -m helpers fit``; each field is the option of the same name)."""

    model: str  # a torchvision name or module:function
    data: str
    out: str
    weights: str | None = None
    input_size: int = 32
    bar: float = 1.0  # accuracy points below the given network's own int8 validation accuracy
    target: str = "cpu"
    budget: int = 12  # screened candidates
    epochs: float = 1.0  # training passes of a full-budget candidate (and of the given network without --weights)
    train_images: int | None = None
    val_images: int | None = None
    test_images: int | None = None
    batch_size: int = 128
    lr: float = 0.05
    seed: int = 0
    controls: tuple = CONTROL_FRACTIONS  # uniform widths trained from scratch beside the candidates

    @property
    def promoted(self) -> int:
        """Candidates trained for the full passes: the best third of the screened ones (at least one)."""
        return max(1, math.ceil(self.budget / ETA))


def load_network(spec: str, num_classes: int, in_channels: int):
    """The given network, untrained: torchvision's ``spec`` (``zoo``) or ``module:function`` called with
    ``num_classes`` (and ``in_channels``) when it takes them. Every failure is one sentence (FitError)."""
    from torch import nn

    from helpers.networks import zoo

    if ":" not in spec:
        try:
            zoo.check(spec)
        except ValueError as exc:
            raise FitError(f"{exc}; or give module:function, a function on PYTHONPATH that returns an nn.Module") \
                from None
        return zoo.build(spec, num_classes, 3)
    module_name, _, func_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's entry point
        raise FitError(f"--model {spec}: module {module_name!r} cannot be imported ({type(exc).__name__}: {exc}); "
                       "put it on PYTHONPATH") from None
    fn = getattr(module, func_name, None)
    if not callable(fn):
        raise FitError(f"--model {spec}: {module_name} has no function {func_name!r}")
    params = inspect.signature(fn).parameters
    kwargs = {k: v for k, v in (("num_classes", num_classes), ("in_channels", in_channels)) if k in params}
    try:
        net = fn(**kwargs)
    except Exception as exc:  # noqa: BLE001
        raise FitError(f"--model {spec}: calling {func_name}({', '.join(f'{k}={v}' for k, v in kwargs.items())}) "
                       f"failed ({type(exc).__name__}: {exc})") from None
    if not isinstance(net, nn.Module):
        raise FitError(f"--model {spec}: {func_name} returned {type(net).__name__}, not a torch.nn.Module")
    return net


def _first_conv_channels(net) -> int:
    from torch import nn

    conv = next((m for m in net.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        raise FitError("the given network has no Conv2d layer; fit searches convolutional image classifiers")
    return conv.in_channels


def check_config(cfg: FitConfig):
    """Every bad input, before anything is written: (given network with its weights loaded or None, datasets,
    weights state or None). One sentence (FitError) each."""
    import torch

    from helpers.datasets.data import known_dataset, load_dataset

    if cfg.target not in TARGETS:
        raise FitError(f"--target {cfg.target!r} is not a target; choose cpu (LiteRT here) or edgetpu")
    if not isinstance(cfg.bar, (int, float)) or not 0 <= cfg.bar <= 100:
        raise FitError(f"--bar {cfg.bar!r} must be accuracy points in [0, 100] below the given network's int8 "
                       "validation accuracy (default 1)")
    if cfg.budget < 2:
        raise FitError(f"--budget {cfg.budget} screens too few candidates for one promotion; give at least 2")
    if any(not isinstance(f, (int, float)) or not 0 < f <= 1 for f in cfg.controls):
        raise FitError(f"--controls {','.join(map(str, cfg.controls))}: each uniform width must be a fraction in (0, 1]")
    if cfg.epochs <= 0:
        raise FitError(f"--epochs {cfg.epochs} must be positive training passes")
    if cfg.input_size < 16:
        raise FitError(f"--input-size {cfg.input_size} is too small; give at least 16 pixels")
    if not known_dataset(cfg.data):
        raise FitError(f"--data {cfg.data!r} is not a dataset; give fashion_mnist, glyphs, cifar10, cifar100 or "
                       "imagefolder:DIR")
    try:  # the data's own channels and classes first: a module:function network is built for them
        native = load_dataset(cfg.data, "val", cfg.input_size)
    except (ValueError, FileNotFoundError) as exc:
        raise FitError(f"--data {cfg.data}: {exc}") from None
    if native.num_classes < 2:
        raise FitError(f"--data {cfg.data} has {native.num_classes} class(es); give at least two")
    net = load_network(cfg.model, native.num_classes, native.in_channels)
    in_channels = _first_conv_channels(net)
    try:
        data = {s: load_dataset(cfg.data, s, cfg.input_size, in_channels) for s in ("train", "val", "test")}
    except (ValueError, FileNotFoundError) as exc:
        raise FitError(f"--data {cfg.data}: {exc}") from None
    for split, ds in data.items():
        if len(ds) < 2 or len(set(ds.targets.tolist())) < 2:
            raise FitError(f"--data {cfg.data}: its {split} split has {len(ds)} image(s) of "
                           f"{len(set(ds.targets.tolist()))} class(es); give at least two classes with images in "
                           "every split")
    in_channels = _first_conv_channels(net)
    if in_channels not in (1, 3):
        raise FitError(f"the given network takes {in_channels} input channels; fit feeds 1 (grey) or 3 (colour)")
    state = None
    if cfg.weights is not None:
        path = Path(cfg.weights)
        if not path.is_file():
            raise FitError(f"--weights {path} does not exist; save one with torch.save(model.state_dict(), PATH)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - a pickled module, a torn file
            raise FitError(f"--weights {path} is not a state_dict that loads with weights_only ({type(exc).__name__})"
                           "; save torch.save(model.state_dict(), PATH)") from None
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise FitError(f"--weights {path} does not hold a state_dict of tensors")
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
            raise FitError(f"--weights {path} do not fit {cfg.model} for {data['train'].num_classes} classes "
                           f"({first[:200]})") from None
    try:
        with torch.no_grad():
            net.eval()(data["val"].images[:2])
    except Exception as exc:  # noqa: BLE001
        raise FitError(f"{cfg.model} does not run on {cfg.input_size}x{cfg.input_size} images of {in_channels} "
                       f"channel(s) ({type(exc).__name__}: {str(exc)[:200]}); give the --input-size it takes") from None
    return net, data


def free_dimensions(net) -> list[dict]:
    """The search space: candidate kind, the family's architecture, resolution and distillation."""
    from helpers.networks.family import family_space

    return ([{"name": "kind", "choices": ["scratch", "prune"]}] + family_space(net)
            + [{"name": "resolution", "choices": list(RESOLUTIONS)},
               {"name": "distill", "kind": "float", "low": 0.0, "high": 0.9},
               {"name": "temperature", "choices": list(TEMPERATURES)}])


def _size(cfg: FitConfig, values: dict) -> int:
    return max(16, int(round(cfg.input_size * float(values.get("resolution", 1.0)) / 8)) * 8) \
        if float(values.get("resolution", 1.0)) < 1 else cfg.input_size


def resized(ds, size: int):
    """``ds`` at ``size`` pixels square (the candidate's input resolution), resized as the loader resizes."""
    import torch.nn.functional as F

    from helpers.datasets.data import ArrayDataset

    if ds.images.shape[-1] == size:
        return ds
    x = F.interpolate(ds.images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return ArrayDataset(x.contiguous(), ds.targets, ds.classes, ds.name, ds.split, f"{ds.fingerprint}-{size}px")


class Fit:
    """The state of one fit: config, data, the given network and its plain int8 reference."""

    def __init__(self, cfg: FitConfig, net, data, log=print, progress: bool = False):
        self.cfg, self.given, self.log, self.progress = cfg, net.eval(), log, progress
        self.out = Path(cfg.out)
        self.train_ds = data["train"].subset(cfg.train_images, seed=cfg.seed)
        self.val_ds = data["val"].subset(cfg.val_images, seed=cfg.seed)
        self.test_ds = data["test"].subset(cfg.test_images, seed=cfg.seed)

    # -- one candidate ---------------------------------------------------------------------------
    def candidate(self, values: dict, epochs: float, tag: str, keep_weights: bool) -> dict:
        """Build, train, export int8, score on validation and time one candidate; returns its figures."""
        import torch

        from helpers.compress.plan import CompressionPlan
        from helpers.compress import Context
        from helpers.deploy.export_cache import export_tflite
        from helpers.deploy.latency import measure_tflite_paired
        from helpers.deploy.runtime import evaluate_tflite
        from helpers.networks.family import build_member
        from helpers.networks.models import count_macs_params
        from helpers.networks.train import TrainConfig, resolve_precision, train

        cfg = self.cfg
        size = _size(cfg, values)
        train_ds, val_ds = resized(self.train_ds, size), resized(self.val_ds, size)
        torch.manual_seed(cfg.seed)
        arch = {k: v for k, v in values.items() if k.startswith("width") or k in ("depth", "stem_stride")}
        if values.get("kind", "scratch") == "prune":
            keep = sum(v for k, v in arch.items() if k.startswith("width")) / max(1, sum(k.startswith("width")
                                                                                       for k in arch))
            ctx = Context(train_ds=train_ds, val_ds=None, input_size=size, in_channels=train_ds.in_channels,
                          seed=cfg.seed)
            plan = CompressionPlan.from_dict([{"method": "structured", "ratio": round(min(0.95, 1 - keep), 4),
                                               "round_to": 8}])
            net = plan.run_steps(copy.deepcopy(self.given), ctx)[0]
            lr = cfg.lr / 5  # fine-tuning: the workbench's finetune step's rate relative to training
        else:
            net = build_member(self.given, arch, train_ds.images[:1])
            lr = cfg.lr
        alpha = float(values.get("distill", 0.0))
        tcfg = TrainConfig(epochs=epochs, batch_size=cfg.batch_size, lr=lr, seed=cfg.seed, distill_alpha=alpha,
                           distill_temperature=float(values.get("temperature", 4.0)), precision=resolve_precision(net))
        train(net, train_ds, tcfg, teacher=self.given if alpha > 0 else None, progress=self.progress)
        net, self.given = net.cpu().eval(), self.given.cpu().eval()  # a teacher trained beside on a GPU comes back
        folder = self.out / "candidates"
        folder.mkdir(parents=True, exist_ok=True)
        path = export_tflite(net, folder / f"{tag}.tflite", "int8", [train_ds.images[i:i + 1] for i in range(32)],
                             size, train_ds.in_channels)
        val = evaluate_tflite(path, val_ds)
        pair = measure_tflite_paired(path, self.reference["artifact"])
        macs, params = count_macs_params(net, size, train_ds.in_channels)
        row = {"accuracy": val["accuracy"], "val_n": val["n"], "val_correct": int(round(val["accuracy"] * val["n"])),
               "latency_ms": pair.ratio * self.reference["latency_ms"], "ratio_to_given_int8": pair.ratio,
               "ratio_iqr": pair.ratio_iqr, "noisy": pair.noisy, "macs": macs, "params": params, "input_size": size,
               "epochs": epochs, "teacher_passes": epochs if alpha > 0 else 0.0, "artifact": path.name}
        if cfg.target == "edgetpu":
            row.update(self._edgetpu(path))
        if keep_weights:
            from helpers.core.io import atomic_path

            with atomic_path(folder / f"{tag}.pt") as tmp:
                torch.save(net.state_dict(), tmp)
            row["weights"] = f"{tag}.pt"
        return row

    def _edgetpu(self, path) -> dict:
        """The Edge TPU's placement of the artifact (the compiler's report where it is installed, else the offline
        rules) and, on a host with the delegate, the compiled model's latency on the Edge TPU. Without the delegate a
        network with any op left on the CPU is not deployable there, so the candidate fails."""
        from helpers.deploy.edgetpu import DELEGATE_LIBRARY, delegate_available, report
        from helpers.deploy.latency import measure_tflite

        rep = report(path, self.out / "candidates")
        on_device = delegate_available()
        if rep.cpu_ops and not on_device:
            raise RuntimeError(f"{rep.cpu_ops} of {rep.total_ops} ops would run on the CPU, not the Edge TPU (first: "
                               f"{rep.first_cpu_op}, {rep.first_cpu_reason}; {rep.source} report): not deployable on "
                               "the target")
        row = {"edgetpu": rep.summary(), "latency_source": "cpu here; every op maps to the Edge TPU by the "
               f"{rep.source} report"}
        if on_device and rep.compiled_model:
            row["edgetpu_latency_ms"] = measure_tflite(rep.compiled_model, delegate_library=DELEGATE_LIBRARY).median_ms
            row["latency_source"] = "cpu here; edgetpu_latency_ms timed on this host's Edge TPU"
        return row

    def objective(self):
        """The search's objective and bar: ``--bar`` points below the given network's int8 validation count."""
        from helpers.search.engine import Objective

        ref = self.reference
        return Objective("constrained", ref["val_accuracy"], self.cfg.bar, ref["latency_ms"], baseline_n=ref["val_n"])

    # -- the reference -------------------------------------------------------------------------
    def make_reference(self) -> dict:
        from helpers.core.io import write_json
        from helpers.deploy.export_cache import export_tflite
        from helpers.deploy.latency import measure_tflite
        from helpers.deploy.runtime import evaluate_tflite

        done = self.out / "reference.json"
        if done.exists():
            self.reference = json.loads(done.read_text())
            self.reference["artifact"] = str(self.out / self.reference["artifact_name"])
            return self.reference
        cal = [self.train_ds.images[i:i + 1] for i in range(32)]
        path = export_tflite(self.given, self.out / "given-int8.tflite", "int8", cal, self.cfg.input_size,
                             self.train_ds.in_channels)
        val = evaluate_tflite(path, self.val_ds)
        ref = {"artifact_name": path.name, "latency_ms": measure_tflite(path).median_ms, "val_n": val["n"],
               "val_accuracy": val["accuracy"], "val_correct": int(round(val["accuracy"] * val["n"]))}
        write_json(done, ref)
        self.reference = {**ref, "artifact": str(path)}
        return self.reference


def _train_given(fit: Fit) -> None:
    """Without ``--weights`` the given network is trained here for ``--epochs`` passes (the budget-matched network,
    kept as given.pt so a resumed fit reloads it instead of training it again)."""
    import torch

    from helpers.core.io import atomic_path
    from helpers.networks.train import TrainConfig, resolve_precision, train

    path = fit.out / "given.pt"
    if path.exists():
        fit.given.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return
    torch.manual_seed(fit.cfg.seed)
    from helpers.networks.models import reinitialise

    reinitialise(fit.given)
    cfg = TrainConfig(epochs=fit.cfg.epochs, batch_size=fit.cfg.batch_size, lr=fit.cfg.lr, seed=fit.cfg.seed,
                      precision=resolve_precision(fit.given))
    train(fit.given, fit.train_ds, cfg, progress=fit.progress)
    fit.given = fit.given.cpu().eval()
    with atomic_path(path) as tmp:
        torch.save(fit.given.state_dict(), tmp)


def _config_record(cfg: FitConfig) -> dict:
    rec = asdict(cfg)
    rec.pop("out")
    rec["controls"] = [float(f) for f in rec["controls"]]
    return rec


def run_fit(cfg: FitConfig, resume: bool = False, progress: bool = False, log=print, executor=None,
            n_parallel: int = 1, checked: tuple | None = None) -> dict:
    """The whole fit (see the module docstring); returns ``fit.json``'s content. Resumable: the same command with
    ``resume`` goes on from the logs and gives the same candidates (latencies within timing noise). ``checked`` is
    ``check_config``'s answer when the caller has it already (the data is then read once)."""
    from helpers.core.io import write_json
    from helpers.search.engine import run_search
    from helpers.search.store import append_log, read_log

    net, data = checked or check_config(cfg)
    out = Path(cfg.out)
    asked = _config_record(cfg)
    if (out / "config.json").exists():
        before = json.loads((out / "config.json").read_text())
        if not resume:
            raise FitError(f"--out {out} holds a fit already; add --resume to go on with it or give another --out")
        if before != asked:
            diff = sorted(k for k in set(before) | set(asked) if before.get(k) != asked.get(k))
            raise FitError(f"--out {out} holds a fit asked with other {', '.join(diff)}; give the same options to "
                           "resume it or another --out")
    elif out.exists() and any(out.iterdir()):
        raise FitError(f"--out {out} exists and holds other files; give an empty or new folder")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", asked)

    fit = Fit(cfg, net, data, log, progress)
    if cfg.weights is None:
        _train_given(fit)
    ref = fit.make_reference()
    log(f"given network {cfg.model}: int8 validation {ref['val_correct']} of {ref['val_n']}, "
        f"{ref['latency_ms']:.3f} ms here; bar {cfg.bar} points below it")
    objective = fit.objective()
    free = free_dimensions(fit.given)
    screen_epochs = cfg.epochs / ETA

    def screen(values):
        return fit.candidate(values, screen_epochs, f"screen-{_key(values)}", keep_weights=False)

    screened = run_search(screen, free, objective, cfg.budget, out / "screen.jsonl", "gp", cfg.seed,
                          n_initial=min(5, cfg.budget), executor=executor, n_parallel=n_parallel,
                          on_trial=lambda r: log(_line("screen", r)))
    ok = sorted((t for t in screened.trials if t["status"] == "ok"), key=lambda t: (t["objective"], t["trial"]))
    promoted = ok[:cfg.promoted]
    from helpers.networks.family import uniform_member

    queue = [{"stage": "control", "source": None, "values": {"kind": "scratch", **uniform_member(fit.given, f),
                                                            "resolution": 1.0, "distill": 0.0, "temperature": 4.0},
              "label": f"uniform width {f} from scratch"} for f in cfg.controls]
    queue += [{"stage": "promoted", "source": t["trial"], "values": t["values"], "label": f"screen trial {t['trial']}"}
              for t in promoted]
    done = {(r["stage"], json.dumps(r["values"], sort_keys=True)) for r in read_log(out / "full.jsonl",
                                                                                  trials_only=False)}
    for item in queue:
        if (item["stage"], json.dumps(item["values"], sort_keys=True)) in done:
            continue
        tag = f"full-{_key(item['values'])}"
        try:
            figures = fit.candidate(item["values"], cfg.epochs, tag, keep_weights=True)
            row = {**item, "status": "ok", **figures,
                   "feasible": objective.feasible(figures["accuracy"], figures["val_n"]),
                   "objective": objective(figures["accuracy"], figures["latency_ms"])}
        except Exception as exc:  # noqa: BLE001 - a failed candidate is data
            row = {**item, "status": "failed", "reason": f"{type(exc).__name__}: {exc}"[:500], "feasible": False}
        append_log(out / "full.jsonl", row)
        log(_line(item["stage"], row))
    full = read_log(out / "full.jsonl", trials_only=False)
    return _finish(fit, cfg, objective, screened.trials, promoted, full)


def _key(values: dict) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:12]


def _line(stage: str, row: dict) -> str:
    v = row.get("values", {})
    what = f"{v.get('kind')} res {v.get('resolution')} distill {float(v.get('distill', 0)):.2f}"
    if row.get("status") != "ok":
        return f"[{stage}] {what}: failed ({row.get('reason', '')[:120]})"
    return (f"[{stage}] {what}: val {row['val_correct']}/{row['val_n']}, {row['latency_ms']:.3f} ms "
            f"({1 / row['ratio_to_given_int8']:.2f}x), {'clears' if row['feasible'] else 'misses'} the bar")


def _finish(fit: Fit, cfg: FitConfig, objective, screened: list, promoted: list, full: list) -> dict:
    """Choose on validation, score the chosen network on test once, copy its files to ``--out``, write fit.json."""
    import shutil

    from helpers.core.io import write_json
    from helpers.core.stats import wilson_interval
    from helpers.deploy.runtime import evaluate_tflite

    out = Path(cfg.out)
    feasible = [r for r in full if r.get("status") == "ok" and r["feasible"]]
    chosen = min(feasible, key=lambda r: (r["latency_ms"], -r["val_correct"])) if feasible else None
    given_test = evaluate_tflite(fit.reference["artifact"], fit.test_ds)
    result = {"config": _config_record(cfg), "reference": {k: v for k, v in fit.reference.items() if k != "artifact"},
              "bar_correct": objective.bar, "screen_epochs": cfg.epochs / ETA, "full_epochs": cfg.epochs,
              "eta": ETA, "screened": screened, "promoted": [t["trial"] for t in promoted], "full": full,
              "teacher_passes": sum(r.get("teacher_passes", 0.0) for r in screened + full if r.get("status") == "ok"),
              "given_test": {"correct": int(round(given_test["accuracy"] * given_test["n"])), "n": given_test["n"]},
              "chosen": None}
    if chosen is not None:
        size = chosen["input_size"]
        test = evaluate_tflite(out / "candidates" / chosen["artifact"], resized(fit.test_ds, size))
        correct = int(round(test["accuracy"] * test["n"]))
        lo, hi = wilson_interval(correct, test["n"])
        shutil.copyfile(out / "candidates" / chosen["artifact"], out / "model.tflite")
        shutil.copyfile(out / "candidates" / chosen["weights"], out / "model.pt")
        result["chosen"] = {**chosen, "test_correct": correct, "test_n": test["n"], "test_interval": [lo, hi],
                            "speedup_vs_given_int8": 1 / chosen["ratio_to_given_int8"]}
    write_json(out / "fit.json", result)
    return result
