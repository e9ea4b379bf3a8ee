"""Render the ``glyphs`` dataset: 47 EMNIST-Balanced character classes drawn from installed fonts.

Written by hand because no maintained package renders a font-split character set offline.
Decisions (documented in the README):

* Classes follow EMNIST-Balanced: digits, 26 upper-case letters and the 11 lower-case letters
  whose shape differs from their capital (a b d e f g h n q r t). The 15 case-ambiguous lower-case
  letters (c i j k l m o p s u v w x y z) are merged into their capital, as EMNIST does, because
  at a fixed size a font's ``o`` and ``O`` differ only by scale.
* Every glyph of a font is drawn at one size on one baseline, so case keeps its height difference.
* Fonts are grouped into design families (normalised family name, then near-identical renders
  merged) and whole families are assigned to train, validation or test: the test set holds only
  typefaces never seen in training.
* Symbol, math, dingbat and fallback fonts, and any font missing one of the 62 characters, are
  skipped.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from pathlib import Path

import numpy as np

from helpers.io import atomic_path, write_json

CHARACTERS = string.digits + string.ascii_uppercase + string.ascii_lowercase
MERGED_LOWER = set("cijklmopsuvwxyz")
CLASSES = list(string.digits + string.ascii_uppercase) + [c for c in string.ascii_lowercase if c not in MERGED_LOWER]
CHAR_TO_CLASS = {c: CLASSES.index(c.upper() if c in MERGED_LOWER else c) for c in CHARACTERS}
FONT_DIRS = [Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path("/usr/share/texmf/fonts/opentype")]
SKIP_PATTERN = re.compile(r"symbol|math|dingbat|d050000l|emoji|music|fallback|lastresort|ornament|z003|chorus|nushu|cmex|cmsy|cmmi", re.I)
STYLE_WORDS = re.compile(
    r"\b(bold|italic|oblique|regular|book|light|thin|medium|semi|demi|extra|ultra|black|heavy|"
    r"condensed|narrow|expanded|display|text|caption|mono|ui|lgc|semibold|semicondensed)\b", re.I)
RENDER_VERSION = 3


def font_files() -> list[Path]:
    """Candidate font files: system font folders, then matplotlib's bundled TrueType fonts."""
    import matplotlib

    dirs = FONT_DIRS + [Path(matplotlib.get_data_path()) / "fonts" / "ttf"]
    files = {p.resolve() for d in dirs if d.exists() for p in d.rglob("*") if p.suffix.lower() in {".ttf", ".otf"}}
    return sorted(p for p in files if not SKIP_PATTERN.search(p.name))


def font_family(path: Path) -> str | None:
    """Normalised design family of a font, or None when it is unusable (missing characters, symbols)."""
    from fontTools.ttLib import TTFont

    try:
        font = TTFont(path, lazy=True, fontNumber=0)
        cmap = font.getBestCmap() or {}
        names = font["name"]
        family = names.getDebugName(16) or names.getDebugName(1) or path.stem
    except Exception:  # unreadable font files are skipped, not fatal
        return None
    if not all(ord(c) in cmap for c in CHARACTERS) or SKIP_PATTERN.search(family):
        return None
    family = re.sub(r"\s+", " ", STYLE_WORDS.sub(" ", family)).strip().lower()
    return family or path.stem.lower()


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


def _merge_near_duplicates(families: list[str], thumbs: np.ndarray, tol: float = 0.015) -> list[str]:
    """Give fonts whose clean renders are near-identical one family.

    Metric clones share a design under another name (TeX Gyre Termes, FreeSerif and STIX are Times;
    TeX Gyre Heros and FreeSans are Helvetica): their mean absolute pixel difference is below 0.014,
    while distinct designs measured here differ by more than 0.02.
    """
    parent = list(range(len(families)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_name: dict[str, int] = {}
    for i, fam in enumerate(families):
        parent[find(i)] = find(by_name.setdefault(fam, i))
    flat = thumbs.reshape(len(families), -1).astype(np.float32) / 255
    for i in range(len(families)):
        diffs = np.abs(flat[i + 1:] - flat[i]).mean(axis=1)
        for j in np.nonzero(diffs < tol)[0]:
            parent[find(i + 1 + j)] = find(i)
    return [families[find(i)] for i in range(len(families))]


def render_glyphs(cache_dir: Path, size: int = 32, variants: int = 8, seed: int = 0,
                  fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)) -> dict:
    """Render (or load from ``cache_dir``) the glyph set; returns arrays and the font table.

    Returns a dict with ``images`` uint8 (N, size, size), ``labels`` int64 (N,), ``split`` uint8 (N,)
    (0 train, 1 validation, 2 test), ``fonts`` (list of dicts: file, family, split) and ``fingerprint``.
    Raises FileNotFoundError when too few usable fonts are installed.
    """
    key = f"glyphs_v{RENDER_VERSION}_s{size}_n{variants}_seed{seed}"
    npz, meta = cache_dir / f"{key}.npz", cache_dir / f"{key}.json"
    if npz.exists() and meta.exists():
        with np.load(npz) as z:
            arrays = {k: z[k] for k in z.files}
        return {**arrays, **json.loads(meta.read_text())}

    usable = [(p, fam) for p in font_files() if (fam := font_family(p))]
    if len(usable) < 6:
        raise FileNotFoundError(
            f"only {len(usable)} usable fonts found; install the Debian packages fonts-urw-base35 fonts-texgyre "
            "fonts-noto-core fonts-dejavu-core fonts-liberation2 fonts-freefont-ttf (make setup does this as root)")
    rng = np.random.default_rng(seed)
    from tqdm.auto import tqdm

    rendered, kept = [], []
    for path, fam in tqdm(usable, desc="rendering fonts", leave=False):
        try:
            rendered.append(_render_font(path, size, variants, rng))
            kept.append((path, fam))
        except OSError:
            continue
    stack = np.stack(rendered)  # fonts, chars, variants, H, W
    _, first = np.unique(stack[:, :, 0].reshape(len(kept), -1), axis=0, return_index=True)
    keep = np.sort(first)  # the same file installed twice (system and matplotlib copies) counts once
    stack, kept = stack[keep], [kept[i] for i in keep]
    families = _merge_near_duplicates([f for _, f in kept], stack[:, :, 0, ::2, ::2])
    unique = sorted(set(families))
    order = np.random.default_rng(seed).permutation(len(unique))
    n_train = int(round(fractions[0] * len(unique)))
    n_val = max(1, int(round(fractions[1] * len(unique))))
    family_split = {unique[j]: (0 if k < n_train else 1 if k < n_train + n_val else 2) for k, j in enumerate(order)}
    font_split = np.array([family_split[f] for f in families], np.uint8)

    n_fonts, n_chars = stack.shape[:2]
    images = stack.reshape(-1, size, size)
    labels = np.repeat(np.tile([CHAR_TO_CLASS[c] for c in CHARACTERS], n_fonts), variants).astype(np.int64)
    split = np.repeat(font_split, n_chars * variants)
    fingerprint = hashlib.sha256(images.tobytes() + labels.tobytes() + split.tobytes()).hexdigest()[:16]
    info = {"fonts": [{"file": str(p), "family": f, "split": int(s)} for (p, _), f, s in zip(kept, families, font_split)],
            "fingerprint": fingerprint, "classes": CLASSES}
    with atomic_path(npz) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, images=images, labels=labels, split=split)
    write_json(meta, info)
    return {"images": images, "labels": labels, "split": split, **info}
