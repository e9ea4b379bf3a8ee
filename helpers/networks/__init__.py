"""The networks and how they are trained: small-input architectures, torchvision's zoo, training and
evaluation, checkpoints, cached baselines, and the profiles (``params``) that say how to train them.

Layer 3 of the house (``helpers.LAYERS``): its modules import only this package and the
packages below it. Import a module from here (``from helpers.networks import baselines``); names with a leading
underscore stay inside the package.
"""

__all__ = ['baselines', 'checkpoints', 'family', 'models', 'params', 'train', 'zoo']
