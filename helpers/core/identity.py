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

from helpers.core import paths

PACKAGE_DIR = Path(__file__).resolve().parents[1]
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")
RESULT_PACKAGES = ("torch", "torchvision", "litert-torch", "ai-edge-litert", "ai-edge-quantizer", "torchao",
                   "torch-pruning", "scikit-optimize", "scikit-learn", "numpy", "scipy", "pillow", "fonttools",
                   "tensorly", "pandas")


#: The code that shapes an exported artifact: the exporter and the int8 recipe (quantizer, channel-last program) it
#: calls. Every cache of exported files hashes all of it (tests/test_controls.py checks the exporter's imports).
EXPORT_CODE = ("export.py", "int8_recipe.py")

#: Modules whose name changed when the flat package became layer packages (2026-12-06): new name -> logical name.
LOGICAL_NAMES = {"engine": "search", "store": "trials", "plan_rows": "tables"}
#: Folders that were packages in the flat layout already: their files keep their folder in the logical path.
FLAT_PACKAGES = ("compress",)


def code_digest(*modules: str, root: Path = PACKAGE_DIR) -> str:
    """Hash of the source of ``modules``, named by their logical name: 'train', 'export' (or 'train.py'), the
    package 'compress', or '.' for the whole package.

    A digest is a cache key, so it is independent of where a module lives: each file is hashed under its logical
    path (its name in the flat layout, e.g. 'export.py' for ``helpers/deploy/export.py``) with its source in the
    logical form (:func:`logical_source`: every ``helpers`` import written as the flat layout wrote it). Moving a
    module between packages changes no key; changing a line of it does. Raises FileNotFoundError for a name that
    matches no module.
    """
    return _digest(tuple(modules), Path(root))


def logical_path(file: Path, root: Path = PACKAGE_DIR) -> str:
    """The flat-layout path of a helpers source file: 'deploy/export.py' -> 'export.py', 'search/engine.py' ->
    'search.py', 'compress/plan.py' stays; a layer package's own ``__init__.py`` keeps its folder."""
    rel = Path(file).relative_to(root)
    if len(rel.parts) == 1 or rel.parts[0] in FLAT_PACKAGES or rel.name == "__init__.py":
        return rel.as_posix()
    return LOGICAL_NAMES.get(rel.stem, rel.stem) + ".py"


def module_file(name: str, root: Path = PACKAGE_DIR) -> Path:
    """The source file of the module whose logical name is ``name`` ('export' or 'export.py'), wherever it lives."""
    key = name if name.endswith(".py") else f"{name}.py"
    for f in Path(root).rglob("*.py"):
        if "__pycache__" not in f.parts and logical_path(f, Path(root)) == key:
            return f
    raise FileNotFoundError(f"no module {name!r} under {root}")


_LAYERED = re.compile(r"\bhelpers\.(?!compress\b)([a-z_]+)\.([a-z0-9_]+)\b")
_FROM_PACKAGE = re.compile(r"^(\s*)from helpers\.(?!compress\b)[a-z_]+ import ([\w, ]+)$")
_FROM_FLAT = re.compile(r"^(\s*)from helpers import ([\w, ]+)$")


def logical_source(text: str, packages: set) -> str:
    """``text`` with every ``helpers`` import in the flat layout's form: ``from helpers.deploy.export import x`` ->
    ``from helpers.export import x``, ``from helpers.core import io, paths`` -> ``from helpers import io, paths``
    (names of one statement split over packages are merged again, sorted, as the flat layout kept them)."""
    def flat(match):
        pkg, mod = match.group(1), match.group(2)
        return f"helpers.{LOGICAL_NAMES.get(mod, mod)}" if pkg in packages else match.group(0)

    out: list[str] = []
    converted = -1  # index in out of the last import converted from a package's form (the next one may merge)
    for line in text.splitlines(keepends=True):
        m = _FROM_PACKAGE.match(line.rstrip("\n"))
        if m and line.split()[1].split(".")[1] in packages:
            indent, names = m.group(1), [LOGICAL_NAMES.get(n.strip(), n.strip()) for n in m.group(2).split(",")]
            prev = _FROM_FLAT.match(out[-1].rstrip("\n")) if converted == len(out) - 1 >= 0 else None
            if prev and prev.group(1) == indent:
                names, out = sorted({*(n.strip() for n in prev.group(2).split(",")), *names}), out[:-1]
            out.append(f"{indent}from helpers import {', '.join(names)}" + line[len(line.rstrip("\n")):])
            converted = len(out) - 1
            continue
        out.append(_LAYERED.sub(flat, line))
    return "".join(out)


@lru_cache(maxsize=None)
def _digest(modules: tuple, root: Path) -> str:
    files = {logical_path(f, root): f for f in root.rglob("*.py") if "__pycache__" not in f.parts}
    packages = {p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()} - set(FLAT_PACKAGES)
    chosen: dict[str, Path] = {}
    for name in modules:
        key = name if name.endswith(".py") or name in (".", *FLAT_PACKAGES) else f"{name}.py"
        hit = {k: f for k, f in files.items() if key == "." or k == key or k.startswith(key.rstrip("/") + "/")}
        if not hit:
            raise FileNotFoundError(f"code_digest: no module {name!r} under {root}")
        chosen.update(hit)
    h = hashlib.sha256()
    for key in sorted(chosen):
        h.update(key.encode())
        h.update(logical_source(chosen[key].read_text(), packages).encode())
    return h.hexdigest()[:12]


def clear_digest_cache() -> None:
    """Forget the digests computed so far (a test that edits a source file, then asks again)."""
    _digest.cache_clear()


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
