"""The run record: where every number comes from (code, packages, data, machine, profile), written once per run.

Every table a notebook saves carries the id of the run record it came from (a ``run_record`` column);
plan records and trial logs carry it as a field. The record itself lies beside the tables in
``results_dir(profile)/run_record.json``. Cache keys mix in :func:`code_digest` of the modules that shape
the cached object, so a code change never silently reuses a stale baseline or artifact.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

from helpers.core import paths
from helpers.core.identity import EXPORT_CODE, code_digest, git_state, machine, package_versions
from helpers.core.io import write_json

def installed_packages() -> dict:
    """Every distribution in the environment: name -> version (the whole install, sorted)."""
    out = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            out[name.lower()] = dist.version
    return dict(sorted(out.items()))


def characterise(threads: int = 1) -> dict:
    """A short machine characterisation: LiteRT latency of one fixed reference model, int8 against fp32.

    The reference is ResNet-18 x0.25 (10 classes, 1x32x32, seeded weights, seeded random calibration),
    exported once per code version under runs/cache/characterisation/; the int8 file is timed against the
    fp32 file in alternating blocks. Returns ``int8_ms``, ``fp32_ms``, ``int8_speedup`` (fp32 / int8, with
    its IQR) so a reader sees at once whether int8 pays on this machine.
    """
    import torch

    from helpers.deploy.export_cache import export_tflite
    from helpers.deploy.latency import measure_tflite_paired
    from helpers.networks.models import build_model

    folder = paths.CACHE / "characterisation" / code_digest("models.py", *EXPORT_CODE)
    files = {m: folder / f"resnet18x0.25-{m}.tflite" for m in ("fp32", "int8")}
    if not all(f.exists() for f in files.values()):
        torch.manual_seed(0)
        model = build_model("resnet18", 10, 1, 0.25).eval()
        gen = torch.Generator().manual_seed(0)
        calib = [torch.rand(1, 1, 32, 32, generator=gen) * 2 - 1 for _ in range(16)]
        for mode, f in files.items():
            export_tflite(model, f, mode, calib if mode == "int8" else None, 32, 1)
    p = measure_tflite_paired(files["int8"], files["fp32"], threads)
    return {"reference_model": "resnet18 x0.25, 1x32x32, seeded weights", "threads": threads,
            "int8_ms": round(p.median_ms, 4), "fp32_ms": round(p.reference_median_ms, 4),
            "int8_speedup": round(1 / p.ratio, 3), "int8_speedup_iqr": round(p.ratio_iqr / p.ratio**2, 3)}


def native_libraries() -> dict:
    """Versions outside pip that decide results: FreeType (glyph pixels) and the Debian font and data packages."""
    import csv

    from helpers.datasets.glyphs import FONT_LIST

    out = {"freetype": None, "debian": {}}
    try:
        from PIL import features

        out["freetype"] = features.version("freetype2")
    except Exception:  # Pillow without FreeType cannot render glyphs at all; the record says so
        pass
    with open(FONT_LIST, newline="") as fh:
        pkgs = sorted({r["package"] for r in csv.DictReader(fh)} | {"dataset-fashion-mnist"})
    try:
        res = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", *pkgs], capture_output=True,
                             text=True, timeout=20)
        out["debian"] = dict(line.split(" ", 1) for line in res.stdout.splitlines() if " " in line)
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def params_digest(params: dict) -> str:
    """A short stable hash of a profile's parameters."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]


def build_record(profile: str, params: dict | None = None, characterisation: bool = True) -> dict:
    """A run record: id, time, git commit and dirty flag, code hash, the whole install, machine,
    characterisation, profile and parameter hash, and the fingerprints of the offline datasets.

    The id is a hash of the code, install, machine, profile and data (not of the time, the parameters or
    the characterisation): results that share an id were produced under the same conditions.
    """
    from helpers.datasets.data import dataset_fingerprints

    rec = {"profile": profile, "git": git_state(), "code": code_digest("."), "python": platform.python_version(),
           "packages": installed_packages(), "native": native_libraries(), "machine": machine(),
           "datasets": dataset_fingerprints()}
    rec["id"] = hashlib.sha256(json.dumps(rec, sort_keys=True, default=str).encode()).hexdigest()[:12]
    rec["params_digest"] = params_digest(params) if params is not None else None
    rec["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    rec["characterisation"] = characterise() if characterisation else None
    return rec


def light_record() -> dict:
    """What a single CLI output carries (no data fingerprints or characterisation): git, code, install, machine."""
    return {"git": git_state(), "code": code_digest("."), "python": platform.python_version(),
            "packages": package_versions(), "machine": machine(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def record_path(profile: str) -> Path:
    """Where the run record of ``profile`` on this machine lives (beside its result tables)."""
    return paths.results_dir(profile, machine()["id"]) / "run_record.json"


def command_record(profile: str, folder: Path | None = None) -> dict:
    """The run record of a command that adds tables beside a chain's (``controls``): kept as
    ``run_records/<id>.json`` in the results folder (or in ``folder``: a ``search`` keeps it beside its log, away
    from the committed results), so the chain's ``run_record.json`` is never replaced by it; reused while code,
    install, machine and data are the same (characterised once)."""
    key = (profile, "command", str(folder))
    if key in _CURRENT:
        return _CURRENT[key]
    fresh = build_record(profile, None, characterisation=False)
    path = (Path(folder) if folder is not None else record_path(profile).parent / "run_records") / f"{fresh['id']}.json"
    if path.exists():
        _CURRENT[key] = json.loads(path.read_text())
        return _CURRENT[key]
    fresh["characterisation"] = characterise()
    write_json(path, fresh)
    _CURRENT[key] = fresh
    return fresh


def current_record(profile: str, params: dict | None = None) -> dict:
    """The run record of ``profile`` for the code, install, machine and data in use now.

    Reuses ``record_path(profile)`` when its id matches (and, given ``params``, its parameter hash);
    otherwise builds and characterises a new record and writes it there, so a stale record is never
    pointed to. The chain runner calls this with the profile's parameters before the first notebook.
    """
    key = (profile, params_digest(params) if params is not None else None)
    if key in _CURRENT:  # one record per process (a notebook, a CLI call): built and checked once
        return _CURRENT[key]
    fresh = build_record(profile, params, characterisation=False)
    path = record_path(profile)
    try:
        old = json.loads(path.read_text())
        if (old.get("id") == fresh["id"] and old.get("characterisation")
                and (params is None or old.get("params_digest") == fresh["params_digest"])):
            _CURRENT[key] = old
            return old
    except (OSError, json.JSONDecodeError):
        pass
    fresh["characterisation"] = characterise()
    write_json(path, fresh)
    _CURRENT[key] = fresh
    return fresh


_CURRENT: dict = {}


def summary(rec: dict) -> str:
    """One line a reader can quote: machine, characterisation, commit."""
    m, c, g = rec["machine"], rec.get("characterisation") or {}, rec["git"]
    speed = f"int8 {c['int8_ms']} ms vs fp32 {c['fp32_ms']} ms ({c['int8_speedup']}x)" if c else "not characterised"
    commit = (g["commit"] or "no git")[:10] + (" (dirty)" if g.get("dirty") else "")
    return f"{m['cpu']}, {m['cores']} cores, flags {' '.join(m['flags']) or 'none'}; reference {speed}; commit {commit}"
