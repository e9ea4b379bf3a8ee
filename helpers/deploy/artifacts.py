"""Deployable artifacts of trained checkpoints: exported once per (checkpoint, mode, calibration, code) and reused."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from helpers.core import paths
from helpers.datasets.data import calibration_batches, load_dataset
from helpers.deploy.export_cache import export_tflite
from helpers.core.identity import EXPORT_CODE, code_digest

#: Calibration images of the one canonical plain int8 artifact of a baseline: 04 reports it, and 00, 03, 05,
#: 06, 08 and the search time everything against it.
PLAIN_INT8_CALIBRATION = 100


def artifact_path(record: dict, mode: str, calibration: int, per_channel: bool = True) -> Path:
    """Where the artifact of checkpoint ``record`` in ``mode`` lives (runs/artifacts/<checkpoint>/<code>/...).

    The folder carries a hash of the exporter's and data loader's code, so a change there re-exports.
    """
    stem = Path(record["path"]).stem
    tag = f"{mode}-c{calibration}" + ("" if per_channel else "-pt") if mode == "int8" else mode
    return paths.ARTIFACTS / stem / code_digest(*EXPORT_CODE, "data.py") / f"{tag}.tflite"


def deploy(model: nn.Module, record: dict, mode: str = "int8", calibration: int = 100, per_channel: bool = True,
           refresh: bool = False) -> Path:
    """Export ``model`` (the checkpoint of ``record``) in ``mode``, reusing an existing artifact.

    int8 calibration uses ``calibration`` images of the training split (seeded).
    """
    out = artifact_path(record, mode, calibration, per_channel)
    if out.exists() and not refresh:
        return out
    cfg = record["config"]
    calib = None
    if mode == "int8":
        calib = calibration_batches(load_dataset(cfg["dataset"], "train", cfg["input_size"], cfg["in_channels"]),
                                    calibration)
    return export_tflite(model, out, mode, calib, cfg["input_size"], cfg["in_channels"], per_channel=per_channel)


def plain_int8(model: nn.Module, record: dict) -> Path:
    """The canonical plain int8 artifact of a baseline (per-channel PTQ, PLAIN_INT8_CALIBRATION images)."""
    return deploy(model, record, "int8", PLAIN_INT8_CALIBRATION)
