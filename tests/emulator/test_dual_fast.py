"""Dual-path layers (DualNet, architecture.md §10) in the fast emulator: numpy, torch int8 and torch float
equal the reference emulator bit for bit (outputs, every tensor and every counter, ``tern_input_ones`` and
``refresh_events`` included) over random dual-path programs on presets with the second macro type, ratios
0..8 and binary-input thresholds; the §10.2 hand example; the int8 engine really runs the ternary set
(fused requant, residual sum post-op, 8-bit input split); a changed ternary cell is caught."""
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hybridcim.emulator import FastEmulator, ReferenceEmulator
from hybridcim.program.builder import ProgramBuilder, make_dual
from hybridcim.program.dualpath import DualPathParams
from hybridcim.spec import get_preset
from hybridcim.zoo.fuzz import random_dualpath_program, random_images

sys.path.insert(0, str(Path(__file__).parent))
from fast_executors import HAS_TORCH, assert_same, fast_executors  # noqa: E402

DUAL_PRESETS = ["tiny-64-dual", "sun-mars-256-dual"]


def _dual_program(seed, preset, ratio, theta_frac, share, **kw):
    """A random program with a ``share`` of its conv/fc layers dual-path at ``ratio`` (None: random per
    layer), threshold ⌈theta_frac · (2^X − 1)⌉, random ternary weights of 0–100 % non-zero."""
    return random_dualpath_program(seed, preset, share=share, ratio=ratio, theta_frac=theta_frac,
                                   densities=(0.0, 0.33, 0.67, 1.0), **kw)


@st.composite
def _presets(draw):
    """A shipped -dual preset, or its SRAM part with a random ternary geometry (small macros: rounds, refresh)."""
    name = draw(st.sampled_from(DUAL_PRESETS + ["random"]))
    if name != "random":
        return get_preset(name)
    base = get_preset(draw(st.sampled_from(DUAL_PRESETS)))
    a = draw(st.sampled_from([8, 16, 32, 64]))
    return dataclasses.replace(base, name="prop", tern_rows_active=a, tern_rows=a << draw(st.integers(0, 2)),
                               tern_cols=2 << draw(st.integers(0, 4)), tern_n_macros=1 << draw(st.integers(0, 2)),
                               tern_refresh_cycles=1 << draw(st.integers(0, 12)))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 31), preset=_presets(), ratio=st.one_of(st.none(), st.integers(0, 8)),
       theta=st.sampled_from([0.0, 0.3, 0.5, 0.8, 1.0]), share=st.sampled_from([0.5, 1.0]), n=st.integers(1, 3))
def test_fast_dual_equals_reference(seed, preset, ratio, theta, share, n):
    p = _dual_program(seed, preset, ratio, theta, share, max_hw=6, max_channels=10)
    imgs = random_images(p, n, seed)
    ref = ReferenceEmulator(p).run(imgs, trace=True)
    for name, emu in fast_executors(p):
        assert_same(ref, emu.run(imgs, trace=True), name)
        assert_same(ref, emu.run(imgs, trace=True), name + " (second batch: the later-batch checks)")


@pytest.mark.parametrize("preset", DUAL_PRESETS)
@pytest.mark.parametrize("seed", range(4))
def test_fuzz_dual_programs_and_batch_split(preset, seed):
    """The fuzzer's dual-path programs; counters of one call == the sum over two calls."""
    p = random_dualpath_program(seed, preset, max_hw=6, max_channels=9)
    imgs = random_images(p, 3, seed)
    ref = ReferenceEmulator(p).run(imgs)
    for name, emu in fast_executors(p):
        assert_same(ref, emu.run(imgs), name)
        a, b = emu.run(imgs[:1]), emu.run(imgs[1:])
        assert [(x + y).as_dict() for x, y in zip(a.counters, b.counters)] == [c.as_dict() for c in ref.counters]


def test_hand_computed_vector():
    """architecture.md §10.2's example: x = (3, 9, 0, 15), θ = 8 -> INT4 filter 24, ternary filter 1."""
    b = ProgramBuilder(get_preset("tiny-64-dual"), name="hand")
    x = b.input("image", 4, 1, 1, bits=4)
    w = np.array([[1, -2, 3, 7], [-1, 1, 1, 1]])
    b.fc("fc", x, w.reshape(2, 4, 1, 1), [4, 0], [2, 0], bias=[5, -1], out_bits=8, dual=DualPathParams(4, 8))
    p = b.build()
    imgs = np.array([3, 9, 0, 15], np.uint8).reshape(1, 4, 1, 1)
    ref = ReferenceEmulator(p).run(imgs)
    assert ref.outputs.reshape(-1).tolist() == [24, 1]
    for name, emu in fast_executors(p):
        assert_same(ref, emu.run(imgs), name)
        assert emu.run(imgs).counters[0].tern_input_ones == 2


def _resnet_like(ratio, theta, first_dual=True):
    """8-bit image -> 8-bit-weight conv (dual when first_dual: the int8 engine splits its SRAM set) -> dual conv with an
    identity residual -> avgpool -> fc, on sun-mars-256-dual."""
    rng = np.random.default_rng(ratio * 31 + theta)
    b = ProgramBuilder(get_preset("sun-mars-256-dual"), name="res")
    x = b.input("image", 3, 8, 8, bits=8)
    c1 = b.conv("c1", x, rng.integers(-128, 128, (16, 3, 3, 3)), [8] * 16, [9] * 16, bias=rng.integers(-30, 30, 16),
                pad=1, out_bits=4)
    c2 = b.conv("c2", c1, rng.integers(-8, 8, (16, 16, 3, 3)), [4] * 16, [5] * 16, bias=rng.integers(-30, 30, 16),
                pad=1, out_bits=4, res=c1, res_shift=[1] * 16)
    g = b.avgpool("gap", c2)
    b.fc("fc", g, rng.integers(-8, 8, (10, 16, 1, 1)), [4] * 10, [0] * 10, out_bits=16, out_signed=True)
    p = b.build()
    params = {}
    for l in p.layers:
        if l.name in (("c1", "c2") if first_dual else ("c2",)):
            f_t = DualPathParams(ratio, 1).n_tern(l.n_filters)
            th = min(theta, (1 << p.tensors[l.in_tensor].bits) - 1)
            params[l.name] = (DualPathParams(ratio, th), rng.integers(-1, 2, (f_t, l.k_rows)))
    return make_dual(p, params)


@pytest.mark.skipif(not HAS_TORCH, reason="the int8 engine is torch's")
@pytest.mark.parametrize("ratio", [0, 3, 8])
def test_int8_engine_runs_dual_layers(ratio):
    """Both dual layers stay on the int8 engine (split 8-bit input, fused residual) and equal the reference."""
    from hybridcim.emulator.torch_backend import int8_status
    if not int8_status()[0]:
        pytest.fail(f"oneDNN int8 unavailable here: {int8_status()[1]}")
    p = _resnet_like(ratio, 8)
    imgs = random_images(p, 4, ratio)
    ref = ReferenceEmulator(p).run(imgs)
    emu = FastEmulator(p, "torch", engine="int8")
    for _ in range(2):
        assert_same(ref, emu.run(imgs), "torch-int8")
    assert emu.engines["c1"] == ("int8-split" if ratio < 8 else "int8") and emu.engines["c2"] == "int8"
    st2 = emu._torch.steps[[l.name for l in p.layers].index("c2")]
    assert len(st2.sets) == (2 if 0 < ratio < 8 else 1)
    assert (st2.sets[-1].theta is not None) == (ratio > 0)


def test_a_changed_ternary_cell_is_caught():
    """Negative case: one ternary weight moved from +1 to -1 changes the fast emulator's outputs."""
    p = _resnet_like(8, 4, first_dual=False)
    i = [l.name for l in p.layers].index("c2")
    l = p.layers[i]
    words = l.tern_words.copy()
    u, b = np.argwhere(words[:, :, 0] != 0)[0]
    bit = np.uint64(int(words[u, b, 0]) & -int(words[u, b, 0]))  # lowest positive cell
    words[u, b, 0] ^= bit
    words[u, b, 1] ^= bit
    bad = dataclasses.replace(p, layers=p.layers[:i] + [dataclasses.replace(l, tern_words=words)] + p.layers[i + 1:])
    imgs = np.full((2,) + (p.input.channels, p.input.height, p.input.width), 255, np.uint8)
    ref = ReferenceEmulator(p).run(imgs, trace=True)
    for name, emu in fast_executors(bad):
        got = emu.run(imgs, trace=True)
        assert np.array_equal(ref.tensors["c1"], got.tensors["c1"]), name  # the layer before is unchanged
        assert not np.array_equal(ref.tensors["c2"], got.tensors["c2"]), name


@pytest.mark.skipif(not HAS_TORCH, reason="input_ones counted in torch is the torch backend's option")
def test_input_ones_counted_in_torch_leaves_tern_input_ones_right(monkeypatch):
    import hybridcim.emulator.fast as fast
    monkeypatch.setattr(fast, "INPUT_ONES_IN_TORCH", True)
    p = _resnet_like(5, 3)
    imgs = random_images(p, 2, 5)
    assert_same(ReferenceEmulator(p).run(imgs), FastEmulator(p, "torch").run(imgs), "torch, input_ones in torch")


def test_emulator_device_runs_dual_path_programs():
    from hybridcim.runtime.emulator_device import EmulatorDevice
    p = _resnet_like(4, 8)
    imgs = random_images(p, 2, 4)
    ref = ReferenceEmulator(p).run(imgs)
    with EmulatorDevice(backend="numpy") as dev:
        dev.load(p)
        assert np.array_equal(dev.run(imgs), ref.outputs)
        assert [c.as_dict() for c in dev.counters] == [c.as_dict() for c in ref.counters]


def test_tern_ones_counter_over_many_images_and_stored_channels():
    """TernOnesCounter (byte sums in chunks of 255 images) == dualpath.tern_input_ones, 300 images; a compact
    input (a subset of channels, the others 0) counts the same as the whole tensor."""
    from hybridcim.emulator.counters import TernOnesCounter
    from hybridcim.program.dualpath import tern_input_ones
    p = _resnet_like(3, 2)
    layer = next(l for l in p.layers if l.name == "c2")
    t = p.tensors[layer.in_tensor]
    x = np.random.default_rng(0).integers(0, 16, (300, t.height, t.width, t.channels))
    x[..., ::3] = 0
    count = TernOnesCounter(layer, p)
    assert count(x) == tern_input_ones(layer, p, x) > 0
    assert count(x[..., [c for c in range(t.channels) if c % 3]].astype(np.float32)) == count(x)
