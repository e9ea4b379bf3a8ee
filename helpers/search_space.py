"""The search-space file that 06 writes and 08 reads: a plan template plus the screening settings.

One module writes and reads it, atomically, so 08 never reads a half-written file and never substitutes
a built-in space when 06's file is missing.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from helpers.compress.plan import CompressionPlan
from helpers.io import atomic_path


def write_space(path: str | Path, space: dict) -> Path:
    """Write ``space`` (plan steps, ``screening`` and ``run_record``) as YAML, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(space, sort_keys=False))
    return Path(path)


def read_space(path: str | Path) -> tuple[CompressionPlan, dict, str | None]:
    """(template, screening settings, run record id) from a file :func:`write_space` wrote.

    Raises FileNotFoundError naming the file and what makes it when it is missing.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"search-space file {path} is missing; run notebook 06 first (python -m helpers run "
                                "--only 06) or set use_search_space_from_06 = False to search the built-in template")
    space = yaml.safe_load(path.read_text())
    screening, record = space.pop("screening", {}), space.pop("run_record", None)
    return CompressionPlan.from_dict(space), screening, record
