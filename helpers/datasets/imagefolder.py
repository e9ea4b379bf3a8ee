"""A user's image folder as a dataset (``imagefolder:<path>``): torchvision's ImageFolder convention, read and
checked whole before any training.

One sub-folder per class (sorted names are the classes). With ``train/``, ``val/`` and ``test/`` sub-folders those
are the splits; otherwise every class is split by a seeded random permutation (stratified: 80/10/10, at least one
image of each class in each split), so the same folder always gives the same split. Images are resized to the
asked square size; grey (L, LA, 1, I, I;16, F) and colour (RGB, RGBA, P, CMYK, YCbCr) images may not be mixed.
The fingerprint hashes every file's bytes, its class and its split.

Written by hand because torchvision's ImageFolder reads lazily per item and neither checks a folder whole nor
splits it; this reads it once into arrays like the other datasets here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

PREFIX = "imagefolder:"
SPLITS = ("train", "val", "test")
FRACTIONS = (0.8, 0.1, 0.1)
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
GREY = {"L", "LA", "1", "I", "I;16", "F"}


def folder_of(name: str) -> Path | None:
    """The folder an ``imagefolder:<path>`` dataset name points to (None for other names)."""
    return Path(name[len(PREFIX):]).expanduser() if name.startswith(PREFIX) else None


def _classes(folder: Path) -> list[Path]:
    subs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subs:
        raise ValueError(f"image folder {folder} has no class sub-folders; put each class's images in a folder of "
                         "its own (folder/cat/1.png, folder/dog/2.png), as torchvision's ImageFolder expects")
    return subs


def _files(class_dir: Path) -> list[Path]:
    return sorted(p for p in class_dir.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS)


def listing(folder: str | Path, seed: int = 0) -> tuple[list[str], dict]:
    """(classes, {split: [(file, class index), ...]}) of an image folder, checked: no class folders, an empty class,
    a class with fewer images than the split needs, or split folders whose classes differ, each one sentence."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"image folder {folder} does not exist; give the folder that holds one sub-folder per class")
    if all((folder / s).is_dir() for s in SPLITS):
        classes = [p.name for p in _classes(folder / "train")]
        out = {}
        for s in SPLITS:
            names = [p.name for p in _classes(folder / s)]
            if names != classes:
                raise ValueError(f"image folder {folder}: {s}/ has classes {names[:5]}..., train/ has {classes[:5]}...; "
                                 "give every split the same class folders")
            out[s] = [(f, i) for i, c in enumerate(classes) for f in _files(folder / s / c)]
            for i, c in enumerate(classes):
                if not any(k == i for _, k in out[s]):
                    raise ValueError(f"image folder {folder}: class {c!r} has no image in {s}/; add at least one")
        return classes, out
    dirs = _classes(folder)
    out = {s: [] for s in SPLITS}
    rng = np.random.default_rng(seed)
    for i, d in enumerate(dirs):
        files = _files(d)
        if len(files) < len(SPLITS):
            raise ValueError(f"image folder {folder}: class {d.name!r} has {len(files)} image(s); a seeded split into "
                             f"train, val and test needs at least {len(SPLITS)} (add images or give train/, val/, "
                             "test/ folders)")
        order = rng.permutation(len(files))
        n_val = max(1, int(round(FRACTIONS[1] * len(files))))
        n_test = max(1, int(round(FRACTIONS[2] * len(files))))
        parts = {"val": order[:n_val], "test": order[n_val:n_val + n_test], "train": order[n_val + n_test:]}
        for s, idx in parts.items():
            out[s] += [(files[j], i) for j in sorted(idx)]
    return [d.name for d in dirs], out


def read(folder: str | Path, split: str, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list, str]:
    """(images uint8 (N, size, size) grey or (N, size, size, 3) colour, labels int64, classes, fingerprint) of one
    split; an unreadable or empty file, or grey and colour images mixed, is one sentence naming the file."""
    from PIL import Image, UnidentifiedImageError

    classes, parts = listing(folder, seed)
    everything = [f for s in SPLITS for f, _ in parts[s]]
    grey = colour = None
    images, labels = [], []
    h = hashlib.sha256()
    for s in SPLITS:  # every file is opened once: mode checks and the fingerprint cover the whole folder
        for f, k in parts[s]:
            try:
                data = f.read_bytes()
                if not data:
                    raise ValueError("the file is empty")
                with Image.open(f) as im:
                    im.load()
                    is_grey = im.mode in GREY
                    if s == split:
                        im = im.convert("L" if is_grey else "RGB").resize((size, size), Image.BILINEAR)
                        images.append(np.asarray(im, np.uint8))
                        labels.append(k)
            except (OSError, ValueError, UnidentifiedImageError) as exc:
                raise ValueError(f"image {f} cannot be read ({exc}); delete or replace it") from None
            grey, colour = (grey or (f if is_grey else None)), (colour or (None if is_grey else f))
            if grey and colour:
                raise ValueError(f"image folder {folder} mixes grey and colour images ({grey} is grey, {colour} is "
                                 "colour); convert them to one mode")
            h.update(f"{f.relative_to(Path(folder))}|{k}|{s}|".encode())
            h.update(hashlib.sha256(data).digest())
    if not everything:
        raise ValueError(f"image folder {folder} holds no images ({', '.join(EXTENSIONS)})")
    return np.stack(images), np.asarray(labels, np.int64), classes, h.hexdigest()[:16]
