"""Datasets by name and split: Fashion-MNIST, the rendered ``glyphs`` set, CIFAR and a user's image folder.

Layer 2 of the house (``helpers.LAYERS``): its modules import only this package and the
packages below it. Import a module from here (``from helpers.datasets import data``); names with a leading
underscore stay inside the package.
"""

__all__ = ['data', 'glyphs', 'imagefolder']
