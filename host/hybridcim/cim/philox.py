"""Philox4x32-10 counter-based generator (Salmon et al., SC'11; Random123), pure integer numpy.

A counter of four u32 words and a key of two u32 words map to four u32 output words; the same
(counter, key) gives the same words on every executor, whatever the batching (architecture.md
§9.6 keys the analog noise with it). Arrays broadcast: ``philox4x32(ctr (..., 4), key (..., 2))``.

>>> [f"{v:08x}" for v in philox4x32(np.zeros(4, np.uint32), np.zeros(2, np.uint32)).tolist()]
['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']
"""
from __future__ import annotations

import numpy as np

PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9   # golden ratio: key bump of word 0
PHILOX_W1 = 0xBB67AE85   # sqrt(3) - 1: key bump of word 1
ROUNDS = 10
_MASK = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)


def _mulhilo(a: int, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hi, lo) u32 words of the 64-bit product a * b (b: uint64 holding u32 values)."""
    p = np.uint64(a) * b  # < 2^64: exact in uint64
    return p >> _S32, p & _MASK


def philox4x32(counter, key, rounds: int = ROUNDS) -> np.ndarray:
    """Philox4x32-``rounds`` of ``counter`` (..., 4) u32 under ``key`` (..., 2) u32 -> uint32 (..., 4).

    Round: (hi0, lo0) = M0·c0, (hi1, lo1) = M1·c2; c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0);
    the key is bumped by (W0, W1) mod 2^32 between rounds (Random123 ``philox4x32_R``).
    """
    ctr = np.asarray(counter, dtype=np.uint64)
    k = np.asarray(key, dtype=np.uint64)
    shape = np.broadcast_shapes(ctr.shape[:-1], k.shape[:-1])
    c0, c1, c2, c3 = (np.broadcast_to(ctr[..., i], shape).copy() for i in range(4))
    k0, k1 = (np.broadcast_to(k[..., i], shape).copy() for i in range(2))
    for r in range(rounds):
        if r:
            k0 = (k0 + np.uint64(PHILOX_W0)) & _MASK
            k1 = (k1 + np.uint64(PHILOX_W1)) & _MASK
        hi0, lo0 = _mulhilo(PHILOX_M0, c0)
        hi1, lo1 = _mulhilo(PHILOX_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return np.stack([c0, c1, c2, c3], axis=-1).astype(np.uint32)


def philox4x32_words(c0, c1, c2, c3, k0: int, k1: int, rounds: int = ROUNDS) -> tuple:
    """Philox4x32-``rounds`` on four broadcastable arrays of counter words (uint64 holding u32 values)
    under the scalar key (k0, k1): the same words as :func:`philox4x32`, without stacking, for large
    vectorized draws. Returns four uint64 arrays (u32 values) of the broadcast shape."""
    c0, c1, c2, c3 = np.broadcast_arrays(*(np.asarray(c, dtype=np.uint64) for c in (c0, c1, c2, c3)))
    k0, k1 = int(k0) & 0xFFFFFFFF, int(k1) & 0xFFFFFFFF
    m0, m1 = np.uint64(PHILOX_M0), np.uint64(PHILOX_M1)
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + PHILOX_W0) & 0xFFFFFFFF, (k1 + PHILOX_W1) & 0xFFFFFFFF
        p0, p1 = m0 * c0, m1 * c2
        c0, c1, c2, c3 = ((p1 >> _S32) ^ c1 ^ np.uint64(k0), p1 & _MASK, (p0 >> _S32) ^ c3 ^ np.uint64(k1), p0 & _MASK)
    return c0, c1, c2, c3
