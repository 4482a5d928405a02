"""csim (the HLS kernel compiled with g++) == fast emulator, exactly: outputs, every tensor and
every activity counter of the kernel's counter block (architecture.md §7).

Property tests (hypothesis, derandomized) over presets, conv shapes (k x k, stride, padding,
channels past one 64-bit word), fc over a spatial input, residuals (unsigned and signed),
maxpool, avgpool, mixed precisions {2, 4, 8}, paired/naive packing, pruned filters and pruned
units, plus the zoo's random programs and the random ResNet-20.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hybridcim.emulator import FastEmulator
from hybridcim.program import ProgramBuilder
from hybridcim.program.packing import pack_filters
from hybridcim.runtime.csim_device import CSimDevice

from csim_compare import assert_tensors_equal
from hybridcim.spec import get_preset
from hybridcim.zoo import random_images, random_program, random_resnet20

PRESETS = ["tiny-64", "sun-mars-256", "wide-512"]


def assert_trace_equal(prog, dev, images):
    ref = FastEmulator(prog).run(images, trace=True)
    assert_tensors_equal(prog, ref.tensors, dev.trace(images), with_input=True)
    dev.reset_counters()
    out = dev.run(images)
    assert np.array_equal(out, ref.outputs)
    assert out.dtype == np.int64
    assert_counters_equal(prog, dev.counters, ref.counters)


def assert_counters_equal(prog, got, want):
    """The kernel's counter block == the emulator's counters, layer by layer, field by field."""
    assert [c.layer for c in got] == [l.name for l in prog.layers]
    for g, w in zip(got, want, strict=True):
        diff = {k: (w.as_dict()[k], v) for k, v in g.as_dict().items() if v != w.as_dict()[k]}
        assert not diff, f"layer {g.layer!r}: counters differ (expected, got): {diff}"


def _filters(rng, preset, f, c, k, precisions, p_filter, p_unit, packing):
    prec = rng.choice(precisions, size=f)
    prec[rng.random(f) < p_filter] = 0
    w = np.zeros((f, c, k, k), dtype=np.int64)
    for fi, p in enumerate(prec):
        if p:
            w[fi] = rng.integers(-(1 << (p - 1)), 1 << (p - 1), size=(c, k, k))
    groups = pack_filters(prec, preset.group_width, packing)
    a, kk = preset.rows_active, k * k * c
    wm = w.transpose(0, 2, 3, 1).reshape(f, kk)
    for members in groups:
        for b in range(-(-kk // a)):
            if rng.random() < p_unit:
                for fi, _ in members:
                    wm[fi, b * a:(b + 1) * a] = 0
    return wm.reshape(f, k, k, c).transpose(0, 3, 1, 2), prec, groups


@st.composite
def programs(draw):
    """A conv (+ optional residual, pool) + avgpool + logits network with drawn parameters."""
    preset = get_preset(draw(st.sampled_from(PRESETS)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    c = draw(st.sampled_from([1, 3, 8, 17, 70]))
    hw = draw(st.integers(3, 8))
    k = draw(st.integers(1, min(5, hw)))
    stride, pad = draw(st.integers(1, 3)), draw(st.integers(0, k - 1))
    f = draw(st.integers(1, 24))
    precisions = draw(st.sampled_from([(2,), (4,), (8,), (2, 4, 8), (4, 8), (2, 4)]))
    packing = draw(st.sampled_from(["paired", "naive"]))
    p_filter, p_unit = draw(st.sampled_from([0.0, 0.3, 1.0])), draw(st.sampled_from([0.0, 0.4, 0.8]))
    in_bits, out_bits = draw(st.sampled_from([8, 4, 1])), draw(st.integers(1, 8))
    res_kind = draw(st.sampled_from(["none", "unsigned", "signed"]))
    pool = draw(st.sampled_from(["none", "max"]))
    b = ProgramBuilder(preset, name="prop")
    x = b.input("image", c, hw, hw, bits=in_bits)
    w, prec, groups = _filters(rng, preset, f, c, k, precisions, p_filter, p_unit, packing)
    ho = (hw + 2 * pad - k) // stride + 1
    res = res_shift = None
    if res_kind == "signed":
        ws, ps, gs = _filters(rng, preset, f, c, 1, precisions, 0.0, 0.0, packing)
        if (hw - 1) // stride + 1 == ho:
            res = b.conv("short", x, ws, ps, rng.integers(0, 8, size=f), bias=rng.integers(-99, 99, size=f),
                         stride=stride, out_bits=8, out_signed=True, groups=gs)
    elif res_kind == "unsigned" and (ho, f) == (hw, c) and in_bits <= 8:
        res = x
    if res is not None:
        res_shift = rng.integers(0, 4, size=f)
    y = b.conv("conv", x, w, prec, rng.integers(-2, 10, size=f), bias=rng.integers(-500, 500, size=f),
               stride=stride, pad=pad, out_bits=out_bits, res=res, res_shift=res_shift, groups=groups)
    if pool == "max" and ho >= 2:
        y = b.maxpool("pool", y, k=2, stride=draw(st.integers(1, 2)))
    t = b.tensors[y]
    if draw(st.booleans()):  # fc over the whole spatial input
        wf, pf, gf = _filters(rng, preset, 10, t.channels, 1, precisions, 0.0, 0.0, packing)
        wf = rng.integers(-2, 2, size=(10, t.channels, t.height, t.width))  # the whole 2-bit range
        b.fc("logits", y, wf, np.full(10, 2), rng.integers(-2, 1, size=10), logits=True)
    else:
        g = b.avgpool("gap", y, shift=draw(st.integers(0, 6)), out_bits=draw(st.integers(1, 8)))
        wf, pf, gf = _filters(rng, preset, 10, t.channels, 1, precisions, 0.0, 0.0, packing)
        b.fc("logits", g, wf, pf, rng.integers(-3, 1, size=10), bias=rng.integers(-999, 999, size=10), logits=True,
             groups=gf)
    return b.build()


@settings(max_examples=100, deadline=None, derandomize=True)
@given(prog=programs(), n=st.integers(1, 3), seed=st.integers(0, 1000))
def test_csim_equals_emulator_on_drawn_programs(csim_lib, prog, n, seed):
    csim_lib(prog.preset.name)
    dev = CSimDevice(prog.preset)
    dev.load(prog)
    assert_trace_equal(prog, dev, random_images(prog, n, seed))


@settings(max_examples=80, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), preset=st.sampled_from(PRESETS), n=st.integers(1, 3))
def test_csim_equals_emulator_on_zoo_fuzz_programs(csim_lib, seed, preset, n):
    csim_lib(preset)
    prog = random_program(seed, preset)
    dev = CSimDevice(preset)
    dev.load(prog)
    assert_trace_equal(prog, dev, random_images(prog, n, seed))


@settings(max_examples=15, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), preset=st.sampled_from(PRESETS), n=st.integers(1, 2))
def test_csim_equals_the_reference_emulator_directly(csim_lib, seed, preset, n):
    """The pair (reference, csim) without the fast emulator in between: every tensor and counter."""
    from hybridcim.emulator import ReferenceEmulator
    csim_lib(preset)
    prog = random_program(seed, preset)
    images = random_images(prog, n, seed)
    ref = ReferenceEmulator(prog).run(images, trace=True)
    dev = CSimDevice(preset)
    dev.load(prog)
    got = dev.trace(images)
    assert got.keys() == ref.tensors.keys()
    for name, want in ref.tensors.items():
        assert np.array_equal(got[name], want), name
    assert_counters_equal(prog, dev.counters, ref.counters)


@pytest.mark.parametrize("preset, wbits", [("sun-mars-256", 4), ("tiny-64", 2), ("tiny-64", 8)])
def test_random_resnet20(csim_lib, preset, wbits):
    csim_lib(preset)
    prog = random_resnet20(preset, seed=1, wbits=wbits)
    dev = CSimDevice(preset)
    dev.load(prog)
    assert_trace_equal(prog, dev, random_images(prog, 2, seed=5))


@pytest.mark.parametrize("side, on_chip", [(16, True), (45, False)])
def test_activations_on_chip_and_in_ddr_mode(csim_lib, side, on_chip):
    """A program whose live tensors fit the activation buffer runs with them on chip (the image
    packed into its bit planes, no int32 copy of it in DDR); one whose image (45 x 45 x 8 bits,
    16,200 plane words) and first output (8,100) do not fit together runs in DDR mode. Both equal
    the emulator in outputs, tensors and counters."""
    csim_lib("tiny-64")
    preset = get_preset("tiny-64")
    rng = np.random.default_rng(side)
    b = ProgramBuilder(preset, name="arena")
    x = b.input("image", 1, side, side, bits=8)
    w, prec, groups = _filters(rng, preset, 4, 1, 3, (2, 4), 0.0, 0.0, "paired")
    y = b.conv("conv", x, w, prec, np.full(4, 6), bias=rng.integers(-50, 50, size=4), pad=1, out_bits=4,
               groups=groups)
    g = b.avgpool("gap", y, shift=8, out_bits=6)
    wf, pf, gf = _filters(rng, preset, 10, 4, 1, (4,), 0.0, 0.0, "paired")
    b.fc("logits", g, wf, pf, np.zeros(10, dtype=np.int64), logits=True, groups=gf)
    prog = b.build()
    dev = CSimDevice("tiny-64")
    dev.load(prog)
    images = random_images(prog, 2, seed=side)
    assert_trace_equal(prog, dev, images)  # trace (DDR mode), then a plain run
    names = [l["name"] for l in dev.kernel_profile()["loops"]]
    copied = dev.kernel_profile()["layers"][0]["iters"][names.index("load_pixels")]
    assert copied == (0 if on_chip else 2 * side * side)


def test_counters_of_the_reference_emulator_equal_the_kernels(csim_lib):
    """Three independent counts agree: the kernel's datapath, the literal reference loops, the static formulas."""
    from hybridcim.emulator import ReferenceEmulator, static_counters
    csim_lib("tiny-64")
    for seed in (3, 4):
        prog = random_program(seed, "tiny-64")
        images = random_images(prog, 2, seed)
        dev = CSimDevice("tiny-64")
        dev.load(prog)
        dev.run(images[:1])
        dev.trace(images[1:])  # traced images are counted too
        assert_counters_equal(prog, dev.counters, ReferenceEmulator(prog).run(images).counters)
        static = [static_counters(l, prog, 2) for l in prog.layers]
        for c, got in zip(static, dev.counters):
            c.input_ones = got.input_ones  # data dependent: the static formulas leave it 0
        assert_counters_equal(prog, dev.counters, static)
        assert sum(c.input_ones for c in dev.counters) > 0
        dev.reset_counters()
        assert all(c.images == 0 and c.cycles == 0 for c in dev.counters)


def test_a_pruned_unit_is_neither_computed_nor_counted(csim_lib):
    """Negative case: zeroing one (row block x group) unit drops it from the skip index, and the
    kernel's counts move by exactly that unit's work."""
    csim_lib("tiny-64")
    preset = get_preset("tiny-64")
    rng = np.random.default_rng(0)
    # K = 144 rows: 9 row blocks of 16; 8 4-bit filters paired into 4 groups of 8 columns
    w = rng.integers(-8, 8, size=(8, 16, 3, 3))

    def program(weights):
        b = ProgramBuilder(preset, name="one-conv")
        x = b.input("image", 16, 5, 5, bits=4)
        b.conv("conv", x, weights, np.full(8, 4), np.full(8, 6), bias=np.zeros(8, dtype=np.int64), pad=1, out_bits=4)
        return b.build()

    pruned = w.transpose(0, 2, 3, 1).reshape(8, 144).copy()
    pruned[:, 16:32] = 0  # row block 1 of every group: 4 units
    pruned = pruned.reshape(8, 3, 3, 16).transpose(0, 3, 1, 2)
    counts = []
    for weights in (w, pruned):
        prog = program(weights)
        images = random_images(prog, 2, seed=1)
        dev = CSimDevice(preset)
        dev.load(prog)
        dev.run(images)
        assert_counters_equal(prog, dev.counters, FastEmulator(prog).run(images).counters)
        counts.append(dev.counters[0])
    full, cut = counts
    unit_work = 4 * 25 * 2  # input planes x output pixels x images
    assert (full.units_present, cut.units_present) == (36, 32)
    assert cut.unit_activations == full.unit_activations - 4 * unit_work
    assert cut.units_skipped == full.units_skipped + 4 * unit_work
    assert cut.digital_column_reads == full.digital_column_reads - 4 * 8 * unit_work  # 8 used columns a unit
    assert cut.bit_ops == full.bit_ops - 4 * 8 * 16 * unit_work
    assert cut.weight_load_bits == full.weight_load_bits - 4 * 8 * 16 * 2  # G x A cells per unit, per image
    assert cut.dram_bytes == full.dram_bytes - 4 * 8 * 16 // 8 * 2
    assert (cut.requant_ops, cut.macs) == (full.requant_ops, full.macs) == (8 * 25 * 2, 8 * 144 * 25 * 2)
    assert cut.act_buffer_bits == full.act_buffer_bits - 16 * 4 * 25 * 2  # block 1's 16 rows x planes x pixels
    assert 0 < cut.input_ones < full.input_ones  # block 1 no longer reaches the word lines


def test_a_perturbed_layer_on_csim_is_caught_and_named(csim_lib):
    """Negative case of csim vs emulator: the kernel runs a program with one layer's bias changed."""
    import copy
    csim_lib("tiny-64")
    prog = random_resnet20("tiny-64", seed=3)
    bad = copy.deepcopy(prog)
    layer = bad.layer_by_name("s2b1_conv1")
    layer.bias = layer.bias + (1 << 10)
    dev = CSimDevice("tiny-64")
    dev.load(bad)
    dev._program = prog  # the device reports the original program: the comparison must catch the change
    with pytest.raises(pytest.fail.Exception, match=f"tensor '{prog.tensors[layer.out_tensor].name}' \\(s2b1_conv1, mode 0, dual None\\) differs"):
        assert_trace_equal(prog, dev, random_images(prog, 2, seed=0))


def test_batching_does_not_change_results(csim_lib):
    csim_lib("sun-mars-256")
    prog = random_program(11, "sun-mars-256")
    images = random_images(prog, 7, seed=2)
    one = CSimDevice("sun-mars-256", batch_size=1)
    many = CSimDevice("sun-mars-256", batch_size=64)
    one.load(prog)
    many.load(prog)
    assert np.array_equal(one.run(images), many.run(images))
    assert one.run(images[:0]).shape == (0, prog.output.channels)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), preset=st.sampled_from(["tiny-64", "sun-mars-256"]))
def test_synthesis_datapath_equals_emulator(hw_datapath_lib, seed, preset):
    prog = random_program(seed, preset)
    dev = CSimDevice(preset, library=hw_datapath_lib[preset])
    dev.load(prog)
    assert_trace_equal(prog, dev, random_images(prog, 2, seed))


def test_kernel_counts_the_hand_computed_memory_counters(csim_lib):
    """The hand-computed vectors of tests/emulator/test_counters.py, counted by the kernel."""
    csim_lib("tiny-64")
    preset = get_preset("tiny-64")
    b = ProgramBuilder(preset, name="hand")
    x = b.input("x", 4, 4, 4)
    w = np.where(np.arange(4 * 4 * 9).reshape(4, 4, 3, 3) % 2, 1, -1)
    w_hwc = w.transpose(0, 2, 3, 1).reshape(4, 36)
    w_hwc[2:, :16] = 0  # unit (group 1, row block 0) pruned
    y = b.conv("c", x, w_hwc.reshape(4, 3, 3, 4).transpose(0, 3, 1, 2), [4] * 4, [0] * 4, pad=1, out_bits=8)
    m = b.maxpool("mp", y, k=2)
    b.avgpool("gap", m, out_bits=8)
    prog = b.build()
    dev = CSimDevice(preset)
    dev.load(prog)
    dev.run(np.full((2, 4, 4, 4), 255, dtype=np.uint8))
    conv, mp, gap = dev.counters
    assert conv.weight_load_bits == 2 * 5 * 8 * 16 and conv.requant_ops == 2 * 4 * 16
    assert conv.dram_bytes == 2 * ((7 * 4 + 4 * 2 * 8 + 1) + 5 * 8 * 16 // 8 + 64 + 64)
    assert conv.act_buffer_bits == 2 * (4 * 4 * 4 * 8 + 16 * 8 * 36)
    assert conv.input_ones == 2 * 100 * 4 * 8  # 100 in-bounds window positions x 4 channels x 8 one bits
    assert (mp.dram_bytes, mp.requant_ops) == (2 * (64 + 16), 0)
    assert (gap.dram_bytes, gap.requant_ops) == (2 * (16 + 4), 2 * 4)


def _shipped():
    from hybridcim.models import available_models
    return available_models()


@pytest.mark.parametrize("name", _shipped())
def test_shipped_models_three_counts_agree_on_real_images(name, cifar10_root, csim_lib):
    """reference == fast == csim for every counter (input_ones is data dependent) on 2 CIFAR-10 test images."""
    from hybridcim.data import Cifar10
    from hybridcim.emulator import ReferenceEmulator
    from hybridcim.models import MODELS_DIR
    from hybridcim.program import read_program
    prog = read_program(MODELS_DIR / name / "model.cim")
    csim_lib(prog.preset.name)
    images, _ = next(iter(Cifar10(cifar10_root, "test").batches(2, limit=2)))
    ref = ReferenceEmulator(prog).run(images).counters
    assert_counters_equal(prog, FastEmulator(prog).run(images).counters, ref)
    dev = CSimDevice(prog.preset)
    dev.load(prog)
    dev.run(images)
    assert_counters_equal(prog, dev.counters, ref)
    sram = [c for c, l in zip(ref, prog.layers)  # layers with filters on the SRAM path (not all ternary)
            if l.op.is_cim and (l.dual is None or l.dual.n_tern(l.n_filters) < l.n_filters)]
    assert sram and all(c.input_ones > 0 for c in sram)
