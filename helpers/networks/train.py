"""Training, fine-tuning and evaluation (CUDA when present, else CPU), seeded and repeatable on CPU."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from helpers.datasets.data import ArrayDataset, batches
from helpers.core.quiet import progress_enabled


def device() -> torch.device:
    """The training device: the first CUDA GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so CPU runs repeat exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class TrainConfig:
    """How to train: epochs, batch size, peak learning rate (one-cycle schedule), weight decay, seed."""

    epochs: float = 3.0  # passes over the training set; fractions allowed
    batch_size: int = 128
    lr: float = 0.05  # peak SGD learning rate of the one-cycle schedule
    weight_decay: float = 5e-4
    label_smoothing: float = 0.05
    augment: bool = False  # random 2-pixel shifts (helps long runs; slows the short CPU runs of the default profile)
    seed: int = 0
    distill_alpha: float = 0.0  # weight of the distillation loss when a teacher is given
    distill_temperature: float = 4.0
    precision: str = "auto"  # fp32, bf16 (autocast) or auto (see resolve_precision)

    def __post_init__(self):
        if self.epochs <= 0:
            raise ValueError(f"epochs must be positive, not {self.epochs!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {self.batch_size!r}")
        if not 0 < self.lr < 10:
            raise ValueError(f"lr must lie in (0, 10), not {self.lr!r}")
        if not 0 <= self.distill_alpha <= 1:
            raise ValueError(f"distill_alpha must lie in [0, 1], not {self.distill_alpha!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")


PRECISIONS = ("auto", "fp32", "bf16")


def resolve_precision(model: nn.Module, precision: str = "auto", dev: torch.device | None = None) -> str:
    """The arithmetic ``train`` uses for ``model``: 'fp32' or 'bf16' (autocast; weights, BatchNorm and SGD stay fp32).

    'auto' picks bf16 on a CPU with native bf16 (oneDNN; AVX512-BF16 or AMX) when the network has no grouped
    convolutions, else fp32. Measured on the 2-core AVX512-BF16 machine (batch 256, 28x28, channels-last):
    ResNet-18 (width 0.25) 0.266 -> 0.164 s per step (1.6x faster), MobileNetV2 (width 0.5) 0.293 -> 0.428 s
    (oneDNN's bf16 depthwise kernels are slower), hence the grouped-convolution rule. CUDA stays fp32.
    """
    if precision != "auto":
        return precision
    dev = dev or device()
    grouped = any(isinstance(m, nn.Conv2d) and m.groups > 1 for m in model.modules())
    native = dev.type == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return "bf16" if native and not grouped else "fp32"


@torch.no_grad()
def evaluate(model: nn.Module, ds: ArrayDataset, batch_size: int = 512) -> dict:
    """Accuracy (fraction), mean cross-entropy loss and predictions of ``model`` on ``ds``."""
    dev = next(model.parameters()).device
    model.eval()
    preds, loss = [], 0.0
    for x, y in batches(ds, batch_size):
        logits = model(x.to(dev))
        loss += F.cross_entropy(logits, y.to(dev), reduction="sum").item()
        preds.append(logits.argmax(1).cpu())
    pred = torch.cat(preds)
    return {"accuracy": (pred == ds.targets).float().mean().item(), "loss": loss / len(ds), "predictions": pred}


def train(model: nn.Module, train_ds: ArrayDataset, cfg: TrainConfig, val_ds: ArrayDataset | None = None,
          teacher: nn.Module | None = None, progress: bool = True) -> list[dict]:
    """Train ``model`` in place with SGD + one-cycle LR; returns per-epoch history rows.

    With ``teacher`` and ``cfg.distill_alpha`` > 0 the loss mixes in knowledge distillation
    (KL divergence of temperature-softened logits). Forward passes run in ``resolve_precision``'s arithmetic.
    Rows hold epoch, train_loss, val_accuracy, seconds.
    """
    if len(train_ds) == 0:
        raise ValueError(f"cannot train on an empty dataset ({train_ds.name} {train_ds.split}); give at least one image")
    if cfg.batch_size < 1 or cfg.epochs < 0:
        raise ValueError(f"batch_size {cfg.batch_size!r} and epochs {cfg.epochs!r} must be >= 1 and >= 0")
    seed_everything(cfg.seed)
    dev = device()
    bf16 = resolve_precision(model, cfg.precision, dev) == "bf16"
    distill = teacher is not None and cfg.distill_alpha > 0
    # channels-last is 1.4-1.9x faster for these networks on the CPU (oneDNN); the model goes back to
    # the default layout before it is returned so that export and checkpoints see ordinary tensors.
    layout = torch.channels_last
    model.to(dev, memory_format=layout)
    if teacher is not None:
        teacher.to(dev).eval()
    steps_per_epoch = math.ceil(len(train_ds) / cfg.batch_size)
    total_steps = max(1, int(round(cfg.epochs * steps_per_epoch)))
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total_steps, pct_start=0.25)
    history, step, epoch = [], 0, 0
    bar = tqdm(total=total_steps, desc="train", disable=not (progress and progress_enabled()), leave=False)
    while step < total_steps:
        model.train()
        t0, run_loss, seen = time.perf_counter(), 0.0, 0
        for x, y in batches(train_ds, cfg.batch_size, shuffle=True, seed=cfg.seed + epoch, augment=cfg.augment):
            if step >= total_steps:
                break
            x, y = x.to(dev, memory_format=layout), y.to(dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(x).float()
                if distill:
                    with torch.no_grad():
                        t_logits = teacher(x).float()
            loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
            if distill:
                t = cfg.distill_temperature
                kd = F.kl_div(F.log_softmax(logits / t, 1), F.softmax(t_logits / t, 1), reduction="batchmean") * t * t
                loss = (1 - cfg.distill_alpha) * loss + cfg.distill_alpha * kd
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training loss became {loss.item()} at step {step}; lower lr (now {cfg.lr})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            run_loss += loss.item() * len(y)
            seen += len(y)
            bar.update(1)
        epoch += 1
        row = {"epoch": epoch, "train_loss": run_loss / max(seen, 1), "seconds": time.perf_counter() - t0}
        if val_ds is not None:
            row["val_accuracy"] = evaluate(model, val_ds)["accuracy"]
        history.append(row)
    bar.close()
    model.to(memory_format=torch.contiguous_format).eval()
    return history
