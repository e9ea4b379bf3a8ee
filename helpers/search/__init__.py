"""One plan end to end (compress, export, verify, time, score) and the search over plans: the objective, the
proposals, the engine, the trial, the trial store (every file name of a study or table) and Dask.

Layer 7 of the house (``helpers.LAYERS``): its modules import only this package and the
packages below it. Import a module from here (``from helpers.search import cluster``); names with a leading
underscore stay inside the package.
"""

__all__ = ['cluster', 'engine', 'objective', 'pipeline', 'proposals', 'references', 'store', 'trial']


def __getattr__(name: str):
    """``helpers.search`` was the engine's module in the flat layout: its public names still resolve to
    ``helpers.search.engine`` (``from helpers.search import run_search`` works as before)."""
    import importlib

    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    engine = importlib.import_module(f"{__name__}.engine")
    if not name.startswith("_") and hasattr(engine, name):
        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
