"""Reference emulator, dual-path layers (architecture.md §10): hand-computed vectors, degenerate
ratios against plain digital layers, and random dual-path programs against a dense re-implementation
and the static counter formulas of §10.4."""
import dataclasses

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from hybridcim.cim.requant import requantize
from hybridcim.emulator.counters import DUAL_EXTRA, InputOnesCounter, static_counters
from hybridcim.emulator.ops import avgpool, im2col, maxpool
from hybridcim.emulator.reference import ReferenceEmulator
from hybridcim.program.builder import ProgramBuilder
from hybridcim.program.dualpath import TERN_PER_IMAGE, DualPathParams, decode_ternary, tern_input_ones, tern_path, tern_static
from hybridcim.program.format import Op
from hybridcim.program.weights import decode_weight_matrix
from hybridcim.spec import get_preset
from hybridcim.spec.hardware import HardwarePreset
from hybridcim.zoo.fuzz import random_dualpath_program, random_images

DUAL = get_preset("tiny-64-dual")


def _fc_program(preset, x_bits, w, prec, shift, bias, dual, out_bits=8):
    b = ProgramBuilder(preset, name="hand")
    x = b.input("image", w.shape[1], 1, 1, bits=x_bits)
    b.fc("fc", x, w.reshape(w.shape[0], w.shape[1], 1, 1), prec, shift, bias=bias, out_bits=out_bits, dual=dual)
    return b.build()


def test_hand_computed_vector():
    # x = [3, 9, 0, 15] (4-bit), threshold 8 -> b = [0, 1, 0, 1]
    # filter 0 (SRAM, int4 [1, -2, 3, 7]): 3 - 18 + 0 + 105 = 90; + bias 5 = 95; >> 2 (RNE) = 23.75 -> 24
    # filter 1 (ternary [-1, 1, 1, 1]): 0 + 1 + 0 + 1 = 2; + bias -1 = 1; shift 0 -> 1
    w = np.array([[1, -2, 3, 7], [-1, 1, 1, 1]])
    p = _fc_program(DUAL, 4, w, [4, 0], [2, 0], [5, -1], DualPathParams(4, 8))
    res = ReferenceEmulator(p).run(np.array([3, 9, 0, 15], np.uint8).reshape(1, 4, 1, 1))
    assert res.outputs.reshape(-1).tolist() == [24, 1]
    c = res.counters[0]
    # ternary path: 1 filter, K = 4 -> one 16-row block, one tile on macro 0, one binary plane
    assert (c.tern_tiles, c.tern_rowblock_activations, c.tern_cycles, c.tern_column_reads, c.tern_bit_ops) == (1, 1, 1, 2, 8)
    assert (c.tern_weight_load_bits, c.tern_cells_allocated, c.tern_weight_bits, c.tern_input_ones) == (32, 32, 8, 2)
    assert c.refresh_events == 0  # 1 busy cycle < 256
    # SRAM path: 4 input planes x 1 row block; the layer takes the longer path
    assert c.rowblock_activations == 4 and c.cycles == 4
    assert c.requant_ops == 2 and c.macs == 8


def test_hand_computed_refresh_and_tiles():
    # ternary macros of 2 filters x 4 blocks of 16 rows, refreshed every 2 cycles; 3 ternary filters, K = 40:
    # R_t = 3 blocks (16, 16, 8 rows); tiles: filters {0, 1} on macro 0, filter {2} on macro 1, 3 blocks each.
    # Each tile is busy 1 pixel x 3 blocks = 3 cycles: one refresh (at cycle 2) of its 3 x 16 rows = 48 per tile.
    pr = HardwarePreset("refresh-test", rows=64, cols=64, rows_active=16, n_macros=2, adc_bits=4, tern_rows=64,
                        tern_cols=4, tern_rows_active=16, tern_n_macros=2, tern_refresh_cycles=2)
    rng = np.random.default_rng(1)
    w = rng.integers(-1, 2, (3, 40))
    p = _fc_program(pr, 4, w, [0, 0, 0], [0, 0, 0], [0, 0, 0], DualPathParams(8, 1), out_bits=8)
    x = rng.integers(0, 16, (2, 40, 1, 1)).astype(np.uint8)
    res = ReferenceEmulator(p).run(x)
    c = res.counters[0]
    assert c.tern_tiles == 2 and c.tiles == 0
    assert c.refresh_events == 2 * 48 * 2  # 2 tiles x 48 rows x 2 images
    assert c.tern_cycles == 3 * 2 and c.cycles == 6  # max over the two macros (3 blocks each) x 2 images
    assert c.tern_rowblock_activations == 6 * 2 and c.tern_column_reads == 2 * 3 * 3 * 2 and c.tern_bit_ops == 2 * 3 * 40 * 2
    assert c.tern_weight_load_bits == 2 * 3 * 3 * 16 * 2 and c.tern_cells_allocated == 288 and c.tern_weight_bits == 240
    assert c.tern_input_ones == 2 * int((x > 0).sum())  # threshold 1; two filter tiles read every row
    want = np.clip((w @ (x.reshape(2, 40) >= 1).T).T, 0, 255)
    assert np.array_equal(res.outputs.reshape(2, 3), want)


def _pair(dual, x_bits, w, prec, **kw):
    """The same layer built dual-path and plain digital."""
    out = []
    for d in (dual, None):
        b = ProgramBuilder(DUAL, name="pair")
        x = b.input("image", w.shape[1], 5, 5, bits=x_bits)
        b.conv("c", x, w, prec if d is not None else kw.pop("plain_prec", prec), [2] * len(w),
               bias=np.arange(len(w)) - 3, pad=1, stride=1, dual=d)
        out.append(b.build())
    return out


def test_int4_only_ratio_zero_equals_the_plain_digital_layer():
    rng = np.random.default_rng(2)
    w = rng.integers(-8, 8, (6, 3, 3, 3))
    dual, plain = _pair(DualPathParams(0, 5), 4, w, [4] * 6)
    x = rng.integers(0, 16, (3, 3, 5, 5)).astype(np.uint8)
    a, b = ReferenceEmulator(dual).run(x), ReferenceEmulator(plain).run(x)
    assert np.array_equal(a.outputs, b.outputs)
    ca, cb = a.counters[0].as_dict(), b.counters[0].as_dict()
    assert ca.pop("dram_bytes") == cb.pop("dram_bytes") + 16 * 3  # the 16-byte dual section, per image
    assert ca == cb and all(ca[k] == 0 for k in DUAL_EXTRA)


def test_ternary_only_equals_the_plain_digital_layer_on_binary_inputs():
    """q = 8 with a 1-bit input and threshold 1: b = x, so Σ T·b is the digital layer with 2-bit {-1, 0, 1} weights."""
    rng = np.random.default_rng(3)
    w = rng.integers(-1, 2, (5, 4, 3, 3))
    dual, plain = _pair(DualPathParams(8, 1), 1, w, [0] * 5, plain_prec=[2] * 5)
    x = rng.integers(0, 2, (2, 4, 5, 5)).astype(np.uint8)
    a, b = ReferenceEmulator(dual).run(x), ReferenceEmulator(plain).run(x)
    assert np.array_equal(a.outputs, b.outputs)
    assert a.counters[0].macs == b.counters[0].macs and a.counters[0].requant_ops == b.counters[0].requant_ops
    assert a.counters[0].tern_column_reads and not a.counters[0].digital_column_reads


def _independent(program, images):
    """architecture.md §3, §6, §10.2 densely: acc = W x on the SRAM filters, T b on the ternary ones."""
    p = program
    env = {p.input_tensor: images.transpose(0, 2, 3, 1).astype(np.int64)}
    for l in p.layers:
        x = env[l.in_tensor]
        if l.op == Op.MAXPOOL:
            env[l.out_tensor] = maxpool(x, l)
            continue
        if l.op == Op.AVGPOOL:
            env[l.out_tensor] = avgpool(x, l)
            continue
        cols = im2col(x, l.kh, l.kw, l.stride, l.pad)
        n, ho, wo, k = cols.shape
        xs = cols.reshape(-1, k).astype(np.int64)
        w = decode_weight_matrix(l.precision, l.col_filter, l.col_plane, l.present, l.words, l.k_rows, p.preset.rows_active)
        acc = xs @ w.T
        if l.dual is not None:
            f0 = l.dual.first_tern(l.n_filters)
            t = decode_ternary(l.tern_words, l.k_rows, p.preset.tern_rows_active)
            acc[:, f0:] = (xs >= l.dual.bin_threshold).astype(np.int64) @ t.T
            assert np.array_equal(tern_path(l.tern_words, (xs >= l.dual.bin_threshold).astype(np.int64),
                                            p.preset.tern_rows_active), acc[:, f0:])  # the word-level helper
        res = env[l.res_tensor] if l.res_tensor is not None else None
        env[l.out_tensor] = requantize(acc.reshape(n, ho, wo, -1), l.bias, l.shift, l.clamp_lo, l.clamp_hi, res,
                                       l.res_shift if res is not None else None)
    return env


def _expected_counters(layer, program, env, n):
    """§7 static counters of the SRAM path + §10.4 of the ternary path; input_ones and tern_input_ones from the data."""
    c = static_counters(layer, program, n)
    if layer.op.is_cim:
        c.input_ones = InputOnesCounter(layer, program)(env[layer.in_tensor])
    if layer.dual is None:
        return c
    pr, f_t = program.preset, layer.dual.n_tern(layer.n_filters)
    out = program.tensors[layer.out_tensor]
    rounds = max(1, -(-c.tiles // pr.n_macros))
    c.dram_bytes -= 2 * (rounds - 1) * out.height * out.width * f_t * 4 * n  # SRAM partial sums: SRAM filters only
    d = tern_static(layer, program, n)
    c.act_buffer_bits += d.pop("act_buffer_bits")
    c.dram_bytes += d.pop("dram_bytes")
    for key, v in d.items():
        setattr(c, key, v)
    cols = im2col(env[layer.in_tensor], layer.kh, layer.kw, layer.stride, layer.pad)
    n_ftiles = -(-f_t // pr.tern_filters_per_macro)
    c.tern_input_ones = n_ftiles * int((cols >= layer.dual.bin_threshold).sum())
    assert tern_input_ones(layer, program, env[layer.in_tensor]) == c.tern_input_ones  # the vectorized count
    c.cycles = max(c.cycles, c.tern_cycles)
    return c


SMALL_TERN = HardwarePreset("tiles-test", rows=64, cols=64, rows_active=16, n_macros=2, adc_bits=4, tern_rows=32,
                            tern_cols=4, tern_rows_active=8, tern_n_macros=1, tern_refresh_cycles=8)


@pytest.mark.parametrize("preset", ["tiny-64-dual", "sun-mars-256-dual", SMALL_TERN], ids=str)
@pytest.mark.parametrize("seed", range(6))
def test_random_dual_programs_match_the_dense_model_and_the_counter_formulas(preset, seed):
    p = random_dualpath_program(seed, preset, max_hw=6, max_channels=9)
    imgs = random_images(p, 2, seed)
    res = ReferenceEmulator(p).run(imgs, trace=True)
    env = _independent(p, imgs)
    assert np.array_equal(res.outputs, env[p.output_tensor].reshape(res.outputs.shape))
    for layer, got in zip(p.layers, res.counters):
        want = _expected_counters(layer, p, env, 2)
        assert got.as_dict() == want.as_dict(), layer.name
    assert any(l.dual is not None for l in p.layers) or seed


def test_small_ternary_macros_make_rounds_and_refresh():
    """With one 2-filter ternary macro refreshed every 8 cycles, a dual layer has several rounds (partial sums) and refreshes."""
    for seed in range(40):
        p = random_dualpath_program(seed, SMALL_TERN, max_hw=6, max_channels=9)
        c = ReferenceEmulator(p).run(random_images(p, 1, seed)).counters
        if any(x.tern_tiles > 1 and x.refresh_events for x in c):
            return
    pytest.fail("no random program with several ternary tiles and refresh events")


def test_counter_names_agree():
    assert DUAL_EXTRA == TERN_PER_IMAGE


@st.composite
def _dual_presets(draw):
    """A random preset with the second macro type (SRAM part of tiny-64 / sun-mars-256, random ternary geometry)."""
    base = get_preset(draw(st.sampled_from(["tiny-64", "sun-mars-256"])))
    a = draw(st.sampled_from([8, 16, 32, 64]))
    return dataclasses.replace(base, name="prop", tern_rows_active=a, tern_rows=a << draw(st.integers(0, 2)),
                               tern_cols=2 << draw(st.integers(0, 4)), tern_n_macros=1 << draw(st.integers(0, 2)),
                               tern_refresh_cycles=1 << draw(st.integers(0, 12)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(preset=_dual_presets(), seed=st.integers(0, 2**32 - 1))
def test_property_reference_equals_dense_model_and_formulas(preset, seed):
    p = random_dualpath_program(seed, preset, max_hw=5, max_channels=8)
    imgs = random_images(p, 2, seed)
    res = ReferenceEmulator(p).run(imgs)
    env = _independent(p, imgs)
    assert np.array_equal(res.outputs, env[p.output_tensor].reshape(res.outputs.shape))
    for layer, got in zip(p.layers, res.counters):
        assert got.as_dict() == _expected_counters(layer, p, env, 2).as_dict(), layer.name
    # counters add over batches like every per-image counter (§7): one call == two calls
    halves = [ReferenceEmulator(p).run(imgs[i:i + 1]).counters for i in range(2)]
    assert [(a + b).as_dict() for a, b in zip(*halves)] == [c.as_dict() for c in res.counters]
