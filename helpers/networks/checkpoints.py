"""Checkpoints: a state_dict plus a JSON sidecar, cached under a key derived from the training config."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from helpers.core.io import atomic_path, write_json
from helpers.core.identity import git_state, package_versions


class CheckpointError(RuntimeError):
    """A checkpoint file is corrupt, incomplete or does not match the model asked for."""


def save_checkpoint(model: nn.Module, path: str | Path, config: dict, metrics: dict,
                    dataset_fingerprint: str | None = None) -> Path:
    """Write ``path`` (.pt state_dict) and its .json sidecar atomically; returns the .pt path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    git = git_state()
    write_json(path.with_suffix(".json"), {"config": config, "metrics": metrics,
                                            "dataset_fingerprint": dataset_fingerprint, "git_commit": git["commit"],
                                            "git_dirty": git["dirty"], "packages": package_versions()})
    return path


def read_sidecar(path: str | Path) -> dict:
    """The JSON sidecar of checkpoint ``path``; CheckpointError when missing or unreadable."""
    side = Path(path).with_suffix(".json")
    try:
        return json.loads(side.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint sidecar {side} is missing or corrupt ({exc}); delete {Path(path).name} "
                              "and its .json and re-run to retrain") from None


def load_state(path: str | Path) -> dict:
    """Load a state_dict with ``weights_only=True``; CheckpointError names the file and the fix."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist; train it first or check the path")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or not a PyTorch state_dict ({exc.__class__.__name__}); "
                              "delete it and re-run to retrain") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint {path} does not hold a state_dict of tensors; delete it and re-run")
    return state


def load_into(model: nn.Module, path: str | Path) -> nn.Module:
    """Load checkpoint ``path`` into ``model``; CheckpointError when the shapes or keys do not match."""
    state = load_state(path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        first = first if len(first) <= 160 else first[:157] + "..."  # a list of missing keys can run to pages
        raise CheckpointError(f"checkpoint {path} does not match the model ({first}); "
                              "check the model name, class count, channels and width") from None
    return model.eval()


def load_model(path) -> tuple[nn.Module, dict]:
    """(model, sidecar config) rebuilt from a checkpoint and its JSON sidecar."""
    from helpers.networks.models import MODELS, build_model

    if not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; give the .pt file of a baseline (runs/checkpoints/)")
    cfg = read_sidecar(path).get("config")
    needed = ("model", "num_classes", "in_channels", "width", "dataset", "input_size")
    missing = [k for k in needed if not isinstance(cfg, dict) or k not in cfg]
    if missing:
        raise CheckpointError(f"checkpoint sidecar {Path(path).with_suffix('.json')} lacks {', '.join(missing)} in "
                              "its config; use a checkpoint the workbench wrote")
    if cfg["model"] in MODELS:
        model = build_model(cfg["model"], cfg["num_classes"], cfg["in_channels"], cfg["width"], cfg.get("channels"))
    else:  # a torchvision architecture a user imported (``baselines.import_baseline``)
        from helpers.networks import zoo

        model = zoo.build(cfg["model"], cfg["num_classes"], cfg["in_channels"])
    return load_into(model, path), cfg
