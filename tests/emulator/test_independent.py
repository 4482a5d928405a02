"""Emulators against an independent, direct integer computation from the original tensors.

The expectation here never touches bit planes, the program image or the HWC reduction
order: plain nested sums over (F, C, kh, kw) torch-layout weights with explicit zero padding.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hybridcim.emulator import FastEmulator, ReferenceEmulator, available_backends
from hybridcim.program import ProgramBuilder, decode, encode
from hybridcim.spec import get_preset


def rne(v, s):
    if s <= 0:
        return v * 2 ** (-s)
    q, r = divmod(v, 2 ** s)
    half = 2 ** (s - 1)
    return q + (1 if r > half or (r == half and q % 2) else 0)


def direct_conv(x_nchw, w, bias, shift, lo, hi, stride, pad, res=None, res_shift=None):
    n, c, h, wd = x_nchw.shape
    f, _, kh, kw = w.shape
    ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    y = np.zeros((n, f, ho, wo), dtype=np.int64)
    for b in range(n):
        for fi in range(f):
            for oy in range(ho):
                for ox in range(wo):
                    acc = 0
                    for ci in range(c):
                        for ky in range(kh):
                            for kx in range(kw):
                                iy, ix = oy * stride + ky - pad, ox * stride + kx - pad
                                if 0 <= iy < h and 0 <= ix < wd:
                                    acc += int(w[fi, ci, ky, kx]) * int(x_nchw[b, ci, iy, ix])
                    v = acc + int(bias[fi])
                    if res is not None:
                        v += int(res[b, fi, oy, ox]) << int(res_shift[fi])
                    y[b, fi, oy, ox] = min(max(rne(v, int(shift[fi])), lo), hi)
    return y


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), preset=st.sampled_from(["tiny-64", "sun-mars-256"]),
       k=st.integers(1, 3), stride=st.integers(1, 2), c=st.integers(1, 6), f=st.integers(1, 9),
       packing=st.sampled_from(["paired", "naive"]))
def test_conv_against_direct_sum(seed, preset, k, stride, c, f, packing):
    rng = np.random.default_rng(seed)
    pr = get_preset(preset)
    h = w_ = 5
    pad = int(rng.integers(0, k))
    prec = rng.choice([0, *pr.precisions], size=f)
    w = np.zeros((f, c, k, k), dtype=np.int64)
    for i, p in enumerate(prec):
        if p:
            w[i] = rng.integers(-(1 << (p - 1)), 1 << (p - 1), size=(c, k, k))
    bias = rng.integers(-300, 300, size=f)
    shift = rng.integers(-2, 8, size=f)
    x = rng.integers(0, 256, size=(2, c, h, w_))
    b = ProgramBuilder(pr)
    t = b.input("x", c, h, w_)
    y = b.conv("c", t, w, prec, shift, bias=bias, stride=stride, pad=pad, out_bits=8, packing=packing)
    prog = decode(encode(b.build(output=y)))
    want = direct_conv(x, w, bias, shift, 0, 255, stride, pad).transpose(0, 2, 3, 1)
    got_ref = ReferenceEmulator(prog).run(x.astype(np.uint8), trace=True).tensors["c"]
    assert np.array_equal(got_ref, want)
    for backend in available_backends():
        assert np.array_equal(FastEmulator(prog, backend).run(x.astype(np.uint8), trace=True).tensors["c"], want)


@pytest.mark.parametrize("backend", available_backends())
def test_two_layer_net_with_residual_and_pools(backend):
    rng = np.random.default_rng(3)
    pr = get_preset("tiny-64")
    x = rng.integers(0, 256, size=(3, 3, 6, 6))
    w1 = rng.integers(-8, 8, size=(8, 3, 3, 3))
    w2 = rng.integers(-2, 2, size=(8, 8, 3, 3))
    ws = rng.integers(-128, 128, size=(8, 3, 1, 1))
    b1, b2, bs = rng.integers(-99, 99, 8), rng.integers(-99, 99, 8), rng.integers(-99, 99, 8)
    s1, s2, ss = np.full(8, 6), np.full(8, 3), np.full(8, 7)
    rs = rng.integers(0, 3, 8)
    wf = rng.integers(-128, 128, size=(5, 8))
    bf = rng.integers(-1000, 1000, 5)
    b = ProgramBuilder(pr)
    t = b.input("x", 3, 6, 6)
    a1 = b.conv("c1", t, w1, [4] * 8, s1, bias=b1, pad=1, out_bits=4)
    sc = b.conv("sc", t, ws, [8] * 8, ss, bias=bs, out_bits=8, out_signed=True)
    a2 = b.conv("c2", a1, w2, [2] * 8, s2, bias=b2, pad=1, out_bits=4, res=sc, res_shift=rs)
    mp = b.maxpool("mp", a2, 2)
    g = b.avgpool("gap", mp, shift=3, out_bits=6)
    b.fc("fc", g, wf, [8] * 5, [0] * 5, bias=bf, logits=True)
    prog = b.build()
    # independent expectation
    e1 = direct_conv(x, w1, b1, s1, 0, 15, 1, 1)
    es = direct_conv(x, ws, bs, ss, -128, 127, 1, 0)
    e2 = direct_conv(e1, w2, b2, s2, 0, 15, 1, 1, res=es, res_shift=rs)
    emp = e2.reshape(3, 8, 3, 2, 3, 2).max(axis=(3, 5))
    eg = np.array([[min(max(rne(int(v), 3), 0), 63) for v in row] for row in emp.sum(axis=(2, 3))])
    ef = eg @ wf.T + bf
    got = FastEmulator(prog, backend).run(x.astype(np.uint8), trace=True)
    assert np.array_equal(got.tensors["sc"], es.transpose(0, 2, 3, 1))
    assert np.array_equal(got.tensors["c2"], e2.transpose(0, 2, 3, 1))
    assert np.array_equal(got.outputs, ef)
    assert np.array_equal(ReferenceEmulator(prog).run(x.astype(np.uint8)).outputs, ef)
