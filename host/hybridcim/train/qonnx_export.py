"""QONNX export (brevitas.export.export_qonnx) of the Brevitas reference and its execution by qonnx.

qonnx's Quant node takes one scalar bit width, so per-filter precisions are exported as
8-bit Quant nodes with per-filter power-of-two scales: the integers are identical.

A dual-path layer (architecture.md §10.2) exports as standard nodes: its INT4 filters as above; its
binary input b = [x >= θ] as GreaterOrEqual (x against θ · 2^-e_in) -> Cast -> Mul (by 2^-e_in; none where e_in = 0) ->
a 1-bit unsigned Quant (datatype BINARY) at the input's scale (Brevitas emits a BipolarQuant for
every 1-bit quantizer: see :func:`one_bit_as_unsigned_quant`); its ternary weights as a 2-bit
narrow-range signed Quant (codes {-1, 0, 1}) with per-filter power-of-two scales feeding a Conv;
and the two Conv outputs joined by Concat along channels (INT4 first, ternary last) before the
layer's shared requantization.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from ..compiler.integer_model import load_integer_model
from .reference import DeployNet, uint8_nchw


@contextlib.contextmanager
def quiet_export():
    """Silence what the ONNX export prints that is not about this model: torch.onnx's progress
    lines on stdout ("[torch.onnx] Run decompositions..."), its "torchvision is not installed"
    log records, and Brevitas's import-time note on the optional fast_hadamard_transform
    package. Real errors still raise; other warnings still show."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch._dynamo", "torch.export")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.filterwarnings("ignore", message=".*fast_hadamard_transform.*")
            warnings.filterwarnings("ignore", message=".*torchvision.*")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export_qonnx_model(model_dir: str | os.PathLike, onnx_path: str | os.PathLike) -> Path:
    """Export the model in ``model_dir`` to QONNX at ``onnx_path`` (batch 1, input pixel/256 NCHW)."""
    with quiet_export():
        return _export_qonnx_model(model_dir, onnx_path)


def _export_qonnx_model(model_dir: str | os.PathLike, onnx_path: str | os.PathLike) -> Path:
    from brevitas.export import export_qonnx
    im = load_integer_model(model_dir)
    net = DeployNet(im).eval()
    one_bit = one_bit_quantizers(net)
    t = im.desc["input"]
    import tempfile

    import onnx
    out = Path(onnx_path)
    with tempfile.TemporaryDirectory(dir=out.parent) as d:
        raw = Path(d) / "raw.onnx"
        export_qonnx(net, torch.zeros(1, t["channels"], t["height"], t["width"]), str(raw))
        m = onnx.load(str(raw))  # pulls in any external data: the result is one self-contained file
        n = one_bit_as_unsigned_quant(m.graph)
        if n and not one_bit:
            raise AssertionError(f"QONNX export: {n} BipolarQuant nodes from a model without 1-bit quantizers")
        single = Path(d) / "model.onnx"
        onnx.save(m, str(single), save_as_external_data=False)
        os.replace(single, out)
    return out


def one_bit_quantizers(net: DeployNet) -> list[str]:
    """Names of the 1-bit activation quantizers of ``net`` (a dual-path layer's binary input; every
    activation at act_bits = 1); ValueError names a signed one (no DeployNet makes one)."""
    names = []
    for name, mod in net.mods.items():
        q = getattr(mod, "act_quant", None)
        if q is None or int(q.bit_width()) != 1:
            continue
        if q.is_signed:
            raise ValueError(f"layer {name!r}: a signed 1-bit activation has no QONNX export here")
        names.append(name)
    return names


def one_bit_as_unsigned_quant(graph) -> int:
    """Rewrite in place each BipolarQuant node of ``graph`` as a 1-bit unsigned Quant; returns how many.

    Brevitas exports every 1-bit quantizer as BipolarQuant, whose output is ±scale (the sign of its
    input), but the 1-bit quantizers of a DeployNet are unsigned (:func:`one_bit_quantizers`): a
    dual-path layer's binary input b ∈ {0, 1} at scale 2^-e_in, or a ReLU output at act_bits = 1,
    and a BipolarQuant would turn every 0 into +scale. The rewritten node is Quant(x, scale, zero
    point 0, bit width 1; signed 0, narrow 0, ROUND): qonnx datatype BINARY, output
    clamp(round(x / scale), 0, 1) · scale, as Brevitas computes it.
    """
    from onnx import helper, numpy_helper
    zp, bw = "one_bit.zero_point", "one_bit.bit_width"
    count = 0
    for i, n in enumerate(graph.node):
        if n.op_type != "BipolarQuant":
            continue
        if not count:
            graph.initializer.extend([numpy_helper.from_array(np.array(0.0, np.float32), zp),
                                      numpy_helper.from_array(np.array(1.0, np.float32), bw)])
        q = helper.make_node("Quant", [n.input[0], n.input[1], zp, bw], list(n.output), name=n.name,
                             domain=n.domain, signed=0, narrow=0, rounding_mode="ROUND")
        graph.node[i].CopyFrom(q)
        count += 1
    return count


ONNX_MAX_BYTES = 256 << 20
"""Largest model.onnx read (ResNet-20's export is 1.4 MB)."""
CUSTOM_DOMAINS = ("qonnx.custom_op.general", "onnx.brevitas")
ALLOWED_OPS = {"": {"Conv", "Relu", "Add", "Mul", "ReduceMean", "GlobalAveragePool", "AveragePool", "MaxPool",
                    "Reshape", "Flatten", "Gemm", "MatMul", "Identity", "GreaterOrEqual", "Cast", "Concat"},
               **{d: {"Quant", "Trunc", "BipolarQuant"} for d in CUSTOM_DOMAINS}}
"""The operators the export produces (Brevitas QONNX of the ResNet and CNV references; GreaterOrEqual,
Cast and Concat only in dual-path layers). qonnx imports the Python module a node's domain names,
so any other domain is refused before qonnx sees the graph."""
_ATTR_LIMIT = 1 << 16


class QonnxModelError(ValueError):
    """A model.onnx that is not a readable QONNX export of a hybridcim model (names the file and node)."""


def load_qonnx_model(onnx_path: str | os.PathLike):
    """The ``onnx.ModelProto`` of ``onnx_path``, checked before qonnx sees it.

    A regular file of at most :data:`ONNX_MAX_BYTES`, parsed from bytes (external data is never
    followed: every initializer must be stored in the file), one graph input and output, only
    :data:`ALLOWED_OPS` (a Concat only of two Conv outputs: a chain of Concats of one tensor
    would double it at each step), no subgraphs or model-local functions, integer attributes within
    ±65536. Truncated, corrupted or hostile files raise :class:`QonnxModelError`; the checks are
    linear in the file's size (bounded by the cap), and a graph that passes runs in time
    bounded by its initializers' sizes (no operator can grow a tensor beyond them).
    """
    import onnx
    from google.protobuf.message import DecodeError

    from ..fileio import FileError, read_regular_file
    path = Path(onnx_path)
    try:
        raw = read_regular_file(path, ONNX_MAX_BYTES, "QONNX model")
    except FileError as e:
        raise QonnxModelError(str(e)) from None
    try:
        m = onnx.load_model_from_string(raw)
    except (DecodeError, ValueError, RuntimeError, RecursionError) as e:
        raise QonnxModelError(f"{path}: not an ONNX model (truncated or corrupt: {type(e).__name__})") from None
    g = m.graph
    if len(g.node) == 0 or len(g.output) != 1:
        raise QonnxModelError(f"{path}: expected a graph with nodes and one output, got {len(g.node)} nodes, "
                              f"{len(g.output)} outputs")
    inits = {t.name for t in g.initializer}
    data_inputs = [i for i in g.input if i.name not in inits]
    if len(data_inputs) != 1 or len(data_inputs[0].type.tensor_type.shape.dim) != 4:
        raise QonnxModelError(f"{path}: expected one NCHW image input, got {[i.name[:40] for i in data_inputs][:5]}")
    if len(m.functions):
        raise QonnxModelError(f"{path}: model-local functions are not part of a hybridcim export")
    for t in g.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data):
            raise QonnxModelError(f"{path}: initializer {t.name[:60]!r} refers to external data")
    conv_out = {o for n in g.node if n.op_type == "Conv" and not n.domain for o in n.output}
    for n in g.node:
        if n.op_type not in ALLOWED_OPS.get(n.domain, ()):
            raise QonnxModelError(f"{path}: node {n.name[:60]!r} is {n.domain[:60] or 'onnx'}.{n.op_type[:40]}, "
                                  "not an operator of a hybridcim export")
        if n.op_type == "Concat" and not (len(n.input) == 2 and set(n.input) <= conv_out):
            raise QonnxModelError(f"{path}: node {n.name[:60]!r} is a Concat of other than two Conv outputs "
                                  "(a dual-path layer's two paths)")
        for a in n.attribute:
            if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                raise QonnxModelError(f"{path}: node {n.name[:60]!r} has a subgraph attribute")
            if any(abs(v) > _ATTR_LIMIT for v in ([a.i] if a.type == onnx.AttributeProto.INT else a.ints)):
                raise QonnxModelError(f"{path}: node {n.name[:60]!r} attribute {a.name[:40]!r} is out of range")
    return m


def with_batch(proto, batch: int):
    """A copy of an exported graph (batch 1) whose image input and logits have batch ``batch``: the
    input's and output's first dimension set, the flattening Reshape's target ``[1, C]`` made
    ``[-1, C]``, inferred shapes dropped. Every other node is per-image (convolutions, Quant with
    fixed scales, the global average over H and W), so each row's result is the batch-1 graph's."""
    import onnx
    from onnx import numpy_helper
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    consts = {n.output[0]: n for n in g.node if n.op_type == "Constant" and not n.domain}
    for v in ([i for i in g.input if i.name not in inits][0], g.output[0]):
        v.type.tensor_type.shape.dim[0].dim_value = int(batch)
    for n in g.node:
        if n.op_type != "Reshape":
            continue
        if n.input[1] in inits:
            t = inits[n.input[1]]
        elif n.input[1] in consts:
            t = consts[n.input[1]].attribute[0].t
        else:
            raise QonnxModelError(f"node {n.name[:60]!r} reshapes to a computed shape: no batched run")
        shape = numpy_helper.to_array(t).copy()
        if shape[0] != 1:
            raise QonnxModelError(f"node {n.name[:60]!r} reshapes to {shape.tolist()}, not [1, ...]: no batched run")
        shape[0] = -1
        t.CopyFrom(numpy_helper.from_array(shape, t.name))
    del g.value_info[:]
    return m


class QonnxReference:
    """``run(images uint8 NCHW) -> int64 logits (N, classes)`` of ``qonnx.execute_onnx`` on an
    exported ``model.onnx``, at the program's logit scale (``logit_exponent``: logits are
    value * 2^exponent). Input: pixel/256 in float32. ``batch`` images per call through a copy of the
    graph with that batch size (:func:`with_batch`; the last call padded with zero images); ``batch=1``
    runs the exported graph itself, one image per call, about 20x slower (about 5 images/s for
    ResNet-20 on one CPU core). The file is checked by :func:`load_qonnx_model` first (QonnxModelError
    on a bad one)."""

    def __init__(self, onnx_path: str | os.PathLike, logit_exponent: int, batch: int = 32):
        proto = load_qonnx_model(onnx_path)
        if not (isinstance(batch, int) and batch >= 1):
            raise ValueError(f"batch must be an int >= 1, got {batch!r}")
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.transformation.infer_shapes import InferShapes
        self.batch = batch
        try:
            self.model = ModelWrapper(proto if batch == 1 else with_batch(proto, batch)).transform(InferShapes())
        except QonnxModelError as e:
            raise QonnxModelError(f"{onnx_path}: {e}") from None
        except Exception as e:  # onnx shape inference on a malformed graph: InferenceError, ValueError, ...
            raise QonnxModelError(f"{onnx_path}: shape inference failed ({type(e).__name__}: "
                                  f"{' '.join(str(e).split())[:160]})") from None
        self.logit_exponent = int(logit_exponent)
        self.iname, self.oname = self.model.graph.input[0].name, self.model.graph.output[0].name

    def run(self, images: np.ndarray) -> np.ndarray:
        from qonnx.core.onnx_exec import execute_onnx
        x = uint8_nchw(images)
        outs = []
        for i in range(0, len(x), self.batch):
            chunk = x[i:i + self.batch].astype(np.float32) / np.float32(256.0)
            n = len(chunk)
            if n < self.batch:
                chunk = np.concatenate([chunk, np.zeros((self.batch - n, *chunk.shape[1:]), np.float32)])
            y = execute_onnx(self.model, {self.iname: chunk})[self.oname].astype(np.float64)
            y = y.reshape(self.batch, -1)[:n] * np.ldexp(1.0, self.logit_exponent)
            if not np.array_equal(y, np.round(y)):
                raise AssertionError("QONNX logits are not exact multiples of the logit scale")
            outs.append(np.round(y).astype(np.int64))
        return np.concatenate(outs)


def run_qonnx(onnx_path: str | os.PathLike, images: np.ndarray, logit_exponent: int) -> np.ndarray:
    """int64 logits of qonnx.execute_onnx on uint8 NCHW images (see ``QonnxReference``)."""
    return QonnxReference(onnx_path, logit_exponent).run(images)
