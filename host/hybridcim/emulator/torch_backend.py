"""The fast emulator's torch backend: exact float32/float64 convolutions in channels-last layout.

Exactness argument (architecture.md §8): per layer, the validator's worst-case bound of
|acc + bias + res << res_shift| (after any left shift) is below 2^24 (float32) or 2^53
(float64). Scaling weights, bias and residual by the power of two 2^-shift[f] changes no
mantissa, so ``conv(x, w * 2^-s) + bias * 2^-s + res * 2^(res_shift - s)`` is exactly
v / 2^s, and ``round`` (half to even) then ``clamp`` is the spec's requant.

Sparsity: pruned filters are not computed. A tensor whose missing channels are provably 0
(outputs of pruned filters without residual whose requant(bias) is 0) is kept *compact*:
only its live channels are stored, with their original indices.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as tf

from ..cim.requant import requantize
from ..program.format import Op
from ..program.model import Program

CL = torch.channels_last


@dataclass
class _Step:
    """Everything one CIM layer needs at run time."""

    in_pos: torch.Tensor | None   # positions to select from the stored input, None = all
    weight: torch.Tensor          # (F', C', kh, kw) scaled by 2^-shift, channels-last
    bias: torch.Tensor            # (F',) scaled
    live_f: torch.Tensor          # original indices of computed filters
    compact_out: bool             # output stored as live_f channels only
    const: torch.Tensor | None    # (1, F, 1, 1) full-layout value of non-computed filters (no residual)
    bias_full: torch.Tensor | None  # (1, F, 1, 1) residual layers: scaled bias of all filters
    res_scale: torch.Tensor | None  # (1, F, 1, 1) 2^(res_shift - shift)
    dtype: torch.dtype


def _dt(np_dtype) -> torch.dtype:
    return torch.float32 if np_dtype == np.float32 else torch.float64


class TorchPlan:
    """Per-layer steps built once from the FastEmulator's plans; ``run`` executes the program."""

    def __init__(self, program: Program, plans: dict, dead_out: dict):
        self.program = program
        self.steps: dict[int, _Step] = {}
        self.stored: dict[int, np.ndarray | None] = {program.input_tensor: None}  # tensor -> stored channels
        self.last_use: dict[int, int] = {}
        for i, layer in enumerate(program.layers):
            for t in (layer.in_tensor, layer.res_tensor):
                if t is not None:
                    self.last_use[t] = i
            if layer.op.is_cim:
                self.steps[i] = self._step(i, layer, plans[i], dead_out[layer.out_tensor])
            else:
                self.stored[layer.out_tensor] = self.stored[layer.in_tensor]
        self.last_use[program.output_tensor] = len(program.layers)

    def _step(self, i: int, layer, plan, dead: np.ndarray) -> _Step:
        dt = _dt(plan.dtype)
        stored_in = self.stored[layer.in_tensor]
        if stored_in is None:
            pos = plan.live_c
        else:
            pos = np.searchsorted(stored_in, plan.live_c)
            assert np.array_equal(stored_in[pos], plan.live_c), "a live input channel is not stored"
        n_in = self.program.tensors[layer.in_tensor].channels if stored_in is None else len(stored_in)
        in_pos = None if np.array_equal(pos, np.arange(n_in)) else torch.from_numpy(pos)
        s = layer.shift.astype(np.int64)
        scale = np.ldexp(1.0, -s)
        live = plan.live_f
        weight = torch.from_numpy(plan.w_oihw * scale[live, None, None, None]).to(dt).contiguous(memory_format=CL)
        bias = torch.from_numpy(layer.bias[live].astype(np.float64) * scale[live]).to(dt)
        f = layer.n_filters
        full = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float64)).to(dt).view(1, f, 1, 1)
        non_live = np.setdiff1d(np.arange(f), live)
        compact = layer.res_tensor is None and bool(dead[non_live].all()) and len(live) < f
        const = bias_full = res_scale = None
        if layer.res_tensor is None and not compact and len(live) < f:
            const = full(requantize(np.zeros(f, dtype=np.int64), layer.bias, s, layer.clamp_lo, layer.clamp_hi))
        if layer.res_tensor is not None:
            bias_full = full(layer.bias * scale)
            res_scale = full(np.ldexp(1.0, layer.res_shift.astype(np.int64) - s))
        self.stored[layer.out_tensor] = live if compact else None
        return _Step(in_pos, weight, bias, torch.from_numpy(live), compact, const, bias_full, res_scale, dt)

    def _full(self, t: int, x: torch.Tensor) -> torch.Tensor:
        """Stored tensor ``t`` expanded to all its channels (missing ones are 0)."""
        chans = self.stored[t]
        if chans is None:
            return x
        n, _, h, w = x.shape
        out = torch.zeros((n, self.program.tensors[t].channels, h, w), dtype=x.dtype).contiguous(memory_format=CL)
        out[:, torch.from_numpy(chans)] = x
        return out

    def run(self, x0: np.ndarray, keep_all: bool) -> dict[int, np.ndarray]:
        """x0: int64 NHWC input. Returns {tensor index: int64 NHWC} (all tensors if keep_all)."""
        p = self.program
        env = {p.input_tensor: torch.from_numpy(x0.astype(np.float32)).permute(0, 3, 1, 2)}
        with torch.inference_mode():
            for i, layer in enumerate(p.layers):
                x = env[layer.in_tensor]
                if layer.op.is_cim:
                    y = self._cim(i, layer, x, env)
                elif layer.op == Op.MAXPOOL:
                    t_out = p.tensors[layer.out_tensor]
                    y = tf.max_pool2d(x, layer.kh, layer.stride) if x.shape[1] else \
                        x.new_zeros((x.shape[0], 0, t_out.height, t_out.width))
                else:
                    s = x.to(torch.float64).sum(dim=(2, 3), keepdim=True)
                    y = torch.round(s * 2.0 ** -layer.pool_shift).clamp_(layer.clamp_lo, layer.clamp_hi).to(x.dtype)
                env[layer.out_tensor] = y
                if not keep_all:
                    for t in (layer.in_tensor, layer.res_tensor):
                        if t is not None and self.last_use.get(t) == i:
                            env.pop(t, None)
        keys = env.keys() if keep_all else [p.output_tensor]
        return {t: self._full(t, env[t]).to(torch.float64).permute(0, 2, 3, 1).numpy().astype(np.int64)
                for t in keys}

    def _cim(self, i: int, layer, x: torch.Tensor, env: dict) -> torch.Tensor:
        st = self.steps[i]
        n = x.shape[0]
        t_out = self.program.tensors[layer.out_tensor]
        if len(st.live_f) and st.weight.shape[1]:
            xin = x if st.in_pos is None else x.index_select(1, st.in_pos)
            if xin.dtype != st.dtype:
                xin = xin.to(st.dtype)
            acc = tf.conv2d(xin.contiguous(memory_format=CL), st.weight, st.bias if st.bias_full is None else None,
                            stride=layer.stride, padding=layer.pad)
        else:  # nothing to compute: every filter pruned, or every input channel provably 0
            acc = st.bias.view(1, -1, 1, 1).expand(n, -1, t_out.height, t_out.width).clone(memory_format=CL) \
                if st.bias_full is None else None
        if st.bias_full is not None:  # residual layer: full-width v = res*2^(rs-s) + bias*2^-s (+ acc)
            res = self._full(layer.res_tensor, env[layer.res_tensor]).to(st.dtype)
            v = torch.addcmul(st.bias_full, res, st.res_scale)
            if acc is not None:
                if len(st.live_f) == layer.n_filters:
                    v.add_(acc)
                else:
                    v.index_add_(1, st.live_f, acc)
            return v.round_().clamp_(layer.clamp_lo, layer.clamp_hi)
        y = acc.round_().clamp_(layer.clamp_lo, layer.clamp_hi)
        if st.compact_out or st.const is None:
            return y
        out = st.const.expand(n, -1, t_out.height, t_out.width).clone(memory_format=CL)
        out.index_copy_(1, st.live_f, y)
        return out
