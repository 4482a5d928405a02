"""Kendall's rank correlation τ_b between two score lists (how well a supernet's estimates rank the
candidates that fine-tuning then measures).

τ_b = (C − D) / sqrt((n0 − T_x) · (n0 − T_y)), with C and D the concordant and discordant pairs,
n0 = n(n − 1)/2 and T_x, T_y the pairs tied in x and in y (Kendall 1945; scipy.stats.kendalltau's
default variant). Exact O(n²) pair counting: the candidate lists it is made for hold tens of points.
"""
from __future__ import annotations

import math


def kendall_tau_b(x, y) -> float:
    """τ_b of the paired scores ``x``, ``y`` (equal lengths); NaN when it is undefined (fewer than two
    points, or one list constant).

    >>> kendall_tau_b([1, 2, 3, 4], [10, 20, 30, 40]), kendall_tau_b([1, 2, 3], [3, 2, 1])
    (1.0, -1.0)
    >>> round(kendall_tau_b([1, 2, 3, 4], [1, 3, 2, 4]), 6)   # C = 5, D = 1: (5 - 1) / 6
    0.666667
    >>> round(kendall_tau_b([1, 1, 2, 3], [1, 2, 2, 3]), 6)   # C = 4, D = 0, one tie each: 4 / 5
    0.8
    """
    x, y = [float(v) for v in x], [float(v) for v in y]
    if len(x) != len(y):
        raise ValueError(f"kendall_tau_b: {len(x)} x values but {len(y)} y values")
    n = len(x)
    c = d = tx = ty = 0
    for i in range(n):
        for j in range(i + 1, n):
            sx = (x[i] > x[j]) - (x[i] < x[j])
            sy = (y[i] > y[j]) - (y[i] < y[j])
            if sx == 0:
                tx += 1
            if sy == 0:
                ty += 1
            if sx and sy:
                if sx == sy:
                    c += 1
                else:
                    d += 1
    n0 = n * (n - 1) // 2
    denom = (n0 - tx) * (n0 - ty)
    return (c - d) / math.sqrt(denom) if denom > 0 else float("nan")


def kendall_tau(x, y) -> tuple[float, str]:
    """(τ_b, implementation): scipy.stats.kendalltau when scipy is installed, else :func:`kendall_tau_b`
    (the same statistic)."""
    try:
        from scipy.stats import kendalltau
    except ImportError:
        return kendall_tau_b(x, y), "exact pair count (hybridcim.search.kendall)"
    if len(x) != len(y):
        raise ValueError(f"kendall_tau: {len(x)} x values but {len(y)} y values")
    if len(x) < 2:
        return float("nan"), "scipy.stats.kendalltau"
    return float(kendalltau(x, y).statistic), "scipy.stats.kendalltau"
