"""Layer operations shared by the emulators: padding, im2col, pools (architecture.md §3, §6).

Activations are int64 NHWC arrays.
"""
from __future__ import annotations

import numpy as np

from ..cim.requant import clamp, rshift_rne
from ..program.model import Layer


def im2col(x: np.ndarray, kh: int, kw: int, stride: int, pad: int) -> np.ndarray:
    """Zero-padded windows of NHWC ``x`` as (N, Ho, Wo, K) with k = (ky*kw + kx)*C + c."""
    if pad:
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
    n, ho, wo, c = win.shape[:4]
    return win.transpose(0, 1, 2, 4, 5, 3).reshape(n, ho, wo, kh * kw * c)


def maxpool(x: np.ndarray, layer: Layer) -> np.ndarray:
    """k x k max pool with stride, no padding, NHWC."""
    win = np.lib.stride_tricks.sliding_window_view(x, (layer.kh, layer.kw), axis=(1, 2))
    return win[:, ::layer.stride, ::layer.stride].max(axis=(-2, -1))


def avgpool(x: np.ndarray, layer: Layer) -> np.ndarray:
    """Global average pool: int sum over H, W, rshift_rne by pool_shift, clamp; (N, 1, 1, C)."""
    s = x.astype(np.int64).sum(axis=(1, 2), keepdims=True)
    return clamp(rshift_rne(s, layer.pool_shift), layer.clamp_lo, layer.clamp_hi)
