"""The notebooks' figures (O1-O8), and the small tables that sit beside them; notebooks call these.

Each function returns a matplotlib figure (or a table) and leaves saving to ``figures.save_fig``.
Accuracies arrive as fractions and are shown in percent.
"""

from __future__ import annotations

import warnings

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


def _markers():
    return iter("os^Dv<>pP*hX8" * 3)


def pool_scatter(pool: pd.DataFrame):
    """03: measured vs MAC-predicted speed-up, and accuracy vs latency, of every int8 plan.

    One marker shape per plan (named in the legend) and one colour per model/dataset, so labels never overlap.
    """
    import matplotlib.pyplot as plt

    q = pool[pool["mode"] == "int8"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    shapes = dict(zip(dict.fromkeys(q.label), _markers()))
    colours = {k: f"C{i}" for i, k in enumerate(dict.fromkeys(zip(q.model, q.dataset)))}
    for _, r in q.iterrows():
        style = {"marker": shapes[r.label], "color": colours[r.model, r.dataset], "s": 45, "alpha": 0.85}
        axes[0].scatter(r.mac_speedup, r.speedup, **style)
        axes[1].scatter(r.latency_ms, 100 * r.val_accuracy, **style)
    lim = max(q.mac_speedup.max(), q.speedup.max()) * 1.1
    axes[0].plot([0, lim], [0, lim], "k:", lw=1)
    axes[0].set(xlabel="speed-up predicted by MACs", ylabel="measured int8 speed-up (LiteRT)", title="MACs vs measured")
    axes[1].set(xlabel="int8 latency (ms)", ylabel="validation accuracy of the artifact (%)", title="accuracy vs latency")
    handles = [plt.Line2D([], [], ls="", marker=m, color="gray", label=label) for label, m in shapes.items()]
    handles += [plt.Line2D([], [], ls="", marker="s", color=c, label=f"{a}/{d}") for (a, d), c in colours.items()]
    axes[1].legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def latency_bars(pool: pd.DataFrame):
    """03: end-to-end LiteRT latency of every artifact, one bar each, grouped by model."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, max(3.0, 0.18 * len(pool))))
    for (arch, _), d in pool.groupby(["model", "dataset"]):
        ax.barh([f"{arch[:9]} {label}" for label in d.label], d.latency_ms, xerr=d.latency_iqr_ms / 2)
    ax.set(xlabel="LiteRT latency (ms, 1 thread; bar: IQR)", title="end-to-end latency of every artifact")
    ax.tick_params(axis="y", labelsize=6)
    return fig


def layer_latency_bars(layers: pd.DataFrame, dataset: str):
    """04: per-block LiteRT int8 latency (net of the call overhead), PyTorch latency / 10 and MACs, per model."""
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(layers.model))
    fig, axes = plt.subplots(len(models), 1, figsize=(11, 3.4 * len(models)), squeeze=False)
    for ax, arch in zip(axes[:, 0], models):
        d = layers[layers.model == arch].reset_index(drop=True)
        x = np.arange(len(d))
        ax.bar(x - 0.2, 1e3 * d["lite_net_ms"], width=0.4, label="LiteRT int8 (µs, net of call overhead)")
        ax.bar(x + 0.2, 1e3 * d["torch_ms"] / 10, width=0.4, label="PyTorch eager fp32 (µs / 10)")
        ax2 = ax.twinx()
        ax2.plot(x, d["macs"] / 1e6, "k.--", label="MMACs")
        ax2.set_ylabel("MMACs")
        ax.set_xticks(x, d["block"], rotation=60, fontsize=7)
        ax.set(ylabel="latency (µs)", title=f"{arch} on {dataset}: per-block latency")
        ax.legend(loc="upper right", fontsize=7)
    return fig


def latency_share(share: pd.DataFrame):
    """04: each block's share of int8 latency against its share of MACs (``deployment.latency_shares``)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for arch, d in share.groupby("model"):
        ax.scatter(100 * d.macs_share, 100 * d.share, label=arch)
    top = 100 * max(share.macs_share.max(), share.share.max()) * 1.05
    ax.plot([0, top], [0, top], "k:", lw=1)
    ax.set(xlabel="share of MACs (%)", ylabel="share of int8 LiteRT latency (%)", title="latency vs MACs per block")
    ax.legend()
    return fig


def control_curve(ax, controls: pd.DataFrame | None, model: str, dataset: str, int8_latency_ms: float,
                  accuracy: str = "int8_val_accuracy") -> None:
    """Draw the uniform-width curve (narrow networks trained from scratch, ``helpers.analysis.curve``) on a latency axis: each
    control at the plain int8 latency over its speed-up; nothing without controls."""
    from helpers.analysis.curve import curve_points

    c = curve_points(controls, model, dataset) if controls is not None else None
    if c is None or not len(c):
        return
    ax.plot(int8_latency_ms / c.speedup_vs_int8, 100 * c[accuracy], "k--", marker="s", ms=4, lw=1,
            label=f"narrow networks from scratch ({c.budget.iloc[0]:.2f} passes)")


def composition_scatter(comp: pd.DataFrame, title: str, controls: pd.DataFrame | None = None):
    """05: accuracy against latency of every composition, one marker per plan named in the legend; with
    ``controls``, the uniform-width curve at the same latency scale (plain int8's latency over each speed-up)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for (_, r), m in zip(comp.iterrows(), _markers()):
        ax.errorbar(r.latency_ms, 100 * r.val_accuracy, xerr=r.latency_iqr_ms / 2,
                    yerr=[[100 * (r.val_accuracy - r.val_accuracy_lo)], [100 * (r.val_accuracy_hi - r.val_accuracy)]],
                    fmt=m, capsize=2, label=r.label)
    int8 = comp[comp.label == "int8"]
    if len(int8):
        control_curve(ax, controls, comp.model.iloc[0], comp.dataset.iloc[0], float(int8.latency_ms.iloc[0]))
    ax.set(xlabel="int8 LiteRT latency (ms)", ylabel="validation accuracy of the artifact (%)", title=title)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def sensitivity_bars(sens: pd.DataFrame, spread_pct: float):
    """06: latency change (%) and accuracy change (points) of each one-at-a-time change of the default plan."""
    import matplotlib.pyplot as plt

    d = sens[sens.parameter != "(default)"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].barh(d.label, d["latency_change_%"])
    axes[0].axvspan(-spread_pct, spread_pct, color="gray", alpha=0.2, label="measurement spread")
    axes[0].set(xlabel="latency change vs default plan (%)", title="latency sensitivity")
    axes[0].legend(fontsize=7)
    axes[1].barh(d.label, 100 * d.accuracy_change)
    axes[1].set(xlabel="validation accuracy change (points)", title="accuracy sensitivity")
    return fig


def partial_dependence(trials: list[dict], free: list[dict], seed: int, title: str):
    """08: skopt's partial-dependence plot of a GP fitted to the finished trials' objective; None under 2 trials."""
    from skopt import Optimizer
    from skopt.plots import plot_objective

    from helpers.search.proposals import dimensions

    dims = dimensions(free)
    ok = [t for t in trials if t["status"] == "ok"]
    if len(ok) < 2:
        return None
    opt = Optimizer(dims, base_estimator="GP", n_initial_points=1, random_state=seed)
    res = opt.tell([[t["values"][d.name] for d in dims] for t in ok], [t["objective"] for t in ok])
    if not res.models:
        return None
    fig = np.atleast_1d(plot_objective(res, n_points=20)).ravel()[0].figure
    fig.suptitle(title)
    return fig


def confusion_grid(results: dict, architecture: str):
    """02: one confusion heat map per dataset; ``results`` maps dataset -> (evaluation, test set)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.5), squeeze=False)
    for ax, (name, (ev, test_ds)) in zip(axes[0], results.items()):
        confusion_heatmap(ev["predictions"], test_ds.targets, test_ds.classes, f"{name} ({architecture})", ax=ax)
    return fig


def per_class_bars(tables: list[pd.DataFrame]):
    """02: test accuracy per class, one panel per dataset (tables of :func:`per_class_accuracy` with ``dataset``)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tables), figsize=(6 * len(tables), 4), squeeze=False)
    for ax, t in zip(axes[0], tables):
        ax.bar(t["class"], 100 * t["accuracy"])
        ax.set(title=t["dataset"].iloc[0], ylabel="test accuracy (%)", ylim=(0, 100))
        ax.tick_params(axis="x", labelrotation=90, labelsize=6)
    return fig


def _searches(trials: pd.DataFrame, dataset: str, method: str, final: bool = False) -> list[list[dict]]:
    """The logs of one dataset and method (``trials.study_trials``), one list of trial records per seed."""
    t = trials[(trials.dataset == dataset) & (trials.method == method) & (trials.final == final)]
    return [g.sort_values("order").to_dict("records") for _, g in t.groupby("seed")]


def study_convergence(trials: pd.DataFrame, datasets: list[str], methods: list[str]):
    """The study (``trials.study_trials``): best screened latency so far per trial, median over seeds with the
    interquartile band, per method.

    Before a search has a plan over its screening bar it scores the plain int8 latency (the study's rule for a
    method with no plan: what one would deploy), so every seed's curve starts at the reference and only falls;
    only finished searches are drawn.
    """
    import matplotlib.pyplot as plt

    from helpers.search.engine import best_so_far

    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        refs = trials[trials.dataset == ds].reference_ms
        ref = float(refs.iloc[0]) if len(refs) else np.nan
        for i, m in enumerate(methods):
            logs = [log for log in _searches(trials, ds, m) if log]
            n = max(map(len, logs), default=0)
            curves = [best_so_far(log) for log in logs if len(log) == n]  # finished searches only
            if not curves:
                continue
            c = np.array(curves, float)
            c[~np.isfinite(c)] = ref
            x = np.arange(1, n + 1)
            with warnings.catch_warnings():  # a trial before any seed cleared the bar: an all-NaN column
                warnings.simplefilter("ignore", RuntimeWarning)
                q1, med, q3 = np.nanpercentile(c, [25, 50, 75], axis=0)
            ax.step(x, med, where="post", color=f"C{i}", label=f"{m}: median of {len(curves)} seeds")
            ax.fill_between(x, q1, q3, step="post", color=f"C{i}", alpha=0.2)
        ax.axhline(ref, color="k", ls=":", lw=1, label="plain int8")
        ax.set(xlabel="screening trial", ylabel="best screened latency so far (ms)", title=f"{ds}: convergence")
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.legend(fontsize=7)
    return fig


def study_pareto(trials: pd.DataFrame, datasets: list[str], methods: list[str], chosen: pd.DataFrame,
                 controls: pd.DataFrame | None = None, model: str = "resnet18"):
    """The study (``trials.study_trials``): accuracy against latency of every screening trial and final run, and the
    chosen plans; with ``controls`` measured on the same machine, the uniform-width curve (validation accuracy)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4), squeeze=False)
    ok = trials[trials.status == "ok"]
    for ax, ds in zip(axes[0], datasets):
        ref = chosen[chosen.dataset == ds]
        if len(ref):
            control_curve(ax, controls, model, ds, float(ref.int8_latency_ms.iloc[0]))
        for i, m in enumerate(methods):
            t = ok[(ok.dataset == ds) & (ok.method == m)]
            screen, fin = t[~t.final.astype(bool)], t[t.final.astype(bool)]
            ax.scatter(screen.latency_ms, 100 * screen.accuracy, s=10, alpha=0.4, color=f"C{i}", label=f"{m} screening")
            ax.scatter(fin.latency_ms, 100 * fin.accuracy, marker="^", color=f"C{i}", label=f"{m} final runs")
            c = chosen[(chosen.dataset == ds) & (chosen.method == m)].dropna(subset=["latency_ms"])
            ax.scatter(c.latency_ms, 100 * c.val_accuracy, marker="*", s=180, color=f"C{i}", edgecolor="k",
                       label=f"{m} chosen")
        ax.set(xlabel="int8 latency (ms)", ylabel="validation accuracy (%)", title=ds)
        ax.legend(fontsize=7)
    return fig


def screening_vs_final(trials: pd.DataFrame, datasets: list[str]):
    """The study (``trials.study_trials``): screening accuracy against the accuracy after the long fine-tune, for
    every final run."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False)
    fin = trials[trials.final.astype(bool) & (trials.status == "ok")]
    for ax, ds in zip(axes[0], datasets):
        rows = fin[fin.dataset == ds]
        ax.scatter(100 * rows.screen_accuracy, 100 * rows.accuracy,
                   c=["tab:green" if f else "tab:red" for f in rows.feasible])
        ax.set(xlabel="screening accuracy (%)", ylabel="after the long fine-tune (%)",
               title=f"{ds}: green clears the bar")
    return fig


def placement_strips(placements: dict[str, list[dict]]):
    """04/08: each artifact's operators in file order as a strip of cells coloured by where the Edge TPU report
    places them (``edgetpu.placement``): on the Edge TPU, on the CPU for a reason of its own, or on the CPU only
    because it runs after the partition point."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    colours = {"edgetpu": "tab:green", "own": "tab:red", "after": "tab:orange"}
    labels = list(placements)
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(labels) + 1.2))
    for row, label in enumerate(labels):
        for p in placements[label]:
            kind = "edgetpu" if p["device"] == "edgetpu" else (
                "after" if p.get("reason_kind") == "after the partition point" else "own")
            ax.broken_barh([(p["index"], 1)], (row - 0.4, 0.8), facecolor=colours[kind], edgecolor="white", lw=0.3)
    ax.set(yticks=range(len(labels)), yticklabels=labels, xlabel="operator (file order)",
           title="Edge TPU placement of each artifact (offline rules unless a compiler report exists)")
    ax.invert_yaxis()
    ax.legend(handles=[Patch(color=colours["edgetpu"], label="Edge TPU"), Patch(color=colours["own"], label="CPU (op's own reason)"),
                       Patch(color=colours["after"], label="CPU (after the partition point)")],
              fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3)
    return fig


def write_study_figures(datasets: list[str], methods: list[str], folder) -> list:
    """The study's figures (convergence bands, Pareto fronts with the chosen plans, screening vs final) as PNG
    in ``<folder>/figures/``, drawn from the logs alone; the study command is their one producer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from helpers.core.io import atomic_path
    from helpers.search.store import StudyLayout

    layout = StudyLayout(folder)
    chosen = pd.read_csv(layout.chosen) if layout.chosen.exists() else pd.DataFrame(
        columns=["dataset", "method", "latency_ms", "val_accuracy"])
    out = []
    from helpers.search.store import study_trials

    trials = study_trials(folder)
    for name, fig in (("study_convergence", study_convergence(trials, datasets, methods)),
                      ("study_pareto", study_pareto(trials, datasets, methods, chosen)),
                      ("study_screening_vs_final", screening_vs_final(trials, datasets))):
        fig.tight_layout()
        with atomic_path(layout.figures / f"{name}.png") as tmp:
            fig.savefig(tmp, dpi=120, format="png")
        plt.close(fig)
        out.append(layout.figures / f"{name}.png")
    return out
