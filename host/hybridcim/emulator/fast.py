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
        self._torch_plan = None
        self._dead = dead = {}  # tensor -> bool (C,) provably-zero channels
        for i, layer in enumerate(program.layers):
            if layer.op.is_cim:
                self.plans[i] = self._plan(layer, dead.get(layer.in_tensor))
                dead[layer.out_tensor] = _dead_channels(layer)
            else:  # pools keep zero channels zero (their clamp lo is 0)
                dead[layer.out_tensor] = dead.get(layer.in_tensor, np.zeros(program.tensors[layer.in_tensor].channels, bool))

        self._last_use = {program.output_tensor: len(program.layers)}
        for i, layer in enumerate(program.layers):
            for t in (layer.in_tensor, layer.res_tensor):
                if t is not None and t != program.output_tensor:
                    self._last_use[t] = i

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
        w_hwc = sub.reshape(len(live_f), layer.kh * layer.kw * len(live_c)).T.astype(dtype)
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
            if not trace:
                for t in (layer.in_tensor, layer.res_tensor):
                    if t is not None and self._last_use[t] == i:
                        env.pop(t, None)
        tensors = {p.tensors[t].name: v for t, v in env.items()} if trace else None
        return ExecutionResult(final_output(p, env[p.output_tensor]), self.counters(n), tensors)

    # -- torch backend: see torch_backend.py ----------------------------------------------
    def _run_torch(self, images: np.ndarray, trace: bool) -> ExecutionResult:
        from .torch_backend import TorchPlan
        p = self.program
        if self._torch_plan is None:
            self._torch_plan = TorchPlan(p, self.plans, self._dead)
        x0 = check_images(p, images)
        env = self._torch_plan.run(x0, keep_all=trace)
        tensors = {p.tensors[t].name: v for t, v in env.items()} if trace else None
        return ExecutionResult(final_output(p, env[p.output_tensor]), self.counters(x0.shape[0]), tensors)

    def counters(self, images: int) -> list[LayerCounters]:
        """Per-layer counters for ``images`` images (static in digital mode)."""
        if not hasattr(self, "_per_image"):
            self._per_image = [static_counters(l, self.program, 1) for l in self.program.layers]
        return [c.times(images) for c in self._per_image]
