"""The pieces the README's generated sections are built from: a committed table read back, a markdown table, an
accuracy with its interval (shared by ``report`` and ``controls_report``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def table(folder: Path, name: str) -> pd.DataFrame | None:
    """``<folder>/<name>.csv``, or None when that table was not written."""
    path = folder / f"{name}.csv"
    return pd.read_csv(path) if path.exists() else None


def md(caption: str, header: list[str], rows: list[str]) -> list[str]:
    """A caption, a markdown table with ``header`` and the ready-made ``rows`` (lines), and a blank line."""
    return [caption, "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header), *rows, ""]


def ci(acc, lo, hi) -> str:
    """An accuracy and its interval (fractions) in percent."""
    return f"{100 * acc:.2f}% [{100 * lo:.2f}, {100 * hi:.2f}]"
