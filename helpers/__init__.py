"""Latency-aware compression workbench: datasets, models, export, measurement and search."""

__version__ = "0.1.0"
