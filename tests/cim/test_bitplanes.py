"""Bit planes, row packing and popcount against direct Python definitions."""
import numpy as np
from hypothesis import given, settings, strategies as st

from hybridcim.cim.bitplanes import pack_rows, plane_sign, twos_complement_planes, unpack_rows, unsigned_planes
from hybridcim.cim.popcount import popcount64


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 8), st.data())
def test_twos_complement_planes_reconstruct(bits, data):
    vals = data.draw(st.lists(st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1), min_size=1, max_size=20))
    planes = twos_complement_planes(np.array(vals), bits)
    back = sum(plane_sign(j, bits) * (planes[j].astype(np.int64) << j) for j in range(bits))
    assert back.tolist() == vals


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 8), st.lists(st.integers(0, 255), min_size=1, max_size=20))
def test_unsigned_planes_reconstruct(bits, vals):
    vals = [v % (1 << bits) for v in vals]
    planes = unsigned_planes(np.array(vals), bits)
    assert sum(planes[i].astype(np.int64) << i for i in range(bits)).tolist() == vals


def test_out_of_range_rejected():
    import pytest
    with pytest.raises(ValueError):
        twos_complement_planes(np.array([8]), 4)
    with pytest.raises(ValueError):
        unsigned_planes(np.array([16]), 4)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 1), min_size=1, max_size=64))
def test_pack_unpack_and_popcount(bits):
    word = pack_rows(np.array(bits))
    assert int(word) == sum(b << r for r, b in enumerate(bits))
    assert unpack_rows(word, len(bits)).tolist() == bits
    assert int(popcount64(np.array([word]))[0]) == sum(bits)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**64 - 1))
def test_popcount_matches_bin(x):
    assert int(popcount64(np.array([x], dtype=np.uint64))[0]) == bin(x).count("1")
