"""Requant and clamp are exact for every legal parameter, not only those of trained models.

Layers with clamp bounds near ±2^31 and ±2^24 (16777217 is not a float32), shifts over the
whole -31..31 range, biases at the int32 limits the accumulator bound allows, residuals with
res_shift up to 31, and global average pools with wide clamps and negative pool shifts: the
fast emulator (every backend and engine) must equal the reference emulator bit for bit.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hybridcim.emulator import FastEmulator, ReferenceEmulator, available_backends
from hybridcim.program import ProgramBuilder
from hybridcim.program.validate import validate
from hybridcim.spec import get_preset

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
BACKENDS = available_backends()

# values a clamp bound may take: the extremes, both sides of 2^24, small ones
EDGES = [INT32_MIN, INT32_MIN + 1, -(1 << 24) - 1, -(1 << 24), -(1 << 24) + 1, -1, 0, 1, 15,
         (1 << 24) - 1, 1 << 24, (1 << 24) + 1, (1 << 30) + 3, INT32_MAX - 1, INT32_MAX]
bound_values = st.one_of(st.sampled_from(EDGES), st.integers(INT32_MIN, INT32_MAX))


def _engines():
    out = [(b, None) for b in BACKENDS]
    if "torch" in BACKENDS:
        out.append(("torch", "float"))
    return out


def assert_all_equal(prog, images, what):
    ref = ReferenceEmulator(prog).run(images, trace=True)
    for backend, engine in _engines():
        kw = {} if engine is None else {"engine": engine}
        got = FastEmulator(prog, backend, **kw).run(images, trace=True)
        for name, want in ref.tensors.items():
            have = got.tensors[name]
            if not np.array_equal(want, have):
                idx = tuple(np.argwhere(want != have)[0])
                pytest.fail(f"{what} {backend}/{engine}: tensor {name!r} at NHWC {idx}: "
                            f"expected {want[idx]}, got {have[idx]}")


def test_clamp_lo_just_above_float32_integers():
    """clamp_lo = 2^24 + 1 binds for every output: the output must be 16777217, not 16777216."""
    b = ProgramBuilder(get_preset("tiny-64"))
    x = b.input("x", 2, 3, 3, bits=4)
    w = np.ones((2, 2, 1, 1), dtype=np.int64)
    b.conv("c", x, w, [2, 2], [0, 0], bias=[5, -7], out_bits=32, out_signed=True,
           clamp=((1 << 24) + 1, (1 << 24) + 5))
    prog = b.build()
    images = np.random.default_rng(0).integers(0, 16, size=(2, 2, 3, 3)).astype(np.uint8)
    assert (ReferenceEmulator(prog).run(images).outputs == (1 << 24) + 1).all()
    assert_all_equal(prog, images, "clamp_lo=2^24+1")


@st.composite
def extreme_programs(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    c = draw(st.integers(1, 3))
    bits_in = draw(st.sampled_from([1, 4, 7, 8]))
    xmax = (1 << bits_in) - 1
    shift = draw(st.lists(st.integers(-31, 31), min_size=c, max_size=c))
    use_res = draw(st.booleans())
    res_shift = draw(st.lists(st.integers(0, 31), min_size=c, max_size=c)) if use_res else None
    prec = draw(st.lists(st.sampled_from([0, 2, 4, 8]), min_size=c, max_size=c))
    w = np.zeros((c, c, 3, 3), dtype=np.int64)
    bias = []
    cap = draw(st.sampled_from([1 << 8, 1 << 20, (1 << 23) + 5, INT32_MAX]))  # small |v| with wide clamps too
    for f in range(c):
        budget = INT32_MAX >> max(0, -shift[f])  # what the accumulator bound leaves before the left shift
        if use_res:
            r = xmax << res_shift[f]
            if r > budget:  # too large a residual for this shift: lower res_shift until it fits
                while res_shift[f] and (xmax << res_shift[f]) > budget:
                    res_shift[f] -= 1
                if (xmax << res_shift[f]) > budget:
                    shift[f] = 0
                    budget = INT32_MAX
            budget -= xmax << res_shift[f]
        p = prec[f]
        if p and budget > 0:
            wmax = min((1 << (p - 1)) - 1, budget // (2 * xmax * 9 * c))
            if wmax > 0:
                w[f] = rng.integers(-wmax, wmax + 1, size=(c, 3, 3))
        budget -= int(np.abs(w[f]).sum()) * xmax
        budget = max(0, min(budget, cap >> max(0, -shift[f])))
        kind = draw(st.sampled_from(["max", "min", "any"]))
        bias.append(budget if kind == "max" else -budget if kind == "min" else int(rng.integers(-budget, budget + 1)))
    lo = draw(bound_values)
    hi = draw(st.one_of(st.sampled_from([e for e in EDGES if e >= lo]), st.integers(lo, min(lo + 9, INT32_MAX)),
                        st.integers(lo, INT32_MAX)))
    b = ProgramBuilder(get_preset("tiny-64"))
    hw = draw(st.integers(1, 4))
    x = b.input("x", c, hw, hw, bits=bits_in)
    b.conv("c", x, w, prec, shift, bias=bias, pad=1, out_bits=32, out_signed=True, clamp=(lo, hi),
           res=x if use_res else None, res_shift=res_shift)
    images = rng.integers(0, xmax + 1, size=(draw(st.integers(1, 3)), c, hw, hw)).astype(np.uint8)
    # inputs at the extremes of their range drive the accumulators to their bounds
    images[0] = draw(st.sampled_from([0, xmax]))
    return b.build(), images


@settings(max_examples=120, deadline=None, derandomize=True)
@given(extreme_programs())
def test_requant_and_clamp_exact_over_legal_extremes(case):
    prog, images = case
    assert_all_equal(prog, images, "extreme requant")


@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), pool_shift=st.integers(-31, 31), out_bits=st.integers(1, 31),
       frac=st.floats(0, 1))
def test_avgpool_clamp_exact_over_legal_extremes(seed, pool_shift, out_bits, frac):
    """Global sums up to 2^31 - 1, pool shifts -31..31, the clamp anywhere inside the output format."""
    rng = np.random.default_rng(seed)
    hw = int(rng.integers(1, 3))
    # the conv's output bits are as wide as the pool's global-sum rule allows for this pool_shift
    room = INT32_MAX >> max(-pool_shift, 0)
    mid_bits = max(1, min(8, (room // (hw * hw)).bit_length() - 1))
    if (hw * hw * ((1 << mid_bits) - 1)) << max(-pool_shift, 0) > INT32_MAX:
        pool_shift = 0
    b = ProgramBuilder(get_preset("tiny-64"))
    x = b.input("x", 2, hw, hw, bits=8)
    w = rng.integers(-1, 2, size=(2, 2, 1, 1))
    y = b.conv("c", x, w, [2, 2], [0, 0], bias=[3, 200], out_bits=mid_bits)
    b.avgpool("gap", y, shift=pool_shift, out_bits=out_bits)
    prog = b.build()
    gap = prog.layers[-1]
    top = (1 << out_bits) - 1
    gap.clamp_hi = int(round(frac * top))
    if rng.random() < 0.3:
        gap.clamp_hi = top
    validate(prog)
    images = rng.integers(0, 256, size=(2, 2, hw, hw)).astype(np.uint8)
    images[0] = 255
    assert_all_equal(prog, images, "extreme avgpool")
