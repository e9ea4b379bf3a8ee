"""04's measurements of a baseline's deployed artifacts: accuracy against PyTorch, latency per backend and per block.

The layer above export and the measuring modules (inspection, runtime, latency, lut, layers) for one
baseline; accuracies are fractions.
"""

from __future__ import annotations

import pandas as pd

from helpers.core.stats import wilson_interval


def artifact_row(model, record: dict, files: dict, test_ds, agreement_images: int = 300) -> dict:
    """The canonical int8 artifact (``files['int8']``) of a baseline against its PyTorch model on ``test_ds``.

    Full-integer or not, op count, float tensors, sizes, test accuracy of both with the artifact's 95%
    interval, the drop (fraction) and top-1 agreement on ``agreement_images`` images.
    """
    from helpers.deploy.inspection import inspect_tflite
    from helpers.deploy.runtime import agreement, evaluate_tflite
    from helpers.networks.train import evaluate

    info = inspect_tflite(files["int8"])
    torch_acc = evaluate(model, test_ds)["accuracy"]
    lite_acc = evaluate_tflite(files["int8"], test_ds)["accuracy"]
    lo, hi = wilson_interval(round(lite_acc * len(test_ds)), len(test_ds))
    return {"model": record["config"]["model"], "dataset": record["config"]["dataset"],
            "full_integer": info.full_integer, "ops": sum(info.ops.values()), "flagged_ops": info.flagged_ops or "-",
            "float_tensors": len(info.float_tensors), "int8_kB": info.size_bytes / 1024,
            "fp32_kB": inspect_tflite(files["fp32"]).size_bytes / 1024, "torch_fp32_accuracy": torch_acc,
            "int8_accuracy": lite_acc, "int8_accuracy_lo": lo, "int8_accuracy_hi": hi, "test_n": len(test_ds),
            "drop": torch_acc - lite_acc,
            "top1_agreement": agreement(files["int8"], model, test_ds, limit=agreement_images)["top1_agreement"]}


def end_to_end_rows(model, record: dict, files: dict, threads: int = 1) -> list[dict]:
    """LiteRT int8 timed once; LiteRT fp32 and PyTorch fp32 timed against it in alternating blocks.

    Their latency is a ratio (with its IQR) times the int8 latency, so a slow phase of the machine cannot
    fake a difference.
    """
    from helpers.deploy.latency import measure_tflite, measure_tflite_paired, measure_torch_paired

    cfg, arch = record["config"], record["config"]["model"]
    ref = measure_tflite(files["int8"], threads)
    rows = [{"model": arch, "backend": "LiteRT int8", "median_ms": ref.median_ms, "iqr_ms": ref.iqr_ms,
             "ratio_to_int8": 1.0, "cv": ref.cv, "noisy": ref.noisy}]
    for backend, p in [("LiteRT fp32", measure_tflite_paired(files["fp32"], files["int8"], threads)),
                       ("torch fp32", measure_torch_paired(model, files["int8"], cfg["input_size"], cfg["in_channels"],
                                                           threads))]:
        rows.append({"model": arch, "backend": backend, "median_ms": p.ratio * ref.median_ms,
                     "iqr_ms": p.ratio_iqr * ref.median_ms, "ratio_to_int8": p.ratio, "cv": p.cv, "noisy": p.noisy})
    return rows


def block_rows(arch: str, model, images, end_to_end_ms: float, threads: int = 1) -> tuple[list[dict], dict]:
    """Per-block latency of ``model`` (architecture ``arch``): the LiteRT int8 lookup table beside PyTorch eager,
    and the table's sum against the measured ``end_to_end_ms``.

    ``images`` is an NCHW batch of real images (each block is calibrated on the activations they produce).
    """
    from helpers.deploy.layers import torch_block_latency
    from helpers.deploy.lut import block_latency_table, table_vs_end_to_end

    lut = block_latency_table(model, images, threads)
    tor = torch_block_latency(model, images[:1], threads=threads)
    keep = ("lite_ms", "lite_net_ms", "lite_iqr_ms", "overhead_ms", "cached")
    rows = [{"model": arch, **b, **{k: a[k] for k in keep}} for a, b in zip(lut, tor)]
    return rows, table_vs_end_to_end(lut, end_to_end_ms)


def latency_shares(layers: pd.DataFrame) -> pd.DataFrame:
    """Each block's share of its model's net int8 latency and of its MACs (fractions)."""
    return layers.assign(share=lambda d: d.lite_net_ms / d.groupby("model").lite_net_ms.transform("sum"),
                         macs_share=lambda d: d.macs / d.groupby("model").macs.transform("sum"))


def stage_shares(layers: pd.DataFrame, model: str) -> pd.Series:
    """Percent of ``model``'s net int8 latency per stage (the block name before the first dot)."""
    d = layers[layers.model == model]
    return d.groupby(d.block.str.split(".").str[0]).lite_net_ms.sum().div(d.lite_net_ms.sum()).mul(100).round(1)


def placement_targets(artifacts: dict, dataset: str, pool: pd.DataFrame | None) -> dict[str, str]:
    """04's artifacts to place on the Edge TPU, label -> path: each baseline's int8 and fp32 file on ``dataset``
    (``artifacts`` maps (architecture, dataset) -> {mode: path}) and 03's int8 plans on it whose files exist
    on this machine (``pool``: 03's table, None when 03 has not run)."""
    out = {f"{arch} {mode}": str(files[mode]) for (arch, ds), files in artifacts.items() if ds == dataset
           for mode in ("int8", "fp32")}
    if pool is not None:
        from helpers.core.paths import resolve

        plans = pool[(pool["mode"] == "int8") & (pool.dataset == dataset) & pool.artifact.map(lambda p: resolve(p).is_file())]
        out |= {f"{r.model} {r.label}": str(resolve(r.artifact)) for r in plans.itertuples()}
    return out
