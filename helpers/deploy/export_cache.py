"""Exports by content: :func:`export_tflite` is :func:`helpers.deploy.export.export_tflite` with a cache of the
converter's output under ``paths.EXPORT_CACHE`` (``runs/export-cache/``; ``WORKBENCH_EXPORT_CACHE`` moves it, ``off``
turns it off).

Written here because no library caches converter output by content. The converter takes seconds to tens of seconds per
network (torch.export and lowering, whatever the network's size), and the chain, a search's resumed, replayed or
distributed trials and the tests export the same network more than once (55 of 161 exports in one ``make test``).
A separate module, so that the exporter's own files, whose digest names every committed artifact folder, are unchanged.
"""

from __future__ import annotations

import hashlib
import inspect
import shutil
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from helpers.core import paths
from helpers.core.io import atomic_path
from helpers.deploy import export as _export

__all__ = ["export_tflite", "cache_key"]


def export_tflite(model: nn.Module, out_path: str | Path, mode: str = "int8",
                  calibration_batches: Iterable[torch.Tensor] | None = None, input_size: int = 32,
                  in_channels: int | None = None, per_channel: bool = True,
                  prepared_qat: nn.Module | None = None, qat_quantizer=None) -> Path:
    """:func:`helpers.deploy.export.export_tflite` (same arguments, errors and atomic write), served from the cache when
    the same network (see :func:`cache_key`) was exported before; a QAT-prepared module is never cached."""
    out_path = Path(out_path)
    if calibration_batches is not None:
        calibration_batches = list(calibration_batches)  # read twice: for the key, then for calibration
    key = None
    if prepared_qat is None and paths.EXPORT_CACHE is not None and mode in _export.MODES \
            and out_path.suffix == ".tflite" and (mode != "int8" or calibration_batches):
        key = cache_key(model, mode, calibration_batches, input_size, in_channels, per_channel)
    cached = paths.EXPORT_CACHE / f"{key}.tflite" if key else None
    if cached is not None and cached.exists():
        with atomic_path(out_path) as tmp:
            shutil.copyfile(cached, tmp)
        return out_path
    made = Path(_export.export_tflite(model, out_path, mode, calibration_batches, input_size, in_channels,
                                      per_channel, prepared_qat, qat_quantizer))
    if cached is not None and made.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached) as tmp:
            shutil.copyfile(made, tmp)
    return made


def cache_key(model: nn.Module, mode: str, calibration, input_size: int, in_channels, per_channel: bool) -> str | None:
    """What decides an export's bytes, hashed: the exporter's code and the converter's library versions, the mode and
    input, every module's class with its source, the module tree, forward hooks, every parameter and buffer, and the
    calibration images. None (not cached) when a class's source cannot be read (a class defined in a notebook cell:
    its forward is then unknown) or a tensor is quantised or sparse."""
    from importlib.metadata import version

    from helpers.core.identity import EXPORT_CODE, code_digest

    h = hashlib.sha256()
    head = [code_digest(*EXPORT_CODE), version("torch"), version("litert-torch"), version("torchao"), mode,
            input_size, in_channels, per_channel, repr(model)]
    h.update(repr(head).encode())
    for cls in sorted({type(m) for m in model.modules()}, key=lambda c: (c.__module__, c.__qualname__)):
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):
            return None
        h.update(f"{cls.__module__}.{cls.__qualname__}".encode() + source.encode())
    hooks = [(n, type(f).__qualname__, getattr(f, "__qualname__", "")) for n, m in model.named_modules()
             for d in (m._forward_pre_hooks, m._forward_hooks) for f in d.values()]
    h.update(repr(hooks).encode())  # torch.nn.utils.prune computes weights in a forward pre-hook
    for name, t in [*model.state_dict().items(), *(("calibration", b) for b in calibration or [])]:
        if not isinstance(t, torch.Tensor) or t.is_quantized or t.is_sparse:
            return None
        t = t.detach().cpu().contiguous()
        h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        h.update((t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes())
    return h.hexdigest()[:32]
