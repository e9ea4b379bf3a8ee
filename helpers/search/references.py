"""The reference points every plan is measured against: the canonical plain int8 artifact and the fp32 baseline."""

from __future__ import annotations

from pathlib import Path

from helpers.compress import Context


def plain_int8_reference(model, record: dict, threads: int = 1) -> tuple[Path, float]:
    """The baseline's canonical plain int8 artifact (``artifacts.plain_int8``) and its latency (ms), measured once."""
    from helpers.deploy.artifacts import plain_int8
    from helpers.deploy.latency import measure_tflite

    path = plain_int8(model, record)
    return path, measure_tflite(path, threads).median_ms


def reference_point(model, record: dict, ctx: Context, threads: int = 1) -> dict:
    """The canonical plain int8 artifact (reference latency) and the fp32 baseline's validation accuracy (the bar).

    The int8 artifact is ``artifacts.plain_int8`` (the same file 04 reports). The fp32 artifact is timed
    against it in alternating blocks, so its latency is the int8 latency times a ratio that a slow phase of
    the machine does not move; pass the returned ``latency_reference`` on to the trials (``reference``) to time
    them the same way. Accuracies are fractions.
    """
    from helpers.deploy.artifacts import deploy
    from helpers.deploy.latency import measure_tflite_paired
    from helpers.deploy.runtime import evaluate_tflite
    from helpers.networks.train import evaluate

    pair = plain_int8_reference(model, record, threads)
    fp32 = deploy(model, record, "fp32")
    ratio = measure_tflite_paired(fp32, pair[0], threads).ratio
    from helpers.core.paths import portable

    return {"fp32_val_accuracy": evaluate(model, ctx.val_ds)["accuracy"], "int8_latency_ms": pair[1],
            "int8_val_accuracy": evaluate_tflite(pair[0], ctx.val_ds, None, threads)["accuracy"],
            "fp32_latency_ms": ratio * pair[1], "int8_artifact": portable(pair[0]), "fp32_artifact": portable(fp32),
            "latency_reference": (portable(pair[0]), pair[1])}


def remade_reference(model, record: dict, ctx: Context) -> dict:
    """The baseline's plain int8 artifact made again (a stored reference whose file is gone), with the fp32 and int8
    validation accuracies that show it is the network the reference was measured on (``trials.stored_reference``)."""
    from helpers.deploy.artifacts import plain_int8
    from helpers.core.identity import EXPORT_CODE, code_digest
    from helpers.deploy.runtime import evaluate_tflite
    from helpers.networks.train import evaluate

    path = plain_int8(model, record)
    return {"artifact": path, "int8_val_accuracy": evaluate_tflite(path, ctx.val_ds)["accuracy"],
            "fp32_val_accuracy": evaluate(model, ctx.val_ds)["accuracy"], "code": code_digest(*EXPORT_CODE)}
