"""What a run records: the run record (provenance), the one figure and table writer, and the executed
chapters.

Layer 6 of the house (``helpers.LAYERS``): its modules import only this package and the
packages below it. Import a module from here (``from helpers.records import chapters``); names with a leading
underscore stay inside the package.
"""

__all__ = ['chapters', 'figures', 'provenance']
