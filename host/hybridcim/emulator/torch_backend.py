"""The fast emulator's torch backend: exact float32/float64 convolutions in channels-last layout.

Exactness argument (architecture.md §8): per layer, the validator's worst-case bound of
|acc + bias + res << res_shift| (after any left shift) is below 2^24 (float32) or 2^53
(float64). Scaling weights, bias and residual by the power of two 2^-shift[f] changes no
mantissa, so ``conv(x, w * 2^-s) + bias * 2^-s + res * 2^(res_shift - s)`` is exactly
v / 2^s, and ``round`` (half to even) then ``clamp`` is the spec's requant.

The argument assumes the convolution is computed by exact-sum algorithms (direct or GEMM
based). Fast algorithms (Winograd, FFT) multiply by non-powers of two and could break it,
so the first batch a plan runs is checked: every convolution output, scaled back by
2^shift, must be an integer; otherwise :class:`ExactnessError` tells the user to take the
numpy backend. (oneDNN on x86 uses direct convolution for these shapes; the check keeps
that an observed fact on every machine instead of an assumption.)

Sparsity: pruned filters are not computed. A tensor whose missing channels are provably 0
(outputs of pruned filters without residual whose requant(bias) is 0) is kept *compact*:
only its live channels are stored, with their original indices.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as tf

from ..program.format import Op
from .plan import F32_EXACT, ExecPlan

CL = torch.channels_last


class ExactnessError(RuntimeError):
    """The torch convolution did not produce exact integers on this machine."""


def _dt(np_dtype) -> torch.dtype:
    return torch.float32 if np_dtype == np.float32 else torch.float64


class TorchPlan:
    """The ExecPlan's arrays as torch tensors (converted once); ``run`` executes the program."""

    def __init__(self, plan: ExecPlan):
        self.plan, self.program = plan, plan.program
        self.checked = False  # the first batch verifies that every conv output is exact
        self.steps = {}
        for i, st in plan.steps.items():
            dt, f = _dt(st.dtype), self.program.layers[i].n_filters
            as_t = lambda a: None if a is None else torch.from_numpy(np.asarray(a)).to(dt)
            full = lambda a: None if a is None else as_t(a).view(1, f, 1, 1)
            self.steps[i] = SimpleNamespace(
                in_pos=None if st.in_pos is None else torch.from_numpy(st.in_pos),
                weight=as_t(st.w_oihw).contiguous(memory_format=CL), bias=as_t(st.bias),
                live_f=torch.from_numpy(st.live_f), compact_out=st.compact_out,
                const=full(st.const), bias_full=full(st.bias_full), res_scale=full(st.res_scale), dtype=dt,
                unscale=torch.from_numpy(np.ldexp(1.0, self.program.layers[i].shift[st.live_f].astype(np.int64)))
                .to(dt).view(1, -1, 1, 1))

    def _full(self, t: int, x: torch.Tensor) -> torch.Tensor:
        """Stored tensor ``t`` expanded to all its channels (missing ones are 0)."""
        chans = self.plan.stored[t]
        if chans is None:
            return x
        n, _, h, w = x.shape
        out = torch.zeros((n, self.program.tensors[t].channels, h, w), dtype=x.dtype).contiguous(memory_format=CL)
        out[:, torch.from_numpy(chans)] = x
        return out

    def run(self, x0: np.ndarray, keep_all: bool, observe=None) -> dict[int, np.ndarray]:
        """x0: int64 NHWC input. Returns {tensor index: int64 NHWC} (all tensors if keep_all).
        ``observe(i, x)``, if given, sees CIM layer i's stored input (NHWC numpy view) before the layer runs."""
        p = self.program
        env = {p.input_tensor: torch.from_numpy(x0.astype(np.float32)).permute(0, 3, 1, 2)}
        with torch.inference_mode():
            for i, layer in enumerate(p.layers):
                x = env[layer.in_tensor]
                if layer.op.is_cim:
                    if observe is not None:
                        observe(i, x.permute(0, 2, 3, 1).numpy())
                    y = self._cim(i, layer, x, env)
                elif layer.op == Op.MAXPOOL:
                    t_out = p.tensors[layer.out_tensor]
                    y = tf.max_pool2d(x, layer.kh, layer.stride) if x.shape[1] else \
                        x.new_zeros((x.shape[0], 0, t_out.height, t_out.width))
                else:
                    s = x.to(torch.float64).sum(dim=(2, 3), keepdim=True)
                    y = torch.round(s * 2.0 ** -layer.pool_shift).clamp_(layer.clamp_lo, layer.clamp_hi)
                    if max(-layer.clamp_lo, layer.clamp_hi) < F32_EXACT:
                        y = y.to(torch.float32)  # else stay float64: float32 would round large sums
                env[layer.out_tensor] = y
                if not keep_all:
                    for t in self.plan.releasable(i, layer):
                        env.pop(t, None)
        self.checked = True
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
            if not self.checked:
                exact = acc * st.unscale
                if not torch.equal(exact, exact.round()):
                    raise ExactnessError(f"layer {layer.name!r}: torch's convolution is not exact on this machine "
                                         "(a fast algorithm?); use FastEmulator(program, backend='numpy')")
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
