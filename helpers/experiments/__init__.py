"""Experiments built on the search: the ``search`` command on a real baseline, the controls, Scratch-B, the
O8 study, 06's selection and search space, the tabular benchmark and its replay, and the re-timing of every
committed network on this machine; and `fit`, the fastest deployable model of a user's network and data.

Layer 8 of the house (``helpers.LAYERS``): its modules import only this package and the
packages below it. Import a module from here (``from helpers.experiments import controls``); names with a leading
underscore stay inside the package.
"""

__all__ = ['controls', 'experiment', 'fit', 'portable', 'replay', 'retime', 'scratch_b', 'search_space', 'selection', 'study', 'study_analysis',
           'study_config', 'table', 'table_config']
