"""Hybrid (digital/analog) macro arithmetic of architecture.md §9, as pure integer numpy functions.

- pair depth: d = (P_f − 1 − j) + (X − 1 − i) for weight plane j of a P_f-bit filter and input
  plane i of an X-bit input (0 = the MSB×MSB pair; significance counts from each filter's MSB);
- path of a pair at a boundary level (D, E): digital if d < D, analog if D ≤ d < E, skipped if d ≥ E;
- ADC (§9.3): n' = 16·n + noise (1/16 counts), s = max(0, log2(A) − adc_bits),
  code = clamp(rshift_rne(n', 4 + s), 0, 2^adc_bits − 1), reconstructed count n̂ = code · 2^s;
- saliency (§9.4): Σ over the group's present rows of the window of (x >> (X − h));
- level: number of thresholds ≤ saliency;
- noise (§9.6): centered binomial from Philox4x32-10, scaled by 2^noise_shift, in 1/16 counts.

>>> adc_code(np.array([0, 1, 2, 3, 63, 64]) * 16, 64, 5).tolist()   # s = 1: step of 2 counts
[0, 0, 1, 2, 31, 31]
>>> pair_path(np.arange(5), 1, 3).tolist()
[0, 1, 1, 2, 2]
"""
from __future__ import annotations

import numpy as np

from .philox import philox4x32
from .popcount import popcount64
from .requant import rshift_rne

PATH_DIGITAL, PATH_ANALOG, PATH_SKIPPED = 0, 1, 2
MAX_LEVELS = 8          # entries of a layer's level table
DEPTH_ALL = 15          # a depth no pair reaches (max pair depth is 7 + 7 = 14): "every pair"
NOISE_FRAC_BITS = 4     # n' carries 4 fractional bits (1/16 count)
MAX_NOISE_PAIRS = 64    # coin pairs of the centered binomial
MAX_NOISE_SHIFT = 8


def pair_depth(precision, j, bits_in: int, i) -> np.ndarray:
    """MSB-aligned depth of weight plane ``j`` of a ``precision``-bit filter × input plane ``i``."""
    return (np.asarray(precision, np.int64) - 1 - np.asarray(j, np.int64)) + (bits_in - 1 - np.asarray(i, np.int64))


def pair_path(depth, digital_depth, keep_depth) -> np.ndarray:
    """PATH_DIGITAL if depth < digital_depth, PATH_ANALOG if < keep_depth, else PATH_SKIPPED."""
    d = np.asarray(depth, np.int64)
    return np.where(d < np.asarray(digital_depth), PATH_DIGITAL,
                    np.where(d < np.asarray(keep_depth), PATH_ANALOG, PATH_SKIPPED)).astype(np.int64)


def adc_shift(rows_active: int, adc_bits: int) -> int:
    """Step of the ADC as a power of two of counts: max(0, log2(rows_active) − adc_bits)."""
    return max(0, rows_active.bit_length() - 1 - adc_bits)


def adc_code(n16, rows_active: int, adc_bits: int) -> np.ndarray:
    """ADC code of the bit-line value ``n16`` (int, 1/16 counts, noise included).

    code = clamp(rshift_rne(n16, 4 + s), 0, 2^adc_bits − 1), s = :func:`adc_shift`.
    """
    s = adc_shift(rows_active, adc_bits)
    return np.clip(rshift_rne(np.asarray(n16, np.int64), NOISE_FRAC_BITS + s), 0, (1 << adc_bits) - 1)


def adc_count(code, rows_active: int, adc_bits: int) -> np.ndarray:
    """Reconstructed count n̂ = code · 2^s that re-enters the shift-add (exact integer)."""
    return np.asarray(code, np.int64) << adc_shift(rows_active, adc_bits)


def adc_max_count(rows_active: int, adc_bits: int) -> int:
    """Largest reconstructed count: (2^adc_bits − 1) · 2^s."""
    return ((1 << adc_bits) - 1) << adc_shift(rows_active, adc_bits)


def saliency_of_words(xw_planes, bits_in: int, sal_planes: int) -> np.ndarray:
    """Saliency Σ_rows (x >> (X − h)) of the rows in each word of packed input planes ``xw_planes``
    (bits_in, ...) uint64 (row blocks as words): Σ_{i ≥ X − h} popcount(plane i) · 2^(i − (X − h))
    (int64, the shape of one plane)."""
    base = bits_in - sal_planes
    return sum(popcount64(xw_planes[i]) << (i - base) for i in range(base, bits_in))


def level_of(saliency, thresholds) -> np.ndarray:
    """Boundary level = number of thresholds t_k ≤ saliency (thresholds strictly ascending)."""
    t = np.asarray(thresholds, np.int64)
    return (np.asarray(saliency, np.int64)[..., None] >= t).sum(axis=-1).astype(np.int64)


def noise_key(seed: int, layer: int) -> np.ndarray:
    """Philox key (k0, k1) = (noise_seed, layer index)."""
    return np.array([seed & 0xFFFFFFFF, layer & 0xFFFFFFFF], dtype=np.uint32)


def noise_counter(image, pixel, column, rowblock, i, j) -> np.ndarray:
    """Philox counter (global image index, output pixel, layer column g·G + c, rowblock << 8 | i << 4 | j)."""
    image, pixel, column, rowblock, i, j = np.broadcast_arrays(*(np.asarray(v, np.int64) for v in
                                                                  (image, pixel, column, rowblock, i, j)))
    return np.stack([image, pixel, column, (rowblock << 8) | (i << 4) | j], axis=-1).astype(np.uint64) & 0xFFFFFFFF


def analog_noise(key, counter, pairs: int, shift: int) -> np.ndarray:
    """Noise in 1/16 counts: (popcount(u0 | u1 << 32 & m) − popcount(u2 | u3 << 32 & m)) · 2^shift,
    m = 2^pairs − 1, (u0..u3) = Philox4x32-10(counter, key). Mean 0, variance pairs/2 · 4^shift."""
    if pairs == 0:
        return np.zeros(np.asarray(counter).shape[:-1], dtype=np.int64)
    u = philox4x32(counter, key).astype(np.uint64)
    m = np.uint64((1 << pairs) - 1)
    a = (u[..., 0] | (u[..., 1] << np.uint64(32))) & m
    b = (u[..., 2] | (u[..., 3] << np.uint64(32))) & m
    return (popcount64(a) - popcount64(b)) << shift


def analog_noise_words(seed: int, layer: int, image, pixel, column, word3, pairs: int, shift: int) -> np.ndarray:
    """:func:`analog_noise` with the counter given as four broadcastable word arrays (image, pixel,
    column, rowblock << 8 | i << 4 | j) and the key as (noise_seed, layer index): the same int64 values,
    computed without stacking counters (the fast emulator's vectorized draw)."""
    from .philox import philox4x32_words
    shape = np.broadcast_shapes(*(np.shape(v) for v in (image, pixel, column, word3)))
    if pairs == 0:
        return np.zeros(shape, dtype=np.int64)
    u0, u1, u2, u3 = philox4x32_words(image, pixel, column, word3, seed, layer)
    lo, hi = np.uint64((1 << min(pairs, 32)) - 1), np.uint64((1 << max(pairs - 32, 0)) - 1)
    e = popcount64(u0 & lo) - popcount64(u2 & lo)
    if pairs > 32:
        e += popcount64(u1 & hi) - popcount64(u3 & hi)
    return e << shift
