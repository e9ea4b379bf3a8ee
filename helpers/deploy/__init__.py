"""From a trained network to a measured artifact: the int8 recipe, export to TFLite, cached artifacts, reading
a .tflite, the LiteRT runtime, the one latency harness, per-layer latency, and the Edge TPU's rules and report.

Layer 4 of the house (``helpers.LAYERS``): its modules import only this package and the
packages below it. Import a module from here (``from helpers.deploy import artifacts``); names with a leading
underscore stay inside the package.
"""

__all__ = ['artifacts', 'deployment', 'edgetpu', 'edgetpu_rules', 'export', 'export_cache', 'inspection', 'int8_recipe', 'latency', 'layers',
           'lut', 'runtime']
