"""Hybrid mode (architecture.md §9) in the reference emulator: hand-computed vectors for the ADC,
the pair split per precision, the saliency decision and the skip level; ASiM's static split;
Philox4x32-10 known answers; all-digital hybrid == digital mode bit for bit (hypothesis)."""
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hybridcim.cim.hybrid import (PATH_ANALOG, PATH_DIGITAL, PATH_SKIPPED, adc_code, adc_count, analog_noise,
                                  level_of, noise_counter, noise_key, pair_depth, pair_path)
from hybridcim.cim.philox import philox4x32
from hybridcim.emulator import FastEmulator, ReferenceEmulator
from hybridcim.emulator.fast import available_backends
from hybridcim.emulator.counters import static_counters
from hybridcim.program.builder import ProgramBuilder, make_hybrid
from hybridcim.program.codec import decode, encode
from hybridcim.program.hybrid import HybridParams
from hybridcim.spec.hardware import HardwarePreset, get_preset
from hybridcim.zoo.fuzz import random_hybrid_program, random_program

# Random123 kat_vectors: counter (4 words), key (2 words) -> output (4 words)
KAT = [((0, 0, 0, 0), (0, 0), (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
       ((0xffffffff,) * 4, (0xffffffff,) * 2, (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
       ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
        (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1))]


@pytest.mark.parametrize("ctr,key,want", KAT)
def test_philox4x32_10_known_answers(ctr, key, want):
    assert tuple(philox4x32(np.array(ctr, np.uint32), np.array(key, np.uint32)).tolist()) == want


def test_philox_broadcasts_like_single_calls():
    ctr = np.array([c for c, _, _ in KAT], np.uint32)
    key = np.array([k for _, k, _ in KAT], np.uint32)
    assert [tuple(r) for r in philox4x32(ctr, key).tolist()] == [w for _, _, w in KAT]


@pytest.mark.parametrize("rows,adc,n16,code,count", [
    # sun-mars-256: A = 64, 5-bit ADC: s = 1, a step of 2 counts, round half to even, clip at 31
    (64, 5, [0, 16, 32, 48, 80, 63 * 16, 64 * 16], [0, 0, 1, 2, 2, 31, 31], [0, 0, 2, 4, 4, 62, 62]),
    # tiny-64: A = 16, 4-bit ADC: s = 0, exact but a full column (16) clips to 15
    (16, 4, [0, 7 * 16, 15 * 16, 16 * 16], [0, 7, 15, 15], [0, 7, 15, 15]),
    # more ADC bits than log2(A) + 1: exact over 0..A
    (64, 8, [0, 64 * 16], [0, 64], [0, 64]),
    # noise in 1/16 counts: 3 counts + 9/16 = 3.5625 -> 1.78 steps -> 2; below 0 clips to 0
    (64, 5, [57, -40], [2, 0], [4, 0]),
])
def test_adc_transfer_hand_vectors(rows, adc, n16, code, count):
    c = adc_code(np.array(n16), rows, adc)
    assert c.tolist() == code and adc_count(c, rows, adc).tolist() == count


def test_pair_split_counts_from_each_filters_msb():
    """A 2-bit and an 8-bit filter side by side, 4-bit input, level (D=3, E=5)."""
    D, E, X = 3, 5, 4
    got = {p: [[int(pair_path(pair_depth(p, j, X, i), D, E)) for i in range(X - 1, -1, -1)]
               for j in range(p - 1, -1, -1)] for p in (2, 8)}
    d, a, s = PATH_DIGITAL, PATH_ANALOG, PATH_SKIPPED
    # rows: weight plane MSB first; columns: input plane MSB first
    assert got[2] == [[d, d, d, a], [d, d, a, a]]
    assert got[8][:3] == [[d, d, d, a], [d, d, a, a], [d, a, a, s]]
    assert got[8][-1] == [s, s, s, s]  # LSB weight plane of the 8-bit filter: depths 7..10, all skipped


@pytest.mark.parametrize("wbit,xbit", [(2, 4), (4, 4), (8, 8), (8, 4), (2, 8)])
def test_static_boundary_reproduces_asim_split(wbit, xbit):
    """ASiM (Keio-CSG/ASiM module/asim_conv.py) runs weight bit i x input bit j in analog when
    i + j <= wbit + xbit - hybrid_levels - 2; the spec's static boundary D = hybrid_levels, E = 15."""
    for levels in range(0, wbit + xbit):
        for i in range(wbit):
            for j in range(xbit):
                asim_analog = i + j <= wbit + xbit - levels - 2
                path = int(pair_path(pair_depth(wbit, i, xbit, j), levels, 15))
                assert path == (PATH_ANALOG if asim_analog else PATH_DIGITAL), (levels, i, j)


def test_level_is_the_number_of_thresholds_reached():
    assert level_of(np.array([0, 4, 5, 39, 40, 10 ** 6]), (5, 40)).tolist() == [0, 0, 1, 1, 2, 2]


def _one_pixel_program(params, preset="tiny-64"):
    """1x1 conv over 16 channels (K = 16 = one row block of tiny-64), 4-bit input, one 2-bit filter of
    weights +1, shift 0, output 0..255: the output is the accumulator itself."""
    b = ProgramBuilder(get_preset(preset) if isinstance(preset, str) else preset, name="hand")
    x = b.input("x", channels=16, height=1, width=1, bits=4, exponent=0)
    b.conv("c", x, np.ones((1, 16, 1, 1), np.int64), precision=[2], shift=[0], out_bits=8, hybrid=params)
    return b.build()


def test_saliency_picks_the_level_and_skip_level_skips():
    """Saliency = Σ (x >> (4 - 2)) over the 16 rows; threshold 20: level 0 skips every pair, level 1 is
    all digital. x = 3 everywhere: saliency 0 -> skipped, output 0; x = 12: saliency 48 -> exact 192."""
    p = _one_pixel_program(HybridParams((0, 15), (0, 15), (20,), sal_planes=2))
    imgs = np.array([3, 12], np.uint8).repeat(16).reshape(2, 16, 1, 1)
    r = ReferenceEmulator(p).run(imgs)
    assert r.outputs.ravel().tolist() == [0, 192]
    c = r.counters[0]
    assert c.boundary_histogram == [1, 1, 0, 0, 0, 0, 0, 0]
    assert (c.digital_column_reads, c.analog_column_reads, c.skipped_bitplanes) == (4 * 2, 0, 4 * 2)
    assert c.saliency_ops == 2 * 1 * 2  # 2 planes x 1 row block x 2 pixels


def test_all_analog_hand_vector():
    """x = 3 (planes 0, 1 set), w = +1 (plane 0 set, MSB plane 1 clear): plane 0 reads n = 16 at input
    planes 0 and 1; tiny-64's 4-bit ADC clips 16 to 15: acc = 15 * (1 + 2) = 45, not 48."""
    p = _one_pixel_program(HybridParams.static(0))
    r = ReferenceEmulator(p).run(np.full((1, 16, 1, 1), 3, np.uint8))
    assert r.outputs.ravel().tolist() == [45]
    c = r.counters[0]
    assert (c.digital_column_reads, c.analog_column_reads, c.adc_conversions, c.skipped_bitplanes) == (0, 8, 8, 0)


WIDE_ADC = HardwarePreset("adc5-16", 64, 64, 16, 8, 2, 32, 5, (2, 4, 8))  # 5-bit ADC over 16 rows: exact


def _images(p, n, rng):
    t = p.input
    return rng.integers(0, t.fmt.max + 1, size=(n, t.channels, t.height, t.width)).astype(np.uint8)


def _cim(counters):
    return [c for c in counters if c.macs]


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 2 ** 31), st.sampled_from([(15, 15), (0, 15)]))
def test_lossless_hybrid_equals_digital(seed, depths):
    """All pairs digital (D = 15) on any preset, or all analog (D = 0) through an ADC that resolves every
    count and no noise: the outputs equal digital mode's bit for bit and the column reads add up."""
    preset = "tiny-64" if depths[0] == 15 else WIDE_ADC
    p = random_program(seed, preset, max_convs=2, max_hw=5, max_channels=6)
    h = make_hybrid(p, HybridParams.static(*depths, sal_planes=1))
    imgs = _images(p, 2, np.random.default_rng(seed))
    r0, r1 = ReferenceEmulator(p).run(imgs), ReferenceEmulator(decode(encode(h))).run(imgs)
    assert np.array_equal(r0.outputs, r1.outputs)
    for c0, c1, layer in zip(r0.counters, r1.counters, h.layers):
        d0, d1 = c0.as_dict(), c1.as_dict()
        if not layer.op.is_cim:
            assert d0 == d1
            continue
        digital = depths[0] == 15
        assert c1.digital_column_reads == (c0.digital_column_reads if digital else 0)
        assert c1.analog_column_reads == c1.adc_conversions == (0 if digital else c0.digital_column_reads)
        assert c1.skipped_bitplanes == 0
        groups = int(layer.present.any(axis=1).sum())
        assert c1.decisions_level0 == groups * c1.pixels * c1.images
        changed = {"digital_column_reads", "analog_column_reads", "adc_conversions", "saliency_ops",
                   "decisions_level0"}
        assert {k: v for k, v in d0.items() if k not in changed} == {k: v for k, v in d1.items() if k not in changed}


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2 ** 31))
def test_random_hybrid_counts_add_up_and_batches_split(seed):
    """Random hybrid programs (levels, saliency, noise): every used column read is digital, analog or
    skipped; a batch split with image_base gives the same bits as one call (noise keyed per image)."""
    p = random_hybrid_program(seed, max_convs=2, max_hw=5, max_channels=6)
    imgs = _images(p, 3, np.random.default_rng(seed))
    emu = ReferenceEmulator(p)
    r = emu.run(imgs, image_base=7)
    for c, layer in zip(r.counters, p.layers):
        if layer.op.is_cim:
            ref = static_counters(dataclasses.replace(layer, mode=0, hybrid=None), p, 3)
            assert c.digital_column_reads + c.analog_column_reads + c.skipped_bitplanes == ref.digital_column_reads
            assert c.adc_conversions == c.analog_column_reads
            if layer.mode:
                assert sum(c.boundary_histogram) == int(layer.present.any(axis=1).sum()) * c.pixels * 3
                assert c.saliency_ops == static_counters(layer, p, 3).saliency_ops
    a, b = emu.run(imgs[:1], image_base=7), emu.run(imgs[1:], image_base=8)
    assert np.array_equal(np.concatenate([a.outputs, b.outputs]), r.outputs)


def test_noise_changes_with_seed_and_image_index():
    p = _one_pixel_program(HybridParams.static(0, noise_pairs=64, noise_shift=5, noise_seed=1))
    imgs = np.full((1, 16, 1, 1), 5, np.uint8)
    emu = ReferenceEmulator(p)
    outs = {int(emu.run(imgs, image_base=k).outputs[0, 0]) for k in range(20)}
    assert len(outs) > 1  # noise reaches the output
    q = make_hybrid(p, {"c": HybridParams.static(0, noise_pairs=64, noise_shift=5, noise_seed=2)})
    again = [int(ReferenceEmulator(q).run(imgs, image_base=k).outputs[0, 0]) for k in range(20)]
    assert again != [int(emu.run(imgs, image_base=k).outputs[0, 0]) for k in range(20)]


def test_noise_is_a_centered_binomial():
    ctr = noise_counter(np.arange(20000), 3, 5, 0, 1, 2)
    e = analog_noise(noise_key(9, 4), ctr, 32, 0)
    assert abs(e.mean()) < 0.1 and abs(e.var() - 16) < 0.8 and np.abs(e).max() <= 32
    assert np.array_equal(analog_noise(noise_key(9, 4), ctr, 32, 2), e << 2)
    assert not analog_noise(noise_key(9, 4), ctr, 0, 3).any()


def test_fast_emulator_and_emulator_device_run_hybrid_layers_like_the_reference():
    """Hybrid mode is implemented by the fast emulator (both backends) and so by the emulator device."""
    from hybridcim.runtime.emulator_device import EmulatorDevice
    p = _one_pixel_program(HybridParams.static(2))
    x = np.random.default_rng(3).integers(0, 16, (5, 16, 1, 1)).astype(np.uint8)
    want = ReferenceEmulator(p).run(x)
    for backend in available_backends():
        got = FastEmulator(p, backend=backend).run(x)
        assert np.array_equal(got.outputs, want.outputs), backend
        assert [c.as_dict() for c in got.counters] == [c.as_dict() for c in want.counters], backend
    dev = EmulatorDevice()
    dev.load(p)
    assert np.array_equal(dev.run(x), want.outputs)


def _independent_hybrid_layer(layer, program, x, layer_index, image_base):
    """architecture.md §9 written again from the text, densely: per filter, pair and row block."""
    from hybridcim.emulator.ops import im2col
    from hybridcim.program.weights import decode_weight_matrix
    pr, hp = program.preset, layer.hybrid
    a, gw, bits = pr.rows_active, pr.group_width, program.tensors[layer.in_tensor].bits
    w = decode_weight_matrix(layer.precision, layer.col_filter, layer.col_plane, layer.present, layer.words,
                             layer.k_rows, a)
    cols = im2col(x, layer.kh, layer.kw, layer.stride, layer.pad)
    n, ho, wo, k = cols.shape
    xs = cols.reshape(n * ho * wo, k)
    r = layer.n_rowblocks
    acc = np.zeros((n * ho * wo, layer.n_filters), np.int64)
    for f in range(layer.n_filters):
        p = int(layer.precision[f])
        if not p:
            continue
        g, c0 = [(g, c) for g in range(layer.n_groups) for c in range(gw)
                 if layer.col_filter[g, c] == f and layer.col_plane[g, c] == 0][0]
        rows = np.concatenate([np.arange(b * a, min(k, (b + 1) * a)) for b in range(r) if layer.present[g, b]] or
                              [np.zeros(0, np.int64)])
        sal = (xs[:, rows] >> (bits - hp.sal_planes)).sum(axis=1)
        lev = (sal[:, None] >= np.array(hp.thresholds, np.int64)).sum(axis=1)
        dd, kd = np.array(hp.digital_depth)[lev], np.array(hp.keep_depth)[lev]
        code = w[f] & ((1 << p) - 1)
        for b in range(r):
            if not layer.present[g, b]:
                continue
            blk = slice(b * a, min(k, (b + 1) * a))
            for i in range(bits):
                for j in range(p):
                    cnt = (((xs[:, blk] >> i) & 1) * ((code[blk] >> j) & 1)).sum(axis=1)
                    d = (p - 1 - j) + (bits - 1 - i)
                    n16 = cnt * 16
                    if hp.noise_pairs:
                        m = np.arange(len(xs))
                        n16 = n16 + analog_noise(noise_key(hp.noise_seed, layer_index), noise_counter(
                            image_base + m // (ho * wo), m % (ho * wo), g * gw + c0 + j, b, i, j),
                            hp.noise_pairs, hp.noise_shift)
                    step = max(0, a.bit_length() - 1 - pr.adc_bits)
                    q, rem = n16 >> (4 + step), n16 & ((1 << (4 + step)) - 1)
                    half = 1 << (3 + step)
                    q = q + ((rem > half) | ((rem == half) & (q & 1 == 1)))
                    analog = np.clip(q, 0, (1 << pr.adc_bits) - 1) << step
                    v = np.where(d < dd, cnt, np.where(d < kd, analog, 0))
                    acc[:, f] += (-1 if j == p - 1 else 1) * (v << (i + j))
    return acc.reshape(n, ho, wo, layer.n_filters)


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2 ** 31), st.sampled_from(["tiny-64", "sun-mars-256"]))
def test_reference_matches_an_independent_reading_of_the_spec(seed, preset):
    """Lossy random hybrid layers (levels, skips, ADC, noise): the reference emulator's accumulators,
    seen through requant, equal a dense re-implementation of §9 written from the text."""
    from hybridcim.cim.requant import requantize
    p = random_hybrid_program(seed, preset, max_convs=2, max_hw=5, max_channels=6)
    imgs = _images(p, 2, np.random.default_rng(seed))
    tr = ReferenceEmulator(p).run(imgs, trace=True, image_base=seed % 1000).tensors
    for li, layer in enumerate(p.layers):
        if layer.mode != 1:
            continue
        x = tr[p.tensors[layer.in_tensor].name]
        acc = _independent_hybrid_layer(layer, p, x, li, seed % 1000)
        res = tr[p.tensors[layer.res_tensor].name] if layer.res_tensor is not None else None
        y = requantize(acc, layer.bias, layer.shift, layer.clamp_lo, layer.clamp_hi, res,
                       layer.res_shift if res is not None else None)
        assert np.array_equal(y, tr[p.tensors[layer.out_tensor].name]), layer.name
