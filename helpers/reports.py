"""Tables and figures that describe baselines and datasets (O1, O2); notebooks call these."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch


def training_curves(records: dict[str, dict]):
    """One figure of validation accuracy and training loss per epoch for each ``label -> sidecar record``."""
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    for label, rec in records.items():
        hist = pd.DataFrame(rec["metrics"]["history"])
        ax_loss.plot(hist["epoch"], hist["train_loss"], marker="o", label=label)
        if "val_accuracy" in hist:
            ax_acc.plot(hist["epoch"], 100 * hist["val_accuracy"], marker="o", label=label)
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="training loss")
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy (%)", title="validation accuracy")
    ax_acc.legend(fontsize=8)
    return fig


def sample_grid(datasets: dict, per_class: int = 1, max_classes: int = 47, seed: int = 0):
    """A grid of example images: one row per dataset, ``per_class`` images of each class (up to ``max_classes``)."""
    import matplotlib.pyplot as plt

    rows = []
    for name, ds in datasets.items():
        rng = np.random.default_rng(seed)
        picks = []
        for c in range(min(ds.num_classes, max_classes)):
            idx = np.nonzero(ds.targets.numpy() == c)[0]
            picks += list(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
        rows.append((name, ds, picks))
    ncols = max(len(p) for _, _, p in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(ncols * 0.42, len(rows) * 0.62), squeeze=False)
    for r, (name, ds, picks) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(picks):
                img = ds.images[picks[c]].mean(0).numpy()
                ax.imshow(img, cmap="gray", vmin=-1, vmax=1)
                ax.set_title(ds.classes[int(ds.targets[picks[c]])][:5], fontsize=5)
        axes[r, 0].text(-0.5, 0.5, name, transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=7)
    return fig


def per_class_accuracy(predictions: torch.Tensor, targets: torch.Tensor, classes: list[str]) -> pd.DataFrame:
    """Accuracy and support of each class, sorted from worst to best."""
    pred, true = np.asarray(predictions), np.asarray(targets)
    rows = [{"class": name, "support": int((true == c).sum()),
             "accuracy": float((pred[true == c] == c).mean()) if (true == c).any() else np.nan}
            for c, name in enumerate(classes)]
    return pd.DataFrame(rows).sort_values("accuracy").reset_index(drop=True)


def top_confusions(predictions: torch.Tensor, targets: torch.Tensor, classes: list[str], k: int = 10) -> pd.DataFrame:
    """The ``k`` most frequent (true, predicted) confusions with their share of the true class."""
    pred, true = np.asarray(predictions), np.asarray(targets)
    n = len(classes)
    cm = np.bincount(true * n + pred, minlength=n * n).reshape(n, n)
    np.fill_diagonal(cm, 0)
    order = np.argsort(cm, axis=None)[::-1][:k]
    support = np.bincount(true, minlength=n)
    return pd.DataFrame([{"true": classes[i // n], "predicted": classes[i % n], "count": int(cm.flat[i]),
                          "share_of_true_class": cm.flat[i] / max(support[i // n], 1)} for i in order if cm.flat[i]])


def confusion_heatmap(predictions, targets, classes: list[str], title: str, ax=None):
    """Row-normalised confusion matrix as a seaborn heatmap; returns the axes."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    pred, true = np.asarray(predictions), np.asarray(targets)
    n = len(classes)
    cm = np.bincount(true * n + pred, minlength=n * n).reshape(n, n).astype(float)
    cm /= np.maximum(cm.sum(1, keepdims=True), 1)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    sns.heatmap(cm, ax=ax, cmap="viridis", vmin=0, vmax=1, xticklabels=classes, yticklabels=classes,
                cbar_kws={"label": "share of true class"})
    ax.set(xlabel="predicted", ylabel="true", title=title)
    ax.tick_params(labelsize=5 if n > 20 else 7)
    return ax
