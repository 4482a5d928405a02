"""Fast emulator: the same integers as the reference, by exact float matrix products.

Per CIM layer, at load time: decode W (F, K) from the stored planes, drop filters that are
pruned (precision 0) and input channels that are provably zero (outputs of pruned filters
whose requant of bias alone is 0: "dead channels"), and pick float32 when the validator's
worst-case bound (accumulator + bias + residual, after any left shift) is < 2^24, float64
otherwise (< 2^53 always holds for int32 bounds). Every partial sum of an integer product
then stays exactly representable, so the result is exact whatever the summation order
(architecture.md §8). Round-half-to-even of an exact v / 2^s is ``round`` in numpy and torch.

Backends: ``torch`` (conv2d on NCHW; used when importable) and ``numpy`` (NHWC im2col +
BLAS matmul; the board path). Counters come from :func:`counters.static_counters`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..program.format import Op
from ..program.model import Layer, Program
from ..program.validate import accumulator_bound
from ..program.weights import decode_weight_matrix
from .counters import LayerCounters, static_counters
from .ops import im2col
from .result import ExecutionResult, check_images, final_output

F32_EXACT = 1 << 24


@dataclass
class _CimPlan:
    live_f: np.ndarray        # indices of computed filters
    live_c: np.ndarray        # indices of input channels that can be non-zero
    w_hwc: np.ndarray         # (kh*kw*len(live_c), len(live_f)) float, HWC reduction order
    w_oihw: np.ndarray        # (len(live_f), len(live_c), kh, kw) float
    dtype: type


def _dead_channels(layer: Layer) -> np.ndarray:
    """Bool (F,): output channels that are 0 for every input (pruned, no residual, requant(bias) == 0)."""
    from ..cim.requant import requantize
    if layer.res_tensor is not None or not layer.op.is_cim:
        return np.zeros(layer.n_filters if layer.op.is_cim else 0, dtype=bool)
    y0 = requantize(np.zeros(layer.n_filters, dtype=np.int64), layer.bias, layer.shift, layer.clamp_lo, layer.clamp_hi)
    return (layer.precision == 0) & (y0 == 0)


def available_backends() -> list[str]:
    try:
        import torch  # noqa: F401
        return ["torch", "numpy"]
    except ImportError:
        return ["numpy"]


class FastEmulator:
    """Vectorized exact executor; ``backend`` is 'auto', 'torch' or 'numpy'."""

    name = "fast"

    def __init__(self, program: Program, backend: str = "auto"):
        if backend == "auto":
            backend = available_backends()[0]
        if backend not in available_backends():
            raise ValueError(f"backend {backend!r} not available here; available: {available_backends()}")
        self.program, self.backend = program, backend
        self.plans: dict[int, _CimPlan] = {}
        dead: dict[int, np.ndarray] = {}  # tensor -> bool (C,) provably-zero channels
        for i, layer in enumerate(program.layers):
            if layer.op.is_cim:
                self.plans[i] = self._plan(layer, dead.get(layer.in_tensor))
                dead[layer.out_tensor] = _dead_channels(layer)
            elif layer.in_tensor in dead:
                dead[layer.out_tensor] = dead[layer.in_tensor]  # pools keep zero channels zero (clamp lo is 0)

    def _plan(self, layer: Layer, dead_in: np.ndarray | None) -> _CimPlan:
        p = self.program
        a = p.preset.rows_active
        c_in = p.tensors[layer.in_tensor].channels
        w = decode_weight_matrix(layer.precision, layer.col_filter, layer.col_plane, layer.present, layer.words,
                                 layer.k_rows, a)
        w4 = w.reshape(layer.n_filters, layer.kh, layer.kw, c_in)
        live_f = np.nonzero((layer.precision > 0) & w.any(axis=1))[0]
        keep_c = w4[live_f].any(axis=(0, 1, 2))
        if dead_in is not None:
            keep_c &= ~dead_in
        live_c = np.nonzero(keep_c)[0]
        dtype = np.float32 if accumulator_bound(layer, p, w) < F32_EXACT else np.float64
        sub = w4[live_f][:, :, :, live_c]  # (F', kh, kw, C')
        w_hwc = sub.reshape(len(live_f), -1).T.astype(dtype)
        w_oihw = sub.transpose(0, 3, 1, 2).astype(dtype)
        return _CimPlan(live_f, live_c, np.ascontiguousarray(w_hwc), np.ascontiguousarray(w_oihw), dtype)

    def run(self, images: np.ndarray, trace: bool = False) -> ExecutionResult:
        """Run the program on uint8 NCHW images; see ExecutionResult for the layout."""
        run = self._run_torch if self.backend == "torch" else self._run_numpy
        return run(images, trace)

    # -- numpy backend: NHWC int64 activations ------------------------------------------
    def _run_numpy(self, images: np.ndarray, trace: bool) -> ExecutionResult:
        from ..cim.requant import requantize
        from .ops import avgpool, maxpool
        p = self.program
        env = {p.input_tensor: check_images(p, images)}
        n = env[p.input_tensor].shape[0]
        for i, layer in enumerate(p.layers):
            x = env[layer.in_tensor]
            if layer.op.is_cim:
                plan = self.plans[i]
                t_out = p.tensors[layer.out_tensor]
                acc = np.zeros((n, t_out.height, t_out.width, layer.n_filters), dtype=np.int64)
                if len(plan.live_f) and len(plan.live_c):
                    cols = im2col(x[..., plan.live_c].astype(plan.dtype), layer.kh, layer.kw, layer.stride, layer.pad)
                    acc[..., plan.live_f] = (cols @ plan.w_hwc).astype(np.int64)
                res = env[layer.res_tensor] if layer.res_tensor is not None else None
                env[layer.out_tensor] = requantize(acc, layer.bias, layer.shift, layer.clamp_lo, layer.clamp_hi, res,
                                                   layer.res_shift if res is not None else None)
            else:
                env[layer.out_tensor] = maxpool(x, layer) if layer.op == Op.MAXPOOL else avgpool(x, layer)
        tensors = {p.tensors[t].name: v for t, v in env.items()} if trace else None
        return ExecutionResult(final_output(p, env[p.output_tensor]), self.counters(n), tensors)

    # -- torch backend: NCHW float activations (exact integers) -------------------------
    def _run_torch(self, images: np.ndarray, trace: bool) -> ExecutionResult:
        import torch
        import torch.nn.functional as tf
        p = self.program
        x0 = check_images(p, images)
        n = x0.shape[0]
        env = {p.input_tensor: torch.from_numpy(np.ascontiguousarray(x0.transpose(0, 3, 1, 2))).to(torch.float32)}
        cache = getattr(self, "_torch_cache", None)
        if cache is None:
            cache = self._torch_cache = {}
            for i, plan in self.plans.items():
                l = p.layers[i]
                dt = torch.float32 if plan.dtype == np.float32 else torch.float64
                cache[i] = dict(
                    w=torch.from_numpy(plan.w_oihw).to(dt), dt=dt,
                    f=torch.from_numpy(plan.live_f), c=torch.from_numpy(plan.live_c),
                    bias=torch.from_numpy(l.bias.astype(np.float64)).to(dt).view(1, -1, 1, 1),
                    scale=torch.from_numpy(np.ldexp(1.0, -l.shift.astype(np.int64))).to(dt).view(1, -1, 1, 1),
                    rscale=torch.from_numpy(np.ldexp(1.0, l.res_shift.astype(np.int64))).to(dt).view(1, -1, 1, 1))
        with torch.inference_mode():
            for i, layer in enumerate(p.layers):
                x = env[layer.in_tensor]
                t_out = p.tensors[layer.out_tensor]
                if layer.op.is_cim:
                    cc = cache[i]
                    dt = cc["dt"]
                    acc = torch.zeros((n, layer.n_filters, t_out.height, t_out.width), dtype=dt)
                    if len(cc["f"]) and len(cc["c"]):
                        xin = x.to(dt)
                        if len(cc["c"]) != xin.shape[1]:
                            xin = xin.index_select(1, cc["c"])
                        out = tf.conv2d(xin, cc["w"], stride=layer.stride, padding=layer.pad)
                        if len(cc["f"]) == layer.n_filters:
                            acc = out
                        else:
                            acc.index_copy_(1, cc["f"], out)
                    v = acc + cc["bias"]
                    if layer.res_tensor is not None:
                        v = v + env[layer.res_tensor].to(dt) * cc["rscale"]
                    y = torch.round(v * cc["scale"]).clamp_(layer.clamp_lo, layer.clamp_hi)
                elif layer.op == Op.MAXPOOL:
                    y = tf.max_pool2d(x, layer.kh, layer.stride)
                else:
                    s = x.to(torch.float64).sum(dim=(2, 3), keepdim=True)
                    y = torch.round(s * 2.0 ** -layer.pool_shift).clamp_(layer.clamp_lo, layer.clamp_hi)
                env[layer.out_tensor] = y
        as_np = lambda t: t.to(torch.float64).numpy().transpose(0, 2, 3, 1).astype(np.int64)
        tensors = {p.tensors[t].name: as_np(v) for t, v in env.items()} if trace else None
        return ExecutionResult(final_output(p, as_np(env[p.output_tensor])), self.counters(n), tensors)

    def counters(self, images: int) -> list[LayerCounters]:
        """Per-layer counters for ``images`` images (static in digital mode)."""
        if not hasattr(self, "_per_image"):
            self._per_image = [static_counters(l, self.program, 1) for l in self.program.layers]
        return [c.times(images) for c in self._per_image]
