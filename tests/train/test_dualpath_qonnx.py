"""QONNX export of dual-path (DualNet) models: qonnx's execute_onnx on model.onnx == the Brevitas reference
== the fast emulator (every layer) == the reference emulator (first image) == the trained model, bit for
bit, at several ratios and binary thresholds (architecture.md §10.2); a wrongly exported ternary path
(bipolar binary input, a flipped ternary filter, another threshold) is caught."""
import copy

import numpy as np
import onnx
import pytest
from hypothesis import given, settings, strategies as st
from onnx import helper, numpy_helper

from test_dualpath_exactness import MIXED, PRESET, _at, _images, _tiny_dual

from hybridcim.compiler import load_integer_model
from hybridcim.train.dualpath import dual_layers
from hybridcim.train.export import export_model
from hybridcim.train.qonnx_export import (QonnxModelError, QonnxReference, one_bit_as_unsigned_quant,
                                          export_qonnx_model, run_qonnx)
from hybridcim.train.reference import BrevitasReference
from hybridcim.train.verify import verify_exact

CASES = {"all-int4": (0, 2), "mixed": (MIXED, 2), "all-ternary-theta5": (8, 5)}  # ratios, bin_threshold θ
_DIRS: dict = {}


def _model(case: str):
    """The tiny dual ResNet at the case's ratios and θ (BN statistics re-estimated there)."""
    ratios, theta = CASES[case]
    m = _tiny_dual()
    if theta != dual_layers(m)[0][1].theta:  # the same weights with another θ (saves training a model)
        m = copy.deepcopy(m)
        for _, layer in dual_layers(m):
            layer.theta = theta
    return _at(m, ratios)


def _exported(tmp_path_factory, case: str, m=None):
    """Folder with the case's integer model and model.onnx, exported once per case (from ``m`` if given)."""
    if case not in _DIRS:
        d = tmp_path_factory.mktemp(case)
        export_model(m if m is not None else _model(case), d, preset=PRESET, qonnx=False)
        export_qonnx_model(d, d / "model.onnx")
        _DIRS[case] = d
    return _DIRS[case]


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
    m = _model(case)
    d = _exported(tmp_path_factory, case, m)
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
    d = _exported(tmp_path_factory, "mixed")  # == the reference (test_qonnx_equals_reference_and_emulators)
    ref = BrevitasReference(load_integer_model(d))
    x = _images(2)
    proto = onnx.load(d / "model.onnx")
    g = proto.graph
    _break(g, {t.name: numpy_helper.to_array(t) for t in g.initializer}, {o: n for n in g.node for o in n.output}, how)
    onnx.save(proto, tmp_path / "model.onnx")
    assert not np.array_equal(run_qonnx(tmp_path / "model.onnx", x, ref.logit_exponent), ref.run(x))


@settings(max_examples=12, deadline=None, derandomize=True)
@given(theta=st.integers(1, 15), e_in=st.integers(-2, 6), codes=st.lists(st.integers(0, 15), min_size=6, max_size=6))
def test_a_binary_input_becomes_a_one_bit_unsigned_quant(theta, e_in, codes):
    """b = [x >= θ] at scale 2^-e_in through the rewritten graph (no Mul at e_in = 0, as exported)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes
    scale = 2.0 ** -e_in
    vi = [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [1, 1, 2, 3]) for n in ("x", "y")]
    inits = [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in (("theta", theta * scale), ("s", scale))]
    nodes = [helper.make_node("GreaterOrEqual", ["x", "theta"], ["ge"]), helper.make_node("Cast", ["ge"], ["c"], to=1)]
    if e_in:
        nodes.append(helper.make_node("Mul", ["c", "s"], ["b"]))
    nodes.append(helper.make_node("BipolarQuant", [nodes[-1].output[0], "s"], ["y"], domain="qonnx.custom_op.general"))
    g = helper.make_graph(nodes, "g", vi[:1], vi[1:], inits)
    x = (np.array(codes, np.float32) * np.float32(scale)).reshape(1, 1, 2, 3)
    want = (np.array(codes) >= theta).astype(np.float32).reshape(1, 1, 2, 3) * np.float32(scale)
    model = ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])).transform(InferShapes())
    bipolar = execute_onnx(model, {"x": x})["y"]
    assert np.array_equal(bipolar == want, want > 0)  # bipolar: b = 0 becomes +scale
    assert one_bit_as_unsigned_quant(model.graph) == 1
    q = model.graph.node[-1]
    assert q.op_type == "Quant" and _attrs(q)["signed"] == 0 and model.get_initializer(q.input[3]) == 1.0
    assert np.array_equal(execute_onnx(model.transform(InferShapes()), {"x": x})["y"], want)


@pytest.mark.slow
def test_one_bit_activations_export_too(tmp_path):
    """The same rewrite serves a plain model at act_bits = 1 (Brevitas would export its ReLU outputs as bipolar)."""
    import torch

    from hybridcim.train.models import build_model
    torch.manual_seed(0)
    m = _few_sgd_steps(build_model("resnet", calib_steps=2, blocks=(1, 1, 1), widths=(8, 16, 16), image_hw=8,
                                   act_bits=1), 8)
    export_model(m, tmp_path, preset="tiny-64", qonnx=True)
    g, inits, _ = _graph(tmp_path)
    assert sum(_is_binary(n, inits) for n in g.node) >= 7  # 7 ReLU outputs and the pool at 1 bit
    assert verify_exact(tmp_path, _images(2), trained=m, qonnx_images=2)["qonnx_images"] == 2


def test_a_concat_of_other_tensors_is_refused(tmp_path_factory, tmp_path):
    d = _exported(tmp_path_factory, "mixed")
    proto = onnx.load(d / "model.onnx")
    cat = next(n for n in proto.graph.node if n.op_type == "Concat")
    cat.input[1] = proto.graph.input[0].name  # Concat(conv, image): a doubling chain would pass this way
    onnx.save(proto, tmp_path / "model.onnx")
    with pytest.raises(QonnxModelError, match="Concat of other than two Conv outputs"):
        QonnxReference(tmp_path / "model.onnx", 0)


def _few_sgd_steps(m, hw: int, steps: int = 3):
    """``m`` after ``steps`` SGD steps on random 16-image batches of hw x hw images (activation scales
    calibrated by the first), in eval mode."""
    import torch
    import torch.nn.functional as F
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.SGD(m.parameters(), lr=0.02, momentum=0.9)
    m.train()
    for _ in range(steps):
        x = torch.randint(0, 256, (16, 3, hw, hw), generator=g).float() / 256
        loss = F.cross_entropy(m(x), torch.randint(0, 10, (16,), generator=g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m.eval()


@pytest.mark.slow
def test_resnet20_dual_qonnx(tmp_path):
    """The shipped DualNet shape: ResNet-20, the 18 block convs dual at 4/8 (θ = the MSB), 32x32 images."""
    import torch

    from hybridcim.train.dualpath import set_ratios
    from hybridcim.train.models import build_model
    torch.manual_seed(0)
    m = build_model("resnet20", calib_steps=2, dual_layers="blocks")
    set_ratios(m, 4)
    m = _few_sgd_steps(m, 32)
    export_model(m, tmp_path, preset="sun-mars-256-dual", qonnx=False)
    export_qonnx_model(tmp_path, tmp_path / "model.onnx")
    x = np.random.default_rng(3).integers(0, 256, (2, 3, 32, 32)).astype(np.uint8)
    assert verify_exact(tmp_path, x, trained=m, qonnx_images=2)["qonnx_images"] == 2
