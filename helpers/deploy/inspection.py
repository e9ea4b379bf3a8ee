"""Read a .tflite flatbuffer: ops with their tensor dtypes, op counts, float/quantize flags, parameter bytes.

Parsed with the flatbuffer schema shipped in ai-edge-litert, so no interpreter (and no delegate) is
needed to see the model exactly as written. Every index the file holds (operator codes, tensors, buffers) is
checked before use, so a malformed file is answered in one sentence (``NotTFLiteError``), never a traceback.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

FLOAT_TYPES = {"FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16"}
FLAG_OPS = ("QUANTIZE", "DEQUANTIZE", "TRANSPOSE")


class NotTFLiteError(ValueError):
    """The file is missing or is not a TensorFlow Lite flatbuffer."""


EDGETPU_CUSTOM_OP = "CUSTOM:edgetpu-custom-op"


@dataclass
class OpInfo:
    index: int
    op: str
    inputs: list[dict]  # name, dtype, shape, constant (value: small integer constants)
    outputs: list[dict]
    input_ids: list[int] = field(default_factory=list)  # tensor indices, for the graph
    output_ids: list[int] = field(default_factory=list)
    options: dict = field(default_factory=dict)  # the op's builtin options (fused activation, axis, ...)
    custom_bytes: int = 0  # size of a custom op's options (a compiled Edge TPU model keeps its parameters there)


@dataclass
class ModelReport:
    path: str
    size_bytes: int
    parameter_bytes: int
    ops: dict  # op type -> count
    op_list: list[OpInfo] = field(repr=False)
    input_dtype: str = ""
    output_dtype: str = ""
    input_shape: list = field(default_factory=list)
    float_tensors: list[str] = field(default_factory=list)
    flagged_ops: dict = field(default_factory=dict)  # QUANTIZE / DEQUANTIZE / TRANSPOSE counts
    subgraphs: int = 1
    dynamic_shapes: bool = False
    graph_inputs: list = field(default_factory=list, repr=False)  # tensor indices of the main subgraph
    graph_outputs: list = field(default_factory=list, repr=False)
    compiled_for_edgetpu: bool = False  # holds edgetpu-custom-op: edgetpu_compiler's output

    @property
    def full_integer(self) -> bool:
        """True when no tensor of the graph is float. An integer requantisation (QUANTIZE int8 -> uint8, int16)
        is integer; QUANTIZE, DEQUANTIZE and TRANSPOSE are still counted in ``flagged_ops``."""
        return not self.float_tensors

    def to_dict(self, with_ops: bool = False) -> dict:
        d = asdict(self)
        d["full_integer"] = self.full_integer
        if not with_ops:
            d.pop("op_list")
        d.pop("graph_inputs"), d.pop("graph_outputs")
        return d


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # Coral hosts with tflite-runtime only
        from tflite_runtime import schema_py_generated as schema  # type: ignore
    return schema


def _enum_names(enum_cls) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def _malformed(path, what: str) -> NotTFLiteError:
    return NotTFLiteError(f"{path} is a malformed TensorFlow Lite model ({what}); export or download it again")


def read_model(path: str | Path):
    """The flatbuffer bytes and parsed root of ``path``; NotTFLiteError when it is absent, not TFLite, or malformed."""
    path = Path(path)
    if not path.is_file():
        raise NotTFLiteError(f"model file {path} does not exist")
    buf = path.read_bytes()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise NotTFLiteError(f"{path} is not a TensorFlow Lite model (no TFL3 identifier); export one with "
                             "`python -m helpers export`")
    schema = _schema()
    model = schema.Model.GetRootAs(buf, 0)
    try:  # a truncated or forged file fails deep inside the flatbuffer reader: touch the tables once, here
        if model.SubgraphsLength() < 1:
            raise ValueError("no subgraph")
        for i in range(model.SubgraphsLength()):
            sub = model.Subgraphs(i)
            sub.TensorsLength(), sub.OperatorsLength()
        model.BuffersLength(), model.OperatorCodesLength()
    except Exception as exc:  # struct.error, IndexError, ...: whatever the reader raises on broken bytes
        raise NotTFLiteError(f"{path} is not a readable TensorFlow Lite model ({type(exc).__name__}: it is truncated "
                             "or corrupt); export it again with `python -m helpers export`") from None
    return buf, model, schema


def _check_indices(path, model, sub) -> None:
    """Every index of the main subgraph in range; NotTFLiteError naming the first one that is not."""
    n_tensors, n_buffers, n_codes = sub.TensorsLength(), model.BuffersLength(), model.OperatorCodesLength()
    for t in range(n_tensors):
        b = sub.Tensors(t).Buffer()
        if not 0 <= b < n_buffers:  # buffer 0 is the empty sentinel every model has
            raise _malformed(path, f"tensor {t} refers to buffer {b}, the model has {n_buffers}")
    for i in range(sub.OperatorsLength()):
        op = sub.Operators(i)
        if not 0 <= op.OpcodeIndex() < n_codes:
            raise _malformed(path, f"operator {i} refers to operator code {op.OpcodeIndex()}, the model has {n_codes}")
        ids = (op.InputsAsNumpy().tolist() if op.InputsLength() else []) + (
            op.OutputsAsNumpy().tolist() if op.OutputsLength() else [])
        bad = next((j for j in ids if j >= n_tensors or j < -1), None)
        if bad is not None:
            raise _malformed(path, f"operator {i} refers to tensor {bad}, the subgraph has {n_tensors}")
    for kind, ids in (("input", sub.InputsAsNumpy().tolist() if sub.InputsLength() else []),
                      ("output", sub.OutputsAsNumpy().tolist() if sub.OutputsLength() else [])):
        if not ids:
            raise _malformed(path, f"the main subgraph has no {kind}")
        bad = next((j for j in ids if not 0 <= j < n_tensors), None)
        if bad is not None:
            raise _malformed(path, f"subgraph {kind} {bad} is not one of its {n_tensors} tensors")


def _options(schema, op) -> dict:
    """An operator's builtin options as a plain dict (empty when it has none)."""
    try:
        obj = schema.BuiltinOptionsCreator(op.BuiltinOptionsType(), op.BuiltinOptions())
    except Exception:  # noqa: BLE001 - unknown option types carry nothing the rules read
        return {}
    return {k: v for k, v in vars(obj).items() if isinstance(v, (int, float, bool))} if obj is not None else {}


def inspect_tflite(path: str | Path) -> ModelReport:
    """Every op of the main subgraph with its tensors, op counts, float tensors, flagged ops and sizes."""
    buf, model, schema = read_model(path)
    sub = model.Subgraphs(0)
    _check_indices(path, model, sub)
    try:
        return _inspect(path, buf, model, schema, sub)
    except NotTFLiteError:
        raise
    except Exception as exc:  # noqa: BLE001 - indices are checked; what is left is a broken table
        raise _malformed(path, f"{type(exc).__name__} while reading its tables") from None


def _inspect(path, buf, model, schema, sub) -> ModelReport:
    op_names = _enum_names(schema.BuiltinOperator)
    type_names = _enum_names(schema.TensorType)
    tensors = []
    for t in range(sub.TensorsLength()):
        ten = sub.Tensors(t)
        b = model.Buffers(ten.Buffer()) if model.BuffersLength() else None
        nbytes = b.DataLength() if b is not None else 0
        if b is not None and not nbytes and b.Size() > 1:  # large models keep buffers after the flatbuffer
            nbytes = int(b.Size())
        shape_sig = ten.ShapeSignatureAsNumpy() if ten.ShapeSignatureLength() else None
        dtype = type_names.get(ten.Type(), str(ten.Type()))
        value = None
        if nbytes and dtype in ("INT32", "INT64") and b.DataLength() and nbytes <= 128:  # small constants: paddings, axes
            value = np.frombuffer(b.DataAsNumpy().tobytes(), np.int32 if dtype == "INT32" else np.int64).tolist()
        tensors.append({"name": (ten.Name() or b"").decode(errors="replace"), "dtype": dtype, "value": value,
                        "shape": ten.ShapeAsNumpy().tolist() if ten.ShapeLength() else [],
                        "constant": nbytes > 0, "bytes": nbytes,
                        "dynamic": bool(shape_sig is not None and (np.asarray(shape_sig) < 0).any())})
    ops = []
    for i in range(sub.OperatorsLength()):
        op = sub.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = op_names.get(builtin, str(builtin))
        if name == "CUSTOM":
            name = f"CUSTOM:{(code.CustomCode() or b'').decode(errors='replace')}"
        in_ids = [j for j in op.InputsAsNumpy().tolist() if j >= 0] if op.InputsLength() else []
        out_ids = op.OutputsAsNumpy().tolist() if op.OutputsLength() else []
        ops.append(OpInfo(i, name, [_brief(tensors[j]) for j in in_ids], [_brief(tensors[j]) for j in out_ids],
                          in_ids, out_ids, _options(schema, op), op.CustomOptionsLength()))
    inputs, outputs = sub.InputsAsNumpy().tolist(), sub.OutputsAsNumpy().tolist()
    used = {j for o in ops for j in o.input_ids + o.output_ids} | set(inputs) | set(outputs)
    float_tensors = [t["name"] or f"tensor{k}" for k, t in enumerate(tensors)
                     if t["dtype"] in FLOAT_TYPES and k in used]
    counts = Counter(o.op for o in ops)
    compiled = EDGETPU_CUSTOM_OP in counts
    return ModelReport(
        path=str(path), size_bytes=len(buf),
        parameter_bytes=sum(t["bytes"] for t in tensors if t["constant"])
        + sum(o.custom_bytes for o in ops if o.op == EDGETPU_CUSTOM_OP),
        ops=dict(counts.most_common()), op_list=ops,
        input_dtype=tensors[inputs[0]]["dtype"], output_dtype=tensors[outputs[0]]["dtype"],
        input_shape=tensors[inputs[0]]["shape"], float_tensors=float_tensors,
        flagged_ops={k: counts[k] for k in FLAG_OPS if counts.get(k)}, subgraphs=model.SubgraphsLength(),
        dynamic_shapes=any(t["dynamic"] for t in tensors), graph_inputs=inputs, graph_outputs=outputs,
        compiled_for_edgetpu=compiled)


def _brief(t: dict) -> dict:
    d = {"name": t["name"], "dtype": t["dtype"], "shape": t["shape"], "constant": t["constant"], "bytes": t["bytes"],
         "dynamic": t["dynamic"]}
    if t["value"] is not None:
        d["value"] = t["value"]
    return d


def is_full_integer(path: str | Path) -> bool:
    """True when the model at ``path`` has no float tensor (integer requantisation counts as integer)."""
    return inspect_tflite(path).full_integer


def constant_values(path: str | Path, op_type: str) -> list[np.ndarray]:
    """The constant weight tensors (first constant input) of every ``op_type`` op, as numpy arrays."""
    buf, model, schema = read_model(path)
    type_np = {"INT8": np.int8, "UINT8": np.uint8, "FLOAT32": np.float32, "FLOAT16": np.float16,
               "INT32": np.int32}
    type_names = _enum_names(schema.TensorType)
    op_names = _enum_names(schema.BuiltinOperator)
    sub = model.Subgraphs(0)
    _check_indices(path, model, sub)
    out = []
    for i in range(sub.OperatorsLength()):
        op = sub.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        if op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode())) != op_type:
            continue
        for j in op.InputsAsNumpy().tolist()[1:2]:
            ten = sub.Tensors(j)
            data = model.Buffers(ten.Buffer()).DataAsNumpy()
            dtype = type_np.get(type_names.get(ten.Type()))
            if dtype is not None and not isinstance(data, int):
                out.append(np.frombuffer(data.tobytes(), dtype).reshape(ten.ShapeAsNumpy()))
    return out
