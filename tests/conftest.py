"""Shared fixtures: tiny synthetic datasets and small models so unit tests take seconds."""

import pickle

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


@pytest.fixture
def cifar_root(tmp_path):
    """A data root holding tiny CIFAR-10 and CIFAR-100 files in the real pickle format."""
    rng = np.random.default_rng(0)

    def batch(n, key, k):
        return {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), key: list(rng.integers(0, k, n))}

    c10 = tmp_path / "cifar-10-batches-py"
    c10.mkdir()
    for i in range(1, 6):
        (c10 / f"data_batch_{i}").write_bytes(pickle.dumps(batch(20, "labels", 10)))
    (c10 / "test_batch").write_bytes(pickle.dumps(batch(30, "labels", 10)))
    (c10 / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    c100 = tmp_path / "cifar-100-python"
    c100.mkdir()
    (c100 / "train").write_bytes(pickle.dumps(batch(200, "fine_labels", 100)))
    (c100 / "test").write_bytes(pickle.dumps(batch(50, "fine_labels", 100)))
    (c100 / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"f{i}" for i in range(100)]}))
    return tmp_path
