"""Dual-path (DualNet) QAT: the trained model (eval) == its Brevitas reference == the compiled spec-1.2
program on the reference emulator, per layer and bit for bit, at several ratios (architecture.md §10)."""
import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hybridcim.compiler import compile_model, load_integer_model
from hybridcim.compiler.integer_model import IntegerModelError
from hybridcim.emulator import FastEmulator, ReferenceEmulator
from hybridcim.train.dualpath import DualConv2d, dual_layers, get_ratios, recalibrate_bn, set_ratios, ternarize
from hybridcim.train.export import export_model
from hybridcim.train.models import build_model
from hybridcim.train.verify import verify_exact

HW = 8  # 8x8 images keep the literal reference emulator at a few seconds per ratio setting
PRESET = "tiny-64-dual"


@functools.lru_cache(maxsize=None)
def _tiny_dual(layers: str = "all", theta: int = 2):
    """A tiny dual-path ResNet (random init) after 4 supernet steps (activation scales calibrated), binary
    inputs b = x >= 2 (an untrained net rarely reaches the 4-bit MSB, which would leave b all 0)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    m = build_model("resnet", calib_steps=2, blocks=(1, 1, 1), widths=(8, 16, 16), image_hw=HW, dual_layers=layers,
                    bin_threshold=theta)
    for _, l in dual_layers(m):
        l.allowed[[0, 3, 5, 8]] = True  # supernet: every step draws a ratio per layer
    opt = torch.optim.SGD(m.parameters(), lr=0.02, momentum=0.9)
    m.train()
    for _ in range(4):
        x = torch.randint(0, 256, (16, 3, HW, HW), generator=g).float() / 256
        y = torch.randint(0, 10, (16,), generator=g)
        loss = F.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    return m


def _at(m, ratios):
    """The model at ``ratios`` with its BN statistics re-estimated there (recalibrate_bn)."""
    set_ratios(m, ratios)
    g = torch.Generator().manual_seed(7)
    recalibrate_bn(m, [torch.randint(0, 256, (16, 3, HW, HW), generator=g).float() / 256 for _ in range(3)])
    m.eval()
    return m


def _images(n=2, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (n, 3, HW, HW)).astype(np.uint8)


MIXED = {"stem": 3, "s1b1_conv1": 8, "s1b1_conv2": 5, "s2b1_conv1": 1, "s2b1_short": 4, "s2b1_conv2": 0,
         "s3b1_conv1": 6, "s3b1_short": 8, "s3b1_conv2": 2}


@pytest.mark.parametrize("ratios", [0, 8, MIXED], ids=["all-int4", "all-ternary", "mixed"])
def test_dual_model_equals_reference_emulator(tmp_path, ratios):
    m = _at(_tiny_dual(), ratios)
    desc = export_model(m, tmp_path, preset=PRESET, qonnx=True)
    assert desc["version"] == 2 and (tmp_path / "model.onnx").exists()  # QONNX of both paths
    summary = verify_exact(tmp_path, _images(1), trained=m, qonnx_images=1)  # trained == Brevitas == fast emulator, per layer (and reference on image 0)
    assert summary["images"] == 1
    prog = compile_model(load_integer_model(tmp_path))
    want = get_ratios(m)
    res = ReferenceEmulator(prog).run(_images(1, seed=2))
    for layer, counters in zip(prog.layers, res.counters):
        if layer.name not in want:
            assert layer.flags == 0
            continue
        q = want[layer.name]
        ft = layer.n_filters * q // 8
        assert layer.flags == 1 and layer.dual.ratio_eighths == q and layer.dual.n_tern(layer.n_filters) == ft
        assert layer.dual.bin_threshold == 2
        assert (layer.precision[layer.n_filters - ft:] == 0).all()
        assert (counters.tern_bit_ops > 0) == (ft > 0)
    fast = FastEmulator(prog).run(_images(1, seed=2))  # the fast emulator runs dual-path layers too (§10.6)
    assert np.array_equal(fast.outputs, res.outputs)
    assert [c.as_dict() for c in fast.counters] == [c.as_dict() for c in res.counters]


def test_ternary_channels_are_not_degenerate(tmp_path):
    m = _at(_tiny_dual(), 8)
    export_model(m, tmp_path, preset=PRESET, qonnx=False)
    im = load_integer_model(tmp_path)
    t = im.array("s1b1_conv1", "tern_weight")
    assert t.shape == (8, 8, 3, 3) and set(np.unique(t)) == {-1, 0, 1}
    from hybridcim.train.reference import load_brevitas_reference
    out = load_brevitas_reference(tmp_path).trace(_images(4))["s1b1_conv1"]
    assert len(np.unique(out)) > 2  # the ternary path's outputs use several codes
    assert all(len(np.unique(v)) > 2 for k, v in load_brevitas_reference(tmp_path).trace(_images(4)).items())


def test_blocks_only_keeps_stem_and_shortcuts_int4():
    m = build_model("resnet", calib_steps=2, blocks=(1, 1, 1), widths=(8, 16, 16), dual_layers="blocks")
    assert {l.theta for _, l in dual_layers(m)} == {8}  # default θ: the 4-bit input's MSB
    assert [n for n, _ in dual_layers(m)] == ["s1b1_conv1", "s1b1_conv2", "s2b1_conv1", "s2b1_conv2",
                                              "s3b1_conv1", "s3b1_conv2"]
    with pytest.raises(ValueError, match="ratio 9 is outside"):
        set_ratios(m, 9)
    with pytest.raises(KeyError, match="stem"):
        set_ratios(m, {"stem": 2})


def test_ternarize_and_binarize():
    w = torch.tensor([[0.5, -0.05, -0.6, 0.3], [0.0, 0.0, 0.0, 0.0]], requires_grad=True)
    delta = torch.tensor(0.7, requires_grad=True)
    wq, codes, e = ternarize(w, delta)
    # mean|w_0| = 0.3625, Δ = 0.25375: T = (1, 0, -1, 1), α = 0.4667 -> 2^-1
    assert codes.tolist() == [[1, 0, -1, 1], [0, 0, 0, 0]] and e.tolist() == [1, 8]
    assert torch.equal(wq.detach(), torch.tensor([[0.5, 0.0, -0.5, 0.5], [0.0] * 4]))
    wq.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w)) and delta.grad is not None and delta.grad != 0
    layer = DualConv2d(2, 2, 1, in_bits=4)
    assert layer.theta == 8
    s = torch.tensor(0.25)
    x = (torch.tensor([0.0, 7.0, 8.0, 15.0]) * s).requires_grad_(True)
    b = layer.binarize(x, s)
    assert b.tolist() == [0.0, 0.0, 0.25, 0.25]  # b = [x >= θ] at the input's scale
    assert not b.requires_grad  # no gradient through the binary input (dualpath module docstring)
    with pytest.raises(ValueError, match="bin_threshold 16 must lie in 1..15"):
        DualConv2d(2, 2, 1, in_bits=4, bin_threshold=16)


def test_integer_model_v2_checks(tmp_path):
    m = _at(_tiny_dual(), 4)
    export_model(m, tmp_path, preset=PRESET, qonnx=False)
    import json
    desc = json.loads((tmp_path / "integer_model.json").read_text())
    with np.load(tmp_path / "integer_model.npz") as z:
        arrays = {k: z[k] for k in z.files}
    bad = dict(arrays)
    t = bad["s1b1_conv1/tern_weight"].copy()
    t[0, 0, 0, 0] = 2
    bad["s1b1_conv1/tern_weight"] = t
    np.savez(tmp_path / "integer_model.npz", **bad)
    with pytest.raises(IntegerModelError, match="outside \\{-1, 0, 1\\}"):
        load_integer_model(tmp_path)
    np.savez(tmp_path / "integer_model.npz", **arrays)
    v1 = dict(desc, version=1)
    (tmp_path / "integer_model.json").write_text(json.dumps(v1))
    with pytest.raises(IntegerModelError, match="dual-path layer must be .* version-2"):
        load_integer_model(tmp_path)
    d2 = json.loads(json.dumps(desc))
    d2["layers"][1]["dual"]["ratio_eighths"] = 9
    (tmp_path / "integer_model.json").write_text(json.dumps(d2))
    with pytest.raises(IntegerModelError, match="dual.ratio_eighths must be an integer in 0..8"):
        load_integer_model(tmp_path)
    (tmp_path / "integer_model.json").write_text(json.dumps(desc))
    with pytest.raises(Exception, match="second macro type"):
        compile_model(load_integer_model(tmp_path), preset="tiny-64")  # a preset without the ternary macros
