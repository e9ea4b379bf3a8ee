"""Checks of notebook and profile parameters that more than one notebook shares, each failing in one sentence."""

from __future__ import annotations


def per_dataset(name: str, value, datasets) -> dict:
    """``value`` for each of ``datasets``: a dict is checked to cover them all, a single value is repeated."""
    value = value if isinstance(value, dict) else dict.fromkeys(datasets, value)
    missing = [ds for ds in datasets if ds not in value]
    if missing:
        raise ValueError(f"{name} has no value for dataset {missing[0]!r}; give one per dataset or a single number")
    return value
