"""Latency harness on callables of known duration, the noise guard, and the per-layer lookup table."""

import itertools
import json
import time

import numpy as np
import pytest
import torch

from helpers.deploy.latency import time_callable, time_paired
from helpers.deploy.layers import block_inputs, blocks, torch_block_latency
from helpers.networks.models import build_model


def _busy(ms: float):
    end = time.perf_counter() + ms / 1e3
    while time.perf_counter() < end:
        pass


def test_known_duration_is_measured():
    r = time_callable(lambda: _busy(0.2), repeats=10, min_block_ms=5)
    assert r.median_ms == pytest.approx(0.2, rel=0.15)
    assert r.calls_per_block >= 20 and r.iqr_ms >= 0 and r.repeats == 10


def test_noise_guard_repeats_and_flags():
    # calls alternate between 0.05 and 1 ms, so every attempt sees half of each: a random choice left a
    # few per cent of runs with one value in both quartiles (CI flaked once on that)
    durations = itertools.cycle([0.05, 1.0])
    r = time_callable(lambda: _busy(next(durations)), repeats=12, min_block_ms=0.001, max_attempts=2)
    assert r.noisy and r.attempts == 2 and "too noisy" in r.note



def test_a_noisy_attempt_is_measured_again_and_the_quiet_one_kept(monkeypatch):
    from helpers.deploy import latency

    attempts = iter([np.array([1.0, 2.0, 1.0, 2.0, 1.0, 2.0]), np.array([1.0, 1.01, 0.99, 1.0, 1.0, 1.0])])
    monkeypatch.setattr(latency, "_block_times", lambda fn, calls, repeats: next(attempts))
    r = time_callable(lambda: None, repeats=6, warmup_s=0.0, max_attempts=3)
    assert r.attempts == 2 and not r.noisy and r.median_ms == pytest.approx(1.0) and r.note == ""


def test_paired_ratio_survives_a_slow_phase():
    # the machine runs at full speed for the first 30 ms (warm-up and a few pairs), then 3x slower for
    # both models: the candidate's own median moves to the slow phase, the ratio stays at 0.5
    switch = time.perf_counter() + 0.03

    def factor():
        return 3.0 if time.perf_counter() > switch else 1.0

    r = time_paired(lambda: _busy(0.1 * factor()), lambda: _busy(0.2 * factor()), repeats=12, warmup_s=0.02,
                    min_block_ms=1.0)
    assert r.ratio == pytest.approx(0.5, rel=0.1)
    assert r.median_ms > 0.2  # what an unpaired median reports: the slow phase
    assert r.repeats == 12 and not r.noisy


@pytest.mark.parametrize("name, n_blocks", [("resnet18", 10), ("mobilenet_v2", 20)])
def test_blocks_compose_the_forward(name, n_blocks):
    model = build_model(name, 10, 1, 0.25).eval()
    assert len(blocks(model)) == n_blocks
    ins = block_inputs(model, torch.randn(2, 1, 32, 32))  # raises if the composition differs
    assert ins[0].shape == (2, 1, 32, 32)


@pytest.mark.slow  # seconds, not milliseconds: kept out of `make check`
def test_torch_block_latency_rows():
    model = build_model("mobilenet_v2", 10, 1, 0.25).eval()
    rows = torch_block_latency(model, torch.randn(1, 1, 32, 32), repeats=5)
    assert len(rows) == 20 and all(r["torch_ms"] > 0 for r in rows)
    assert sum(r["macs"] for r in rows) == pytest.approx(
        __import__("helpers.networks.models", fromlist=["x"]).count_macs_params(model, 32, 1)[0], rel=0.01)


@pytest.mark.slow
def test_lookup_table_caches_and_sums(tmp_path):
    from helpers.deploy.lut import block_latency_table, table_vs_end_to_end

    model = build_model("resnet18", 10, 1, 0.125).eval()
    calib = torch.randn(4, 1, 32, 32)
    first = block_latency_table(model, calib, cache_dir=tmp_path, progress=False)
    assert len(first) == 10 and all(r["lite_ms"] > 0 and r["lite_net_ms"] >= 0 for r in first)
    # identical blocks (layer1.0 and layer1.1 share shapes) share one cache entry: measured once
    assert first[1]["key"] == first[2]["key"] and not first[1]["cached"] and first[2]["cached"]
    assert [r["cached"] for r in first].count(False) == len({r["key"] for r in first})
    entry = tmp_path / f"{first[3]['key']}.json"
    entry.write_text("{broken")  # a damaged entry is re-measured, not trusted
    second = block_latency_table(model, calib, cache_dir=tmp_path, progress=False)
    assert [r["cached"] for r in second].count(False) == 1 and json.loads(entry.read_text())["lite_ms"] > 0
    check = table_vs_end_to_end(second, end_to_end_ms=sum(r["lite_net_ms"] for r in second) + second[0]["overhead_ms"])
    assert check["relative_error"] == pytest.approx(0.0, abs=1e-9)
