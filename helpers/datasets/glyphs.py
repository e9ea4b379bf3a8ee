"""Render the ``glyphs`` dataset: 47 EMNIST-Balanced character classes drawn from a pinned list of fonts.

Written by hand because no maintained package renders a design-split character set offline.
Decisions (documented in the README):

* Classes follow EMNIST-Balanced: digits, 26 upper-case letters and the 11 lower-case letters
  whose shape differs from their capital (a b d e f g h n q r t). The 15 case-ambiguous lower-case
  letters (c i j k l m o p s u v w x y z) are merged into their capital, as EMNIST does, because
  at a fixed size a font's ``o`` and ``O`` differ only by scale.
* Every glyph of a font is drawn at one size on one baseline, so case keeps its height difference.
* **The data set is a pinned list**: ``data_files/glyph_fonts.csv`` names every font file (path, Debian
  package, family, design). Fonts outside the list are ignored, so two machines with the same packages
  render the same set; a listed file that is missing stops with one sentence naming its package.
* **Splits are by design**, not by file: ``data_files/glyph_designs.yaml`` maps each design to the
  family names that are that design (metric and outline clones, every weight and slant of a
  superfamily). As a second net, designs whose clean renders lie closer than a threshold measured on the
  data (the distance at which known clones of one design sit from each other) are merged before the
  split; the threshold and any merges are reported in the font table.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import string
import subprocess
from pathlib import Path

import numpy as np

from helpers.core.io import atomic_path, write_json
from helpers.core.quiet import progress_enabled

CHARACTERS = string.digits + string.ascii_uppercase + string.ascii_lowercase
MERGED_LOWER = set("cijklmopsuvwxyz")
CLASSES = list(string.digits + string.ascii_uppercase) + [c for c in string.ascii_lowercase if c not in MERGED_LOWER]
CHAR_TO_CLASS = {c: CLASSES.index(c.upper() if c in MERGED_LOWER else c) for c in CHARACTERS}
DATA_FILES = Path(__file__).resolve().parents[1] / "data_files"
DESIGNS_FILE = DATA_FILES / "glyph_designs.yaml"
FONT_LIST = DATA_FILES / "glyph_fonts.csv"
FONT_DIRS = [Path("/usr/share/fonts"), Path("/usr/local/share/fonts")]
RENDER_VERSION = 4
FONTS_PER_DESIGN = 4  # at most this many files per design: keeps the set near 75k images on a 2-core CPU
FRACTIONS = (0.6, 0.2, 0.2)  # share of designs in train / validation / test (43 designs: 26 / 9 / 8)
STYLE_ORDER = (0, 0, 2, 1)  # regular, regular (a second family), italic, bold: see select_fonts
CLONE_QUANTILE = 0.25  # the pixel net merges designs closer than this quantile of same-style sibling distances


def load_designs() -> dict[str, list[str]]:
    """The design map: design -> font family names that are that design (``glyph_designs.yaml``)."""
    import yaml

    return yaml.safe_load(DESIGNS_FILE.read_text())


def listed_fonts(check: bool = True) -> list[dict]:
    """The pinned font list (rows of design, package, family, path); ``check`` verifies every file exists.

    Raises FileNotFoundError naming the first missing file and the Debian package that provides it.
    """
    with open(FONT_LIST, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if check:
        missing = [r for r in rows if not Path(r["path"]).exists()]
        if missing:
            pkgs = sorted({r["package"] for r in missing})
            raise FileNotFoundError(
                f"glyph font {missing[0]['path']} is missing ({len(missing)} listed fonts in all); install the Debian "
                f"package(s) {' '.join(pkgs)} (apt-get install {' '.join(pkgs)}; make setup does this as root)")
    return rows


def list_digest() -> str:
    """Hash of the design map and the font list: part of the render cache key."""
    return hashlib.sha256(DESIGNS_FILE.read_bytes() + FONT_LIST.read_bytes()).hexdigest()[:12]


def _style_bucket(style: str) -> int:
    """0 regular, 1 bold, 2 italic, 3 bold italic, 4 anything else (light, condensed, ...)."""
    s = style.lower()
    bold, italic = bool(re.search(r"bold|black|heavy", s)), bool(re.search(r"italic|oblique|slant", s))
    if re.search(r"light|thin|cond|narrow|medium|demi|semi|extra", s) and not (bold or italic):
        return 4
    return {(False, False): 0, (True, False): 1, (False, True): 2, (True, True): 3}[(bold, italic)]


def survey_installed(designs: dict[str, list[str]] | None = None) -> list[dict]:
    """Installed font files whose family is in the design map and that cover all 62 characters.

    Used only to (re)write the pinned list with :func:`write_font_list`; rendering reads the list.
    """
    from fontTools.ttLib import TTFont

    design_of = {fam: d for d, fams in (designs or load_designs()).items() for fam in fams}
    rows = []
    for path in sorted({p.resolve() for d in FONT_DIRS if d.exists() for p in d.rglob("*")
                        if p.suffix.lower() in {".ttf", ".otf"}}):
        try:
            font = TTFont(path, lazy=True, fontNumber=0)
            cmap = font.getBestCmap() or {}
            names = font["name"]
            family = names.getDebugName(16) or names.getDebugName(1)
            style = names.getDebugName(17) or names.getDebugName(2) or ""
        except Exception:  # unreadable font files are not candidates
            continue
        if family not in design_of or not all(ord(c) in cmap for c in CHARACTERS):
            continue
        pkg = subprocess.run(["dpkg", "-S", str(path)], capture_output=True, text=True).stdout.split(":")[0]
        rows.append({"design": design_of[family], "package": pkg, "family": family, "style": style, "path": str(path)})
    return rows


def select_fonts(candidates: list[dict], per_design: int = FONTS_PER_DESIGN) -> list[dict]:
    """Up to ``per_design`` files per design: round-robin over its families, the k-th pick preferring STYLE_ORDER[k].

    So a clone group contributes two vendors' regular styles (whose distance calibrates the pixel net)
    and the further picks vary in weight and slant.
    """
    chosen = []
    for design in sorted({c["design"] for c in candidates}):
        by_family: dict[str, list[dict]] = {}
        for c in sorted((c for c in candidates if c["design"] == design), key=lambda c: c["path"]):
            by_family.setdefault(c["family"], []).append(c)
        picks, k = [], 0
        while len(picks) < per_design and any(by_family.values()):
            for fam in sorted(by_family):
                if not by_family[fam] or len(picks) >= per_design:
                    continue
                target = STYLE_ORDER[k % len(STYLE_ORDER)]
                pool = by_family[fam]
                best = min(pool, key=lambda c: (abs(_style_bucket(c["style"]) - target), c["path"]))
                pool.remove(best)
                picks.append(best)
                k += 1
        chosen += picks
    return chosen


def write_font_list(per_design: int = FONTS_PER_DESIGN) -> Path:
    """Re-write ``glyph_fonts.csv`` from the installed fonts (a maintainer's step; bump RENDER_VERSION)."""
    rows = select_fonts(survey_installed(), per_design)
    with atomic_path(FONT_LIST) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, ["design", "package", "family", "style", "path"])
        writer.writeheader()
        writer.writerows(rows)
    return FONT_LIST


def assign_splits(designs: list[str], seed: int = 0, fractions: tuple = FRACTIONS) -> dict[str, int]:
    """Design -> split (0 train, 1 validation, 2 test): a seeded permutation of the sorted designs.

    Validation and test each get at least one design; the rest go to train.
    """
    unique = sorted(set(designs))
    order = np.random.default_rng(seed).permutation(len(unique))
    n_train = int(round(fractions[0] * len(unique)))
    n_val = max(1, int(round(fractions[1] * len(unique))))
    n_train = min(n_train, len(unique) - n_val - 1)
    return {unique[j]: (0 if k < n_train else 1 if k < n_train + n_val else 2) for k, j in enumerate(order)}


def _render_font(path: Path, size: int, variants: int, rng: np.random.Generator) -> np.ndarray:
    """All 62 characters of one font, ``variants`` jittered copies each: uint8 (62, variants, size, size)."""
    from PIL import Image, ImageDraw, ImageFont

    big = 4 * size
    font = ImageFont.truetype(str(path), size=200)
    boxes = {c: font.getbbox(c, anchor="ls") for c in CHARACTERS}  # left, top, right, bottom vs baseline
    ascent = -min(b[1] for b in boxes.values())
    descent = max(b[3] for b in boxes.values())
    width = max(b[2] - b[0] for b in boxes.values())
    scale = 0.86 * big / max(ascent + descent, width, 1)
    font = ImageFont.truetype(str(path), size=max(8, int(200 * scale)))
    baseline = big / 2 + (ascent - descent) * scale / 2
    out = np.zeros((len(CHARACTERS), variants, size, size), np.uint8)
    for i, c in enumerate(CHARACTERS):
        canvas = Image.new("L", (big, big), 0)
        left, _, right, _ = font.getbbox(c, anchor="ls")
        ImageDraw.Draw(canvas).text((big / 2 - (left + right) / 2, baseline), c, fill=255, font=font, anchor="ls")
        for v in range(variants):
            img = canvas
            if v:  # variant 0 is the clean rendering; the others get a small random affine jitter
                angle = rng.uniform(-8, 8)
                zoom = rng.uniform(0.85, 1.05)
                shift = rng.uniform(-0.06, 0.06, size=2) * big
                img = canvas.rotate(angle, resample=Image.BILINEAR, center=(big / 2, big / 2))
                img = img.transform((big, big), Image.AFFINE,
                                    (1 / zoom, 0, big / 2 * (1 - 1 / zoom) - shift[0],
                                     0, 1 / zoom, big / 2 * (1 - 1 / zoom) - shift[1]),
                                    resample=Image.BILINEAR)
            out[i, v] = np.asarray(img.resize((size, size), Image.LANCZOS))
    return out


def _render_fonts(fonts: list[dict], size: int, variants: int, rng: np.random.Generator) -> np.ndarray:
    """Every font rendered, in order, on all cores: the same pixels as rendering them one after another with ``rng``.

    Each jittered copy draws exactly four doubles (angle, zoom, a 2-vector shift), so font ``i`` starts where the
    serial loop would have left the generator: its state advanced by ``i`` times one font's draws (PCG64.advance).
    Written here because the rendering is per font and Pillow holds the GIL; a process pool halves the first
    ``make test`` or ``make run`` on a fresh clone's 2 cores (about 70 s serial).
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    per_font = len(CHARACTERS) * (variants - 1) * 4
    state = rng.bit_generator.state
    jobs = [(Path(f["path"]), size, variants, state, i * per_font) for i, f in enumerate(fonts)]
    workers = max(1, min(len(jobs), len(os.sched_getaffinity(0))))
    bar = dict(total=len(jobs), desc="rendering fonts", leave=False, disable=not progress_enabled())
    if workers == 1:
        return np.stack([_render_job(j) for j in tqdm(jobs, **bar)])
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return np.stack(list(tqdm(pool.map(_render_job, jobs, chunksize=4), **bar)))


def _render_job(job: tuple) -> np.ndarray:
    """One font of :func:`_render_fonts`; raises if it drew other than one font's share (four doubles per jittered
    copy), which would shift every later font's jitter away from the serial rendering."""
    path, size, variants, state, skip = job
    bits, end = np.random.PCG64(), np.random.PCG64()
    bits.state = end.state = state
    bits.advance(skip)
    out = _render_font(path, size, variants, np.random.Generator(bits))
    if bits.state != end.advance(skip + len(CHARACTERS) * (variants - 1) * 4).state:
        raise RuntimeError(f"rendering {path.name} drew other than four random numbers per jittered copy; "
                           "update the per-font share in glyphs._render_fonts")
    return out


def pixel_merges(designs: list[str], families: list[str], styles: list[str], thumbs: np.ndarray,
                 quantile: float = CLONE_QUANTILE) -> dict:
    """The pixel net: which designs render so alike that they must share a split.

    ``thumbs`` (fonts, ...) are clean renders. Siblings are fonts of one design, of different families but
    the same style bucket (Arimo and FreeSans regular, Noto Sans and Noto Sans Display regular); their
    distances (mean absolute pixel difference, 0-1) say how far apart two versions of one design render,
    and the threshold is their ``quantile`` (measured here: siblings lie 0.0-0.08 apart, while distinct
    designs start at about 0.016, so a low quantile keeps the net to near-copies). Any two fonts of
    different designs closer than that threshold merge their designs. Returns ``threshold``,
    ``clone_distances`` (count, median of the sibling distances), ``nearest_other_design`` (the closest cross-design pair and its
    distance) and ``groups``: design -> the name of its merged group.
    """
    flat = thumbs.reshape(len(designs), -1).astype(np.float32) / 255
    dist = np.abs(flat[:, None, :] - flat[None, :, :]).mean(-1)
    d, f = np.asarray(designs), np.asarray(families)
    b = np.asarray([_style_bucket(s) for s in styles])
    same_design, same_family = d[:, None] == d[None, :], f[:, None] == f[None, :]
    sibling = np.triu(same_design & ~same_family & (b[:, None] == b[None, :]), 1)
    clone = dist[sibling]
    threshold = float(np.quantile(clone, quantile)) if len(clone) else 0.0
    parent = {x: x for x in sorted(set(designs))}

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    cross = np.where(~same_design, dist, np.inf)
    merges = []
    for i, j in zip(*np.nonzero(np.triu(cross < threshold, 1))):
        a, b = find(designs[i]), find(designs[j])
        if a != b:
            parent[max(a, b)] = min(a, b)
            merges.append([designs[i], designs[j], round(float(dist[i, j]), 4)])
    i, j = np.unravel_index(np.argmin(cross), cross.shape)
    return {"threshold": round(threshold, 4), "clone_distances": {"count": int(len(clone)),
                                                                   "median": round(float(np.median(clone)), 4) if len(clone) else None},
            "nearest_other_design": [designs[i], designs[j], round(float(dist[i, j]), 4)], "merges": merges,
            "groups": {x: find(x) for x in parent}}


def render_glyphs(cache_dir: Path, size: int = 32, variants: int = 8, seed: int = 0,
                  fractions: tuple[float, float, float] = FRACTIONS) -> dict:
    """Render (or load from ``cache_dir``) the glyph set from the pinned font list; returns arrays and the font table.

    Returns a dict with ``images`` uint8 (N, size, size), ``labels`` int64 (N,), ``split`` uint8 (N,)
    (0 train, 1 validation, 2 test), ``group`` int16 (N,) (index into ``designs``), ``fonts`` (list of
    dicts: file, package, family, design, group, split), ``designs`` (split groups in index order),
    ``pixel_net`` (see :func:`pixel_merges`) and ``fingerprint`` (all images, labels, splits and groups).
    Raises FileNotFoundError naming the Debian package of a listed font that is missing.
    """
    key = f"glyphs_v{RENDER_VERSION}_{list_digest()}_s{size}_n{variants}_seed{seed}"
    npz, meta = cache_dir / f"{key}.npz", cache_dir / f"{key}.json"
    if npz.exists() and meta.exists():
        with np.load(npz) as z:
            arrays = {k: z[k] for k in z.files}
        return {**arrays, **json.loads(meta.read_text())}

    fonts = listed_fonts()
    stack = _render_fonts(fonts, size, variants, np.random.default_rng(seed))  # fonts, chars, variants, H, W
    net = pixel_merges([f["design"] for f in fonts], [f["family"] for f in fonts], [f["style"] for f in fonts],
                       stack[:, :, 0, ::2, ::2])
    groups = [net["groups"][f["design"]] for f in fonts]
    group_split = assign_splits(groups, seed, fractions)
    names = sorted(group_split)
    font_split = np.array([group_split[g] for g in groups], np.uint8)
    font_group = np.array([names.index(g) for g in groups], np.int16)

    n_fonts, n_chars = stack.shape[:2]
    images = stack.reshape(-1, size, size)
    labels = np.repeat(np.tile([CHAR_TO_CLASS[c] for c in CHARACTERS], n_fonts), variants).astype(np.int64)
    split = np.repeat(font_split, n_chars * variants)
    group = np.repeat(font_group, n_chars * variants)
    fingerprint = hashlib.sha256(images.tobytes() + labels.tobytes() + split.tobytes() + group.tobytes()).hexdigest()[:16]
    info = {"fonts": [{"file": f["path"], "package": f["package"], "family": f["family"], "design": f["design"],
                       "group": g, "split": int(s)} for f, g, s in zip(fonts, groups, font_split)],
            "designs": names, "pixel_net": net, "fingerprint": fingerprint, "classes": CLASSES,
            "font_list": list_digest()}
    with atomic_path(npz) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, images=images, labels=labels, split=split, group=group)
    write_json(meta, info)
    return {"images": images, "labels": labels, "split": split, "group": group, **info}
