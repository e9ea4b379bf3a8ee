"""Latency-aware compression workbench: datasets, models, export, measurement and search."""

from helpers.quiet import quiet as _quiet

__version__ = "0.1.0"
_quiet()
