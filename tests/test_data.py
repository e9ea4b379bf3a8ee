import json

import numpy as np
import pytest
import torch

from helpers import data, paths
from helpers.data import DatasetUnavailable, load_dataset


def test_fashion_mnist_shapes_and_splits():
    train, val, test = (load_dataset("fashion_mnist", s) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (54000, 6000, 10000)
    assert train.images.shape[1:] == (1, 32, 32) and train.num_classes == 10
    assert train.classes[0] == "T-shirt/top"
    assert train.images.min() >= -1.0 and train.images.max() <= 1.0
    assert set(test.targets.unique().tolist()) == set(range(10))


def test_validation_is_carved_from_train_and_disjoint():
    idx_train = data._split_indices(60000, "train", data.SPLIT_SEED)
    idx_val = data._split_indices(60000, "val", data.SPLIT_SEED)
    assert len(np.intersect1d(idx_train, idx_val)) == 0
    assert len(idx_train) + len(idx_val) == 60000
    # fixed seed: the same split every time
    assert np.array_equal(idx_val, data._split_indices(60000, "val", data.SPLIT_SEED))


def test_channels_and_size_transforms():
    ds = load_dataset("fashion_mnist", "test", input_size=24, channels=3)
    assert ds.images.shape[1:] == (3, 24, 24)
    assert torch.equal(ds.images[:, 0], ds.images[:, 2])


def test_glyphs_classes_and_font_family_split():
    train = load_dataset("glyphs", "train")
    assert train.num_classes == 47 and len(train.classes) == 47
    assert "a" in train.classes and "c" not in train.classes  # case-ambiguous c merged into C
    meta = next((paths.DATA / "glyphs").glob("*.json"))
    fonts = json.loads(meta.read_text())["fonts"]
    split_of_family = {}
    for f in fonts:
        split_of_family.setdefault(f["family"], set()).add(f["split"])
    assert all(len(s) == 1 for s in split_of_family.values()), "a font family appears in two splits"
    assert {0, 1, 2} <= {f["split"] for f in fonts}
    test = load_dataset("glyphs", "test")
    assert len(test) > 0 and set(test.targets.unique().tolist()) == set(range(47))


def test_cifar_pickle_format(cifar_root):
    c10 = load_dataset("cifar10", "train", root=cifar_root)
    assert len(c10) == 90 and c10.images.shape[1:] == (3, 32, 32)
    assert len(load_dataset("cifar10", "val", root=cifar_root)) == 10
    c100 = load_dataset("cifar100", "test", root=cifar_root, channels=1)
    assert c100.num_classes == 100 and c100.images.shape[1:] == (1, 32, 32)


@pytest.mark.parametrize("kwargs, words", [
    ({"name": "mnist", "split": "train"}, ["mnist", "fashion_mnist, glyphs"]),
    ({"name": "glyphs", "split": "dev"}, ["dev", "train, val, test"]),
    ({"name": "glyphs", "split": "train", "channels": 2}, ["channels", "2"]),
])
def test_bad_names_are_named(kwargs, words):
    with pytest.raises(ValueError) as err:
        load_dataset(**kwargs)
    assert all(w in str(err.value) for w in words)


def test_missing_offline_dataset_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "SYSTEM_FASHION_MNIST", tmp_path / "nowhere")
    import torchvision.datasets

    def no_net(*a, **k):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", no_net)
    with pytest.raises(DatasetUnavailable, match="dataset-fashion-mnist"):
        load_dataset("fashion_mnist", "train", root=tmp_path)
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(DatasetUnavailable, match="corrupt"):
        load_dataset("cifar10", "test", root=tmp_path)
