"""Activity counters (architecture.md §7) on a hand-computed example, and per-image scaling."""
import numpy as np
import pytest

from hybridcim.emulator import FastEmulator, ReferenceEmulator, static_counters
from hybridcim.program import ProgramBuilder
from hybridcim.spec import get_preset


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


def test_reference_counts_literally_the_same(program):
    images = np.random.default_rng(0).integers(0, 256, size=(3, 4, 4, 4)).astype(np.uint8)
    ref = ReferenceEmulator(program).run(images).counters[0]
    assert ref.as_dict() == static_counters(program.layers[0], program, 3).as_dict()
    assert FastEmulator(program).run(images).counters[0].as_dict() == ref.as_dict()


def test_counters_add_and_scale(program):
    one = static_counters(program.layers[0], program, 1)
    assert (one + one).as_dict() == one.times(2).as_dict()
    assert one.times(2).weight_bits == one.weight_bits  # mapping fields do not scale


def test_macros_share_tiles():
    # 20 groups on tiny-64 (8 groups per macro) -> 3 column tiles over 2 macros: macro 0 gets 2 tiles
    b = ProgramBuilder(get_preset("tiny-64"))
    x = b.input("x", 16, 1, 1)
    y = b.conv("c", x, np.ones((20, 16, 1, 1), dtype=np.int64), [8] * 20, [0] * 20, out_bits=8)
    p = b.build(output=y)
    c = static_counters(p.layers[0], p, 1)
    assert c.tiles == 3 and c.rowblock_activations == 3 * 8 and c.cycles == 2 * 8
