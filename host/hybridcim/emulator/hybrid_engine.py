"""Hybrid mode (architecture.md §9) in the fast emulator: the reference's integers, vectorized.

Per hybrid conv/fc layer, per chunk of images (bounded memory), with M output pixels, the K
rows padded to R·A (R row blocks of A rows) and U used columns u (group g_u, filter f_u, weight
plane j_u of a P_u-bit filter, layer column g_u·G + c_u):

1. **saliency and level** (§9.4): per pixel and row block the sum of x >> (X − h) over the
   block's rows, summed over each group's present blocks; level = #thresholds ≤ saliency; the
   pixel × group depths (D, E) of that level; the level histogram counts groups with a unit;
2. **exact digital result**: acc = x · W (one exact matmul over K, the layer's decoded
   weights: every pair digital);
3. **correction per input plane i** (X planes): the pair (i, u) has depth
   d = (P_u − 1 − j_u) + (X − 1 − i) and, per pixel, is digital (d < D), analog (D ≤ d < E) or
   skipped. Columns digital at every pixel of the chunk cost nothing more. For the others the
   full-K count N = x_i · w_u (one 0/1 matmul) is taken back out where the pair is not digital,
   and where it is analog the ADC's reconstructed counts of every present row block b,
   Σ_b n̂(n_b), are put in: n_b = x_i[b] · w_u[b] (per block 0/1 matmuls over A rows),
   n̂ = ADC(16·n_b + e) (§9.3; e = the Philox noise of §9.6 keyed by (global image, pixel,
   column, b << 8 | i << 4 | j), else a lookup table over n ∈ [0, A]). The correction enters
   acc through the column's sign and 2^(i+j);
4. **column-read counters** (§9.7) per plane and column: pixels × present blocks of the column's
   group, split by path.

Every step is integer arithmetic carried in float32 (0/1 products over ≤ 576 rows: < 2^24) or
float64 (accumulator corrections: |partial| ≤ 2 · the §9.5 bound < 2^32 ≪ 2^53), so the result
equals the reference emulator's bit for bit. The numpy functions here are the board path; the torch
backend runs the same steps with its own products (torch_backend.py).
"""
from __future__ import annotations

import numpy as np

from ..cim.hybrid import NOISE_FRAC_BITS, adc_code, adc_count, adc_shift, analog_noise_words
from ..program.model import Layer, Program
from ..program.weights import decode_weight_matrix
from .ops import im2col

CHUNK_BYTES = 24 << 20
"""Working-set target of one chunk of pixels (bytes; the chunk holds at least one image)."""

COLUMN_READ_COUNTERS = ("digital_column_reads", "analog_column_reads", "adc_conversions", "skipped_bitplanes")


class HybridLayer:
    """Tables of one hybrid conv/fc layer (numpy, built once per program) and its numpy run.

    Arrays: ``g_u, f_u, j_u, col_u`` (U,) int64 per used column (group-major, as the column map);
    ``base_depth`` (U,) = P_u − 1 − j_u; ``coef`` (U, F) float64 = ±2^j_u at (u, f_u);
    ``wcol`` (R·A, U) uint8 0/1 weight bits (absent units 0); ``present_u`` (U, R) bool;
    ``blocks_u`` (U,) present row blocks of the column's group; ``w_int`` (K, F) exact weights."""

    def __init__(self, layer: Layer, program: Program, layer_index: int):
        pr, hp = program.preset, layer.hybrid
        self.layer, self.index, self.hp = layer, layer_index, hp
        self.a, self.gw = pr.rows_active, pr.group_width
        self.adc_bits = pr.adc_bits
        self.s = adc_shift(self.a, pr.adc_bits)
        self.x_bits = program.tensors[layer.in_tensor].bits
        self.r, self.k = layer.n_rowblocks, layer.k_rows
        self.kpad = self.r * self.a
        out = program.tensors[layer.out_tensor]
        self.ho, self.wo = out.height, out.width
        self.n_f = layer.n_filters
        g_u, c_u = np.nonzero(layer.col_filter >= 0)
        self.g_u, self.c_u = g_u.astype(np.int64), c_u.astype(np.int64)
        self.f_u = layer.col_filter[g_u, c_u].astype(np.int64)
        self.j_u = layer.col_plane[g_u, c_u].astype(np.int64)
        prec = layer.precision.astype(np.int64)[self.f_u]
        self.base_depth = prec - 1 - self.j_u
        self.col_u = self.g_u * self.gw + self.c_u
        u = len(self.g_u)
        self.coef = np.zeros((u, self.n_f))
        self.coef[np.arange(u), self.f_u] = np.where(self.j_u == prec - 1, -1.0, 1.0) * np.ldexp(1.0, self.j_u)
        self.present_u = layer.present[self.g_u] if u else np.zeros((0, self.r), bool)  # (U, R)
        self.blocks_u = self.present_u.sum(axis=1).astype(np.int64)
        unit = np.full(layer.present.shape, -1, np.int64)
        unit[layer.present] = np.arange(int(layer.present.sum()))
        self.wcol = np.zeros((self.r, self.a, u), np.uint8)
        rows = np.arange(self.a, dtype=np.uint64)
        for q in range(u):
            for b in np.nonzero(self.present_u[q])[0]:
                word = layer.words[unit[self.g_u[q], b], self.c_u[q]]
                self.wcol[b, :, q] = (np.uint64(word) >> rows) & np.uint64(1)
        self.wcol = self.wcol.reshape(self.kpad, u)
        w = decode_weight_matrix(layer.precision, layer.col_filter, layer.col_plane, layer.present, layer.words,
                                 layer.k_rows, self.a)
        self.w_int = np.ascontiguousarray(w.T)  # (K, F)
        xmax = program.tensors[layer.in_tensor].fmt.max
        self.exact_f32 = int(np.abs(w).sum(axis=1).max(initial=0)) * xmax < (1 << 24)
        self.thresholds = np.asarray(hp.thresholds, np.int64)
        self.dd = np.asarray(hp.digital_depth, np.int64)
        self.kd = np.asarray(hp.keep_depth, np.int64)
        self.present_t = layer.present.T.astype(np.int64)  # (R, NG)
        self.has_units = layer.present.any(axis=1)
        self.lut = adc_count(adc_code(np.arange(self.a + 1) << NOISE_FRAC_BITS, self.a, self.adc_bits),
                             self.a, self.adc_bits)  # reconstructed count of every noise-free n
        per_pixel = self.kpad * 9 + u * 40 + self.n_f * 16 + self.r * 8
        self.chunk_pixels = max(1, CHUNK_BYTES // per_pixel)

    # ---- step 1: saliency and level
    def levels(self, xs: np.ndarray, c) -> tuple[np.ndarray, np.ndarray]:
        """xs: uint8 (M, R·A) windows. Returns the per-column depths (D, E) at every pixel, int8 (M, U) each,
        and adds the level histogram to counters ``c``."""
        m = xs.shape[0]
        per_block = (xs >> (self.x_bits - self.hp.sal_planes)).reshape(m, self.r, self.a).sum(axis=2, dtype=np.int64)
        sal = per_block @ self.present_t  # (M, NG)
        lev = np.searchsorted(self.thresholds, sal, side="right") if len(self.thresholds) else \
            np.zeros(sal.shape, np.int64)
        hist = np.bincount(lev[:, self.has_units].ravel(), minlength=8)
        for k in range(len(self.dd)):
            name = f"decisions_level{k}"
            setattr(c, name, getattr(c, name) + int(hist[k]))
        return self.dd.astype(np.int8)[lev][:, self.g_u], self.kd.astype(np.int8)[lev][:, self.g_u]

    def paths(self, ddu: np.ndarray, kdu: np.ndarray, i: int, c) -> tuple[np.ndarray, np.ndarray]:
        """Input plane ``i``: digital and analog masks (M, U) of every used column; counts the column reads."""
        d = (self.base_depth + (self.x_bits - 1 - i)).astype(np.int8)
        dig, keep = ddu > d, kdu > d
        n_dig, n_keep = dig.sum(axis=0), keep.sum(axis=0)
        m = ddu.shape[0]
        c.digital_column_reads += int(n_dig @ self.blocks_u)
        c.analog_column_reads += int((n_keep - n_dig) @ self.blocks_u)
        c.adc_conversions += int((n_keep - n_dig) @ self.blocks_u)
        c.skipped_bitplanes += int((m - n_keep) @ self.blocks_u)
        return dig, keep & ~dig

    def noise(self, image: np.ndarray, pixel: np.ndarray, cols: np.ndarray, b: int, i: int) -> np.ndarray:
        """Analog noise (1/16 counts) int64 (M, len(cols)) of row block ``b``, input plane ``i`` (§9.6)."""
        hp = self.hp
        w3 = (b << 8) | (i << 4) | self.j_u[cols]
        return analog_noise_words(hp.noise_seed, self.index, image[:, None], pixel[:, None], self.col_u[cols][None, :],
                                  w3[None, :], hp.noise_pairs, hp.noise_shift)

    def adc(self, n: np.ndarray, e: np.ndarray | None) -> np.ndarray:
        """Reconstructed counts n̂ (int64) of integer counts ``n`` with noise ``e`` (None: off)."""
        if e is None:
            return self.lut[n]
        return adc_count(adc_code((n.astype(np.int64) << NOISE_FRAC_BITS) + e, self.a, self.adc_bits),
                         self.a, self.adc_bits)

    # ---- the numpy run
    def windows(self, x: np.ndarray) -> np.ndarray:
        """uint8 (M, R·A) zero-padded input windows of NHWC ``x`` (all channels, exact integers)."""
        l = self.layer
        cols = im2col(x, l.kh, l.kw, l.stride, l.pad)
        m = cols.shape[0] * cols.shape[1] * cols.shape[2]
        xs = np.zeros((m, self.kpad), np.uint8)
        xs[:, :self.k] = cols.reshape(m, self.k)
        return xs

    def run_numpy(self, x: np.ndarray, image_base: int, c) -> np.ndarray:
        """Accumulators int64 (N, Ho, Wo, F) of NHWC input ``x`` (all channels), images numbered from
        ``image_base``; adds the data-dependent hybrid counters to ``c``."""
        n = x.shape[0]
        pix = self.ho * self.wo
        acc = np.empty((n, pix, self.n_f), np.int64)
        step = max(1, self.chunk_pixels // max(pix, 1))
        for a in range(0, n, step):
            xs = self.windows(x[a:a + step])
            m = xs.shape[0]
            image = (image_base + a + np.arange(m) // pix).astype(np.uint64)
            pixel = (np.arange(m) % pix).astype(np.uint64)
            acc[a:a + step] = self._chunk_numpy(xs, image, pixel, c).reshape(-1, pix, self.n_f)
        return acc.reshape(n, self.ho, self.wo, self.n_f)

    def _chunk_numpy(self, xs: np.ndarray, image: np.ndarray, pixel: np.ndarray, c) -> np.ndarray:
        ddu, kdu = self.levels(xs, c)
        ft = np.float32 if self.exact_f32 else np.float64
        acc = (xs[:, :self.k].astype(ft) @ self.w_int.astype(ft)).astype(np.float64)
        noisy = self.hp.noise_pairs > 0
        a = self.a
        for i in range(self.x_bits):
            dig, ana = self.paths(ddu, kdu, i, c)
            nd = np.nonzero(~dig.all(axis=0))[0]  # columns not digital at some pixel
            if not len(nd):
                continue
            xi = ((xs >> i) & 1).astype(np.float32)
            corr = np.where(dig[:, nd], 0.0, -(xi @ self.wcol[:, nd].astype(np.float32)).astype(np.float64))
            an = np.nonzero(ana[:, nd].any(axis=0))[0]  # positions (in nd) of columns analog at some pixel
            if len(an):
                cols = nd[an]
                asum = np.zeros((xs.shape[0], len(cols)), np.int64)
                for b in range(self.r):
                    sel = np.nonzero(self.present_u[cols, b])[0]
                    if not len(sel):
                        continue
                    cnt = (xi[:, b * a:(b + 1) * a] @ self.wcol[b * a:(b + 1) * a, cols[sel]].astype(np.float32))
                    cnt = cnt.astype(np.int64)
                    asum[:, sel] += self.adc(cnt, self.noise(image, pixel, cols[sel], b, i) if noisy else None)
                corr[:, an] += np.where(ana[:, cols], asum, 0)
            acc += corr @ (self.coef[nd] * float(1 << i))
        return np.rint(acc).astype(np.int64)
