"""Hybrid mode (architecture.md §9) in the HLS kernel: csim == ReferenceEmulator, bit for bit.

Property tests (hypothesis, derandomized) over random hybrid programs of every preset (so every
ADC width the presets have: 4-bit on 16 rows, 5-bit on 32 and 64 rows), random level tables,
thresholds, saliency planes, noise on and off with random seeds, and image_base: outputs, every
tensor and every counter (the hybrid ones included). Batching invariance with noise on, the
synthesized datapath (-DHCIM_HW_DATAPATH) on hybrid programs, and the kernel's refusal of bad
hybrid sections with status HYBRID (same class as the host's verdict).
"""
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hybridcim.emulator import ReferenceEmulator
from hybridcim.program import InvalidProgramError, decode, encode
from hybridcim.program.builder import make_hybrid
from hybridcim.program.format import HEADER, LAYER
from hybridcim.program.hybrid import HybridParams
from hybridcim.runtime.csim_device import CSimDevice

from csim_compare import assert_tensors_equal
from hybridcim.runtime.errors import STATUS, KernelError
from hybridcim.zoo import random_images
from hybridcim.zoo.fuzz import random_hybrid_program, reseal

PRESETS = ["tiny-64", "sun-mars-256", "wide-512"]


def _hybrid_layers(prog):
    return [l for l in prog.layers if l.mode == 1]


def assert_same_as_reference(prog, dev, images, image_base=0):
    """Every tensor, the outputs and every counter of csim == the reference emulator's."""
    ref = ReferenceEmulator(prog).run(images, trace=True, image_base=image_base)
    dev.reset_counters()
    assert_tensors_equal(prog, ref.tensors, dev.trace(images, image_base=image_base))
    for g, w in zip(dev.counters, ref.counters, strict=True):
        diff = {k: (w.as_dict()[k], v) for k, v in g.as_dict().items() if v != w.as_dict()[k]}
        assert not diff, f"layer {g.layer!r}: counters differ (expected, got): {diff}"
    dev.reset_counters()
    assert np.array_equal(dev.run(images, image_base=image_base), ref.outputs)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), preset=st.sampled_from(PRESETS), n=st.integers(1, 2),
       image_base=st.sampled_from([0, 1, 77, 2**32 - 3]), noise=st.booleans())
def test_csim_equals_reference_on_random_hybrid_programs(csim_lib, seed, preset, n, image_base, noise):
    csim_lib(preset)
    prog = random_hybrid_program(seed, preset, noise=noise)
    dev = CSimDevice(preset)
    dev.load(prog)
    assert_same_as_reference(prog, dev, random_images(prog, n, seed), image_base)


@pytest.mark.parametrize("preset", PRESETS)
def test_hybrid_counters_move_and_add_up(csim_lib, preset):
    """Negative/positive: the hybrid counters are not all zero, and per layer digital + analog +
    skipped column reads equal the digital mode's reads (architecture.md §9.7)."""
    csim_lib(preset)
    seen = 0
    for seed in range(40):
        prog = random_hybrid_program(seed, preset)
        if not _hybrid_layers(prog):
            continue
        digital = make_hybrid(prog, {l.name: None for l in _hybrid_layers(prog)})
        images = random_images(prog, 1, seed)
        dev = CSimDevice(preset)
        dev.load(prog)
        dev.run(images)
        hyb = dev.counters
        dev.load(digital)
        dev.run(images)
        for h, d, l in zip(hyb, dev.counters, prog.layers):
            assert h.digital_column_reads + h.analog_column_reads + h.skipped_bitplanes == d.digital_column_reads
            assert h.adc_conversions == h.analog_column_reads
            if l.mode == 1:
                assert h.saliency_ops > 0 or d.units_present == 0
                assert sum(getattr(h, f"decisions_level{k}") for k in range(8)) > 0 or d.units_present == 0
                seen += h.analog_column_reads > 0
            else:
                assert h.saliency_ops == 0 and h.analog_column_reads == 0
        if seen >= 2:
            break
    assert seen >= 2


@settings(max_examples=10, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), preset=st.sampled_from(PRESETS), base=st.integers(0, 1000))
def test_noisy_runs_do_not_depend_on_batching(csim_lib, seed, preset, base):
    """One call of N images == N calls of one image with image_base = base + k (noise on)."""
    csim_lib(preset)
    rng = np.random.default_rng(seed)
    prog = random_hybrid_program(rng, preset, noise=True)
    params = {l.name: dataclasses.replace(l.hybrid, noise_pairs=max(1, l.hybrid.noise_pairs), noise_shift=2)
              for l in _hybrid_layers(prog)}
    if params:
        prog = make_hybrid(prog, params)
    images = random_images(prog, 4, seed)
    one = CSimDevice(preset, batch_size=64)
    one.load(prog)
    together = one.run(images, image_base=base)
    split = CSimDevice(preset, batch_size=1)
    split.load(prog)
    assert np.array_equal(split.run(images, image_base=base), together)
    singles = np.concatenate([one.run(images[k:k + 1], image_base=base + k) for k in range(4)])
    assert np.array_equal(singles, together)


def test_noise_depends_on_the_global_image_index(csim_lib):
    """Negative case: the same image at another image_base gets other noise (some output moves)."""
    csim_lib("tiny-64")
    for seed in range(30):
        prog = random_hybrid_program(seed, "tiny-64")
        layers = _hybrid_layers(prog)
        if not layers:
            continue
        prog = make_hybrid(prog, {l.name: HybridParams((0,), (15,), (), 1, 64, 8, seed) for l in layers})
        dev = CSimDevice("tiny-64")
        dev.load(prog)
        images = random_images(prog, 1, seed)
        a, b = dev.trace(images, image_base=0), dev.trace(images, image_base=1)
        if any(not np.array_equal(a[k], b[k]) for k in a):
            return
    pytest.fail("noise never depended on image_base")


@settings(max_examples=12, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), preset=st.sampled_from(["tiny-64", "sun-mars-256"]))
def test_synthesis_datapath_equals_reference_on_hybrid_programs(hw_datapath_lib, seed, preset):
    """The one general datapath synthesis uses (all 8 planes, the per-pair path mask) == reference."""
    prog = random_hybrid_program(seed, preset)
    dev = CSimDevice(preset, library=hw_datapath_lib[preset])
    dev.load(prog)
    assert_same_as_reference(prog, dev, random_images(prog, 2, seed), image_base=seed % 1000)


# ---- bad hybrid sections: the kernel names them (status HYBRID), the host refuses them too ----

def _hybrid_image():
    for seed in range(50):
        prog = random_hybrid_program(seed, "tiny-64", noise=False)
        if _hybrid_layers(prog):
            return prog, bytearray(encode(prog))
    raise AssertionError("no hybrid program")


def _layer_record(image, i):
    loff = HEADER.unpack_from(image, 0)[18]
    return loff + LAYER.size * i


@pytest.mark.parametrize("what, offset, value", [
    ("n_levels 0", 0, 0), ("n_levels 9", 0, 9), ("sal_planes 0", 1, 0), ("sal_planes 9", 1, 9),
    ("noise_pairs 65", 2, 65), ("noise_shift 9", 3, 9), ("reserved byte 8", 8, 1), ("reserved byte 63", 63, 1),
    ("digital_depth 16", 44, 16), ("keep_depth entry past T", 59, 1)])
def test_bad_hybrid_section_is_status_hybrid(csim_lib, what, offset, value):
    csim_lib("tiny-64")
    prog, image = _hybrid_image()
    i = next(k for k, l in enumerate(prog.layers) if l.mode == 1)
    off = int.from_bytes(image[_layer_record(image, i) + 68:_layer_record(image, i) + 72], "little")
    image[off + offset] = value
    bad = reseal(image)
    dev = CSimDevice("tiny-64")
    with pytest.raises(KernelError) as kernel:
        dev.load_image(bad)
    assert (kernel.value.code, kernel.value.detail) == (12, i), what
    assert "HYBRID" in str(kernel.value) and f"layer {i}" in str(kernel.value)
    with pytest.raises(InvalidProgramError, match="hybrid"):
        decode(bad, limits=dev.info)
    assert isinstance(kernel.value, STATUS[12][2])


def test_hybrid_record_rules_follow_the_reader(csim_lib):
    """Mode 1 in a format-1.0 image or on a pool, off_hybrid outside the image, and a nonzero
    off_hybrid in a digital layer: refused by both readers with the same class."""
    csim_lib("tiny-64")
    prog, image = _hybrid_image()
    i = next(k for k, l in enumerate(prog.layers) if l.mode == 1)
    pool = next((k for k, l in enumerate(prog.layers) if not l.op.is_cim), None)
    digital = next((k for k, l in enumerate(prog.layers) if l.op.is_cim and l.mode == 0), None)
    cases = []
    old = bytearray(image)
    old[10:12] = (0).to_bytes(2, "little")  # version_minor 0: mode 1 unknown
    cases.append(("format 1.0", old, 8))
    far = bytearray(image)
    far[_layer_record(image, i) + 68:_layer_record(image, i) + 72] = (len(image) - 8).to_bytes(4, "little")
    cases.append(("off_hybrid past the end", far, 12))
    if pool is not None:
        p = bytearray(image)
        p[_layer_record(image, pool) + 1] = 1
        cases.append(("mode 1 on a pool", p, 8))
    if digital is not None:
        d = bytearray(image)
        d[_layer_record(image, digital) + 68] = 8
        cases.append(("off_hybrid in a digital layer", d, 8))
    dev = CSimDevice("tiny-64")
    for what, bad, code in cases:
        bad = reseal(bad)
        with pytest.raises(KernelError) as kernel:
            dev.load_image(bad)
        assert kernel.value.code == code, (what, kernel.value)
        with pytest.raises(InvalidProgramError):
            decode(bad, limits=dev.info)


def test_old_kernel_refuses_hybrid_programs_before_any_call(csim_lib, monkeypatch):
    """A device whose kernel predates hybrid mode refuses a hybrid program with the reason."""
    from hybridcim.program.errors import UnsupportedModeError
    csim_lib("tiny-64")
    prog, _ = _hybrid_image()
    dev = CSimDevice("tiny-64")
    monkeypatch.setattr(dev.lib, "info", dataclasses.replace(dev.lib.info, kernel_minor=2))
    with pytest.raises(UnsupportedModeError, match="1.2 predates hybrid mode"):
        dev.load(prog)


def test_emulator_device_runs_hybrid_programs_like_csim(csim_lib):
    """The fast-emulator device takes hybrid programs too (same bits as csim, noise keyed by image_base)."""
    from hybridcim.runtime.emulator_device import EmulatorDevice
    csim_lib("tiny-64")
    prog = next(p for p in (random_hybrid_program(s, "tiny-64") for s in range(40))
                if any(l.mode == 1 and l.hybrid.noise_pairs for l in p.layers))
    images = random_images(prog, 3, 1)
    emu, dev = EmulatorDevice("tiny-64", backend="numpy"), CSimDevice("tiny-64")
    emu.load(prog)
    dev.load(prog)
    assert np.array_equal(emu.run(images, image_base=9), dev.run(images, image_base=9))
    assert [c.as_dict() for c in emu.counters] == [c.as_dict() for c in dev.counters]
