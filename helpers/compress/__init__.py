"""The compression pool: a registry of methods (each with parameters, an apply and a verify step) and plans.

Layer 5 of the house (``helpers.LAYERS``): its modules import only this package and the packages below it (the
int8 recipe and the .tflite reader of ``deploy`` verify what a method did to the deployed model).
"""

from helpers.compress.registry import METHODS, Context, Method, Param  # noqa: F401
from helpers.compress import pruning, lowrank, clustering, quantization, recovery  # noqa: F401,E402  (registers)

__all__ = ["METHODS", "Context", "Method", "Param", "method_table", "clustering", "lowrank", "plan", "pruning",
           "quantization", "recovery", "registry"]


def method_table():
    """Every registered method as a table: name, category, export mode, summary and its parameters (with ranges)."""
    import pandas as pd

    def describe(p):
        rng = f" in [{p.low}, {p.high}]" if p.low is not None or p.high is not None else ""
        opts = f" one of {', '.join(map(str, p.choices))}" if p.choices else ""
        return f"{p.kind}{rng}{opts}, default {p.default!r}"

    return pd.DataFrame([{"method": m.name, "category": m.category, "export_mode": m.export_mode or "-",
                          "summary": m.summary,
                          "parameters": "; ".join(f"{k}: {describe(p)}" for k, p in m.params.items()) or "-"}
                         for m in METHODS.values()])
