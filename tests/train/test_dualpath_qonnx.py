"""QONNX export of dual-path (DualNet) models: qonnx's execute_onnx on model.onnx == the Brevitas reference
== the fast emulator (every layer) == the reference emulator (first image) == the trained model, bit for
bit, at several ratios and binary thresholds (architecture.md §10.2); a wrongly exported ternary path
(bipolar binary input, a flipped ternary filter, another threshold) is caught."""
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from test_dualpath_exactness import MIXED, PRESET, _at, _images, _tiny_dual

from hybridcim.compiler import load_integer_model
from hybridcim.train.export import export_model
from hybridcim.train.qonnx_export import (QonnxModelError, QonnxReference, binary_inputs_as_quant,
                                          export_qonnx_model)
from hybridcim.train.verify import MismatchError, verify_exact

CASES = {"all-int4": (0, 2), "mixed": (MIXED, 2), "all-ternary-theta5": (8, 5)}  # ratios, bin_threshold θ
_DIRS: dict = {}


def _exported(tmp_path_factory, case: str):
    """(model dir with integer model + model.onnx, trained model at the case's ratios), once per case."""
    ratios, theta = CASES[case]
    m = _at(_tiny_dual(theta=theta), ratios)
    if case not in _DIRS:
        d = tmp_path_factory.mktemp(case)
        export_model(m, d, preset=PRESET, qonnx=False)
        export_qonnx_model(d, d / "model.onnx")
        _DIRS[case] = d
    return _DIRS[case], m


def _graph(d):
    g = onnx.load(d / "model.onnx").graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    return g, inits, producer


def _attrs(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _is_binary(node, inits) -> bool:
    return node is not None and node.op_type == "Quant" and float(inits[node.input[3]]) == 1.0


@pytest.mark.parametrize("case", list(CASES))
def test_qonnx_equals_reference_and_emulators(tmp_path_factory, case):
    d, m = _exported(tmp_path_factory, case)
    summary = verify_exact(d, _images(3), trained=m, qonnx_images=3)
    assert summary["qonnx_images"] == 3
    im = load_integer_model(d)
    assert im.desc["version"] == 2
    tern = [(l["name"], im.array(l["name"], "tern_weight")) for l in im.layers if l.get("dual") is not None]
    tern = [(n, t) for n, t in tern if len(t)]
    assert (len(tern) > 0) == (case != "all-int4")
    g, inits, producer = _graph(d)
    assert not any(n.op_type == "BipolarQuant" for n in g.node)
    codes = []
    for conv in (n for n in g.node if n.op_type == "Conv"):
        if not _is_binary(producer.get(conv.input[0]), inits):
            continue
        b = producer[conv.input[0]]  # the binary input: Quant(1 bit, unsigned) of GreaterOrEqual -> Cast -> Mul
        assert _attrs(b)["signed"] == 0 and float(inits[b.input[2]]) == 0.0
        ge = producer[producer[producer[b.input[0]].input[0]].input[0]]
        assert ge.op_type == "GreaterOrEqual" and float(inits[ge.input[1]] / inits[b.input[1]]) == CASES[case][1]
        wq = producer[conv.input[1]]  # the ternary weights: Quant(2 bits, signed, narrow) with power-of-two scales
        assert float(inits[wq.input[3]]) == 2.0 and _attrs(wq)["signed"] == 1 and _attrs(wq)["narrow"] == 1
        scale = inits[wq.input[1]].astype(np.float64)
        assert np.array_equal(np.exp2(np.round(np.log2(scale))), scale)
        c = inits[wq.input[0]].astype(np.float64) / scale
        assert set(np.unique(c)) <= {-1.0, 0.0, 1.0}
        codes.append(c)
    assert len(codes) == len(tern)
    for c, (name, t) in zip(codes, tern):  # graph order is layer order
        assert np.array_equal(c, t), name
    concat = [n for n in g.node if n.op_type == "Concat"]
    split = [l for l in im.layers if l.get("dual") is not None and 0 < len(im.array(l["name"], "tern_weight")) < l["filters"]]
    assert len(concat) == len(split)
    for n in concat:  # INT4 channels first, ternary last (§10.2)
        assert _attrs(n)["axis"] == 1
        assert not _is_binary(producer[producer[n.input[0]].input[0]], inits)
        assert _is_binary(producer[producer[n.input[1]].input[0]], inits)


def _break(g, inits, producer, how: str) -> None:
    """Export the mixed model's ternary path wrongly, in place."""
    bins = [n for n in g.node if n.op_type == "Quant" and float(inits[n.input[3]]) == 1.0]
    if how == "bipolar binary input":  # what Brevitas emits for a 1-bit quantizer: 0 becomes +scale
        for n in bins:
            n.CopyFrom(helper.make_node("BipolarQuant", list(n.input[:2]), list(n.output), name=n.name, domain=n.domain))
    elif how == "ternary filter negated":
        conv = next(n for n in g.node if n.op_type == "Conv" and producer.get(n.input[0]) in bins)
        t = next(t for t in g.initializer if t.name == producer[conv.input[1]].input[0])
        w = numpy_helper.to_array(t).copy()
        i = int(np.abs(w).reshape(len(w), -1).sum(1).argmax())  # a filter with nonzero codes
        w[i] = -w[i]
        t.CopyFrom(numpy_helper.from_array(w, t.name))
    else:  # "threshold + 1": the comparison x >= θ + 1 in the first binary input
        ge = producer[producer[producer[bins[0].input[0]].input[0]].input[0]]
        scale = float(inits[producer[bins[0].input[0]].input[1]])
        g.initializer.append(numpy_helper.from_array(np.array(inits[ge.input[1]] + scale, np.float32), "theta_plus_one"))
        ge.input[1] = "theta_plus_one"


@pytest.mark.parametrize("how", ["bipolar binary input", "ternary filter negated", "threshold + 1"])
def test_a_wrong_ternary_export_is_caught(tmp_path_factory, tmp_path, how):
    d, _ = _exported(tmp_path_factory, "mixed")
    for f in ("integer_model.json", "integer_model.npz"):
        (tmp_path / f).write_bytes((d / f).read_bytes())
    proto = onnx.load(d / "model.onnx")
    g = proto.graph
    _break(g, {t.name: numpy_helper.to_array(t) for t in g.initializer}, {o: n for n in g.node for o in n.output}, how)
    onnx.save(proto, tmp_path / "model.onnx")
    with pytest.raises(MismatchError, match="QONNX execute_onnx vs Brevitas reference"):
        verify_exact(tmp_path, _images(2), qonnx_images=2)


def test_only_a_binary_input_becomes_a_one_bit_quant():
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 2, 2])
    s = numpy_helper.from_array(np.array(0.5, np.float32), "s")
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]),
                           helper.make_node("BipolarQuant", ["r", "s"], ["y"], domain="qonnx.custom_op.general")],
                          "g", [x], [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 1, 2, 2])], [s])
    with pytest.raises(AssertionError, match="not by a binary input"):
        binary_inputs_as_quant(g)


def test_a_concat_of_other_tensors_is_refused(tmp_path_factory, tmp_path):
    d, _ = _exported(tmp_path_factory, "mixed")
    proto = onnx.load(d / "model.onnx")
    cat = next(n for n in proto.graph.node if n.op_type == "Concat")
    cat.input[1] = proto.graph.input[0].name  # Concat(conv, image): a doubling chain would pass this way
    onnx.save(proto, tmp_path / "model.onnx")
    with pytest.raises(QonnxModelError, match="Concat of other than two Conv outputs"):
        QonnxReference(tmp_path / "model.onnx", 0)
