"""Latency-aware compression workbench: datasets, models, export, measurement and search.

The package is a house of layer packages, each importing only itself and the layers below it (``LAYERS``, bottom
first; ``tests/test_layers.py`` enforces the order). The chain runner (``runner``) and the CLI (``cli``) sit on top.
"""

from helpers.core.quiet import quiet as _quiet
from helpers.core.moved import install as _install_moved

__version__ = "0.1.0"
#: The layer packages, bottom first: a module imports only its own package and those before it.
LAYERS = ("core", "datasets", "networks", "deploy", "compress", "records", "search", "experiments", "analysis",
          "reports")
__all__ = [*LAYERS, "runner", "cli", "LAYERS"]
_quiet()
_install_moved()
