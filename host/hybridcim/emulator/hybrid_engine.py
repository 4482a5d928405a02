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
   column, b << 8 | i << 4 | j), drawn only at the reads analog at their pixel's level, else a
   lookup table over n ∈ [0, A]). The correction enters acc through the column's sign and 2^(i+j);
4. **column-read counters** (§9.7) per plane and column: pixels × present blocks of the column's
   group, split by path.

Every step is integer arithmetic carried in float32 (0/1 products over ≤ 576 rows: < 2^24) or
float64 (accumulator corrections: |partial| ≤ 2 · the §9.5 bound < 2^32 ≪ 2^53), so the result
equals the reference emulator's bit for bit. The numpy functions here are the board path; the torch
backend runs the same steps with its own products (torch_hybrid.py).
"""
from __future__ import annotations

import numpy as np

from ..cim.hybrid import NOISE_FRAC_BITS, adc_code, adc_count, adc_shift
from ..cim.philox import philox4x32_u32
from ..program.model import Layer, Program
from ..program.weights import decode_weight_matrix
from .ops import im2col

CHUNK_BYTES = 16 << 20
"""Working-set target of one chunk of pixels (bytes; the chunk holds at least one image)."""

_M1, _M2, _M4, _H01 = (np.uint32(v) for v in (0x55555555, 0x33333333, 0x0F0F0F0F, 0x01010101))


def popcount32(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint32 element (SWAR on uint32: ~2x a 16-bit lookup table here); int32."""
    x = x - ((x >> np.uint32(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint32(2)) & _M2)
    x = (x + (x >> np.uint32(4))) & _M4
    x *= _H01
    x >>= np.uint32(24)
    return x.view(np.int32)


def noise_words(seed: int, layer: int, image, pixel, column, word3, pairs: int, shift: int) -> np.ndarray:
    """The §9.6 noise e (1/16 counts, int32 of the broadcast shape) of the counters (image, pixel, column,
    word3) under key (seed, layer): (popcount((u0 | u1 << 32) & m) − popcount((u2 | u3 << 32) & m)) ·
    2^shift, m = 2^pairs − 1 (``cim.hybrid.analog_noise_words``'s values). Only the Philox words the
    mask reaches are computed; popcounts on uint32."""
    if not pairs:
        return np.zeros(np.broadcast_shapes(*(np.shape(v) for v in (image, pixel, column, word3))), np.int32)
    need = [w for w in (0, 1) if pairs > 32 * w]
    u = philox4x32_u32(image, pixel, column, word3, seed, layer, words=tuple(need) + tuple(w + 2 for w in need))
    e = None
    for k, w in enumerate(need):
        bits = min(pairs - 32 * w, 32)
        a, b = u[k], u[k + len(need)]
        if bits < 32:
            a &= np.uint32((1 << bits) - 1)
            b &= np.uint32((1 << bits) - 1)
        t = popcount32(a)
        t -= popcount32(b)
        e = t if e is None else e + t
    if shift:
        e <<= shift
    return e


SPARSE_NOISE_BELOW = 0.75
"""Share of analog reads in a block below which Philox runs on the analog reads only (a gather)."""

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
        # bytes per pixel of a chunk: windows and one float input plane (plus the torch engine's cached
        # planes), column codes and counts, the per-level accumulators and the digital products
        per_pixel = self.kpad * (2 + 4 * 2) + u * (16 + (96 if hp.noise_pairs else 0)) + \
            self.n_f * 8 * (len(hp.digital_depth) + 4) + 64
        self.chunk_pixels = max(1, CHUNK_BYTES // per_pixel)

        # ---- level tables (built once): per level ℓ, input plane i and column u the path of the pair
        t_lv = len(self.dd)
        self.n_levels = t_lv
        depth = self.base_depth[None, :] + (self.x_bits - 1 - np.arange(self.x_bits))[:, None]  # (X, U)
        dig = depth[None] < self.dd[:, None, None]  # (T, X, U)
        keep = depth[None] < self.kd[:, None, None]
        self.analog = keep & ~dig  # (T, X, U)
        # column reads per decision (pixel x group at level ℓ): Σ over planes and the group's used columns
        # of its present blocks, by path
        per = np.zeros((3, t_lv, layer.n_groups), np.int64)
        for k, mask in enumerate((dig, self.analog, ~keep)):
            np.add.at(per[k], (slice(None), self.g_u), (mask * self.blocks_u).sum(axis=1))
        self.reads_per_decision = per  # (path, T, NG)
        # digital part of level ℓ: Σ over planes i of 2^i x_i · (weights' top t = D_ℓ − (X − 1 − i) planes)
        self.p_max = int(layer.precision.max(initial=0))
        self.w_top = {}  # t -> (K_pad, F) float64: Σ over the top t planes of each filter, with signs
        wbits = self.wcol.astype(np.float64)
        prec_u = layer.precision.astype(np.int64)[self.f_u]
        for t in range(1, self.p_max + 1):
            sel = self.j_u >= prec_u - t
            self.w_top[t] = wbits[:, sel] @ self.coef[sel]
        # analog part: per level and plane, the ±2^(i+j) of every column analog there
        self.a_coef = self.analog[..., None] * self.coef[None, None] * np.ldexp(1.0, np.arange(self.x_bits))[None, :,
                                                                                                         None, None]
        # exactness: every partial sum is bounded by the §9.5 hybrid bound's first term
        n_hat_max = int(self.lut[-1]) if len(self.lut) else 0
        rows = np.minimum(self.a, self.k - np.arange(self.r) * self.a)
        per_f = np.zeros(self.n_f, np.int64)
        if u:
            blk = (layer.present.astype(np.int64) * np.maximum(rows, n_hat_max)[None, :]).sum(axis=1)
            per_f[self.f_u] = blk[self.g_u]
        bound = int(per_f.max(initial=0)) * ((1 << self.x_bits) - 1) * ((1 << self.p_max) - 1)
        self.dtype = np.float32 if bound < (1 << 24) else np.float64
        self.g_of_f = np.zeros(self.n_f, np.int64)
        self.g_of_f[self.f_u] = self.g_u
        # numpy run: the digital products' weights in the run's float type, and per input plane the
        # columns analog at some level with, per row block, those present there and their weight bits
        ft = self.dtype
        self.w_top_ft = {t: w.astype(ft) for t, w in self.w_top.items()}
        self.np_planes = []
        for i in range(self.x_bits):
            cols = self.analog_columns(np.arange(t_lv), i)
            blocks = []
            for b in range(self.r):
                sel = np.nonzero(self.present_u[cols, b])[0]
                if len(sel):
                    blocks.append((b, sel, len(sel) == len(cols),
                                   np.ascontiguousarray(self.wcol[b * self.a:(b + 1) * self.a, cols[sel]].astype(ft))))
            self.np_planes.append((cols, blocks, (self.a_coef[:, i][:, cols] * float(1 << self.s)).astype(ft)))

    def digital_terms(self, level: int) -> tuple[int, list[tuple[int, int]]]:
        """Level ``level``'s digital part as (i0, [(i, t), ...]): (x >> i0 << i0) · W (all planes of every
        filter) plus Σ 2^i x_i · w_top[t] over the listed planes (t < p_max weight planes kept); i0 = X: none."""
        d = int(self.dd[level])
        i0, terms = self.x_bits, []
        for i in range(self.x_bits - 1, -1, -1):
            t = d - (self.x_bits - 1 - i)
            if t <= 0:
                break
            if t >= self.p_max and i0 == i + 1:
                i0 = i
            else:
                terms.append((i, min(t, self.p_max)))
        return i0, terms

    def analog_columns(self, levels: np.ndarray, i: int) -> np.ndarray:
        """Columns analog at plane ``i`` at one of ``levels``."""
        return np.nonzero(self.analog[levels, i].any(axis=0))[0]

    # ---- step 1: saliency and level
    def levels(self, xs: np.ndarray, c) -> np.ndarray:
        """xs: uint8 (M, R·A) windows. Returns the level of every pixel and group, int64 (M, NG); adds
        the level histogram and the column reads by path to counters ``c``."""
        m = xs.shape[0]
        per_block = (xs >> (self.x_bits - self.hp.sal_planes)).reshape(m, self.r, self.a).sum(axis=2, dtype=np.int32)
        sal = per_block.astype(np.int64) @ self.present_t  # (M, NG)
        lev = np.searchsorted(self.thresholds, sal, side="right") if len(self.thresholds) else \
            np.zeros(sal.shape, np.int64)
        self.count(np.bincount((lev + self.n_levels * np.arange(lev.shape[1])).ravel(),
                               minlength=self.n_levels * lev.shape[1]).reshape(-1, self.n_levels), c)
        return lev

    def count(self, hist: np.ndarray, c) -> None:
        """Counters from the decisions ``hist`` (NG, T) of a chunk: level histogram and column reads."""
        h = hist[self.has_units].sum(axis=0)
        for k in range(self.n_levels):
            name = f"decisions_level{k}"
            setattr(c, name, getattr(c, name) + int(h[k]))
        dig, ana, skip = (int((self.reads_per_decision[k].T * hist).sum()) for k in range(3))
        c.digital_column_reads += dig
        c.analog_column_reads += ana
        c.adc_conversions += ana
        c.skipped_bitplanes += skip

    def add_noise(self, cnt: np.ndarray, lev: np.ndarray, image: np.ndarray, pixel: np.ndarray, cols: np.ndarray,
                  b: int, i: int) -> None:
        """Adds e/16 (§9.6) in place to the float counts ``cnt`` (M, len(cols)) of row block ``b``, input
        plane ``i`` at the reads that are analog at their pixel's level ``lev`` (M, NG); the other counts
        keep their noise-free value (their codes enter no level's sum). Exact: |e/16| ≤ 1024 in steps of
        1/16. Philox runs only on the analog reads when they are under SPARSE_NOISE_BELOW of the block's."""
        hp = self.hp
        w3 = (b << 8) | (i << 4) | self.j_u[cols]
        col = self.col_u[cols]
        where = self.analog[:, i, cols]  # (T, U_b)
        mask = None if where.all() else np.take_along_axis(where, lev[:, self.g_u[cols]], axis=0)
        if mask is None or np.count_nonzero(mask) >= SPARSE_NOISE_BELOW * mask.size:
            e = noise_words(hp.noise_seed, self.index, image[:, None], pixel[:, None], col[None, :], w3[None, :],
                            hp.noise_pairs, hp.noise_shift).astype(cnt.dtype)
            e *= cnt.dtype.type(1.0 / (1 << NOISE_FRAC_BITS))
            cnt += e
            return
        r, q = np.nonzero(mask)
        if len(r):
            e = noise_words(hp.noise_seed, self.index, image[r], pixel[r], col[q], w3[q], hp.noise_pairs,
                            hp.noise_shift).astype(cnt.dtype)
            e *= cnt.dtype.type(1.0 / (1 << NOISE_FRAC_BITS))
            cnt[r, q] += e

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
        lev = self.levels(xs, c)
        used = np.unique(lev)
        m, a, ft = xs.shape[0], self.a, self.dtype
        per_level = np.zeros((self.n_levels, m, self.n_f), ft)
        digital = {i: [] for i in range(self.x_bits)}  # plane -> [(level, top weight planes t)]
        for lv in used:  # digital part: the all-planes product of the high input bits now, the rest per plane
            i0, terms = self.digital_terms(lv)
            if i0 < self.x_bits:
                per_level[lv] += ((xs >> i0) << i0).astype(ft) @ self.w_top_ft[self.p_max]
            for i, t in terms:
                digital[i].append((lv, t))
        noisy = self.hp.noise_pairs > 0
        step = float(np.ldexp(1.0, -self.s))
        cmax = float((1 << self.adc_bits) - 1)
        for i, (cols, blocks, coef) in enumerate(self.np_planes):  # one input plane at a time (memory)
            need_analog = len(cols) and self.analog[used, i].any()
            if not digital[i] and not need_analog:
                continue
            xi = ((xs >> i) & 1).astype(ft)
            products = {}
            for lv, t in digital[i]:
                if t not in products:
                    products[t] = xi @ self.w_top_ft[t]
                    products[t] *= float(1 << i)
                per_level[lv] += products[t]
            del products
            if not need_analog:
                continue
            codes = np.zeros((m, len(cols)), ft)  # Σ over present row blocks of the ADC codes
            for b, sel, whole, wb in blocks:
                cnt = xi[:, b * a:(b + 1) * a] @ wb
                if noisy:
                    self.add_noise(cnt, lev, image, pixel, cols[sel], b, i)
                # rshift_rne(16 n + e, 4 + s) = round half to even of (n + e/16) · 2^−s, exact in float
                code = np.clip(np.round(np.multiply(cnt, step, out=cnt), out=cnt), 0.0, cmax, out=cnt)
                if whole:
                    codes += code
                else:
                    codes[:, sel] += code
            for lv in used:
                if self.analog[lv, i].any():
                    per_level[lv] += codes @ coef[lv]
        if not lev.shape[1]:  # no group: every filter pruned, accumulators 0
            return np.zeros((m, self.n_f), np.int64)
        lev_f = lev[:, self.g_of_f]  # (M, F)
        return np.take_along_axis(per_level, lev_f[None], axis=0)[0].astype(np.int64)
