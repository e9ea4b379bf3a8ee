"""What a reader gets: the figures, the README's generated sections, the markdown pieces, the book and the
headless browser that reads it.

Layer 10 of the house (``helpers.LAYERS``): its modules import only this package and the
packages below it. Import a module from here (``from helpers.reports import book``); names with a leading
underscore stay inside the package.
"""

__all__ = ['book', 'browser', 'controls_report', 'fit_report', 'markdown', 'plots', 'report', 'table_report']
