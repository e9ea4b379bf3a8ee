"""The one figure writer: PNG and PDF into the profile's figure folder."""

from __future__ import annotations

from pathlib import Path

from helpers import paths
from helpers.io import atomic_path


def save_fig(fig, name: str, profile: str, dpi: int = 150) -> Path:
    """Save ``fig`` as ``<name>.png`` and ``<name>.pdf`` under figures/<profile>/ (runs/smoke/figures for smoke).

    Returns the PNG path. Each file is written to a temporary name first, then renamed.
    """
    out = paths.figures_dir(profile)
    out.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    for ext in ("png", "pdf"):
        with atomic_path(out / f"{name}.{ext}") as tmp:
            fig.savefig(tmp, dpi=dpi, format=ext)
    return out / f"{name}.png"
