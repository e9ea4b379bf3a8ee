"""Old import paths of the flat layout (before 2026-12-06), answered in one sentence naming the new place.

Executed chapters and notebooks written before the house became layer packages import ``helpers.<module>``; such an
import now fails with ``ModuleNotFoundError: helpers.table moved to helpers.experiments.table; ...`` instead of a bare
"No module named".
"""

from __future__ import annotations

import importlib.abc
import sys

#: Module of the flat layout -> its place now.
MOVED = {
    **{m: f"core.{m}" for m in ("paths", "io", "identity", "quiet", "migrations", "benchmarks", "stats", "bars",
                                "budget")},
    **{m: f"datasets.{m}" for m in ("data", "glyphs", "imagefolder")},
    **{m: f"networks.{m}" for m in ("models", "zoo", "train", "checkpoints", "baselines", "params")},
    **{m: f"deploy.{m}" for m in ("int8_recipe", "export", "artifacts", "inspection", "runtime", "latency", "layers",
                                  "lut", "edgetpu", "edgetpu_rules", "deployment")},
    **{m: f"records.{m}" for m in ("provenance", "figures", "chapters")},
    **{m: f"search.{m}" for m in ("pipeline", "references", "objective", "trial", "proposals", "cluster")},
    "search": "search.engine", "trials": "search.store",
    **{m: f"experiments.{m}" for m in ("experiment", "controls", "scratch_b", "study", "study_config",
                                       "study_analysis", "search_space", "selection", "table_config", "table",
                                       "replay")},
    **{m: f"analysis.{m}" for m in ("curve", "verdicts", "findings", "final_report", "table_analysis")},
    "tables": "analysis.plan_rows",
    **{m: f"reports.{m}" for m in ("plots", "report", "controls_report", "markdown", "table_report", "book",
                                   "browser")},
}


def sentence(old: str) -> str:
    """The one sentence for an import of ``helpers.<old>``."""
    new = MOVED[old]
    return (f"helpers.{old} moved to helpers.{new}; write 'from helpers.{new.rsplit('.', 1)[0]} import "
            f"{new.rsplit('.', 1)[1]}' or 'from helpers.{new} import ...' (the layers are listed in helpers.LAYERS)")


class _Finder(importlib.abc.MetaPathFinder):
    """Answers ``import helpers.<old>`` (and ``from helpers.<old> import x``) for a module of the flat layout."""

    def find_spec(self, fullname, path=None, target=None):
        parts = fullname.split(".")
        if len(parts) == 2 and parts[0] == "helpers" and parts[1] in MOVED and parts[1] not in _PACKAGES:
            raise ModuleNotFoundError(sentence(parts[1]))  # no name: a from-import must not swallow it
        return None


#: names that are packages now as well as old modules: their import finds the package (``helpers.search``)
_PACKAGES = {"search"}


def install() -> None:
    """Put the finder last on ``sys.meta_path`` (after the real finders, so existing modules import as usual)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
