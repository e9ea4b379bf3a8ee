"""The bottom of the house, importing nothing else of it: one place for paths, atomic writes, what identifies a
result (machine, versions, code digests), library-noise control, statistics, the accuracy bar as counts,
training budgets, benchmark reference rows and migrations of committed results.

Layer 1 of the house (``helpers.LAYERS``): its modules import only this package and the
packages below it. Import a module from here (``from helpers.core import bars``); names with a leading
underscore stay inside the package.
"""

__all__ = ['bars', 'benchmarks', 'budget', 'identity', 'io', 'migrations', 'moved', 'paths', 'quiet', 'stats']
