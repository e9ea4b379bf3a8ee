"""Hand-written TensorFlow Lite flatbuffers for the Edge TPU placement tests (schema object API of ai-edge-litert).

``build(path, tensors, ops, inputs, outputs)``: ``tensors`` maps a name to (dtype, shape) or
(dtype, shape, constant values); ``ops`` is a list of (OP, [input names], [output names]) or
(OP, inputs, outputs, {option: value}); names of custom ops are written ``CUSTOM:<code>``.
"""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as S

NP = {"INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
      "FLOAT32": np.float32}
OPTIONS = {"AVERAGE_POOL_2D": ("Pool2DOptions", S.Pool2DOptionsT), "MAX_POOL_2D": ("Pool2DOptions", S.Pool2DOptionsT),
           "CONV_2D": ("Conv2DOptions", S.Conv2DOptionsT), "PACK": ("PackOptions", S.PackOptionsT),
           "STRIDED_SLICE": ("StridedSliceOptions", S.StridedSliceOptionsT),
           "CONCATENATION": ("ConcatenationOptions", S.ConcatenationOptionsT)}


def build(path: str | Path, tensors: dict, ops: list, inputs: list[str], outputs: list[str],
          no_buffers: bool = False, custom_options: bytes = b"", signatures: dict | None = None) -> Path:
    """Write the graph to ``path``; an input or output given as an int is written as that raw tensor index,
    ``signatures`` maps a tensor name to its shape signature (-1: dynamic)."""
    names = list(tensors)
    model = S.ModelT()
    model.version = 3
    model.buffers = [] if no_buffers else [S.BufferT()]
    sub = S.SubGraphT()
    sub.tensors = []
    for name in names:
        dtype, shape, *data = tensors[name]
        t = S.TensorT()
        t.name, t.shape, t.type = name, list(shape), getattr(S.TensorType, dtype)
        t.buffer = 0
        if signatures and name in signatures:
            t.shapeSignature = list(signatures[name])
        if data and not no_buffers:
            b = S.BufferT()
            b.data = np.frombuffer(np.asarray(data[0], NP[dtype]).tobytes(), np.uint8).tolist()
            model.buffers.append(b)
            t.buffer = len(model.buffers) - 1
        sub.tensors.append(t)
    codes, sub.operators = [], []
    for spec in ops:
        kind, ins, outs, opts = (*spec, {}) if len(spec) == 3 else spec
        if kind not in codes:
            codes.append(kind)
        o = S.OperatorT()
        o.opcodeIndex = codes.index(kind)
        o.inputs = [n if isinstance(n, int) else names.index(n) for n in ins]
        o.outputs = [n if isinstance(n, int) else names.index(n) for n in outs]
        if kind in OPTIONS:
            union, cls = OPTIONS[kind]
            options = cls()
            for k, v in opts.items():
                setattr(options, k, v)
            o.builtinOptionsType, o.builtinOptions = getattr(S.BuiltinOptions, union), options
        if kind.startswith("CUSTOM:") and custom_options:
            o.customOptions = list(custom_options)
        sub.operators.append(o)
    model.operatorCodes = []
    for kind in codes:
        c = S.OperatorCodeT()
        code = S.BuiltinOperator.CUSTOM if kind.startswith("CUSTOM:") else getattr(S.BuiltinOperator, kind)
        c.builtinCode, c.deprecatedBuiltinCode, c.version = code, min(code, 127), 1
        if kind.startswith("CUSTOM:"):
            c.customCode = kind.split(":", 1)[1]
        model.operatorCodes.append(c)
    sub.inputs, sub.outputs = [names.index(n) for n in inputs], [names.index(n) for n in outputs]
    model.subgraphs = [sub]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = Path(path)
    path.write_bytes(bytes(builder.Output()))
    return path


def act(dtype: str = "INT8", shape=(1, 8, 8, 4)) -> tuple:
    """An activation tensor spec."""
    return (dtype, list(shape))


def weights(shape=(4, 3, 3, 4), dtype: str = "INT8") -> tuple:
    """A constant tensor spec filled with ones."""
    return (dtype, list(shape), np.ones(shape))
