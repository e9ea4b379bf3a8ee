"""Trained baselines, trained once per config and cached under runs/checkpoints/ for every notebook."""

from __future__ import annotations

import time
from pathlib import Path
from dataclasses import asdict, dataclass, fields

from helpers.core import paths
from helpers.networks.checkpoints import load_into, read_sidecar, save_checkpoint
from helpers.datasets.data import load_dataset
from helpers.networks.models import build_model, count_macs_params
from helpers.core.identity import code_digest, config_key
from helpers.networks.train import TrainConfig, evaluate, resolve_precision, seed_everything, train


@dataclass(frozen=True)
class BaselineSpec:
    """How every baseline of a run is trained: the profile's ``common.baseline_spec``, one notebook parameter.

    ``widths`` maps architecture -> channel width multiplier, ``epochs`` maps dataset -> training passes;
    ``train_images`` is the size of the seeded training subset (None: the whole training split); ``val_images`` the
    size of the seeded validation subset that scores each epoch and the checkpoint (None: the whole split, 6,000
    Fashion-MNIST or 14,384 glyph images; the smoke profile's 512 make a baseline's scoring 10-30x cheaper than its
    training was not: two passes over the glyph split took 75 of 80 s). A set ``val_images`` is part of the
    checkpoint's key; the default (None) leaves every committed key as it was.
    """

    widths: dict
    epochs: dict
    batch_size: int = 128
    lr: float = 0.05
    train_images: int | None = 1024
    seed: int = 0
    val_images: int | None = None

    @classmethod
    def parse(cls, spec: "dict | BaselineSpec") -> "BaselineSpec":
        """A spec from the notebook parameter ``baseline_spec`` (a mapping); unknown or missing keys are one sentence."""
        if isinstance(spec, cls):
            return spec
        if not isinstance(spec, dict):
            raise ValueError(f"baseline_spec must be a mapping of {', '.join(f.name for f in fields(cls))}, "
                             f"not {type(spec).__name__}")
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(spec) - set(names))
        if unknown:
            raise ValueError(f"baseline_spec has unknown key(s) {', '.join(unknown)}; it takes {', '.join(names)}")
        missing = [n for n in ("widths", "epochs") if n not in spec]
        if missing:
            raise ValueError(f"baseline_spec lacks {', '.join(missing)}; give a value per architecture (widths) "
                             "and per dataset (epochs)")
        return cls(**spec)

    def build(self, model_name: str, dataset: str, progress: bool = True):
        """(model, record) of ``model_name`` on ``dataset``: the cached checkpoint, trained first when absent."""
        for what, table, key in (("widths", self.widths, model_name), ("epochs", self.epochs, dataset)):
            if key not in table:
                raise ValueError(f"baseline_spec.{what} has no entry for {key!r}; add one (it has {', '.join(table)})")
        return baseline(model_name, dataset, self.widths[model_name], self.epochs[dataset], self.batch_size, self.lr,
                        self.train_images, seed=self.seed, progress=progress, val_images=self.val_images)


def baseline(model_name: str, dataset: str, width: float = 1.0, epochs: float = 1.0, batch_size: int = 256,
             lr: float = 0.1, train_images: int | None = None, input_size: int = 32, seed: int = 0,
             progress: bool = True, retrain: bool = False, channels: list | None = None,
             val_images: int | None = None):
    """Return (model, record) for a baseline, training it only when no cached checkpoint has this config.

    ``channels`` (ResNet-18) gives the stage channels directly instead of ``width`` (uniform-width controls);
    ``val_images`` scores on a seeded validation subset (None: the whole split; see ``BaselineSpec``).

    The record is the checkpoint's JSON sidecar plus ``path``; its metrics hold the per-epoch history,
    validation accuracy and training seconds. Test accuracy is left to the caller's final report.
    """
    model, cfg, config, train_ds, path = _configured(model_name, dataset, width, epochs, batch_size, lr, train_images,
                                                    input_size, seed, channels, val_images)
    if path.exists() and not retrain:
        load_into(model, path)
        return model, {**read_sidecar(path), "path": str(path)}
    val_ds = load_dataset(dataset, "val", input_size).subset(val_images, seed=seed)
    t0 = time.perf_counter()
    history = train(model, train_ds, cfg, val_ds=val_ds, progress=progress)
    metrics = {"val_accuracy": evaluate(model, val_ds)["accuracy"], "train_seconds": time.perf_counter() - t0,
               "history": history}
    save_checkpoint(model.cpu(), path, config, metrics, train_ds.fingerprint)
    return model.eval(), {**read_sidecar(path), "path": str(path)}


def checkpoint_path(model_name: str, dataset: str, width: float = 1.0, epochs: float = 1.0, batch_size: int = 256,
                    lr: float = 0.1, train_images: int | None = None, input_size: int = 32, seed: int = 0,
                    channels: list | None = None, val_images: int | None = None) -> Path:
    """Where :func:`baseline` keeps (or would keep) the checkpoint of this config, without training anything."""
    return _configured(model_name, dataset, width, epochs, batch_size, lr, train_images, input_size, seed, channels,
                       val_images)[-1]


def _configured(model_name, dataset, width, epochs, batch_size, lr, train_images, input_size, seed, channels,
                val_images=None):
    """(initial model, train config, sidecar config, training subset, checkpoint path) of a baseline config."""
    train_ds = load_dataset(dataset, "train", input_size).subset(train_images, seed=seed)
    seed_everything(seed)  # the initial weights are part of the config
    model = build_model(model_name, train_ds.num_classes, train_ds.in_channels, width, channels)
    # the resolved arithmetic is part of the config: a bf16-trained checkpoint is not an fp32-trained one
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, precision=resolve_precision(model))
    config = {"model": model_name, "dataset": dataset, "num_classes": train_ds.num_classes,
              "in_channels": train_ds.in_channels, "width": width, "input_size": input_size,
              "train_subset": train_images, "train": asdict(cfg)}  # key name kept: it is part of the cache key
    if channels is not None:  # absent otherwise, so the keys of width-built baselines keep their shape
        config["channels"] = [int(c) for c in channels]
    if val_images is not None:  # likewise: absent for the whole validation split
        config["val_images"] = int(val_images)
    # the code that shapes the weights is part of the key: a change to the model or training loop retrains
    code = code_digest("models.py", "train.py")
    key = f"{model_name}-{dataset}-{config_key({**config, 'data': train_ds.fingerprint, 'code': code})}"
    return model, cfg, config, train_ds, paths.CHECKPOINTS / f"{key}.pt"


def summary_row(model, record: dict, test_ds=None) -> dict:
    """One table row: architecture, dataset, width, parameters, MACs, validation (and test) accuracy (fractions).

    With ``test_ds``, ``test_n`` is the number of test images (for the accuracy's interval).
    """
    cfg = record["config"]
    macs, params = count_macs_params(model, cfg["input_size"], cfg["in_channels"])
    row = {"model": cfg["model"], "dataset": cfg["dataset"], "classes": cfg["num_classes"], "width": cfg["width"],
           "params_M": params / 1e6, "MMACs": macs / 1e6, "train_s": record["metrics"].get("train_seconds"),
           "val_accuracy": record["metrics"]["val_accuracy"]}
    if test_ds is not None:
        row["test_accuracy"], row["test_n"] = evaluate(model, test_ds)["accuracy"], len(test_ds)
    return row


def import_baseline(arch: str, weights: str | Path, dataset: str, input_size: int = 224, progress: bool = True,
                    out: str | Path | None = None) -> dict:
    """A user's trained network as a baseline: torchvision's ``arch`` built for ``dataset``'s classes, the
    ``state_dict`` in ``weights`` loaded with ``weights_only`` (a pickled module is refused: loading one runs
    arbitrary code), scored on validation at ``input_size`` and written as a checkpoint with the usual sidecar,
    so ``export``, ``compress``, ``search`` and the controls take it like any baseline (at ``out``, else under
    runs/checkpoints/ named by weights, data and size). Returns its record.
    Every problem (unknown architecture, a file that is no state_dict, a class count that differs from the data's)
    is one sentence (ValueError), before anything is written."""
    import hashlib
    import pickle

    import torch

    from helpers.networks import zoo
    from helpers.networks.checkpoints import CheckpointError

    zoo.check(arch)  # an unknown architecture is refused before the weights are read
    weights = Path(weights)
    if not weights.is_file():
        raise ValueError(f"weights file {weights} does not exist; save one with torch.save(model.state_dict(), PATH)")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(f"{weights} holds a pickled Python object (a whole module?), not a state_dict: loading it "
                         "would run arbitrary code, so it is refused; save torch.save(model.state_dict(), PATH) "
                         "instead") from None
    except Exception as exc:  # noqa: BLE001 - a torn or foreign file
        raise ValueError(f"{weights} is not a PyTorch file ({type(exc).__name__}); save one with "
                         "torch.save(model.state_dict(), PATH)") from None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{weights} does not hold a state_dict of tensors; save torch.save(model.state_dict(), PATH)")
    val = load_dataset(dataset, "val", input_size, channels=3)
    model = zoo.build(arch, val.num_classes, 3)
    head = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)][-1][0]
    head_key = f"{head}.weight"
    if head_key in state and state[head_key].shape[0] != val.num_classes:
        raise ValueError(f"{weights} classifies into {state[head_key].shape[0]} classes ({head_key}) but {dataset} has "
                         f"{val.num_classes}; fine-tune the classifier for these classes or give the matching data")
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    slug = "".join(ch if ch.isalnum() else "-" for ch in dataset.split(":")[0])
    key = hashlib.sha256(f"{val.fingerprint}|{digest}|{input_size}".encode()).hexdigest()[:16]
    path = Path(out) if out else paths.CHECKPOINTS / f"{arch}-{slug}-{key}.pt"  # weights, data and size decide it
    if path.suffix != ".pt":
        raise ValueError(f"--out {path} must end in .pt (its .json sidecar goes beside it)")
    tmp = path.with_suffix(".incoming.pt")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, tmp)
    try:
        load_into(model, tmp)
    except CheckpointError as exc:
        tmp.unlink()
        raise ValueError(str(exc).replace(str(tmp), str(weights))) from None
    tmp.unlink()
    t0 = time.perf_counter()
    acc = evaluate(model, val)["accuracy"]
    macs, params = count_macs_params(model, input_size, 3)
    config = {"model": arch, "dataset": dataset, "num_classes": val.num_classes, "in_channels": 3, "width": 1.0,
              "input_size": input_size, "imported_from": str(weights), "weights_sha256": digest}
    metrics = {"val_accuracy": acc, "val_n": len(val), "macs": macs, "params": params,
               "eval_seconds": round(time.perf_counter() - t0, 2)}
    save_checkpoint(model, path, config, metrics, val.fingerprint)
    return {**read_sidecar(path), "path": str(path)}
