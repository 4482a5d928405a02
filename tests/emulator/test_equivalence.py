"""fast == reference, bit for bit: outputs, every intermediate tensor and every counter.

Random programs over presets, shapes, kernels, strides, paddings, precisions, pairings,
pruned filters, pruned units, residuals (unsigned and signed), pools (hypothesis, seeded).
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hybridcim.emulator import FastEmulator, InputShapeError, ReferenceEmulator, available_backends
from hybridcim.zoo import random_images, random_program

BACKENDS = available_backends()


def assert_same(ref, got, what):
    assert ref.tensors.keys() == got.tensors.keys()
    for name, want in ref.tensors.items():
        have = got.tensors[name]
        if not np.array_equal(want, have):
            idx = tuple(np.argwhere(want != have)[0])
            pytest.fail(f"{what}: tensor {name!r} differs first at NHWC {idx}: expected {want[idx]}, got {have[idx]}")
    assert np.array_equal(ref.outputs, got.outputs), what
    for a, b in zip(ref.counters, got.counters, strict=True):
        assert a.as_dict() == b.as_dict(), f"{what}: counters of {a.layer!r}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_perturbed_layer_is_caught_and_named(backend):
    """Negative case of fast vs reference: the fast emulator runs a program with one bias changed."""
    import copy
    from hybridcim.zoo import random_resnet20
    prog = random_resnet20("tiny-64", seed=3)
    bad = copy.deepcopy(prog)
    layer = bad.layer_by_name("s3b1_conv2")
    layer.bias = layer.bias + (1 << 10)
    images = random_images(prog, 2, 0)
    ref = ReferenceEmulator(prog).run(images, trace=True)
    with pytest.raises(pytest.fail.Exception, match=f"tensor '{prog.tensors[layer.out_tensor].name}' differs"):
        assert_same(ref, FastEmulator(bad, backend).run(images, trace=True), backend)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), preset=st.sampled_from(["tiny-64", "sun-mars-256", "wide-512"]),
       n=st.integers(1, 4))
def test_fast_equals_reference(seed, preset, n):
    prog = random_program(seed, preset)
    images = random_images(prog, n, seed)
    ref = ReferenceEmulator(prog).run(images, trace=True)
    for backend in BACKENDS:
        emu = FastEmulator(prog, backend)
        assert_same(ref, emu.run(images, trace=True), f"{backend} seed={seed}")
        assert np.array_equal(emu.run(images).outputs, ref.outputs), f"{backend} seed={seed} untraced"


def test_batch_split_invariance():
    prog = random_program(11, "tiny-64")
    images = random_images(prog, 10, 1)
    emu = FastEmulator(prog)
    whole = emu.run(images).outputs
    parts = np.concatenate([emu.run(images[i:i + 3]).outputs for i in range(0, 10, 3)])
    assert np.array_equal(whole, parts)


def test_input_checks():
    prog = random_program(5, "tiny-64")
    t = prog.input
    emu = FastEmulator(prog)
    with pytest.raises(InputShapeError, match="NCHW"):
        emu.run(np.zeros((1, t.height, t.width, t.channels), dtype=np.uint8) if t.channels != t.height else
                np.zeros((1, t.channels + 1, t.height, t.width), dtype=np.uint8))
    with pytest.raises(InputShapeError, match="integers"):
        emu.run(np.zeros((1, t.channels, t.height, t.width), dtype=np.float32))
    bad = np.full((1, t.channels, t.height, t.width), t.fmt.max + 1, dtype=np.int32)
    with pytest.raises(InputShapeError, match="values"):
        emu.run(bad)


def test_unknown_backend():
    with pytest.raises(ValueError, match="not available"):
        FastEmulator(random_program(1), backend="cuda")


def test_torch_backend_refuses_an_inexact_convolution(monkeypatch):
    pytest.importorskip("torch")
    from hybridcim.emulator import torch_backend
    prog = random_program(4, "tiny-64")
    real = torch_backend.tf.conv2d
    monkeypatch.setattr(torch_backend.tf, "conv2d", lambda *a, **k: real(*a, **k) + 1e-3)  # a lossy algorithm
    with pytest.raises(torch_backend.ExactnessError, match="not exact"):
        FastEmulator(prog, "torch").run(random_images(prog, 2))


def test_large_avgpool_output_stays_exact():
    """A pool sum >= 2^24 into a 31-bit output: float32 would round it (review finding)."""
    from hybridcim.program import ProgramBuilder
    from hybridcim.spec import get_preset
    b = ProgramBuilder(get_preset("tiny-64"))
    x = b.input("x", 3, 4, 4)
    w = np.full((2, 3, 3, 3), 127)
    y = b.conv("c", x, w, [8, 8], [-7, -7], pad=1, out_bits=24, bias=[1, 3])
    b.avgpool("gap", y, shift=0, out_bits=31)
    prog = b.build()
    images = np.random.default_rng(0).integers(0, 256, size=(2, 3, 4, 4)).astype(np.uint8)
    ref = ReferenceEmulator(prog).run(images).outputs
    assert ref.max() >= 1 << 24
    for backend in BACKENDS:
        assert np.array_equal(FastEmulator(prog, backend).run(images).outputs, ref), backend
