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
    return tuple(w.astype(np.uint64) for w in philox4x32_u32(c0, c1, c2, c3, k0, k1, rounds))


BLOCK = 1 << 14
"""Elements per block of :func:`philox4x32_u32` (its working set, ~6 uint64 buffers, stays in cache)."""


def philox4x32_u32(c0, c1, c2, c3, k0: int, k1: int, rounds: int = ROUNDS, words=(0, 1, 2, 3)) -> tuple:
    """The output ``words`` of Philox4x32-``rounds`` (uint32 arrays of the broadcast shape) of four
    broadcastable integer arrays of counter words (u32 values) under the scalar key (k0, k1).

    The words of :func:`philox4x32`, computed in cache-sized blocks with in-place ufuncs: the round
    (hi0, lo0) = M0·c0, (hi1, lo1) = M1·c2; c' = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0) keeps each
    64-bit product in a uint64 buffer and reads its hi/lo u32 halves through uint32 views (little
    endian: lo at even, hi at odd positions), so c1' and c3' are never copied: they are the lo halves
    of the previous round's products. Round 0 works on the counter arrays before broadcasting (for
    counters like (image, pixel, column, word) it costs two XORs per element).
    """
    c = [np.asarray(v, dtype=np.uint64) & _MASK for v in (c0, c1, c2, c3)]
    shape = np.broadcast_shapes(*(v.shape for v in c))
    if not rounds or not int(np.prod(shape, dtype=np.int64)):
        return tuple(np.broadcast_to(c[w], shape).astype(np.uint32) for w in words)
    rows, cols = (int(np.prod(shape[:-1], dtype=np.int64)), shape[-1]) if len(shape) else (1, 1)
    k0, k1 = int(k0) & 0xFFFFFFFF, int(k1) & 0xFFFFFFFF
    # round 0 on the unbroadcast words: y0 = hi(M1·c2) ^ k0 ^ c1, y2 = hi(M0·c0) ^ k1 ^ c3, and the lo halves
    p0, p1 = np.uint64(PHILOX_M0) * c[0], np.uint64(PHILOX_M1) * c[2]
    h1, h0 = (p1 >> _S32) ^ np.uint64(k0), (p0 >> _S32) ^ np.uint64(k1)
    two_d = [np.broadcast_to(v, shape).reshape(rows, cols) for v in (h1, c[1], h0, c[3], p1 & _MASK, p0 & _MASK)]
    keys = []
    for _ in range(1, rounds):
        k0, k1 = (k0 + PHILOX_W0) & 0xFFFFFFFF, (k1 + PHILOX_W1) & 0xFFFFFFFF
        keys.append((np.uint32(k0), np.uint32(k1)))
    out = [np.empty((rows, cols), np.uint32) for _ in words]
    cb = min(cols, BLOCK)
    rb = max(1, BLOCK // max(cb, 1))
    size = rb * cb
    y0, y2, a0, a1, b0, b1 = (np.zeros(size, np.uint64) for _ in range(6))
    m0, m1 = np.uint64(PHILOX_M0), np.uint64(PHILOX_M1)
    for r0 in range(0, rows, rb):
        r1 = min(rows, r0 + rb)
        for q0 in range(0, cols, cb):
            q1 = min(cols, q0 + cb)
            n = (r1 - r0) * (q1 - q0)
            blk = (r1 - r0, q1 - q0)
            v0, v2 = y0[:n], y2[:n]
            v0l, v2l = v0.view(np.uint32)[0::2], v2.view(np.uint32)[0::2]
            pa0, pa1, cu0, cu1 = a0[:n], a1[:n], b0[:n], b1[:n]
            h1b, c1b, h0b, c3b, l1b, l0b = (t[r0:r1, q0:q1] for t in two_d)
            np.bitwise_xor(h1b, c1b, out=v0.reshape(blk))  # hi halves of y0, y2 stay 0 from here on
            np.bitwise_xor(h0b, c3b, out=v2.reshape(blk))
            np.copyto(pa1.reshape(blk), l1b)
            np.copyto(pa0.reshape(blk), l0b)
            prev0, prev1, cur0, cur1 = pa0, pa1, cu0, cu1
            for kk0, kk1 in keys:
                np.multiply(v0, m0, out=cur0)
                np.multiply(v2, m1, out=cur1)
                w, pw = cur1.view(np.uint32), prev1.view(np.uint32)
                np.bitwise_xor(w[1::2], pw[0::2], out=v0l)
                v0l ^= kk0
                w, pw = cur0.view(np.uint32), prev0.view(np.uint32)
                np.bitwise_xor(w[1::2], pw[0::2], out=v2l)
                v2l ^= kk1
                prev0, prev1, cur0, cur1 = cur0, cur1, prev0, prev1
            final = {0: v0l, 1: prev1.view(np.uint32)[0::2], 2: v2l, 3: prev0.view(np.uint32)[0::2]}
            for o, w in zip(out, words):
                o[r0:r1, q0:q1] = final[w].reshape(blk)
    return tuple(o.reshape(shape) for o in out)
