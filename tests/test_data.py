import json

import numpy as np
import pytest
import torch

from helpers.datasets import data
from helpers.core import paths
from helpers.datasets.data import DatasetUnavailable, load_dataset


def test_fashion_mnist_shapes_and_splits():
    train, val, test = (load_dataset("fashion_mnist", s) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (54000, 6000, 10000)
    assert train.images.shape[1:] == (1, 32, 32) and train.num_classes == 10
    assert train.classes[0] == "T-shirt/top"
    assert train.images.min() >= -1.0 and train.images.max() <= 1.0
    assert set(test.targets.unique().tolist()) == set(range(10))


def test_validation_is_carved_from_train_and_disjoint(cifar_root):
    """Through the public loader, on 100 random training images: validation and train are disjoint, together they
    are the whole official training split, and the seeded split is the same every time."""
    def rows(split):
        return {bytes(x.numpy().tobytes()) for x in load_dataset("cifar10", split, root=cifar_root).images}

    train, val = rows("train"), rows("val")
    assert len(train) + len(val) == 100 and not train & val
    assert rows("val") == val


def test_channels_and_size_transforms():
    ds = load_dataset("fashion_mnist", "test", input_size=24, channels=3)
    assert ds.images.shape[1:] == (3, 24, 24)
    assert torch.equal(ds.images[:, 0], ds.images[:, 2])


# Clone groups written here independently of helpers/data_files/glyph_designs.yaml and the split code:
# each set holds family names that are one typeface design (metric/outline clones or one superfamily).
CLONE_GROUPS = [
    {"Nimbus Roman", "TeX Gyre Termes", "Liberation Serif", "FreeSerif", "Tinos", "STIX", "STIXGeneral"},
    {"Nimbus Sans", "TeX Gyre Heros", "Liberation Sans", "FreeSans", "Arimo"},
    {"Nimbus Mono PS", "TeX Gyre Cursor", "Liberation Mono", "FreeMono", "Cousine"},
    {"P052", "TeX Gyre Pagella"}, {"C059", "TeX Gyre Schola"}, {"URW Bookman", "TeX Gyre Bonum"},
    {"URW Gothic", "TeX Gyre Adventor"},
    {"CMU Serif", "CMU Classical Serif", "CMU Concrete", "Latin Modern Roman", "CMU Sans Serif", "Latin Modern Sans",
     "CMU Typewriter Text", "Latin Modern Mono", "CMU Bright"},
    {"DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono", "Hack"},
    {"Lato", "Carlito"}, {"Open Sans", "Noto Sans", "Noto Serif"},
]


def test_named_clone_groups_never_straddle_splits():
    """Every clone group lands in one split, for the design map as listed and for 25 split seeds."""
    from helpers.datasets import glyphs

    design_of = {fam: d for d, fams in glyphs.load_designs().items() for fam in fams}
    for group in CLONE_GROUPS:
        assert len({design_of.get(f, f"(unlisted) {f}") for f in group}) == 1, f"clone group split across designs: {group}"
    fonts = glyphs.listed_fonts(check=False)
    for seed in range(25):
        split = glyphs.assign_splits([f["design"] for f in fonts], seed)
        for group in CLONE_GROUPS:
            sides = {split[f["design"]] for f in fonts if f["family"] in group}
            assert len(sides) <= 1, f"seed {seed}: clone group {sorted(group)} lies in splits {sides}"


def test_glyphs_split_by_design_with_enough_held_out_designs(_glyph_scratch):
    train, test = load_dataset("glyphs", "train"), load_dataset("glyphs", "test")
    assert train.num_classes == 47 and len(train.classes) == 47
    assert "a" in train.classes and "c" not in train.classes  # case-ambiguous c merged into C
    from helpers.datasets.glyphs import list_digest

    meta = json.loads(next(p for root in (paths.DATA / "glyphs", _glyph_scratch / "glyphs")
                           for p in root.glob(f"glyphs_v4_{list_digest()}_*.json")).read_text())
    sides = {}
    for f in meta["fonts"]:
        sides.setdefault(f["group"], set()).add(f["split"])
        sides.setdefault(f"family {f['family']}", set()).add(f["split"])
    assert all(len(s) == 1 for s in sides.values()), "a design group or family appears in two splits"
    for group in CLONE_GROUPS:  # the rendered set, after the pixel net's merges, too
        assert len({f["split"] for f in meta["fonts"] if f["family"] in group}) <= 1, sorted(group)
    per_split = {k: {f["group"] for f in meta["fonts"] if f["split"] == k} for k in (0, 1, 2)}
    assert len(meta["designs"]) >= 40 and len(per_split[2]) >= 8 and len(per_split[1]) >= 8
    assert set(test.groups.unique().tolist()) == {meta["designs"].index(g) for g in per_split[2]}
    assert set(test.targets.unique().tolist()) == set(range(47))
    net = meta["pixel_net"]
    assert 0 < net["threshold"] < 0.05 and net["clone_distances"]["count"] >= 10


def test_pixel_net_merges_near_copies_only():
    from helpers.datasets.glyphs import pixel_merges

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (4, 64)).astype(np.uint8)
    sibling = np.clip(base[0].astype(int) + 4, 0, 255).astype(np.uint8)  # another vendor's version of design a
    near = np.clip(base[0].astype(int) + 1, 0, 255).astype(np.uint8)  # a near copy of it filed as design d
    thumbs = np.stack([base[0], sibling, base[1], base[2], near])
    net = pixel_merges(["a", "a", "b", "c", "d"], ["A1", "A2", "B", "C", "D"], ["Regular"] * 5, thumbs)
    assert net["groups"]["d"] == net["groups"]["a"] and net["groups"]["b"] != net["groups"]["c"]


def test_missing_listed_font_names_its_package(tmp_path, monkeypatch):
    from helpers.datasets import glyphs

    fake = tmp_path / "fonts.csv"
    fake.write_text("design,package,family,style,path\nx,fonts-nowhere,X,Regular,/nonexistent/X.ttf\n")
    monkeypatch.setattr(glyphs, "FONT_LIST", fake)
    with pytest.raises(FileNotFoundError, match="fonts-nowhere"):
        glyphs.listed_fonts()


def test_fingerprints_hash_every_image_and_label():
    images, labels = np.zeros((5, 4, 4), np.uint8), np.arange(5)
    fp = data.content_fingerprint(images, labels)
    changed_label = labels.copy()
    changed_label[-1] = 0
    changed_image = images.copy()
    changed_image[-1, -1, -1] = 1
    assert fp != data.content_fingerprint(images, changed_label) != data.content_fingerprint(changed_image, labels)


@pytest.mark.parametrize("n", [0, -1, 2.5])
def test_subset_rejects_non_positive_sizes(n):
    ds = load_dataset("fashion_mnist", "test")
    with pytest.raises(ValueError, match="positive whole number"):
        ds.subset(n)


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
