"""The search-space file that 06 writes and 08 reads: a plan template plus the screening settings.

One module writes and reads it, atomically, so 08 never reads a half-written file and never substitutes
a built-in space when 06's file is missing.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from helpers.compress.plan import CompressionPlan
from helpers.core.io import write_text

#: What 08 searches when told not to use 06's file (``use_search_space_from_06 = False``): said, never silent.
BUILT_IN_TEMPLATE = {"steps": [
    {"method": "structured", "ratio": {"low": 0.25, "high": 0.6}, "stage_slope": {"low": 0.0, "high": 0.35},
     "importance": "lamp", "round_to": 8},
    {"method": "finetune", "epochs": 0.25, "lr": 0.05, "batch_size": 256}, {"method": "ptq", "calibration": 64}]}


def write_space(path: str | Path, space: dict) -> Path:
    """Write ``space`` (plan steps, ``screening`` and ``run_record``) as YAML, atomically."""
    return write_text(path, yaml.safe_dump(space, sort_keys=False))


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


def template_for_08(path: str | Path, use_file: bool, log=print) -> tuple[CompressionPlan, dict]:
    """(template, screening settings) for 08: 06's file, or, when ``use_file`` is False, the built-in template
    (said in one line). A missing file raises FileNotFoundError; nothing is substituted silently."""
    if use_file:
        template, screening, _ = read_space(path)
        return template, screening
    log("searching the built-in template (use_search_space_from_06 is False)")
    return CompressionPlan.from_dict(BUILT_IN_TEMPLATE), {}
