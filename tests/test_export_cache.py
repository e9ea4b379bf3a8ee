"""The export cache: the same network is converted once, anything that changes the bytes changes the key."""

import importlib

import pytest
import torch
import torch.nn.utils.prune
from torch import nn

from helpers.core import paths
from helpers.deploy import export as export_module
from helpers.deploy import export_cache
from helpers.networks.models import build_model


def _net(seed=0):
    torch.manual_seed(seed)
    return build_model("resnet18", 10, 1, 0.25).eval()


CALIB = [torch.full((1, 1, 32, 32), 0.5)]


def test_the_key_changes_with_weights_mode_input_calibration_and_hooks():
    a, b = _net(0), _net(1)
    key = export_cache.cache_key(a, "int8", CALIB, 32, 1, True)
    assert key == export_cache.cache_key(_net(0), "int8", CALIB, 32, 1, True)
    assert key != export_cache.cache_key(b, "int8", CALIB, 32, 1, True)
    assert key != export_cache.cache_key(a, "fp32", CALIB, 32, 1, True)
    assert key != export_cache.cache_key(a, "int8", CALIB, 48, 1, True)
    assert key != export_cache.cache_key(a, "int8", [CALIB[0] * 2], 32, 1, True)
    assert key != export_cache.cache_key(a, "int8", CALIB, 32, 1, False)
    torch.nn.utils.prune.l1_unstructured(a.conv1, "weight", 0.5)
    assert key != export_cache.cache_key(a, "int8", CALIB, 32, 1, True)


def test_a_class_without_source_is_not_cached():
    namespace = {"nn": nn}
    exec("class Cell(nn.Module):\n    def forward(self, x):\n        return x * 2\n", namespace)
    assert export_cache.cache_key(namespace["Cell"](), "fp32", None, 32, 1, True) is None


@pytest.mark.slow
def test_a_second_export_of_the_same_network_is_a_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "EXPORT_CACHE", tmp_path / "cache")
    first = export_cache.export_tflite(_net(0), tmp_path / "a.tflite", "fp32", input_size=32)
    assert len(list((tmp_path / "cache").glob("*.tflite"))) == 1

    def refuse(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(export_module, "export_tflite", refuse)
    second = export_cache.export_tflite(_net(0), tmp_path / "b.tflite", "fp32", input_size=32)
    assert second.read_bytes() == first.read_bytes()
    with pytest.raises(AssertionError, match="converted again"):
        export_cache.export_tflite(_net(1), tmp_path / "c.tflite", "fp32", input_size=32)
    assert not (tmp_path / "c.tflite").exists()


def test_off_turns_it_off(monkeypatch):
    monkeypatch.setenv("WORKBENCH_EXPORT_CACHE", "off")
    try:
        assert importlib.reload(paths).EXPORT_CACHE is None
    finally:
        monkeypatch.delenv("WORKBENCH_EXPORT_CACHE")
        importlib.reload(paths)
