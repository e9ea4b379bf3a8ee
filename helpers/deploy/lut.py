"""Per-layer latency on the edge runtime (O4b): a NetAdapt-style lookup table of int8 blocks.

LiteRT has no per-op profiler in Python, so each block is exported alone at its real input shape as
its own int8 model (calibrated on the activations it really receives) and timed; the per-call overhead
of the interpreter, measured on a trivial model, is subtracted. Entries are cached by what decides
latency (block kind, shapes, channels, kernels, runtime, threads), so searches reuse them.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
from torch import nn

from helpers.core import paths
from helpers.deploy.export import export_tflite
from helpers.core.io import write_json
from helpers.deploy.latency import measure_tflite
from helpers.deploy.layers import block_inputs, block_structure, blocks
from helpers.core.identity import config_key
from helpers.core.quiet import progress_enabled
from helpers.deploy.runtime import runtime_name

LUT_VERSION = 2


class _Trivial(nn.Module):
    """The smallest int8 model the converter keeps: one 1x1 convolution on a 1x1x1 input."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1)

    def forward(self, x):
        return self.conv(x)


class _Reference(nn.Module):
    """A fixed int8 workload (3x3 convolution, 32 -> 32 channels, 16x16) that measures the machine's speed."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(32, 32, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x))


_REFERENCE_MS: dict[int, float] = {}


def reference_ms(threads: int = 1) -> float:
    """Median ms of the reference workload now (once per process and thread count).

    Cached table entries store the reference time of their own measurement; reusing an entry scales it
    by now/then, so entries measured while the shared machine was busier (or quieter) stay comparable.
    """
    if threads not in _REFERENCE_MS:
        with tempfile.TemporaryDirectory() as tmp:
            p = export_tflite(_Reference().eval(), Path(tmp) / "reference.tflite", "int8",
                              [torch.randn(4, 32, 16, 16)], input_size=16, in_channels=32)
            _REFERENCE_MS[threads] = measure_tflite(p, threads).median_ms
    return _REFERENCE_MS[threads]


def _where() -> dict:
    """Part of every cache key: entries are latencies of this machine, made by this code."""
    from helpers.core.identity import EXPORT_CODE, code_digest, machine

    return {"machine": machine()["id"], "code": code_digest("lut.py", "latency.py", *EXPORT_CODE)}


def _cached(key: str, cache_dir: Path, compute) -> tuple[dict, bool]:
    path = cache_dir / f"{key}.json"
    if path.exists():
        try:
            return json.loads(path.read_text()), True
        except json.JSONDecodeError:
            path.unlink()  # a damaged entry is re-measured, never trusted
    entry = compute()
    write_json(path, entry)
    return entry, False


def call_overhead_ms(threads: int = 1, cache_dir: Path | None = None, refresh: bool = False) -> dict:
    """Median per-call time of a trivial int8 model: the interpreter's fixed cost per invoke."""
    cache_dir = cache_dir or paths.CACHE / "lut"
    key = f"overhead-{config_key({'v': LUT_VERSION, 'runtime': runtime_name(), 'threads': threads, **_where()})}"
    if refresh:
        (cache_dir / f"{key}.json").unlink(missing_ok=True)

    def compute():
        with tempfile.TemporaryDirectory() as tmp:
            p = export_tflite(_Trivial(), Path(tmp) / "trivial.tflite", "int8", [torch.randn(8, 1, 1, 1)],
                              input_size=1, in_channels=1)
            r = measure_tflite(p, threads)
        return {"overhead_ms": r.median_ms, "iqr_ms": r.iqr_ms, "noisy": r.noisy}

    return _cached(key, cache_dir, compute)[0]


def block_latency_table(model: nn.Module, calibration: torch.Tensor, threads: int = 1,
                        cache_dir: Path | None = None, progress: bool = True) -> list[dict]:
    """One row per block: int8 LiteRT median ms (raw and minus the call overhead), spread, cache hit.

    ``calibration`` is an NCHW batch of real images; each block is calibrated on the activations
    these images produce at its input.
    """
    from tqdm.auto import tqdm

    cache_dir = cache_dir or paths.CACHE / "lut"
    overhead = call_overhead_ms(threads, cache_dir)["overhead_ms"]
    rows = []
    model = model.eval().cpu()
    inputs = block_inputs(model, calibration)
    for b, x in tqdm(list(zip(blocks(model), inputs)), desc="LUT", disable=not (progress and progress_enabled()), leave=False):
        struct = block_structure(b, x[:1])
        key = f"{b.kind}-{config_key({'v': LUT_VERSION, **struct, 'runtime': runtime_name(), 'threads': threads, **_where()})}"

        def compute(b=b, x=x):
            with tempfile.TemporaryDirectory() as tmp:
                p = export_tflite(b.module, Path(tmp) / "block.tflite", "int8", [x], input_size=x.shape[-1],
                                  in_channels=x.shape[1])
                r = measure_tflite(p, threads)
            return {"lite_ms": r.median_ms, "lite_iqr_ms": r.iqr_ms, "noisy": r.noisy,
                    "reference_ms": reference_ms(threads), **struct}

        entry, hit = _cached(key, cache_dir, compute)
        scale = reference_ms(threads) / entry["reference_ms"] if hit else 1.0
        lite = entry["lite_ms"] * scale
        rows.append({"block": b.name, "kind": b.kind, "lite_ms": lite, "lite_net_ms": max(lite - overhead, 0.0),
                     "lite_iqr_ms": entry["lite_iqr_ms"] * scale, "overhead_ms": overhead, "cached": hit,
                     "speed_scale": scale, "key": key})
    return rows


def table_vs_end_to_end(rows: list[dict], end_to_end_ms: float) -> dict:
    """Predicted end-to-end latency (sum of net block times + one call overhead) against the measured one."""
    predicted = sum(r["lite_net_ms"] for r in rows) + rows[0]["overhead_ms"]
    return {"predicted_ms": predicted, "measured_ms": end_to_end_ms,
            "relative_error": (predicted - end_to_end_ms) / end_to_end_ms}
