"""Pairing rule and weight layout (architecture.md §5)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hybridcim.program.packing import column_map, pack_filters, utilization
from hybridcim.program.weights import conv_weight_matrix, decode_weight_matrix, encode_words


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([0, 2, 4, 8]), min_size=1, max_size=40), st.sampled_from(["paired", "naive"]))
def test_packing_places_every_live_filter_once_within_group_width(prec, mode):
    groups = pack_filters(prec, 8, mode)
    placed = [f for g in groups for f, _ in g]
    assert sorted(placed) == [f for f, p in enumerate(prec) if p > 0]
    for g in groups:
        cols = sorted((off, off + prec[f]) for f, off in g)
        assert cols[-1][1] <= 8
        assert all(a[1] <= b[0] for a, b in zip(cols, cols[1:]))  # disjoint
    if mode == "naive":
        assert all(len(g) == 1 for g in groups)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([2, 4, 8]), min_size=1, max_size=40))
def test_paired_is_optimal_for_power_of_two_precisions(prec):
    # for sizes dividing the group width, first-fit decreasing packs perfectly
    groups = pack_filters(prec, 8)
    assert len(groups) == -(-sum(prec) // 8)
    assert utilization(prec, groups, 8) >= utilization(prec, pack_filters(prec, 8, "naive"), 8)


def test_paired_4bit_filters_fill_groups():
    prec = [4] * 16
    assert utilization(prec, pack_filters(prec, 8), 8) == 1.0
    assert utilization(prec, pack_filters(prec, 8, "naive"), 8) == 0.5


def test_bad_packing_inputs():
    with pytest.raises(ValueError):
        pack_filters([16], 8)
    with pytest.raises(ValueError):
        pack_filters([4], 8, "best")
    with pytest.raises(ValueError, match="assigned twice"):
        column_map([[(0, 0), (1, 2)]], [4, 4], 8)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(1, 9), st.sampled_from([1, 3]), st.sampled_from([8, 16, 32, 64]),
       st.integers(0, 2**31))
def test_encode_decode_round_trip(f, c, k, rows_active, seed):
    rng = np.random.default_rng(seed)
    prec = rng.choice([0, 2, 4, 8], size=f)
    w4 = np.zeros((f, c, k, k), dtype=np.int64)
    for i, p in enumerate(prec):
        if p:
            w4[i] = rng.integers(-(1 << (p - 1)), 1 << (p - 1), size=(c, k, k))
    w = conv_weight_matrix(w4)
    cf, cp = column_map(pack_filters(prec, 8), prec, 8)
    present, words = encode_words(w, prec, cf, cp, rows_active)
    assert words.shape == (present.sum(), 8)
    assert np.array_equal(decode_weight_matrix(prec, cf, cp, present, words, w.shape[1], rows_active), w)


def test_weight_matrix_is_hwc_order():
    w4 = np.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2)  # (F, C, kh, kw)
    w = conv_weight_matrix(w4)
    # k = (ky*kw + kx)*C + c
    for ky in range(2):
        for kx in range(2):
            for c in range(3):
                assert w[1, (ky * 2 + kx) * 3 + c] == w4[1, c, ky, kx]
