"""What the Edge TPU compiler maps, kept as data with the source of every rule (see README, "Edge TPU").

``OPS`` is Coral's table of supported operations for the current compiler (v16) with each op's documented
limit, plus the ops and behaviours that Coral's own compiled models show (their ``edgetpu-custom-op`` holds
what the compiler mapped; every op left outside runs on the CPU). :func:`op_problem` applies the table and
the tensor rules to one operator; ``helpers.deploy.edgetpu.placement`` partitions the graph.

Written by hand because no maintained library models the Edge TPU compiler (it is closed source); every
rule below names where it comes from, and a real compiler run (``edgetpu_compiler`` on PATH) overrides it.
"""

from __future__ import annotations

import math

COMPILER_VERSION = "16.0 (Coral's supported-operations table for the current compiler, plus the behaviour of " \
                   "Coral's published compiled models)"

DOCS = "coral.ai/docs/edgetpu/models-intro/#supported-operations"
DOCS_REQ = "coral.ai/docs/edgetpu/models-intro/#model-requirements"
PUBLISHED = "Coral's published *_edgetpu.tflite models (ops inside edgetpu-custom-op), shared/edgetpu.md"

#: op -> (documented limit, "" when none; source)
OPS: dict[str, tuple[str, str]] = {
    "ADD": ("", DOCS), "SUB": ("", DOCS), "MUL": ("", DOCS), "MAXIMUM": ("", DOCS), "MINIMUM": ("", DOCS),
    "LOGISTIC": ("", DOCS), "TANH": ("", DOCS), "RELU": ("", DOCS), "RELU6": ("", DOCS), "RELU_N1_TO_1": ("", DOCS),
    "AVERAGE_POOL_2D": ("no fused activation function", DOCS),
    "MAX_POOL_2D": ("no fused activation function", DOCS),
    "CONCATENATION": ("no fused activation function; a constant input only as one of exactly 2 inputs", DOCS),
    "CONV_2D": ("the same dilation in x and y", DOCS),
    "DEPTHWISE_CONV_2D": ("the same dilation in x and y", DOCS),
    "TRANSPOSE_CONV": ("", DOCS),
    "FULLY_CONNECTED": ("default weight format only; one-dimensional output", DOCS),
    "EXPAND_DIMS": ("", DOCS), "L2_NORMALIZATION": ("", DOCS), "RESHAPE": ("", DOCS), "SLICE": ("", DOCS),
    "SPACE_TO_DEPTH": ("", DOCS), "SQUEEZE": ("", DOCS), "TRANSPOSE": ("", DOCS), "RSQRT": ("", DOCS),
    "SQUARED_DIFFERENCE": ("", DOCS),
    "SPLIT": ("no splitting in the batch dimension", DOCS),
    "PACK": ("no packing in the batch dimension", DOCS),
    "PAD": ("no padding in the batch dimension", DOCS),
    "MEAN": ("no reduction in the batch dimension; a reduction over channels needs a multiple of 4 channels", DOCS),
    "SUM": ("no reduction in the batch dimension", DOCS),
    "REDUCE_MAX": ("no reduction in the batch dimension", DOCS),
    "REDUCE_MIN": ("no reduction in the batch dimension", DOCS),
    "PRELU": ("alpha one-dimensional (only the innermost dimension larger than 1)", DOCS),
    "RESIZE_BILINEAR": ("3-D input/output; a large upsampling factor stays on the CPU (precision)", DOCS),
    "RESIZE_NEAREST_NEIGHBOR": ("3-D input/output; a large upsampling factor stays on the CPU (precision)", DOCS),
    "SOFTMAX": ("one-dimensional input of at most 16000 elements", DOCS),
    "STRIDED_SLICE": ("all strides 1, ellipsis mask 0, new-axis mask 0", DOCS),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": ("unidirectional only", DOCS),
    "LSTM": ("unidirectional only", DOCS),
    "QUANTIZE": ("integer to integer (requantisation); from float it stays on the CPU", f"{DOCS}; {PUBLISHED}"),
    "TILE": ("", PUBLISHED),
}

#: tensor types an op on the Edge TPU may read and write; INT16 from the integer LSTM-style models Coral
#: compiled whole, INT32/INT64 only as constants (biases, shapes, axes, paddings).
ACTIVATION_TYPES = {"INT8", "UINT8", "INT16"}
CONSTANT_TYPES = ACTIVATION_TYPES | {"INT32", "INT64"}
SOFTMAX_MAX_ELEMENTS = 16000  # DOCS
#: largest spatial upsampling factor of a resize that stays mapped. The documentation says only "depending on
#: input/output size"; Coral's compiled segmentation model left a 1x1 -> 33x33 bilinear resize (factor 33) on
#: the CPU while 2x decoder upsamples map. Uncertain between those: 16 is this report's line.
RESIZE_MAX_FACTOR = 16

PARTITIONING = (
    "one Edge TPU subgraph: the graph is split as TensorFlow Lite's delegate partitioner does (ops taken in "
    "dependency order, alternating runs of supported and unsupported ops); the first run of supported ops goes "
    "to the Edge TPU and everything else runs on the CPU. So unsupported ops at the input stay on the CPU and "
    "the network after them is mapped; an unsupported op in the middle sends itself and every op that can only "
    f"run after it to the CPU; a float tail runs on the CPU ({DOCS_REQ}; {PUBLISHED})")


def _rank_axes(axes, rank: int) -> set[int]:
    return {a % rank for a in axes} if rank else set()


def op_problem(op) -> tuple[str, str] | None:
    """Why ``op`` (an ``inspection.OpInfo``) stays on the CPU, as (kind, sentence); None when the rules map it.

    Kinds: ``not supported``, ``float tensor``, ``tensor type``, ``dynamic shape``, ``shape/limit``.
    """
    if op.op not in OPS:
        return "not supported", f"{op.op} is not in the Edge TPU's supported operations"
    for t in op.inputs + op.outputs:
        if t["dtype"].startswith(("FLOAT", "BFLOAT")):
            return "float tensor", f"tensor {t['name'] or '?'} is {t['dtype']}: the Edge TPU runs 8-bit integer ops"
        allowed = CONSTANT_TYPES if t["constant"] else ACTIVATION_TYPES
        if t["dtype"] not in allowed:
            return "tensor type", f"tensor {t['name'] or '?'} is {t['dtype']}{'' if t['constant'] else ' (not constant)'}"
        if t.get("dynamic"):
            return "dynamic shape", f"tensor {t['name'] or '?'} has a dynamic shape; sizes must be fixed at compile time"
        shape = t["shape"]
        if not t["constant"] and len(shape) > 3 and any(d != 1 for d in shape[:-3]):
            return "shape/limit", f"tensor shape {shape}: only the 3 innermost dimensions may exceed 1"
    limit = _limit(op)
    return ("shape/limit", f"{op.op}: {limit}") if limit else None


def _value(op, k: int):
    return op.inputs[k].get("value") if len(op.inputs) > k else None


def _limit(op) -> str | None:
    """The op's documented limit it breaks, or None."""
    o, name = op.options, op.op
    if name in ("AVERAGE_POOL_2D", "MAX_POOL_2D", "CONCATENATION") and o.get("fusedActivationFunction", 0):
        return "fused activation function"
    if name == "CONCATENATION" and any(t["constant"] for t in op.inputs) and len(op.inputs) != 2:
        return "a constant input among more than 2 inputs"
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D") and o.get("dilationWFactor", 1) != o.get("dilationHFactor", 1):
        return "different dilation in x and y"
    if name == "FULLY_CONNECTED":
        if o.get("weightsFormat", 0):
            return "a non-default weight format"
        if sum(d != 1 for d in op.outputs[0]["shape"]) > 1:
            return "output is not one-dimensional"
    rank = len(op.inputs[0]["shape"]) if op.inputs else 0
    if name in ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN") and _value(op, 1) is not None:
        axes = _rank_axes(_value(op, 1), rank)
        if 0 in axes and rank > 1:
            return "reduction in the batch dimension"
        if name == "MEAN" and rank - 1 in axes and op.inputs[0]["shape"][-1] % 4:
            return f"reduction over {op.inputs[0]['shape'][-1]} channels (not a multiple of 4)"
    if name == "SPLIT" and _value(op, 0) is not None and rank and _rank_axes(_value(op, 0), len(op.inputs[1]["shape"])) == {0}:
        return "splitting in the batch dimension"
    if name == "PACK" and o.get("axis", 1) == 0:
        return "packing in the batch dimension"
    if name == "PAD" and _value(op, 1) is not None and len(_value(op, 1)) >= 2 and any(_value(op, 1)[:2]):
        return "padding in the batch dimension"
    if name == "PRELU" and len(op.inputs) > 1 and sum(d != 1 for d in op.inputs[1]["shape"][:-1]):
        return "alpha is not one-dimensional"
    if name == "SOFTMAX":
        shape = op.inputs[0]["shape"]
        if sum(d != 1 for d in shape) > 1 or math.prod(shape) > SOFTMAX_MAX_ELEMENTS:
            return f"input {shape} is not one-dimensional or exceeds {SOFTMAX_MAX_ELEMENTS} elements"
    if name == "STRIDED_SLICE":
        if _value(op, 3) is not None and any(s != 1 for s in _value(op, 3)):
            return f"strides {_value(op, 3)} (all must be 1)"
        if o.get("ellipsisMask", 0) or o.get("newAxisMask", 0):
            return "an ellipsis or new-axis mask"
    if name in ("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"):
        ins, outs = op.inputs[0]["shape"], op.outputs[0]["shape"]
        if len(ins) == 4 and len(outs) == 4:
            factor = max(outs[1] / max(ins[1], 1), outs[2] / max(ins[2], 1))
            if factor > RESIZE_MAX_FACTOR:
                return (f"upsampling {ins[1]}x{ins[2]} to {outs[1]}x{outs[2]} (factor {factor:.0f} > "
                        f"{RESIZE_MAX_FACTOR}) stays on the CPU for precision")
    return None
