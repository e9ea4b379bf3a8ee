"""Trained baselines, trained once per config and cached under runs/checkpoints/ for every notebook."""

from __future__ import annotations

import time
from dataclasses import asdict

from helpers import paths
from helpers.checkpoints import load_into, read_sidecar, save_checkpoint
from helpers.data import load_dataset
from helpers.models import build_model, count_macs_params
from helpers.provenance import code_digest, config_key
from helpers.train import TrainConfig, evaluate, resolve_precision, seed_everything, train


def baseline(model_name: str, dataset: str, width: float = 1.0, epochs: float = 1.0, batch_size: int = 256,
             lr: float = 0.1, train_subset: int | None = None, input_size: int = 32, seed: int = 0,
             progress: bool = True, retrain: bool = False):
    """Return (model, record) for a baseline, training it only when no cached checkpoint has this config.

    The record is the checkpoint's JSON sidecar plus ``path``; its metrics hold the per-epoch history,
    validation accuracy and training seconds. Test accuracy is left to the caller's final report.
    """
    train_ds = load_dataset(dataset, "train", input_size).subset(train_subset, seed=seed)
    seed_everything(seed)  # the initial weights are part of the config
    model = build_model(model_name, train_ds.num_classes, train_ds.in_channels, width)
    # the resolved arithmetic is part of the config: a bf16-trained checkpoint is not an fp32-trained one
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, precision=resolve_precision(model))
    config = {"model": model_name, "dataset": dataset, "num_classes": train_ds.num_classes,
              "in_channels": train_ds.in_channels, "width": width, "input_size": input_size,
              "train_subset": train_subset, "train": asdict(cfg)}
    # the code that shapes the weights is part of the key: a change to the model or training loop retrains
    code = code_digest("models.py", "train.py")
    key = f"{model_name}-{dataset}-{config_key({**config, 'data': train_ds.fingerprint, 'code': code})}"
    path = paths.CHECKPOINTS / f"{key}.pt"
    if path.exists() and not retrain:
        load_into(model, path)
        return model, {**read_sidecar(path), "path": str(path)}
    val_ds = load_dataset(dataset, "val", input_size)
    t0 = time.perf_counter()
    history = train(model, train_ds, cfg, val_ds=val_ds, progress=progress)
    metrics = {"val_accuracy": evaluate(model, val_ds)["accuracy"], "train_seconds": time.perf_counter() - t0,
               "history": history}
    save_checkpoint(model.cpu(), path, config, metrics, train_ds.fingerprint)
    return model.eval(), {**read_sidecar(path), "path": str(path)}


def summary_row(model, record: dict, test_ds=None) -> dict:
    """One table row: architecture, dataset, width, parameters, MACs, validation (and test) accuracy in %.

    With ``test_ds``, ``test_n`` is the number of test images (for the accuracy's interval).
    """
    cfg = record["config"]
    macs, params = count_macs_params(model, cfg["input_size"], cfg["in_channels"])
    row = {"model": cfg["model"], "dataset": cfg["dataset"], "classes": cfg["num_classes"], "width": cfg["width"],
           "params_M": params / 1e6, "MMACs": macs / 1e6, "train_s": record["metrics"].get("train_seconds"),
           "val_acc_%": 100 * record["metrics"]["val_accuracy"]}
    if test_ds is not None:
        row["test_acc_%"], row["test_n"] = 100 * evaluate(model, test_ds)["accuracy"], len(test_ds)
    return row
