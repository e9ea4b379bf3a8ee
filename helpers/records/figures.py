"""The one figure writer (PNG and PDF into the profile's figure folder) and the one table writer."""

from __future__ import annotations

from pathlib import Path

from helpers.core import paths
from helpers.core.io import atomic_path


def save_fig(fig, name: str, profile: str, dpi: int = 150) -> Path:
    """Save ``fig`` as ``<name>.png`` and ``<name>.pdf`` under figures/<profile>/ (runs/smoke/figures for smoke).

    Returns the PNG path. Each file is written to a temporary name first, then renamed, and names the
    run record it belongs to in its metadata (PNG ``Comment``, PDF ``Subject``).
    """
    from helpers.records.provenance import current_record

    note = f"run record {current_record(profile)['id']} ({profile})"
    out = paths.figures_dir(profile)
    out.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    for ext, meta in (("png", {"Comment": note}), ("pdf", {"Subject": note})):
        with atomic_path(out / f"{name}.{ext}") as tmp:
            fig.savefig(tmp, dpi=dpi, format=ext, metadata=meta)
    return out / f"{name}.png"


def save_table(df, name: str, profile: str, command: bool = False) -> Path:
    """Write ``df`` as ``<name>.csv`` into the profile's results folder for this machine, atomically.

    Every row carries ``run_record``: the id of the run record (code, install, machine and its
    characterisation, data) in ``run_record.json`` beside it, or with ``command`` (a command that adds tables
    beside the chain's, such as ``controls``) the command's own record in ``run_records/``. Returns the CSV path.
    """
    from helpers.records.provenance import command_record, current_record, record_path

    rec = command_record(profile) if command else current_record(profile)
    path = record_path(profile).parent / f"{name}.csv"
    with atomic_path(path) as tmp:
        df.assign(run_record=rec["id"]).to_csv(tmp, index=False)
    return path


def load_table(name: str, profile: str):
    """The table ``<name>.csv`` that :func:`save_table` wrote for ``profile`` on this machine, or None if absent.

    ``run_record`` is read as text: a record id is 12 hex digits, and one made only of decimal digits (about 1 in 300)
    would otherwise come back as an integer that equals no record's id."""
    import pandas as pd

    from helpers.records.provenance import record_path

    path = record_path(profile).parent / f"{name}.csv"
    return pd.read_csv(path, dtype={"run_record": str}) if path.exists() else None
