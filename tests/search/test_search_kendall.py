"""Kendall's tau_b: hand-counted examples (ties included), symmetry, and scipy's value where scipy is installed."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hybridcim.search.kendall import kendall_tau, kendall_tau_b


@pytest.mark.parametrize("x, y, want", [
    ([1, 2, 3, 4], [10, 20, 30, 40], 1.0),
    ([1, 2, 3, 4], [4, 3, 2, 1], -1.0),
    ([1, 2, 3, 4], [1, 3, 2, 4], 4 / 6),                            # C = 5, D = 1, no ties
    ([1, 1, 2, 3], [1, 2, 2, 3], 4 / 5),                            # C = 4, D = 0, one tie in x, one in y
    ([0.5, 0.5, 0.5, 0.7], [0.1, 0.2, 0.3, 0.0], -3 / math.sqrt(3 * 6)),  # C = 0, D = 3, three ties in x
])
def test_hand_counted(x, y, want):
    assert kendall_tau_b(x, y) == pytest.approx(want, abs=1e-15)
    assert kendall_tau_b(y, x) == pytest.approx(want, abs=1e-15)


def test_undefined_and_errors():
    assert math.isnan(kendall_tau_b([1.0], [2.0])) and math.isnan(kendall_tau_b([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="3 x values but 2 y values"):
        kendall_tau_b([1, 2, 3], [1, 2])


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=0, max_size=12))
def test_against_the_sign_product_definition(pairs):
    """tau_b against its definition through sign products (many ties: scores from 0..3); kendall_tau (scipy's
    when scipy is installed, else kendall_tau_b) gives the same."""
    x = np.array([p[0] for p in pairs], dtype=np.int64)
    y = np.array([p[1] for p in pairs], dtype=np.int64)
    sx = np.sign(x[:, None] - x[None, :])
    sy = np.sign(y[:, None] - y[None, :])
    denom = math.sqrt(float((sx != 0).sum()) * float((sy != 0).sum()))
    want = float((sx * sy).sum()) / denom if denom else float("nan")
    got = kendall_tau_b(x.tolist(), y.tolist())
    assert (math.isnan(want) and math.isnan(got)) or got == pytest.approx(want, abs=1e-12)
    t, impl = kendall_tau(x.tolist(), y.tolist())
    assert (math.isnan(want) and math.isnan(t)) or t == pytest.approx(want, abs=1e-12), impl
