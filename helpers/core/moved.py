"""Old import paths of the flat layout (before 2026-12-06), answered in one sentence naming the new place.

Executed chapters and notebooks written before the house became layer packages import ``helpers.<module>``; such an
import now fails with ``ModuleNotFoundError: helpers.table moved to helpers.experiments.table; ...`` instead of a bare
"No module named".
"""

from __future__ import annotations

import importlib.abc
import sys
from functools import lru_cache


@lru_cache(maxsize=None)
def moved() -> dict[str, str]:
    """Module of the flat layout -> its place now ('table' -> 'experiments.table'), read from the tree itself: every
    module of a layer package under its logical name (``identity.LOGICAL_NAMES`` for the three renamed ones)."""
    from helpers.core.identity import FLAT_PACKAGES, LOGICAL_NAMES, PACKAGE_DIR

    out = {}
    for f in sorted(PACKAGE_DIR.glob("*/*.py")):
        if f.stem != "__init__" and f.parent.name not in FLAT_PACKAGES:
            out[LOGICAL_NAMES.get(f.stem, f.stem)] = f"{f.parent.name}.{f.stem}"
    return out


def sentence(old: str) -> str:
    """The one sentence for an import of ``helpers.<old>``."""
    new = moved()[old]
    return (f"helpers.{old} moved to helpers.{new}; write 'from helpers.{new.rsplit('.', 1)[0]} import "
            f"{new.rsplit('.', 1)[1]}' or 'from helpers.{new} import ...' (the layers are listed in helpers.LAYERS)")


class _Finder(importlib.abc.MetaPathFinder):
    """Answers ``import helpers.<old>`` (and ``from helpers.<old> import x``) for a module of the flat layout."""

    def find_spec(self, fullname, path=None, target=None):
        parts = fullname.split(".")
        if len(parts) == 2 and parts[0] == "helpers" and parts[1] not in _PACKAGES and parts[1] in moved():
            raise ModuleNotFoundError(sentence(parts[1]))  # no name: a from-import must not swallow it
        return None


#: names that are packages now as well as old modules: their import finds the package (``helpers.search``)
_PACKAGES = {"search"}


def install() -> None:
    """Put the finder last on ``sys.meta_path`` (after the real finders, so existing modules import as usual)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
