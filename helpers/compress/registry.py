"""Method registry: name -> category, typed parameters with ranges and meaning, apply and verify steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

@dataclass(frozen=True)
class Param:
    """One parameter: ``kind`` is 'float', 'int', 'bool', 'choice' or 'dict'; ``low``/``high`` bound numbers."""

    kind: str
    default: Any
    meaning: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()

    def check(self, value, where: str) -> Any:
        """Return ``value`` coerced to the parameter's type; ValueError naming ``where`` when it is invalid."""
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{where}: expected true or false, got {value!r}")
            return value
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"{where}: {value!r} is not one of {', '.join(map(str, self.choices))}")
            return value
        if self.kind == "dict":
            if not isinstance(value, dict):
                raise ValueError(f"{where}: expected a mapping, got {type(value).__name__}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        if self.kind == "int":
            if float(value) != int(value):
                raise ValueError(f"{where}: expected an integer, got {value!r}")
            value = int(value)
        else:
            value = float(value)
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise ValueError(f"{where}: {value!r} is outside [{self.low}, {self.high}]")
        return value


@dataclass
class Context:
    """What a method may need besides the model: data, the uncompressed teacher, input shape, seed."""

    train_ds: Any = None
    val_ds: Any = None
    teacher: nn.Module | None = None
    input_size: int = 32
    in_channels: int = 1
    seed: int = 0
    progress: bool = False
    split_images: int | None = None  # images in the whole training split (the unit of a training budget)
    state: dict = field(default_factory=dict)  # what later steps or the exporter need (e.g. QAT module)

    def example(self, n: int = 1) -> torch.Tensor:
        if self.train_ds is not None:
            return self.train_ds.images[:n]
        return torch.randn(n, self.in_channels, self.input_size, self.input_size)


@dataclass(frozen=True)
class Method:
    """A compression method: apply(model, params, ctx) -> model; verify(before, after, params, ctx, artifact).

    ``export_mode`` is set on quantisation methods: the artifact's mode when the method is a plan's last step.
    """

    name: str
    category: str
    params: dict[str, Param]
    apply: Callable
    verify: Callable
    summary: str  # one line for listings (``method_table``, shown in the O7 notebook)
    export_mode: str | None = None

    def resolve(self, given: dict, where: str) -> dict:
        """Defaults filled in and every value checked; ValueError names ``where`` and the field."""
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            raise ValueError(f"{where}: unknown parameter {unknown[0]!r} for {self.name}; "
                             f"known: {', '.join(self.params) or 'none'}")
        return {k: p.check(given.get(k, p.default), f"{where}, field '{k}'") for k, p in self.params.items()}


METHODS: dict[str, Method] = {}


def register(name: str, category: str, params: dict[str, Param], summary: str, export_mode: str | None = None):
    """Decorator for a pair (apply, verify): ``@register(...)`` on a function returning them."""
    def wrap(fn):
        apply, verify = fn()
        METHODS[name] = Method(name, category, params, apply, verify, summary, export_mode)
        return fn
    return wrap


def check(name: str, expected, measured, passed: bool | None, where: str) -> dict:
    """One verification row; ``passed=None`` means the effect cannot be seen there (never counted as passed)."""
    status = "not visible" if passed is None else ("pass" if passed else "fail")
    return {"check": name, "expected": expected, "measured": measured, "status": status, "where": where}


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Convolutions and linear layers, in order, with their names."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
