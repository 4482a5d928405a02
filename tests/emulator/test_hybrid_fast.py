"""Hybrid mode (architecture.md §9) in the fast emulator: numpy, torch int8 and torch float engines equal
the reference emulator bit for bit (outputs and every counter) over random hybrid programs, presets,
ADC widths, level tables, saliency planes, skip levels, noise and image_base; batching invariance with
noise on; the vectorized Philox draws equal the reference's."""
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hybridcim.cim.hybrid import analog_noise, analog_noise_words, noise_counter, noise_key
from hybridcim.cim.philox import philox4x32, philox4x32_u32, philox4x32_words
from hybridcim.emulator import FastEmulator, ReferenceEmulator
from hybridcim.emulator.hybrid_engine import noise_words
from hybridcim.program.builder import ProgramBuilder, make_hybrid
from hybridcim.program.errors import UnsupportedModeError
from hybridcim.program.hybrid import HybridParams
from hybridcim.spec.hardware import HardwarePreset, get_preset
from hybridcim.zoo.fuzz import random_hybrid_program

sys.path.insert(0, str(Path(__file__).parent))
from fast_executors import HAS_TORCH, assert_same, fast_executors  # noqa: E402

PRESETS = ["tiny-64", "sun-mars-256", "wide-512",
           HardwarePreset("adc3-64", 256, 256, 64, 8, 4, 32, 3, (2, 4, 8)),   # step of 8 counts
           HardwarePreset("adc8-32", 128, 128, 32, 8, 2, 32, 8, (2, 4, 8)),   # exact ADC
           HardwarePreset("adc2-8", 64, 64, 8, 4, 2, 32, 2, (2, 4))]          # A = 8, tiny ADC


def _images(p, n, rng):
    t = p.input
    return rng.integers(0, t.fmt.max + 1, size=(n, t.channels, t.height, t.width)).astype(np.uint8)


def _check(seed, preset, base, n_images=3, **kw):
    p = random_hybrid_program(seed, get_preset(preset) if isinstance(preset, str) else preset, **kw)
    imgs = _images(p, n_images, np.random.default_rng(seed))
    ref = ReferenceEmulator(p).run(imgs, image_base=base)
    for name, emu in fast_executors(p):
        assert_same(ref, emu.run(imgs, image_base=base), name)
    return p, imgs, ref


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2 ** 31), st.sampled_from(PRESETS), st.integers(0, 2 ** 32 - 4))
def test_fast_hybrid_equals_reference(seed, preset, base):
    _check(seed, preset, base, max_convs=2, max_hw=5, max_channels=6)


@pytest.mark.slow
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2 ** 31), st.sampled_from(PRESETS), st.integers(0, 2 ** 32 - 4))
def test_fast_hybrid_equals_reference_many(seed, preset, base):
    _check(seed, preset, base, max_convs=3, max_hw=7, max_channels=10)


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 2 ** 31), st.sampled_from(PRESETS[:3]))
def test_noisy_batches_split_anywhere(seed, preset):
    """Noise keyed by the global image index: any batch split with image_base gives the same bits,
    and the counters of the parts add up to the whole's."""
    p = random_hybrid_program(seed, preset, max_convs=2, max_hw=5, max_channels=6)
    noisy = {l.name: dataclasses.replace(l.hybrid, noise_pairs=64, noise_shift=5) for l in p.layers if l.mode == 1}
    if noisy:
        p = make_hybrid(p, noisy)
    imgs = _images(p, 5, np.random.default_rng(seed))
    for _, emu in fast_executors(p):
        whole = emu.run(imgs, image_base=100)
        a, b = emu.run(imgs[:2], image_base=100), emu.run(imgs[2:], image_base=102)
        assert np.array_equal(whole.outputs, np.concatenate([a.outputs, b.outputs]))
        for w, x, y in zip(whole.counters, a.counters, b.counters):
            assert w.as_dict() == (x + y).as_dict()


def test_chunks_of_one_image_give_the_same_bits(monkeypatch):
    """The engines' pixel chunks (bounded memory) do not change the result."""
    p, imgs, ref = _check(7, "tiny-64", 5, n_images=4, max_convs=2, max_hw=5, max_channels=6)
    for _, emu in fast_executors(p):
        for hl in emu.plan.hybrid.values():
            monkeypatch.setattr(hl, "chunk_pixels", 1)
        assert_same(ref, emu.run(imgs, image_base=5), "chunked")


def _one_pixel_program(params, preset="tiny-64"):
    b = ProgramBuilder(get_preset(preset), name="hand")
    x = b.input("x", channels=16, height=1, width=1, bits=4, exponent=0)
    b.conv("c", x, np.ones((1, 16, 1, 1), np.int64), precision=[2], shift=[0], out_bits=8, hybrid=params)
    return b.build()


def test_all_analog_hand_vector_on_every_engine():
    """x = 3, w = +1 over 16 rows of tiny-64: the 4-bit ADC clips 16 to 15: acc = 15 * (1 + 2) = 45."""
    p = _one_pixel_program(HybridParams.static(0))
    for name, emu in fast_executors(p):
        r = emu.run(np.full((1, 16, 1, 1), 3, np.uint8))
        assert r.outputs.ravel().tolist() == [45], name
        c = r.counters[0]
        assert (c.digital_column_reads, c.analog_column_reads, c.adc_conversions, c.skipped_bitplanes) == (0, 8, 8, 0)


def test_saliency_skip_level_on_every_engine():
    p = _one_pixel_program(HybridParams((0, 15), (0, 15), (20,), sal_planes=2))
    imgs = np.array([3, 12], np.uint8).repeat(16).reshape(2, 16, 1, 1)
    for name, emu in fast_executors(p):
        r = emu.run(imgs)
        assert r.outputs.ravel().tolist() == [0, 192], name
        assert r.counters[0].boundary_histogram == [1, 1, 0, 0, 0, 0, 0, 0]


def test_unknown_mode_is_refused():
    p = _one_pixel_program(None)
    bad = dataclasses.replace(p, layers=[dataclasses.replace(p.layers[0], mode=3)])
    with pytest.raises(UnsupportedModeError, match=r"layer 0 \('c'\) mode 3"):
        FastEmulator(bad, backend="numpy")


def test_image_base_must_fit_u32():
    p = _one_pixel_program(HybridParams.static(2))
    with pytest.raises(ValueError, match="image_base"):
        FastEmulator(p, "numpy").run(np.zeros((2, 16, 1, 1), np.uint8), image_base=2 ** 32 - 1)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.integers(0, 2 ** 32 - 1), st.integers(0, 64), st.integers(0, 8))
def test_vectorized_noise_equals_the_reference_draw(seed, layer, pairs, shift):
    rng = np.random.default_rng(seed)
    img, pix = rng.integers(0, 2 ** 32, (40, 1)), rng.integers(0, 2 ** 20, (40, 1))
    col, w3 = rng.integers(0, 4096, (1, 6)), rng.integers(0, 1 << 12, (1, 6))
    want = analog_noise(noise_key(seed, layer), noise_counter(img, pix, col, w3 >> 8, (w3 >> 4) & 15, w3 & 15),
                        pairs, shift)
    assert np.array_equal(analog_noise_words(seed, layer, img, pix, col, w3, pairs, shift), want)
    ctr = rng.integers(0, 2 ** 32, (50, 4), dtype=np.uint64)
    words = np.stack(philox4x32_words(*ctr.T, seed, layer), -1)
    assert np.array_equal(words, philox4x32(ctr, np.array([seed, layer], np.uint32)).astype(np.uint64))
    got = noise_words(seed, layer, img, pix, col, w3, pairs, shift)
    assert got.dtype == np.int32 and np.array_equal(got, want)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.integers(1, 40), st.integers(0, 10),
       st.lists(st.integers(1, 4), min_size=3, max_size=3), st.sets(st.integers(0, 3), min_size=1))
def test_blocked_philox_equals_stacked(seed, block, rounds, dims, words):
    """philox4x32_u32 (cache blocks, round 0 before broadcasting, products' halves through views) equals
    the stacked reference for any block size (across rows and columns), broadcast pattern, round count
    and subset of output words."""
    import hybridcim.cim.philox as philox
    rng = np.random.default_rng(seed)
    shapes = [tuple(d if rng.integers(2) else 1 for d in dims)[rng.integers(0, 3):] for _ in range(4)]
    ctr = [rng.integers(0, 2 ** 32, s, dtype=np.uint64) for s in shapes]
    key = rng.integers(0, 2 ** 32, 2, dtype=np.uint64)
    want = philox4x32(np.stack(np.broadcast_arrays(*ctr), -1), key.astype(np.uint32), rounds)
    old, philox.BLOCK = philox.BLOCK, block
    try:
        got = philox4x32_u32(*ctr, int(key[0]), int(key[1]), rounds, words=tuple(sorted(words)))
    finally:
        philox.BLOCK = old
    for w, g in zip(sorted(words), got):
        assert g.dtype == np.uint32 and np.array_equal(g, want[..., w]), w



@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2 ** 31), st.sampled_from(PRESETS[:3]), st.sampled_from([0.0, 2.0]))
def test_noise_on_analog_reads_only_or_all(seed, preset, below):
    """Noise drawn at every read of a block (the analog ones used) or only at the reads analog at their
    pixel's level (a gather): the same bits as the reference, with level tables whose analog sets differ."""
    import hybridcim.emulator.hybrid_engine as he
    p = random_hybrid_program(seed, get_preset(preset), max_convs=2, max_hw=5, max_channels=6)
    tables = {l.name: HybridParams((0, 1, 3), (2, 4, 15), (3, 9), sal_planes=1, noise_pairs=24, noise_shift=4,
                                   noise_seed=seed) for l in p.layers if l.op.is_cim}
    p = make_hybrid(p, tables)
    imgs = _images(p, 3, np.random.default_rng(seed))
    ref = ReferenceEmulator(p).run(imgs, image_base=seed)
    old, he.SPARSE_NOISE_BELOW = he.SPARSE_NOISE_BELOW, below
    try:
        for name, emu in fast_executors(p):
            assert_same(ref, emu.run(imgs, image_base=seed), f"{name}, sparse below {below}")
    finally:
        he.SPARSE_NOISE_BELOW = old

@pytest.mark.skipif(not HAS_TORCH, reason="torch not installed")
@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2 ** 31), st.sampled_from(["tiny-64", "sun-mars-256"]))
def test_input_ones_counted_in_torch_equals_numpy(seed, preset):
    """input_ones counted in torch (SWAR popcount on the uint8 activations): the same integers as the
    numpy counter, compact (pruned-channel) tensors and 8-bit inputs included."""
    import hybridcim.emulator.fast as fast
    from hybridcim.zoo.fuzz import random_program
    p = random_program(seed, preset, max_convs=3, max_hw=6, max_channels=8)
    imgs = _images(p, 40, np.random.default_rng(seed))  # > one chunk of images of the torch count
    fast.INPUT_ONES_IN_TORCH = True
    try:
        a, b = FastEmulator(p, "numpy").run(imgs), FastEmulator(p, "torch").run(imgs)
    finally:
        fast.INPUT_ONES_IN_TORCH = False
    assert [c.input_ones for c in a.counters] == [c.input_ones for c in b.counters]
    assert np.array_equal(a.outputs, b.outputs)


@pytest.mark.skipif(not HAS_TORCH, reason="torch not installed")
def test_wrong_int8_counts_fall_back_to_float(monkeypatch):
    """The int8 column counts are checked against the float engine (first chunk of the first call, then
    image 0): a kernel that gives wrong counts switches the layer to float with a warning, and the
    result stays exact."""
    from hybridcim.emulator.torch_backend import int8_status
    from hybridcim.emulator.torch_hybrid import TorchHybrid
    if not int8_status()[0]:
        pytest.skip("no oneDNN int8 convolution here")
    p = _one_pixel_program(HybridParams.static(0))
    real = TorchHybrid._qconv

    def off_by_one(x, pack, ws, zp, hi):
        y = real(x, pack, ws, zp, hi)
        return y + 1 if hi is not None else y

    monkeypatch.setattr(TorchHybrid, "_qconv", staticmethod(off_by_one))
    emu = FastEmulator(p, "torch", engine="int8")
    with pytest.warns(RuntimeWarning, match="float engine"):
        r = emu.run(np.full((1, 16, 1, 1), 3, np.uint8))
    assert r.outputs.ravel().tolist() == [45]
    assert not emu._torch.hybrid[0].int8
