"""One place for every folder the workbench reads or writes, derived from the package location."""

from __future__ import annotations

import os
from pathlib import Path

#: Repository root. ``WORKBENCH_ROOT`` overrides it for a non-editable install.
ROOT = Path(os.environ.get("WORKBENCH_ROOT", Path(__file__).resolve().parents[2]))
DATA = ROOT / "data"
NOTEBOOKS = ROOT / "notebooks"
PARAMS = ROOT / "params"
#: Everything a run writes and nobody commits. ``WORKBENCH_RUNS`` moves it (each test worker has its own).
RUNS = Path(os.environ.get("WORKBENCH_RUNS", ROOT / "runs"))
FIGURES = ROOT / "figures"
RESULTS = ROOT / "results"
DOCS = ROOT / "docs"  # the pages the README points to (docs/results.md is generated)
README = ROOT / "README.md"
#: Trained checkpoints, keyed by their config: ``WORKBENCH_CHECKPOINTS`` shares one folder between runs folders.
CHECKPOINTS = Path(os.environ.get("WORKBENCH_CHECKPOINTS", RUNS / "checkpoints"))
ARTIFACTS = RUNS / "artifacts"
#: Exported .tflite files by content (helpers.deploy.export_cache): ``WORKBENCH_EXPORT_CACHE`` moves it (the test
#: workers share one) and ``off`` turns it off.
EXPORT_CACHE = (None if os.environ.get("WORKBENCH_EXPORT_CACHE") == "off"
                else Path(os.environ.get("WORKBENCH_EXPORT_CACHE", RUNS / "export-cache")))
CACHE = RUNS / "cache"
SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def portable(path: str | os.PathLike) -> str:
    """``path`` as records and committed tables hold it: relative to the repository when it lies inside it (so
    results move between machines and checkouts), else absolute."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(ROOT.resolve()))
    except ValueError:
        return str(p)


def resolve(path: str | os.PathLike) -> Path:
    """A path read from a record or table: a relative one is the repository's (see :func:`portable`)."""
    p = Path(path)
    return p if p.is_absolute() else ROOT / p


def figures_dir(profile: str) -> Path:
    """Folder for a profile's figures: smoke runs stay under runs/ so they never overwrite results."""
    if profile == "smoke":
        return RUNS / "smoke" / "figures"
    return FIGURES / profile


def run_dir(profile: str) -> Path:
    """Folder for a profile's executed notebooks, plan artifacts and search logs (never committed)."""
    return RUNS / profile


def results_dir(profile: str, machine_id: str) -> Path:
    """Folder for a profile's result tables and run record, one per machine (smoke: under runs/, never committed).

    A study records under the profile ``study/<name>`` (results/study/<name>/<machine>/, committed) or, for a
    smoke study, ``smoke/study/<name>`` (runs/smoke/study/<name>/<machine>/).
    """
    if profile == "smoke":
        return RUNS / "smoke" / "results" / machine_id
    if profile.startswith("smoke/"):
        return RUNS / profile / machine_id
    return RESULTS / profile / machine_id


def retime_dir(machine_id: str) -> Path:
    """``results/retime/<machine>/``: the latencies this machine re-timed for committed networks (``retime``) and its
    portability checks of other machines' accuracy (``controls --stage portable``)."""
    return RESULTS / "retime" / machine_id
