"""The compression pool: a registry of methods (each with parameters, an apply and a verify step) and plans."""

from helpers.compress.registry import METHODS, Context, Method, Param  # noqa: F401
from helpers.compress import pruning, lowrank, clustering, quantization, recovery  # noqa: F401,E402  (registers)
