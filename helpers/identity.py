"""What identifies a result, with no dependency inside the package: the machine (CPU, cores, the ISA flags that
decide int8 and bf16 speed), package versions, digests of the code that shapes a cached object, config keys.

The bottom of the package (with ``paths``): ``latency``, ``provenance`` and every cache import it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from helpers import paths

PACKAGE_DIR = Path(__file__).resolve().parent
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")
RESULT_PACKAGES = ("torch", "torchvision", "litert-torch", "ai-edge-litert", "ai-edge-quantizer", "torchao",
                   "torch-pruning", "scikit-optimize", "scikit-learn", "numpy", "scipy", "pillow", "fonttools",
                   "tensorly", "pandas")


#: The code that shapes an exported artifact: the exporter and the int8 recipe (quantizer, channel-last program) it
#: calls. Every cache of exported files hashes all of it (tests/test_controls.py checks the exporter's imports).
EXPORT_CODE = ("export.py", "int8_recipe.py")


def code_digest(*modules: str, root: Path = PACKAGE_DIR) -> str:
    """Hash of the source of ``modules`` (paths relative to the package, e.g. 'train.py' or 'compress').

    A folder counts with every ``.py`` file below it. Raises FileNotFoundError for a name that is neither.
    """
    return _digest(tuple(modules), Path(root))


@lru_cache(maxsize=None)
def _digest(modules: tuple, root: Path) -> str:
    h = hashlib.sha256()
    for name in sorted(modules):
        p = root / name
        files = sorted(p.rglob("*.py")) if p.is_dir() else [p]
        if not p.exists():
            raise FileNotFoundError(f"code_digest: no module {name!r} under {root}")
        for f in files:
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def config_key(config: dict) -> str:
    """A short stable hash of a JSON-serialisable config (cache keys)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def package_versions(names: tuple = RESULT_PACKAGES) -> dict:
    """Python's version and the installed versions of ``names`` (None for a missing one)."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine() -> dict:
    """CPU model, clock (MHz), logical cores, memory (GiB), the ISA flags that decide int8/bf16 speed, and an id.

    ``id`` is a short hash of the model, cores and flags: results of different machines are kept apart by it.
    """
    info = {"cpu": platform.processor() or platform.machine(), "mhz": None, "cores": os.cpu_count(), "flags": []}
    try:
        text = Path("/proc/cpuinfo").read_text()
        if m := re.search(r"^model name\s*:\s*(.+)$", text, re.M):
            info["cpu"] = m.group(1).strip()
        if m := re.search(r"^cpu MHz\s*:\s*([\d.]+)$", text, re.M):
            info["mhz"] = round(float(m.group(1)))
        if m := re.search(r"^flags\s*:\s*(.+)$", text, re.M):
            have = set(m.group(1).split())
            info["flags"] = [f for f in ISA_FLAGS if f in have]
    except OSError:
        pass
    try:
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        info["memory_gib"] = None
    key = json.dumps([info["cpu"], info["cores"], info["flags"]])
    slug = re.sub(r"[^a-z0-9]+", "-", info["cpu"].lower()).strip("-")[:24]
    info["id"] = f"{slug}-{info['cores']}c-{hashlib.sha256(key.encode()).hexdigest()[:6]}"
    return info


#: What a run writes into tracked folders: changes there do not make the code state dirty.
GENERATED = ("figures", "results")


def git_state() -> dict:
    """``commit`` (or None outside a checkout) and ``dirty``: uncommitted changes to tracked files other than
    the chain's own outputs (``GENERATED``), so a run that rewrites figures/ stays clean from start to end."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=paths.ROOT, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    try:
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                      *(f":(exclude){g}" for g in GENERATED))
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(changed)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
