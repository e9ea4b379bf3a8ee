"""Datasets by name and split, with fixed seeded train/validation/test splits, as in-memory tensors."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from helpers.core import paths

DATASETS = ("fashion_mnist", "glyphs", "cifar10", "cifar100")
SPLITS = ("train", "val", "test")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FASHION_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                 "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
VAL_FRACTION = 0.1  # share of the official training set held out for validation
SPLIT_SEED = 1234


class DatasetUnavailable(FileNotFoundError):
    """A dataset is missing offline; the message says what to install or where to put which files."""


class ArrayDataset(Dataset):
    """Images as a float tensor (N, C, H, W) scaled to [-1, 1], integer targets and class names.

    ``fingerprint`` identifies the exact samples (source data, split and transforms), so checkpoints
    record which data they were trained on. ``groups`` (int tensor, or None) names each sample's design
    group for data split by group (glyphs: the typeface design), indexing ``group_names``.
    """

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, classes: list[str], name: str, split: str,
                 fingerprint: str, groups: torch.Tensor | None = None, group_names: list[str] | None = None):
        self.images, self.targets, self.classes = images, targets, list(classes)
        self.name, self.split, self.fingerprint = name, split, fingerprint
        self.groups, self.group_names = groups, list(group_names or [])

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i):
        return self.images[i], int(self.targets[i])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return int(self.images.shape[1])

    def subset(self, n: int | None, seed: int = 0) -> "ArrayDataset":
        """A seeded random subset of ``n`` samples (all of them when ``n`` is None or too large).

        Raises ValueError when ``n`` is not a positive whole number.
        """
        if n is None:
            return self
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"a subset size must be a positive whole number or None (all samples), not {n!r}")
        if n >= len(self):
            return self
        idx = torch.from_numpy(np.random.default_rng(seed).permutation(len(self))[:n])
        return ArrayDataset(self.images[idx], self.targets[idx], self.classes, self.name, self.split,
                            f"{self.fingerprint}-n{n}-s{seed}", None if self.groups is None else self.groups[idx],
                            self.group_names)


@dataclass(frozen=True)
class _Raw:
    images: np.ndarray  # uint8 (N, H, W) or (N, H, W, C)
    labels: np.ndarray
    classes: list[str]
    fingerprint: str
    groups: np.ndarray | None = None
    group_names: tuple = ()


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _fashion_local(root: Path) -> Path | None:
    """The first folder holding all four Fashion-MNIST IDX files offline, or None."""
    candidates = [root / "fashion_mnist", root / "FashionMNIST" / "raw", paths.SYSTEM_FASHION_MNIST]
    return next((d for d in candidates if all((d / f).exists() for pair in FASHION_FILES.values() for f in pair)), None)


def _fashion_dir(root: Path) -> Path:
    if (d := _fashion_local(root)) is not None:
        return d
    try:
        from torchvision.datasets import FashionMNIST

        FashionMNIST(root=str(root), download=True)
        return root / "FashionMNIST" / "raw"
    except Exception as exc:
        raise DatasetUnavailable(
            "fashion_mnist not found offline: install the Debian package dataset-fashion-mnist "
            f"(apt-get install dataset-fashion-mnist) or place the four IDX .gz files in {root / 'fashion_mnist'} "
            f"(download failed: {exc.__class__.__name__})") from None


def _load_raw(name: str, official_split: str, root: Path) -> _Raw:
    if name == "fashion_mnist":
        d = _fashion_dir(root)
        img_file, lab_file = FASHION_FILES[official_split]
        images, labels = _read_idx(d / img_file), _read_idx(d / lab_file).astype(np.int64)
        return _Raw(images, labels, FASHION_CLASSES, content_fingerprint(images, labels))
    if name in ("cifar10", "cifar100"):
        images, labels, classes = _read_cifar(name, official_split, root)
        return _Raw(images, labels, classes, content_fingerprint(images, labels))
    raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


CIFAR = {"cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch",
                     "batches.meta", "label_names", "labels"),
         "cifar100": ("cifar-100-python", ["train"], "test", "meta", "fine_label_names", "fine_labels")}


def _read_cifar(name: str, official_split: str, root: Path):
    """Read the CIFAR pickle batches (downloading them with torchvision when absent)."""
    import pickle

    folder, train_files, test_file, meta_file, names_key, labels_key = CIFAR[name]
    base = root / folder
    if not base.exists():
        from torchvision.datasets import CIFAR10, CIFAR100

        try:
            (CIFAR10 if name == "cifar10" else CIFAR100)(root=str(root), download=True)
        except Exception as exc:
            raise DatasetUnavailable(
                f"{name} is not in {root} and could not be downloaded ({exc.__class__.__name__}); run once with "
                f"internet access or place the extracted '{folder}' folder in {root}") from None
    files = train_files if official_split == "train" else [test_file]
    images, labels = [], []
    try:
        for f in files:
            with open(base / f, "rb") as fh:
                batch = pickle.load(fh, encoding="latin1")
            images.append(np.asarray(batch["data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels += list(batch[labels_key])
        with open(base / meta_file, "rb") as fh:
            classes = list(pickle.load(fh, encoding="latin1")[names_key])
    except (OSError, KeyError, pickle.UnpicklingError, ValueError) as exc:
        raise DatasetUnavailable(f"{name} files in {base} are incomplete or corrupt ({exc}); delete {base} and "
                                 "download again") from None
    return np.concatenate(images), np.asarray(labels, np.int64), classes


def content_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """Hash of every image and every label (not a sample of them): two machines agree iff the data does."""
    h = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    h.update(np.ascontiguousarray(labels).astype(np.int64).tobytes())
    return h.hexdigest()[:16]


def _split_indices(n: int, split: str, seed: int) -> np.ndarray:
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(round(VAL_FRACTION * n))
    return np.sort(perm[:n_val] if split == "val" else perm[n_val:])


def _to_tensor(images: np.ndarray, size: int, channels: int) -> torch.Tensor:
    x = torch.from_numpy(np.array(images, copy=True))  # IDX buffers are read-only
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    x = x.float().div_(127.5).sub_(1.0)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    if x.shape[1] != channels:
        x = x.mean(1, keepdim=True) if channels == 1 else x.expand(-1, channels, -1, -1)
    return x.contiguous()


def known_dataset(name: str) -> bool:
    """A dataset name the workbench loads: one of ``DATASETS`` or ``imagefolder:<path>`` (a user's folder)."""
    from helpers.datasets.imagefolder import PREFIX

    return name in DATASETS or (isinstance(name, str) and name.startswith(PREFIX) and len(name) > len(PREFIX))


def load_dataset(name: str, split: str, input_size: int = 32, channels: int | None = None,
                 root: str | Path | None = None, seed: int = SPLIT_SEED) -> ArrayDataset:
    """Load dataset ``name`` ('fashion_mnist', 'glyphs', 'cifar10', 'cifar100', or ``imagefolder:<path>``, a user's
    folder of class sub-folders, see ``helpers.imagefolder``) and ``split``.

    ``split`` is 'train', 'val' (carved from the official training set with ``seed``) or 'test'.
    Images are resized to ``input_size`` square and converted to ``channels`` (default: the
    dataset's own: 1 for grey, 3 for colour). ``root`` defaults to data/.
    Raises ValueError for an unknown name or split, DatasetUnavailable when the files are missing offline.
    """
    from helpers.datasets.imagefolder import folder_of

    folder = folder_of(name)
    if name not in DATASETS and folder is None:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} or imagefolder:<path>")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels!r}")
    if int(input_size) < 8:
        raise ValueError(f"input_size must be at least 8 pixels, not {input_size!r}")
    root = Path(root) if root is not None else paths.DATA
    if folder is not None:  # a user's image folder: read at the asked size, split by folders or seeded
        from helpers.datasets.imagefolder import read

        images, labels, classes, fingerprint = read(folder, split, int(input_size), seed)
        raw = _Raw(images, labels, classes, fingerprint)
    elif name == "glyphs":
        from helpers.datasets.glyphs import render_glyphs

        g = render_glyphs(root / "glyphs")
        mask = g["split"] == SPLITS.index(split)
        raw = _Raw(g["images"][mask], g["labels"][mask], g["classes"], g["fingerprint"], g["group"][mask],
                   tuple(g["designs"]))
    else:
        raw = _load_raw(name, "test" if split == "test" else "train", root)
        if split != "test":
            idx = _split_indices(len(raw.labels), split, seed)
            raw = _Raw(raw.images[idx], raw.labels[idx], raw.classes, raw.fingerprint)
    native = 1 if raw.images.ndim == 3 else raw.images.shape[-1]
    channels = channels or native
    x = _to_tensor(raw.images, int(input_size), channels)
    fp = f"{name}-{split}-{raw.fingerprint}-s{seed}-{input_size}px-{channels}ch"
    groups = None if raw.groups is None else torch.from_numpy(raw.groups.astype(np.int64))
    return ArrayDataset(x, torch.from_numpy(raw.labels), raw.classes, name, split, fp, groups, list(raw.group_names))


def dataset_fingerprints(names: tuple = ("fashion_mnist", "glyphs"), root: str | Path | None = None) -> dict:
    """Content fingerprints of the named datasets as present offline (None where one is not available).

    Fashion-MNIST and CIFAR: every image and label of the official train and test files; glyphs: the
    rendered set (images, labels, splits, design groups), rendering it if it is not cached. Never downloads.
    """
    root = Path(root) if root is not None else paths.DATA
    out = {}
    for name in names:
        try:
            if name == "glyphs":
                from helpers.datasets.glyphs import render_glyphs

                out[name] = render_glyphs(root / "glyphs")["fingerprint"]
            elif name == "fashion_mnist":
                d = _fashion_local(root)
                out[name] = None if d is None else hashlib.sha256("".join(
                    content_fingerprint(_read_idx(d / i), _read_idx(d / lab)) for i, lab in FASHION_FILES.values()
                ).encode()).hexdigest()[:16]
            elif (root / CIFAR[name][0]).exists():
                out[name] = hashlib.sha256("".join(content_fingerprint(*_read_cifar(name, s, root)[:2])
                                                   for s in ("train", "test")).encode()).hexdigest()[:16]
            else:
                out[name] = None
        except (FileNotFoundError, OSError):
            out[name] = None
    return out


def batches(ds: ArrayDataset, batch_size: int, shuffle: bool = False, seed: int = 0, augment: bool = False):
    """Yield (images, targets) batches straight from memory; ``augment`` adds random 2-pixel shifts."""
    n = len(ds)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(n)) if shuffle else torch.arange(n)
    gen = torch.Generator().manual_seed(seed)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        x, y = ds.images[idx], ds.targets[idx]
        if augment:
            pad = F.pad(x, (2, 2, 2, 2), value=-1.0)
            dx, dy = torch.randint(0, 5, (2,), generator=gen).tolist()
            x = pad[:, :, dy:dy + x.shape[2], dx:dx + x.shape[3]]
        yield x, y


def calibration_batches(ds: ArrayDataset, n: int, seed: int = 0):
    """``n`` single-image NCHW batches from ``ds`` for int8 calibration (the exporter is batch-1)."""
    sub = ds.subset(n, seed)
    return [sub.images[i:i + 1] for i in range(len(sub))]
