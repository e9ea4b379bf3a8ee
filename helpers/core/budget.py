"""Training budgets as passes over the training split: the baseline's epochs plus every fine-tune's, scaled by the
fraction of the split each one used. Every plan record and control carries one, and every comparison states both.

A pass is one image of the split seen once per image in it: training for ``e`` epochs on ``n`` of the split's
``N`` images costs ``e * n / N`` passes. A plan's budget is the baseline's passes plus the passes of each of its
training steps (``finetune`` and ``qat`` take ``epochs`` over the context's training subset); a control trained
from scratch for the same budget gets the same number of passes.
"""

from __future__ import annotations

import math

#: Plan steps that train, each by its ``epochs`` over the compression context's training images.
TRAINING_STEPS = ("finetune", "qat")


def passes(epochs: float, images: int | None, split_images: int) -> float:
    """Passes over a split of ``split_images`` of ``epochs`` epochs over ``images`` of it (None: the whole split).

    Raises ValueError for a split without images, a negative epoch count or a negative image count.
    """
    if not isinstance(split_images, int) or split_images < 1:
        raise ValueError(f"the training split must hold at least one image, not {split_images!r}")
    if epochs is None or not math.isfinite(float(epochs)) or epochs < 0:
        raise ValueError(f"epochs must be a number of at least 0, not {epochs!r}")
    if images is not None and images < 0:
        raise ValueError(f"a training subset cannot hold {images} images; give a count of at least 1 or None (all)")
    used = split_images if images is None else min(int(images), split_images)
    return float(epochs) * used / split_images


def baseline_passes(record: dict, split_images: int) -> float | None:
    """The budget of a trained checkpoint (its sidecar ``record``): epochs over its training subset; None for a
    network trained elsewhere and imported (``baseline import``), whose budget this workbench does not know."""
    cfg = record["config"]
    if "train" not in cfg:
        return None
    return passes(cfg["train"]["epochs"], cfg.get("train_subset"), split_images)


def plan_passes(plan: dict, finetune_images: int | None, split_images: int) -> float:
    """Passes the training steps of ``plan`` (a plan dict: ``steps`` with ``method`` and ``epochs``) add when they
    train on ``finetune_images`` of the split (None: the whole split). A free ``epochs`` (a search range) is an
    error: a budget is stated for a filled plan."""
    total = 0.0
    for i, step in enumerate(plan["steps"]):
        if step["method"] not in TRAINING_STEPS:
            continue
        epochs = step.get("epochs", 0.5 if step["method"] == "finetune" else 0.2)  # the registry's defaults
        if isinstance(epochs, dict):
            raise ValueError(f"step {i + 1} ({step['method']}) has a free epochs ({epochs}); fill the plan first")
        total += passes(epochs, finetune_images, split_images)
    return total


def total_passes(record: dict, plan: dict | None, finetune_images: int | None, split_images: int) -> float:
    """The budget of a plan applied to the checkpoint of ``record``: the baseline's passes plus the plan's (None when
    the baseline's own budget is unknown)."""
    base = baseline_passes(record, split_images)
    if base is None:
        return None
    return base + (plan_passes(plan, finetune_images, split_images) if plan else 0.0)


def epochs_for(budget: float, images: int | None, split_images: int) -> float:
    """Epochs over ``images`` of the split (None: all) that spend ``budget`` passes; the inverse of :func:`passes`.

    Raises ValueError for a budget of zero or less (one sentence, before any training).
    """
    if budget is None or not math.isfinite(float(budget)) or budget <= 0:
        raise ValueError(f"a training budget must be a positive number of passes over the training split, "
                         f"not {budget!r}")
    used = split_images if images is None else min(int(images), split_images)
    if used < 1:
        raise ValueError(f"a training subset of {images!r} images cannot spend a budget; give at least one image")
    return float(budget) * split_images / used

