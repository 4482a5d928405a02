"""Execution plan shared by the fast emulator's backends (architecture.md §8).

Built once per program: per CIM layer, the decoded weights restricted to computed filters
(precision > 0, not all zero) and to input channels that can be non-zero, scaled by the
power of two 2^-shift[f]; the float type that keeps every value exact (float32 when the
validator's worst-case bound of |v| and both clamp bounds are < 2^24, else float64: every
requant output lies in [lo, hi] or is the exact rounded v, so a clamp bound such as
2^24 + 1 must be representable too); and the channel bookkeeping of *compact* tensors,
whose missing channels are provably 0 (outputs of pruned filters without residual whose
requant(bias) is 0).

Exactness: scaling by a power of two changes no mantissa, so
``conv(x, w * 2^-s) + bias * 2^-s + res * 2^(res_shift - s)`` equals v / 2^s exactly, and
round-half-to-even then clamp is the spec's requant (§6).

Dual-path layers (architecture.md §10) are layers whose computed filters split into two weight
sets: the first ``n_sram`` rows of the step's weights are SRAM (INT4 path) filters applied to
the input x, the rest ternary filters (T in {-1, 0, 1}) applied to the binary input
z = [x >= threshold]. Both sets read the same input channels (an input channel that is
provably 0 gives z = 0 as well, since threshold >= 1), and their accumulators, concatenated in
filter order, go through the same per-filter requant: the ternary path is exact in float32
(|acc| <= K) and the validator's bound covers both sets (§10.5).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cim.requant import requantize
from ..program.dualpath import decode_ternary
from ..program.format import FLAG_DUAL, MODE_DIGITAL, MODE_HYBRID
from ..program.model import Layer, Program
from ..program.validate import accumulator_bound
from ..program.weights import decode_weight_matrix
from .hybrid_engine import HybridLayer

F32_EXACT = 1 << 24


@dataclass
class CimStep:
    """Run-time data of one CIM layer (arrays are numpy; backends convert them once)."""

    in_pos: np.ndarray | None      # positions to take from the stored input channels; None = all
    w_oihw: np.ndarray             # (F', C', kh, kw) scaled weights
    w_hwc: np.ndarray              # (kh*kw*C', F') the same, HWC reduction order
    bias: np.ndarray               # (F',) scaled bias of computed filters
    live_f: np.ndarray             # original indices of computed filters
    compact_out: bool              # output stored as the live_f channels only
    const: np.ndarray | None       # (F,) value of every filter when nothing is computed for it (no residual)
    bias_full: np.ndarray | None   # (F,) residual layers: scaled bias of all filters
    res_scale: np.ndarray | None   # (F,) residual layers: 2^(res_shift - shift)
    dtype: type                    # np.float32 or np.float64
    w_int: np.ndarray              # (F', C', kh, kw) int64 unscaled weights of the computed filters
    shift: np.ndarray              # (F',) int64 shift of the computed filters
    bound: int                     # exact worst case of |v| (validator's accumulator bound), Python int
    n_sram: int = -1               # dual-path layers: rows [:n_sram] of the weights act on x, the rest (ternary) on z
    threshold: int | None = None   # dual-path layers: z = [x >= threshold] (§10.2); None: not dual-path

    @property
    def dual(self) -> bool:
        """Whether the step has a ternary weight set (a dual-path layer, §10)."""
        return self.threshold is not None


def dense_weights(layer: Layer, program: Program) -> tuple[np.ndarray, np.ndarray]:
    """(W int64 (F, K), is_tern bool (F,)): every filter's weights in the §3 row order. SRAM filters
    from their bit planes; in a dual-path layer the last F_t rows are the ternary weights T (§10.2)."""
    w = decode_weight_matrix(layer.precision, layer.col_filter, layer.col_plane, layer.present, layer.words,
                             layer.k_rows, program.preset.rows_active)
    is_tern = np.zeros(layer.n_filters, dtype=bool)
    if layer.flags & FLAG_DUAL:
        f0 = layer.dual.first_tern(layer.n_filters)
        is_tern[f0:] = True
        if f0 < layer.n_filters:
            w = w.copy()
            w[f0:] = decode_ternary(layer.tern_words, layer.k_rows, program.preset.tern_rows_active)
    return w, is_tern


def dead_channels(layer: Layer, w: np.ndarray, is_tern: np.ndarray) -> np.ndarray:
    """Bool (F,): outputs that are 0 for every input (nothing computed, no residual, requant(bias) == 0).
    ``w``, ``is_tern``: :func:`dense_weights` (a ternary filter is computed unless its weights are all 0)."""
    if layer.res_tensor is not None:
        return np.zeros(layer.n_filters, dtype=bool)
    y0 = requantize(np.zeros(layer.n_filters, dtype=np.int64), layer.bias, layer.shift, layer.clamp_lo, layer.clamp_hi)
    return np.where(is_tern, ~w.any(axis=1), layer.precision == 0) & (y0 == 0)


class ExecPlan:
    """Steps of every CIM layer, stored-channel maps of every tensor, and tensor lifetimes."""

    def __init__(self, program: Program):
        self.program = program
        self.steps: dict[int, CimStep] = {}
        self.stored: dict[int, np.ndarray | None] = {program.input_tensor: None}
        dead = {program.input_tensor: np.zeros(program.input.channels, dtype=bool)}
        self.last_use: dict[int, int] = {}
        self.hybrid: dict[int, HybridLayer] = {}  # hybrid (mode 1) layers' tables (architecture.md §9)
        for i, layer in enumerate(program.layers):
            for t in (layer.in_tensor, layer.res_tensor):
                if t is not None:
                    self.last_use[t] = i
            if layer.op.is_cim:
                w, is_tern = dense_weights(layer, program)
                self.steps[i] = self._step(layer, dead[layer.in_tensor], w, is_tern)
                if layer.mode == MODE_HYBRID:
                    self.hybrid[i] = HybridLayer(layer, program, i)
                dead[layer.out_tensor] = dead_channels(layer, w, is_tern)
            else:  # pools keep zero channels zero (their clamp lo is 0) and the stored layout
                dead[layer.out_tensor] = dead[layer.in_tensor]
                self.stored[layer.out_tensor] = self.stored[layer.in_tensor]
        self.last_use[program.output_tensor] = len(program.layers)

    def _step(self, layer: Layer, dead_in: np.ndarray, w: np.ndarray, is_tern: np.ndarray) -> CimStep:
        p = self.program
        c_in = p.tensors[layer.in_tensor].channels
        w4 = w.reshape(layer.n_filters, layer.kh, layer.kw, c_in)
        live = np.nonzero(((layer.precision > 0) | is_tern) & w.any(axis=1))[0]  # SRAM filters first, then ternary
        live_c = np.nonzero(w4[live].any(axis=(0, 1, 2)) & ~dead_in)[0]
        stored_in = self.stored[layer.in_tensor]
        pos = live_c if stored_in is None else np.searchsorted(stored_in, live_c)
        if stored_in is not None and not np.array_equal(stored_in[pos], live_c):
            raise AssertionError(f"layer {layer.name!r}: a live input channel is not stored")
        n_in = c_in if stored_in is None else len(stored_in)
        bound = accumulator_bound(layer, p, np.where(is_tern[:, None], 0, w))  # adds the ternary rows (§10.5)
        dtype = np.float32 if max(bound, -layer.clamp_lo, layer.clamp_hi) < F32_EXACT else np.float64
        s = layer.shift.astype(np.int64)
        scale = np.ldexp(1.0, -s)
        sub = w4[live][:, :, :, live_c] * scale[live, None, None, None]  # (F', kh, kw, C')
        f = layer.n_filters
        non_live = np.setdiff1d(np.arange(f), live)
        compact = layer.mode == MODE_DIGITAL and layer.res_tensor is None and len(live) < f and \
            bool(dead_channels(layer, w, is_tern)[non_live].all())  # a hybrid layer's output is stored whole
        const = bias_full = res_scale = None
        if layer.res_tensor is None and not compact and len(live) < f:
            const = requantize(np.zeros(f, dtype=np.int64), layer.bias, s, layer.clamp_lo, layer.clamp_hi).astype(dtype)
        if layer.res_tensor is not None:
            bias_full = (layer.bias * scale).astype(dtype)
            res_scale = np.ldexp(1.0, layer.res_shift.astype(np.int64) - s).astype(dtype)
        self.stored[layer.out_tensor] = live if compact else None
        return CimStep(
            in_pos=None if np.array_equal(pos, np.arange(n_in)) else pos,
            w_oihw=np.ascontiguousarray(sub.transpose(0, 3, 1, 2)).astype(dtype),
            w_hwc=np.ascontiguousarray(sub.reshape(len(live), layer.kh * layer.kw * len(live_c)).T).astype(dtype),
            bias=(layer.bias[live] * scale[live]).astype(dtype), live_f=live, compact_out=compact, const=const,
            bias_full=bias_full, res_scale=res_scale, dtype=dtype,
            w_int=np.ascontiguousarray(w4[live][:, :, :, live_c].transpose(0, 3, 1, 2)), shift=s[live], bound=bound,
            n_sram=int((~is_tern[live]).sum()), threshold=layer.dual.bin_threshold if layer.flags & FLAG_DUAL else None)

    def releasable(self, i: int, layer: Layer) -> list[int]:
        """Tensors whose last reader is layer ``i`` (free them after it when not tracing)."""
        return [t for t in {layer.in_tensor, layer.res_tensor} if t is not None and self.last_use.get(t) == i]

    def expand(self, t: int, x: np.ndarray) -> np.ndarray:
        """NHWC stored tensor ``t`` with all its channels (missing ones are 0)."""
        chans = self.stored[t]
        if chans is None:
            return x
        out = np.zeros(x.shape[:3] + (self.program.tensors[t].channels,), dtype=x.dtype)
        out[..., chans] = x
        return out
