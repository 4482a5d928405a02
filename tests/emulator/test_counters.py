"""Activity counters (architecture.md §7) on hand-computed examples, per-image scaling and
additivity over batches (input_ones depends on the data)."""
import numpy as np
import pytest

from hybridcim.emulator import FastEmulator, ReferenceEmulator, static_counters
from hybridcim.emulator.counters import DATA_DEPENDENT, PER_IMAGE, InputOnesCounter, LayerCounters
from hybridcim.program import ProgramBuilder
from hybridcim.spec import get_preset
from hybridcim.zoo import random_images, random_program


@pytest.fixture(scope="module")
def program():
    # tiny-64: 64x64 macro, 16 rows active, 8-column groups -> 4 blocks x 8 groups per macro
    b = ProgramBuilder(get_preset("tiny-64"))
    x = b.input("x", 4, 4, 4)
    w = np.where(np.arange(4 * 4 * 9).reshape(4, 4, 3, 3) % 2, 1, -1)  # no zero weight
    w_hwc = w.transpose(0, 2, 3, 1).reshape(4, 36)
    w_hwc[2:, :16] = 0  # prune unit (group 1, row block 0): filters 2 and 3 share group 1
    w = w_hwc.reshape(4, 3, 3, 4).transpose(0, 3, 1, 2)
    y = b.conv("c", x, w, [4, 4, 4, 4], [0] * 4, pad=1, out_bits=8)
    return b.build(output=y)


@pytest.fixture(scope="module")
def shared_tiles():
    # 20 groups on tiny-64 (8 groups per macro) -> 3 column tiles over 2 macros: macro 0 gets 2 tiles, 2 rounds
    b = ProgramBuilder(get_preset("tiny-64"))
    x = b.input("x", 16, 1, 1)
    y = b.conv("c", x, np.ones((20, 16, 1, 1), dtype=np.int64), [8] * 20, [0] * 20, out_bits=8)
    return b.build(output=y)


def test_hand_computed(program):
    c = static_counters(program.layers[0], program, images=1)
    n = 8 * 16  # input bits x pixels
    assert (c.units_total, c.units_present, c.tiles) == (6, 5, 1)
    assert c.unit_activations == 5 * n and c.units_skipped == 1 * n
    assert c.rowblock_activations == 3 * n and c.cycles == 3 * n
    assert c.weight_bits == 8 * (16 + 16 + 4) + 8 * (16 + 4) and c.cells_allocated == 5 * 8 * 16
    assert c.utilization == pytest.approx(448 / 640)
    assert c.bit_ops == 448 * n and c.digital_column_reads == 5 * 8 * n
    assert c.macs == 4 * 36 * 16
    assert (c.analog_column_reads, c.adc_conversions) == (0, 0)


def test_hand_computed_memory_and_requant_counters(program):
    c = static_counters(program.layers[0], program, images=2)
    assert c.weight_load_bits == 2 * 5 * 8 * 16  # every present unit, G x A cells, once per image
    assert c.requant_ops == 2 * 4 * 16  # F x pixels x images
    tables = 7 * 4 + 4 * 2 * 8 + 1  # prec/bias/shift/res_shift per filter, column map, ceil(6 units / 8)
    weights = 5 * 8 * 16 // 8
    act_in, act_out = 4 * 4 * 4 * 8 // 8, 4 * 4 * 4 * 8 // 8  # uint8 in, 8-bit out
    assert c.dram_bytes == 2 * (tables + weights + act_in + act_out)  # one round: no partial sums
    writes = 4 * 4 * 4 * 8  # input values x bits_in into the bit-plane buffer
    reads = 16 * 8 * (16 + 16 + 4)  # pixels x planes x real rows of the 3 activated blocks of the one tile
    assert c.act_buffer_bits == 2 * (writes + reads)
    assert c.input_ones == 0  # data dependent: not static


@pytest.mark.parametrize("value, ones", [(255, 8), (1, 1), (6, 2), (0, 0)])
def test_hand_computed_input_ones(program, value, ones):
    # 4x4 input, 3x3 window, pad 1: in-bounds window positions summed over the 16 output
    # pixels = 4 corners x 4 + 8 edges x 6 + 4 inner x 9 = 100; 4 channels; every block once
    images = np.full((1, 4, 4, 4), value, dtype=np.uint8)
    want = 100 * 4 * ones
    assert ReferenceEmulator(program).run(images).counters[0].input_ones == want
    assert FastEmulator(program).run(images).counters[0].input_ones == want


def test_input_ones_counts_zero_padding_as_zero_and_one_channel(program):
    images = np.zeros((1, 4, 4, 4), dtype=np.uint8)
    images[0, 2, 0, 0] = 3  # one pixel, channel 2, two 1 bits: at the corner (0, 0) -> 4 windows see it
    assert ReferenceEmulator(program).run(images).counters[0].input_ones == 4 * 2
    assert FastEmulator(program).run(images).counters[0].input_ones == 4 * 2


def test_hand_computed_shared_tiles(shared_tiles):
    p = shared_tiles
    c = static_counters(p.layers[0], p, 1)
    assert c.tiles == 3 and c.rowblock_activations == 3 * 8 and c.cycles == 2 * 8
    assert c.weight_load_bits == 20 * 8 * 16
    # 2 rounds: 20 partial sums of 4 bytes leave after round 0 and come back for round 1
    assert c.dram_bytes == (7 * 20 + 4 * 20 * 8 + 3) + 20 * 8 * 16 // 8 + 16 + 20 + 2 * 20 * 4
    assert c.act_buffer_bits == 16 * 8 + 3 * 16 * 8  # block 0 is streamed into each of the 3 tiles
    assert c.requant_ops == 20
    img = np.full((1, 16, 1, 1), 5, dtype=np.uint8)  # two 1 bits per row, 16 rows, 3 tiles
    for emu in (ReferenceEmulator(p), FastEmulator(p)):
        assert emu.run(img).counters[0].input_ones == 3 * 16 * 2


def test_pools_count_traffic_and_requant():
    b = ProgramBuilder(get_preset("tiny-64"))
    x = b.input("x", 4, 4, 4, bits=4)
    m = b.maxpool("mp", x, k=2)
    b.avgpool("gap", m, out_bits=4)
    p = b.build()
    mp, gap = (static_counters(l, p, 3) for l in p.layers)
    assert mp.dram_bytes == 3 * (4 * 4 * 4 * 4 // 8 + 2 * 2 * 4 * 4 // 8) and mp.requant_ops == 0
    assert gap.dram_bytes == 3 * (2 * 2 * 4 * 4 // 8 + 4 * 4 // 8) and gap.requant_ops == 3 * 4
    assert mp.weight_load_bits == mp.act_buffer_bits == gap.input_ones == 0
    images = random_images(p, 3, seed=0)
    for emu in (ReferenceEmulator(p), FastEmulator(p)):
        assert [c.as_dict() for c in emu.run(images).counters] == [mp.as_dict(), gap.as_dict()]


def test_reference_counts_literally_the_same(program):
    images = np.random.default_rng(0).integers(0, 256, size=(3, 4, 4, 4)).astype(np.uint8)
    ref = ReferenceEmulator(program).run(images).counters[0]
    static = static_counters(program.layers[0], program, 3).as_dict()
    assert {k: v for k, v in ref.as_dict().items() if k not in DATA_DEPENDENT} == \
        {k: v for k, v in static.items() if k not in DATA_DEPENDENT}
    assert FastEmulator(program).run(images).counters[0].as_dict() == ref.as_dict()


def test_counters_add_and_scale(program):
    one = static_counters(program.layers[0], program, 1)
    assert (one + one).as_dict() == one.times(2).as_dict()
    assert one.times(2).weight_bits == one.weight_bits  # mapping fields do not scale


def test_per_image_lists_every_counter_that_grows_with_images():
    from hybridcim.emulator.counters import DUAL_EXTRA, HYBRID_EXTRA
    static = {f for f in LayerCounters.__dataclass_fields__} - set(PER_IMAGE) - set(HYBRID_EXTRA) - set(DUAL_EXTRA) - {"layer"}
    assert static == {"pixels", "units_total", "units_present", "weight_bits", "cells_allocated", "tiles",
                      "tern_weight_bits", "tern_cells_allocated", "tern_tiles"}
    assert set(DATA_DEPENDENT) <= set(PER_IMAGE)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_counters_are_additive_over_batches(seed):
    """Data-dependent counters still sum: counters of a batch == sum over any split of it."""
    prog = random_program(seed, "tiny-64")
    images = random_images(prog, 5, seed)
    for emu in (FastEmulator(prog), ReferenceEmulator(prog)):
        whole = emu.run(images).counters
        parts = [emu.run(images[:2]).counters, emu.run(images[2:3]).counters, emu.run(images[3:]).counters]
        summed = [a + b + c for a, b, c in zip(*parts)]
        assert [c.as_dict() for c in summed] == [c.as_dict() for c in whole]
    ones = [c.input_ones for c in whole]
    assert any(ones) and sum(ones) != sum(c.input_ones for c in emu.run(images[:1]).counters) * 5


def test_input_ones_counter_takes_compact_channels(program):
    layer = program.layers[0]
    count = InputOnesCounter(layer, program)
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(2, 4, 4, 4))
    x[..., [0, 3]] = 0
    assert count(x[..., [1, 2]].astype(np.float32), np.array([1, 2])) == count(x)
    assert count(x[:0]) == 0
    with pytest.raises(ValueError, match="not a conv/fc"):
        b = ProgramBuilder(get_preset("tiny-64"))
        b.maxpool("mp", b.input("x", 1, 2, 2))
        p = b.build()
        InputOnesCounter(p.layers[0], p)


def test_the_spec_defines_every_counter_in_the_kernels_order():
    """architecture.md §7 defines every LayerCounters field; program-format.md's index table is PER_IMAGE."""
    import re
    from pathlib import Path
    docs = Path(__file__).resolve().parents[2] / "docs"
    arch = (docs / "architecture.md").read_text()
    s7 = arch[arch.index("## §7"):arch.index("## §8")]
    names = {n for cell in re.findall(r"^\| ([^|]+) \|", s7, re.M) for n in re.findall(r"`(\w+)`", cell)}
    assert set(LayerCounters.__dataclass_fields__) - {"layer"} <= names
    fmt = (docs / "program-format.md").read_text()
    index = {int(k): n for k, n in re.findall(r"(?=\| (\d+) \| `(\w+)` \|)", fmt) if n in PER_IMAGE}
    assert [index[k] for k in sorted(index)] == list(PER_IMAGE)


@pytest.mark.parametrize("shape", [(1, 1), (31, 5), (32, 9), (100, 3, 7), (300, 16), (0, 4)])
def test_popcount_sum_equals_a_table_lookup(shape):
    from hybridcim.emulator.counters import POPCOUNT8, popcount_sum
    x = np.random.default_rng(sum(shape)).integers(0, 256, size=shape)
    want = POPCOUNT8[x.astype(np.uint8)].sum(axis=0, dtype=np.int64).reshape(-1)
    for dtype in (np.int64, np.float32, np.uint8):
        assert np.array_equal(popcount_sum(x.astype(dtype)), want)
    for bits in (1, 2, 3, 4, 5, 7):
        xb = x & ((1 << bits) - 1)
        want = POPCOUNT8[xb.astype(np.uint8)].sum(axis=0, dtype=np.int64).reshape(-1)
        assert np.array_equal(popcount_sum(xb.astype(np.float32), bits), want), bits
