"""The torch backend's hybrid-mode engine (architecture.md §9): :class:`TorchHybrid` runs a hybrid
layer with the steps of ``hybrid_engine.py`` (the numpy engine, which defines them): per row block and
input plane the 0/1 column counts by a 1x1 int8 convolution over the block's rows with the ADC fused
(output scale 2^-s, round half to even, clamp: uint8 codes), the digital pairs by int8 products of
input planes with the filters' top weight planes; the §9.6 noise drawn by the numpy engine's blocked
Philox4x32-10 (``hybrid_engine.noise_words``: ~2× a torch version here, whose strided int32 ops
are not vectorized) and added to the counts in float before the ADC.
Used by :class:`~hybridcim.emulator.torch_backend.TorchPlan` for its hybrid layers.
"""
from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as tf

PAIR_SUM_MAX = (1 << 15) - 1  # int16 intermediate of u8 x s8 pair products without VNNI (torch_backend.py)

class TorchHybrid:
    """Hybrid layer (architecture.md §9) on torch: the numpy engine's steps (hybrid_engine.py) with
    torch products. ``int8``: the per-block column counts and their ADC codes by one grouped oneDNN
    int8 convolution per input plane (0/1 uint8 plane × 0/1 int8 column bits, one group per row
    block, output scale 2^-s, round half to even and clamp to the ADC range fused: uint8 codes);
    else float32 batched products and the ADC in float (exact: counts ≤ 64). The digital part and
    the per-level sums are float matmuls (float32 when the §9.5 bound is < 2^24, else float64)."""

    def __init__(self, hl, int8: bool):
        self.hl = hl
        ft = torch.float32 if hl.dtype == np.float32 else torch.float64
        self.ft = ft
        r, a = hl.r, hl.a
        self.present_t = torch.from_numpy(hl.present_t.astype(np.float64))
        self.thresholds = torch.from_numpy(hl.thresholds)
        self.w_top = {t: torch.from_numpy(w).to(ft) for t, w in hl.w_top.items()}
        self.g_of_f = torch.from_numpy(hl.g_of_f)
        self.cmax = (1 << hl.adc_bits) - 1
        self.int8, self.checked = int8, False
        self.dpacks = {}  # digital products' int8 weights, packed on first use
        self.planes = []  # per input plane: columns analog at some level; per row block its present ones
        for i in range(hl.x_bits):
            cols = hl.analog_columns(np.arange(hl.n_levels), i)
            if not len(cols):
                self.planes.append(None)
                continue
            coef = hl.a_coef[:, i][:, cols] * float(1 << hl.s)  # (T, U, F); n̂ = code · 2^s folded in
            levels = []  # per level: the columns analog there (indices into cols) and their coefficients
            for lv in range(hl.n_levels):
                idx = np.nonzero(hl.analog[lv, i, cols])[0]
                levels.append(None if not len(idx) else (None if len(idx) == len(cols) else torch.from_numpy(idx),
                                                          torch.from_numpy(np.ascontiguousarray(coef[lv][idx])).to(ft)))
            pl = SimpleNamespace(cols=cols, u=len(cols), levels=levels, blocks=[])
            for blk in range(r):
                sel = np.nonzero(hl.present_u[cols, blk])[0]
                if not len(sel):
                    continue
                wb = hl.wcol[blk * a:(blk + 1) * a, cols[sel]]  # (A, U_b) 0/1
                bk = SimpleNamespace(b=blk, sel=torch.from_numpy(sel), cols=cols[sel], whole=len(sel) == len(cols),
                                     w_float=torch.from_numpy(wb.astype(np.float32)))
                if int8:
                    w_oihw = torch.from_numpy(np.ascontiguousarray(wb.T).reshape(len(sel), a, 1, 1).astype(np.int8))
                    bk.ws_code = torch.full((len(sel),), float(np.ldexp(1.0, -hl.s)))
                    bk.ws_count = torch.ones(len(sel))
                    bk.pack_code = torch.ops.onednn.qconv_prepack(w_oihw, bk.ws_code, 1.0, 0, [1, 1], [0, 0], [1, 1],
                                                                  1, None)
                    bk.pack_count = torch.ops.onednn.qconv_prepack(w_oihw, bk.ws_count, 1.0, 0, [1, 1], [0, 0], [1, 1],
                                                                   1, None)
                    bk.zp = torch.zeros(len(sel), dtype=torch.int64)
                pl.blocks.append(bk)
            self.planes.append(pl)

    def _digital_pack(self, key, t: int, scale: float, xmax: int):
        """(prepacked int8 weights, w_scale, zp) of the digital product ``key``: the top ``t`` weight planes
        of every filter times ``scale`` (a power of two), or None where the int8 engine is off or not
        provably exact: float32 output (the §9.5 bound < 2^24) and no int16 pair-sum saturation."""
        if key not in self.dpacks:
            pk = None
            w = self.hl.w_top[t]  # (K_pad, F) exact integers
            wmax = int(np.abs(w).max(initial=0))
            if self.ft == torch.float32 and wmax <= 127 and 2 * xmax * wmax <= PAIR_SUM_MAX:
                ws = torch.full((w.shape[1],), scale)
                wt = torch.from_numpy(np.ascontiguousarray(w.T).reshape(w.shape[1], -1, 1, 1).astype(np.int8))
                pk = (torch.ops.onednn.qconv_prepack(wt, ws, 1.0, 0, [1, 1], [0, 0], [1, 1], 1, None), ws,
                      torch.zeros(w.shape[1], dtype=torch.int64))
            self.dpacks[key] = pk
        return self.dpacks[key]

    @staticmethod
    def _qconv(x: torch.Tensor, pack, ws, zp, hi: float | None) -> torch.Tensor:
        """1x1 oneDNN int8 convolution over the M pixels of a contiguous uint8 (M, A) ``x``: (M, U) uint8
        clamp(round_half_even(x · w · ws), 0, hi), or with ``hi`` None the float32 x · w · ws."""
        m, a = x.shape
        out, attr, sc = (torch.float32, "none", []) if hi is None else (torch.uint8, "hardtanh", [0.0, hi])
        y = torch.ops.onednn.qconv2d_pointwise(x.view(1, m, 1, a).permute(0, 3, 1, 2), 1.0, 0, pack, ws, zp, None,
                                               [1, 1], [0, 0], [1, 1], 1, 1.0, 0, out, attr, sc, "")
        return y.permute(0, 2, 3, 1).reshape(m, -1)

    def windows(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (M, R·A) zero-padded windows of NCHW ``x`` (all channels, exact integer values)."""
        hl, l = self.hl, self.hl.layer
        xh = x.permute(0, 2, 3, 1).to(torch.uint8)
        if l.pad:
            xh = tf.pad(xh, (0, 0, l.pad, l.pad, l.pad, l.pad))
        n, s = xh.shape[0], l.stride
        parts = [xh[:, ky:ky + s * (hl.ho - 1) + 1:s, kx:kx + s * (hl.wo - 1) + 1:s, :]
                 for ky in range(l.kh) for kx in range(l.kw)]
        m = n * hl.ho * hl.wo
        xs = torch.zeros((m, hl.kpad), dtype=torch.uint8)
        xs[:, :hl.k] = torch.cat(parts, dim=3).reshape(m, hl.k)
        return xs

    def accumulators(self, x: torch.Tensor, image_base: int, c) -> torch.Tensor:
        """Accumulators (N·Ho·Wo, F) in the layer's float type of NCHW input ``x`` (all channels)."""
        hl = self.hl
        n, pix = x.shape[0], hl.ho * hl.wo
        step = max(1, hl.chunk_pixels // max(pix, 1))
        out = []
        for a in range(0, n, step):
            xs = self.windows(x[a:a + step])
            y = self._chunk(xs, image_base + a, pix, c)
            if self.int8 and a == 0:  # the int8 products against the float ones: the whole first chunk of
                k = xs.shape[0] if not self.checked else min(xs.shape[0], pix)  # the first call, then image 0
                self.int8 = False
                want = self._chunk(xs[:k], image_base, pix, None)
                self.int8 = torch.equal(y[:k], want)
                if not self.int8:
                    warnings.warn(f"layer {hl.layer.name!r}: the int8 column counts differ from the exact float ones "
                                  "on this machine; the layer uses the float engine from now on", RuntimeWarning,
                                  stacklevel=3)
                    y = self._chunk(xs, image_base + a, pix, None)
                self.checked = True
            out.append(y)
        return torch.cat(out) if len(out) > 1 else out[0]

    def _chunk(self, xs: torch.Tensor, first_image: int, pix: int, c) -> torch.Tensor:
        hl, ft = self.hl, self.ft
        m, r, a = xs.shape[0], hl.r, hl.a
        per_block = (xs >> (hl.x_bits - hl.hp.sal_planes)).view(m, r, a).sum(dim=2, dtype=torch.int32)
        sal = (per_block.to(torch.float64) @ self.present_t).to(torch.int64)
        lev = torch.searchsorted(self.thresholds, sal, right=True) if len(hl.thresholds) else \
            torch.zeros(sal.shape, dtype=torch.int64)
        ng, t_lv = lev.shape[1], hl.n_levels
        if c is not None:
            hist = torch.bincount((lev + t_lv * torch.arange(ng)).reshape(-1), minlength=t_lv * ng).reshape(ng, t_lv)
            hl.count(hist.numpy(), c)
        if not ng:
            return torch.zeros((m, hl.n_f), dtype=ft)
        used = torch.unique(lev).numpy()
        planes = {}

        def plane(i):
            if i not in planes:
                planes[i] = (xs >> i) & 1
            return planes[i]

        per_level = torch.zeros((t_lv, m, hl.n_f), dtype=ft)
        products = {}
        for lv in used:  # digital part
            i0, terms = hl.digital_terms(int(lv))
            if i0 < hl.x_bits:
                if ("hi", i0) not in products:
                    xh = (xs >> i0) << i0
                    xmax = (1 << hl.x_bits) - (1 << i0)
                    pk = self._digital_pack(("hi", i0), hl.p_max, 1.0, xmax) if self.int8 else None
                    products[("hi", i0)] = self._qconv(xh, *pk, None) if pk else xh.to(ft) @ self.w_top[hl.p_max]
                per_level[lv] += products[("hi", i0)]
            for i, t in terms:
                if (i, t) not in products:
                    pk = self._digital_pack((i, t), t, float(1 << i), 1) if self.int8 else None
                    products[(i, t)] = self._qconv(plane(i), *pk, None) if pk else \
                        plane(i).to(ft) @ (self.w_top[t] * float(1 << i))
                per_level[lv] += products[(i, t)]
        noisy = hl.hp.noise_pairs > 0
        if noisy:
            mm = np.arange(m, dtype=np.uint64)
            image = np.uint64(first_image) + mm // np.uint64(pix)
            pixel = mm % np.uint64(pix)
        xsb = None
        for i, pl in enumerate(self.planes):  # analog part
            if pl is None or not hl.analog[used, i].any():
                continue
            if xsb is None:  # row-block-major windows: (R, M, A), each block contiguous
                xsb = xs.view(m, r, a).transpose(0, 1).contiguous()
            xi = (xsb >> i) & 1
            asum = torch.zeros((m, pl.u), dtype=ft)
            for bk in pl.blocks:
                if self.int8 and not noisy:
                    codes = self._qconv(xi[bk.b], bk.pack_code, bk.ws_code, bk.zp, float(self.cmax))
                else:
                    if self.int8:
                        cnt = self._qconv(xi[bk.b], bk.pack_count, bk.ws_count, bk.zp, 255.0)
                    else:
                        cnt = xi[bk.b].to(torch.float32) @ bk.w_float
                    if noisy:
                        codes = self._noisy_codes(cnt, lev, image, pixel, bk.cols, bk.b, i)
                    else:
                        codes = torch.round(cnt * float(np.ldexp(1.0, -hl.s))).clamp_(0, self.cmax)
                if bk.whole:
                    asum += codes
                else:
                    asum.index_add_(1, bk.sel, codes.to(ft))
            for lv in used:
                if pl.levels[lv] is not None:
                    idx, coef = pl.levels[lv]
                    per_level[lv] += (asum if idx is None else asum.index_select(1, idx)) @ coef
        lev_f = lev[:, self.g_of_f]
        return torch.gather(per_level, 0, lev_f.unsqueeze(0)).squeeze(0)

    def _noisy_codes(self, cnt: torch.Tensor, lev: torch.Tensor, image: np.ndarray, pixel: np.ndarray,
                     cols: np.ndarray, b: int, i: int) -> torch.Tensor:
        """ADC codes (M, U_b) float32 of row block ``b``'s counts ``cnt`` with the §9.6 noise of the layer's
        used columns ``cols`` at the reads analog at their level ``lev`` (``HybridLayer.add_noise``):
        rshift_rne(16 n + e, 4 + s) = round half to even of (n + e/16) · 2^−s, exact in float32."""
        x = cnt.to(torch.float32)  # cnt: a fresh product, free to change in place
        self.hl.add_noise(x.numpy(), lev.numpy(), image, pixel, cols, b, i)
        x *= float(np.ldexp(1.0, -self.hl.s))
        return torch.round(x).clamp_(0, self.cmax)
