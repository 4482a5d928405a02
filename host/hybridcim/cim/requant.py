"""Requantization: bias + residual, round-half-to-even shift, clamp (architecture.md §6).

All inputs and outputs are int64 numpy arrays holding values that fit int32 (the validator
guarantees it); shifts are per-element broadcastable int arrays in -31..31.

>>> rshift_rne(np.array([5, 7, -5, -7, 6, 10]), np.array([1, 1, 1, 1, 2, 2])).tolist()
[2, 4, -2, -4, 2, 2]
"""
from __future__ import annotations

import numpy as np


def rshift_rne(v: np.ndarray, s: np.ndarray | int) -> np.ndarray:
    """v / 2^s rounded half to even for s > 0; v * 2^-s for s <= 0 (exact)."""
    v = np.asarray(v, dtype=np.int64)
    s = np.broadcast_to(np.asarray(s, dtype=np.int64), v.shape)
    pos = np.maximum(s, 0)
    left = np.maximum(-s, 0)
    q = v >> pos
    r = v - (q << pos)
    half = np.where(pos > 0, np.int64(1) << np.maximum(pos - 1, 0), np.int64(0))
    up = (pos > 0) & ((r > half) | ((r == half) & ((q & 1) == 1)))
    return (q + up.astype(np.int64)) << left


def clamp(v: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Saturate to [lo, hi]."""
    return np.minimum(np.maximum(v, lo), hi)


def requantize(acc: np.ndarray, bias: np.ndarray, shift: np.ndarray, lo: int, hi: int,
               res: np.ndarray | None = None, res_shift: np.ndarray | None = None) -> np.ndarray:
    """y = clamp(rshift_rne(acc + bias + (res << res_shift), shift), lo, hi).

    acc: int64 (..., F) accumulators; bias: int (F,); shift: int (F,) in -31..31;
    res: optional int (..., F) residual activations; res_shift: int (F,) in 0..31.
    """
    v = np.asarray(acc, dtype=np.int64) + np.asarray(bias, dtype=np.int64)
    if res is not None:
        v = v + (np.asarray(res, dtype=np.int64) << np.asarray(res_shift, dtype=np.int64))
    return clamp(rshift_rne(v, shift), lo, hi)
