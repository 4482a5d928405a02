"""Bit-plane decomposition and row packing (architecture.md §4).

Weights: P-bit two's complement, plane j in {0..P-1}, plane P-1 (MSB) has weight -2^(P-1).
Inputs: unsigned, plane i has weight +2^i.
Rows of one row block (<= 64) are packed into one uint64 word: bit r <-> row r.

>>> twos_complement_planes(np.array([-3, 1]), 3).tolist()
[[1, 1], [0, 0], [1, 0]]
>>> sum(int(plane_sign(j, 3)) * 2**j * int(b) for j, b in enumerate([1, 0, 1]))
-3
"""
from __future__ import annotations

import numpy as np


def twos_complement_planes(w: np.ndarray, bits: int) -> np.ndarray:
    """Planes of the ``bits``-bit two's complement code of integer array ``w``.

    Returns uint8 array of shape (bits, *w.shape), plane 0 = LSB. Raises ValueError if a
    value does not fit.
    """
    w = np.asarray(w, dtype=np.int64)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if w.size and (w.min() < lo or w.max() > hi):
        raise ValueError(f"weights out of int{bits} range [{lo}, {hi}]: min {w.min()}, max {w.max()}")
    code = w & ((1 << bits) - 1)
    return np.stack([(code >> j) & 1 for j in range(bits)]).astype(np.uint8)


def unsigned_planes(x: np.ndarray, bits: int) -> np.ndarray:
    """Planes of unsigned integers ``x`` (< 2^bits): uint8 (bits, *x.shape), plane 0 = LSB."""
    x = np.asarray(x, dtype=np.int64)
    if x.size and (x.min() < 0 or x.max() >= (1 << bits)):
        raise ValueError(f"inputs out of uint{bits} range: min {x.min()}, max {x.max()}")
    return np.stack([(x >> i) & 1 for i in range(bits)]).astype(np.uint8)


def plane_sign(j: int, bits: int) -> int:
    """+1 for weight plane j < bits-1, -1 for the MSB plane (two's complement)."""
    return -1 if j == bits - 1 else 1


def pack_rows(bits01: np.ndarray) -> np.ndarray:
    """Pack 0/1 values along the last axis (length <= 64) into uint64: bit r <- element r."""
    bits01 = np.asarray(bits01)
    n = bits01.shape[-1]
    if n > 64:
        raise ValueError(f"cannot pack {n} rows into one 64-bit word")
    weights = (np.uint64(1) << np.arange(n, dtype=np.uint64))
    return (bits01.astype(np.uint64) * weights).sum(axis=-1, dtype=np.uint64)


def unpack_rows(words: np.ndarray, n: int) -> np.ndarray:
    """Inverse of :func:`pack_rows`: uint64 words -> uint8 0/1 with a trailing axis of n."""
    words = np.asarray(words, dtype=np.uint64)
    shifts = np.arange(n, dtype=np.uint64)
    return ((words[..., None] >> shifts) & np.uint64(1)).astype(np.uint8)
