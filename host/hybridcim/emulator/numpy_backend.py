"""The fast emulator's numpy backend (the board path: numpy only, bounded memory).

Activations are NHWC float arrays holding exact integers; a CIM layer is an im2col +
BLAS matmul with the plan's scaled weights (exact, see plan.py), processed in chunks of
images so that the im2col buffer stays under ``CHUNK_BYTES``. A dual-path layer (architecture.md
§10) multiplies the same windows twice: by its SRAM filters' weights, and, compared with its
binary-input threshold (z = [x >= threshold], 0/1), by its ternary filters' weights.
"""
from __future__ import annotations

import numpy as np

from ..cim.requant import requantize
from ..program.format import Op
from .ops import im2col, maxpool
from .plan import F32_EXACT, ExecPlan

CHUNK_BYTES = 16 << 20


def _cim(plan: ExecPlan, i: int, layer, x: np.ndarray, env: dict) -> np.ndarray:
    st = plan.steps[i]
    t_out = plan.program.tensors[layer.out_tensor]
    n = x.shape[0]
    live_out = len(st.live_f)
    if live_out and st.w_hwc.shape[0]:
        xin = x if st.in_pos is None else x[..., st.in_pos]
        per_image = t_out.height * t_out.width * st.w_hwc.shape[0] * np.dtype(st.dtype).itemsize
        step = max(1, CHUNK_BYTES // max(per_image, 1))
        acc = np.empty((n, t_out.height, t_out.width, live_out), dtype=st.dtype)
        for a in range(0, n, step):
            xa = xin[a:a + step]
            if not st.dual:
                cols = im2col(xa.astype(st.dtype, copy=False), layer.kh, layer.kw, layer.stride, layer.pad)
                np.matmul(cols, st.w_hwc, out=acc[a:a + step])
                continue
            ns = st.n_sram  # dual-path (§10.2): SRAM filters on x, ternary filters on z = [x >= threshold]
            if ns:
                cols = im2col(xa.astype(st.dtype, copy=False), layer.kh, layer.kw, layer.stride, layer.pad)
                acc[a:a + step, ..., :ns] = cols @ st.w_hwc[:, :ns]
                del cols  # one im2col buffer at a time (CHUNK_BYTES)
            if ns < live_out:  # zero padding gives z = 0 (threshold >= 1): binarize before im2col
                cols = im2col((xa >= st.threshold).astype(st.dtype), layer.kh, layer.kw, layer.stride, layer.pad)
                acc[a:a + step, ..., ns:] = cols @ st.w_hwc[:, ns:]
    else:  # nothing to compute: every filter pruned, or every input channel provably 0
        acc = np.zeros((n, t_out.height, t_out.width, live_out), dtype=st.dtype)
    if st.bias_full is not None:  # residual layer: full-width v = res*2^(rs-s) + bias*2^-s (+ acc)
        v = plan.expand(layer.res_tensor, env[layer.res_tensor]).astype(st.dtype) * st.res_scale + st.bias_full
        v[..., st.live_f] += acc
        return np.clip(np.round(v, out=v), layer.clamp_lo, layer.clamp_hi, out=v)
    acc += st.bias
    y = np.clip(np.round(acc, out=acc), layer.clamp_lo, layer.clamp_hi, out=acc)
    if st.compact_out or st.const is None:
        return y
    out = np.broadcast_to(st.const, (n, t_out.height, t_out.width, layer.n_filters)).copy()
    out[..., st.live_f] = y
    return out


def _hybrid(plan: ExecPlan, i: int, layer, x: np.ndarray, env: dict, accumulate) -> np.ndarray:
    """Hybrid layer (architecture.md §9): ``accumulate(i, x, first)`` gives the int64 accumulators of
    whole-channel input images ``x`` (``first``: the position of x[0] in the batch); requant as §6 in
    chunks of images (bounded memory), stored whole in the plan's float type."""
    t_out = plan.program.tensors[layer.out_tensor]
    n = x.shape[0]
    y = np.empty((n, t_out.height, t_out.width, layer.n_filters), plan.steps[i].dtype)
    step = max(1, plan.hybrid[i].chunk_pixels // max(t_out.height * t_out.width, 1))
    for a in range(0, n, step):
        acc = accumulate(i, plan.expand(layer.in_tensor, x[a:a + step]), a)
        res = None
        if layer.res_tensor is not None:
            res = plan.expand(layer.res_tensor, env[layer.res_tensor][a:a + step]).astype(np.int64)
        y[a:a + step] = requantize(acc, layer.bias, layer.shift, layer.clamp_lo, layer.clamp_hi, res,
                                   layer.res_shift if res is not None else None)
    return y


def run_numpy(plan: ExecPlan, x0: np.ndarray, keep_all: bool, observe=None, hybrid=None) -> dict[int, np.ndarray]:
    """x0: int64 NHWC input. Returns {tensor index: int64 NHWC} (every tensor if keep_all).
    ``observe(i, x)``, if given, sees CIM layer i's stored NHWC input before the layer runs.
    ``hybrid(i, x, first)``: the int64 accumulators (n, Ho, Wo, F) of hybrid layer i on whole-channel
    NHWC input images ``x``, the batch's images ``first`` … (required when the program has hybrid layers)."""
    p = plan.program
    env = {p.input_tensor: x0.astype(np.float32)}
    for i, layer in enumerate(p.layers):
        x = env[layer.in_tensor]
        if layer.op.is_cim:
            if observe is not None:
                observe(i, x)
            y = _hybrid(plan, i, layer, x, env, hybrid) if i in plan.hybrid else _cim(plan, i, layer, x, env)
        elif layer.op == Op.MAXPOOL:
            y = maxpool(x, layer)
        else:
            s = x.sum(axis=(1, 2), keepdims=True, dtype=np.float64) * 2.0 ** -layer.pool_shift
            y = np.clip(np.round(s), layer.clamp_lo, layer.clamp_hi)
            if max(-layer.clamp_lo, layer.clamp_hi) < F32_EXACT:
                y = y.astype(np.float32)  # else stay float64: float32 would round large sums
        env[layer.out_tensor] = y
        if not keep_all:
            for t in plan.releasable(i, layer):
                env.pop(t, None)
    keys = env.keys() if keep_all else [p.output_tensor]
    return {t: plan.expand(t, env[t]).astype(np.int64) for t in keys}
