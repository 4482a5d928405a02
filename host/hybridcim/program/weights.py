"""Weight matrix <-> macro bit-plane words (architecture.md §4, §5; program-format.md).

W is int64 (F, K) with k = (ky*kw + kx)*C + c. A unit (group g, row block b) stores G uint64
words; word c holds rows b*A..b*A+A-1 of column c (bit r <-> row b*A + r).
"""
from __future__ import annotations

import numpy as np

from ..cim.bitplanes import pack_rows, unpack_rows


def conv_weight_matrix(w_oihw: np.ndarray) -> np.ndarray:
    """Torch-layout conv weights (F, C, kh, kw) -> W (F, K) in HWC reduction order."""
    w = np.asarray(w_oihw)
    f = w.shape[0]
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(f, -1)).astype(np.int64)


def encode_words(w: np.ndarray, precision: np.ndarray, col_filter: np.ndarray, col_plane: np.ndarray,
                 rows_active: int) -> tuple[np.ndarray, np.ndarray]:
    """Bit-plane words of every (group, row block) unit; drops all-zero units.

    Returns (present bool (NG, R), words uint64 (n_present, G)).
    """
    f_count, k = w.shape
    r_blocks = -(-k // rows_active)
    ng, gw = col_filter.shape
    wpad = np.zeros((f_count, r_blocks * rows_active), dtype=np.int64)
    wpad[:, :k] = w
    all_words = np.zeros((ng, r_blocks, gw), dtype=np.uint64)
    for g in range(ng):
        for c in range(gw):
            f = int(col_filter[g, c])
            if f < 0:
                continue
            p, j = int(precision[f]), int(col_plane[g, c])
            bits = ((wpad[f] & ((1 << p) - 1)) >> j) & 1
            all_words[g, :, c] = pack_rows(bits.reshape(r_blocks, rows_active))
    present = (all_words != 0).any(axis=2)
    return present, all_words[present]


def decode_weight_matrix(precision: np.ndarray, col_filter: np.ndarray, col_plane: np.ndarray,
                         present: np.ndarray, words: np.ndarray, k_rows: int, rows_active: int) -> np.ndarray:
    """Inverse of :func:`encode_words`: W int64 (F, K) from the stored planes."""
    f_count = len(precision)
    ng, r_blocks = present.shape
    w = np.zeros((f_count, r_blocks, rows_active), dtype=np.int64)
    gs, bs = np.nonzero(present)  # units in (g, b) order, as stored
    bits = unpack_rows(words, rows_active).astype(np.int64)  # (U, G, A)
    prec = np.asarray(precision, dtype=np.int64)
    for c in range(col_filter.shape[1]):
        f = col_filter[gs, c].astype(np.int64)
        used = f >= 0
        if not used.any():
            continue
        f, b, j = f[used], bs[used], col_plane[gs, c][used].astype(np.int64)
        sign = np.where(j == prec[f] - 1, -1, 1)
        np.add.at(w, (f, b), (sign << j)[:, None] * bits[used, c, :])
    return w.reshape(f_count, -1)[:, :k_rows]
