"""One-off migrations of committed result files, kept with their tests so that they can be re-run and checked.

``relative_paths`` (2026-12-02): results written before records held repository-relative paths carry the absolute
paths of the machine that ran them (``/work/wt/runs/...``); they become ``runs/...`` so a study resumes and reports
from any checkout (``paths.resolve`` reads them back).
"""

from __future__ import annotations

import re
from pathlib import Path

TEXT_SUFFIXES = (".json", ".jsonl", ".csv")
#: an absolute path that leads into one of the repository's own folders: the prefix up to that folder is dropped
_ROOTED = re.compile(r"(?:(?<=[\s\"',\[(])|^)/(?:[A-Za-z0-9_.+-]+/)+?(?=(?:runs|results|data)/)", re.M)
#: any absolute path (two or more segments) at the start of a field
ABSOLUTE = re.compile(r"(?:(?<=[\s\"',\[(])|^)/[A-Za-z0-9_.+-]+/[A-Za-z0-9_.+-]+", re.M)


def relative_paths(root: str | Path) -> list[Path]:
    """Rewrite every text result file under ``root`` whose absolute paths lead into runs/, results/ or data/ to the
    repository-relative form, atomically, file by file; returns the files changed. Running it again changes nothing."""
    from helpers.core.io import atomic_path

    changed = []
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES):
        text = path.read_text()
        new = _ROOTED.sub("", text)
        if new != text:
            with atomic_path(path) as tmp:
                tmp.write_text(new)
            changed.append(path)
    return changed


def absolute_paths(root: str | Path) -> list[str]:
    """'file: path' for every absolute path left in the text result files under ``root`` (a test wants none)."""
    found = []
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES):
        found += [f"{path}: {m.group(0)}" for m in ABSOLUTE.finditer(path.read_text())]
    return found
