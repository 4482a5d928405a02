"""The fast emulator's torch backend: exact int8 or float convolutions in channels-last layout.

Two engines compute a CIM layer's accumulators; both give the same integers.

**int8** (default where available): oneDNN's int8 convolution (``torch.ops.onednn.qconv2d_pointwise``),
unsigned 8-bit activations x int8 weights with int32 accumulation, output float32
``acc * 2^-shift[f] + bias * 2^-shift[f]`` (powers of two: exact while |v| < 2^24). Used for a
layer when, per program and proved at plan time: the validator's exact worst-case bound of
|v| (which bounds every partial sum) is < 2^24, and no pair of products can saturate the
16-bit intermediate that CPUs without VNNI use (``vpmaddubsw`` adds two u8 x s8 products
into int16): 2 * xmax * max|w| <= 32767. An 8-bit input (the first layer's pixels) would
break that bound, so it is split exactly: x = 2 * (x >> 1) + (x & 1), two int8
convolutions whose weights carry scales 2^(1 - shift) and 2^-shift. Every other layer (or
a machine where the one-time probe of the op fails) takes the float engine.

**float**: exact float32/float64 convolutions. Per layer, the validator's worst-case bound
of |acc + bias + res << res_shift| (after any left shift) and both clamp bounds are below
2^24 (float32) or 2^53 (float64). Scaling weights, bias and residual by the power of two
2^-shift[f] changes no mantissa, so ``conv(x, w * 2^-s) + bias * 2^-s + res * 2^(res_shift - s)``
is exactly v / 2^s, and ``round`` (half to even) then ``clamp`` is the spec's requant.

The float argument assumes exact-sum convolution algorithms (direct or GEMM based); fast
algorithms (Winograd, FFT) could break it, so the first batch a plan runs is checked:
every float convolution output, scaled back by 2^shift, must be an integer, otherwise
:class:`ExactnessError`; every int8 layer's output must equal the float engine's on that
batch, otherwise the layer falls back to the float engine for good (with a warning).

Sparsity: pruned filters are not computed. A tensor whose missing channels are provably 0
(outputs of pruned filters without residual whose requant(bias) is 0) is kept *compact*:
only its live channels are stored, with their original indices. Row-block sparsity inside
live filters is not exploited (a dense int8 convolution over the live filters is faster
than per-block products at these sizes; docs/performance.md).

Hybrid mode (reserved, architecture.md §9) will need, per row block b and input/weight
bit-plane pair (i, j), the column counts n(b, i, j) = Σ_{rows of b} x_i · w_j: int8
products of 0/1 planes over K = rows_active. They fit this engine as one batched product
per layer: the input planes as an (M, bits_in · R · A) 0/1 int8 matrix and the weight
planes as a block-diagonal (bits_in · R · A, bits_in · R · n_columns) 0/1 int8 matrix,
or one 0/1 grouped convolution per plane, whose int32 outputs are the counts the ADC model
consumes; ``int8_conv`` is the primitive to extend.
"""
from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as tf

from ..program.format import Op
from .plan import F32_EXACT, ExecPlan

CL = torch.channels_last
ENGINES = ("auto", "int8", "float")
PAIR_SUM_MAX = (1 << 15) - 1  # int16 intermediate of u8 x s8 pair products without VNNI


class ExactnessError(RuntimeError):
    """The torch convolution did not produce exact integers on this machine."""


def _dt(np_dtype) -> torch.dtype:
    return torch.float32 if np_dtype == np.float32 else torch.float64


def int8_conv(x: torch.Tensor, packed: torch.Tensor, w_scale: torch.Tensor, bias: torch.Tensor | None,
              stride: int, pad: int) -> torch.Tensor:
    """oneDNN int8 convolution: uint8 NCHW (channels-last) x, int8 weights prepacked by
    :func:`int8_pack`, int32 accumulation; float32 output acc * w_scale[f] + bias[f]."""
    return torch.ops.onednn.qconv2d_pointwise(
        x, 1.0, 0, packed, w_scale, torch.zeros(w_scale.shape[0], dtype=torch.int64), bias, [stride, stride],
        [pad, pad], [1, 1], 1, 1.0, 0, torch.float32, "none", [], "")


def int8_pack(w: np.ndarray, w_scale: torch.Tensor, stride: int, pad: int) -> torch.Tensor:
    """Prepack int weights (F, C, kh, kw) (values in -128..127) for :func:`int8_conv`."""
    wt = torch.from_numpy(np.ascontiguousarray(w).astype(np.int8))
    return torch.ops.onednn.qconv_prepack(wt, w_scale, 1.0, 0, [stride, stride], [pad, pad], [1, 1], 1, None)


_PROBE: list = []


def int8_status() -> tuple[bool, str]:
    """(usable, reason): whether oneDNN's int8 convolution exists here and computes extreme
    operands exactly (probed once per process against int64 arithmetic)."""
    if not _PROBE:
        try:
            rng = np.random.default_rng(0)
            ok = True
            for xmax, wlo, whi in ((127, -128, -128), (127, 127, 127), (15, -128, 127), (1, -128, 127)):
                x = rng.integers(0, xmax + 1, size=(20, 24, 5, 5))
                x[:10] = xmax
                w = rng.integers(wlo, whi + 1, size=(16, 24, 3, 3))
                ws = torch.ones(16)
                got = int8_conv(torch.from_numpy(x.astype(np.uint8)).contiguous(memory_format=CL),
                                int8_pack(w, ws, 1, 1), ws, None, 1, 1)
                want = tf.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double(), padding=1)
                ok &= torch.equal(got.double(), want)
            _PROBE.append((bool(ok), "probe passed" if ok else "oneDNN int8 convolution gave inexact results"))
        except Exception as e:  # op missing in this torch build, or refused on this CPU
            _PROBE.append((False, f"oneDNN int8 convolution unavailable ({type(e).__name__}: {str(e)[:120]})"))
    return _PROBE[0]


class TorchPlan:
    """The ExecPlan's arrays as torch tensors (converted once); ``run`` executes the program.

    ``engine``: 'auto' (int8 for every layer where it is available and provably exact,
    float elsewhere), 'int8' (the same, but refuse a machine without a working int8 op) or
    'float'. ``engines`` names the engine of every CIM layer ('int8', 'int8-split' for an
    8-bit input computed as two convolutions, 'float').
    """

    def __init__(self, plan: ExecPlan, engine: str = "auto"):
        if engine not in ENGINES:
            raise ValueError(f"engine {engine!r} unknown; choose one of {ENGINES}")
        use_int8 = False
        if engine != "float":
            use_int8, why = int8_status()
            if engine == "int8" and not use_int8:
                raise ValueError(f"engine 'int8' not available here: {why}")
        self.plan, self.program = plan, plan.program
        self.checked = False  # the first batch verifies every conv output (see module docstring)
        self.steps, self.engines = {}, {}
        for i, st in plan.steps.items():
            layer = self.program.layers[i]
            dt, f = _dt(st.dtype), layer.n_filters
            as_t = lambda a: None if a is None else torch.from_numpy(np.asarray(a)).to(dt)
            full = lambda a: None if a is None else as_t(a).view(1, f, 1, 1)
            step = SimpleNamespace(
                in_pos=None if st.in_pos is None else torch.from_numpy(st.in_pos),
                weight=as_t(st.w_oihw).contiguous(memory_format=CL), bias=as_t(st.bias),
                live_f=torch.from_numpy(st.live_f), compact_out=st.compact_out,
                const=full(st.const), bias_full=full(st.bias_full), res_scale=full(st.res_scale), dtype=dt,
                unscale=torch.from_numpy(np.ldexp(1.0, layer.shift[st.live_f].astype(np.int64)))
                .to(dt).view(1, -1, 1, 1), int8=None)
            if use_int8:
                step.int8 = self._int8_parts(layer, st)
            self.steps[i] = step
            self.engines[layer.name] = "float" if step.int8 is None else \
                "int8-split" if len(step.int8) > 1 else "int8"

    def _int8_parts(self, layer, st) -> list | None:
        """[(input part, prepacked weights, w_scale, bias)] whose float32 outputs sum to the
        layer's scaled accumulators, or None when the int8 engine is not provably exact."""
        if not (len(st.live_f) and st.w_int.shape[1]) or st.bound >= F32_EXACT:
            return None
        xmax = self.program.tensors[layer.in_tensor].fmt.max
        wmax = int(np.abs(st.w_int).max())
        if wmax > 128 or xmax > 255:
            return None
        scale = np.ldexp(1.0, -st.shift)
        bias = None if st.bias_full is not None else torch.from_numpy(np.asarray(st.bias, dtype=np.float32))
        if 2 * xmax * wmax <= PAIR_SUM_MAX:
            parts = [("x", scale, bias)]
        else:  # x = 2 * (x >> 1) + (x & 1): each part's pair sums stay within int16
            if 2 * (xmax >> 1) * wmax > PAIR_SUM_MAX:
                return None
            parts = [("hi", 2 * scale, bias), ("lo", scale, None)]
        out = []
        for part, sc, b in parts:
            ws = torch.from_numpy(sc.astype(np.float32))
            out.append((part, int8_pack(st.w_int, ws, layer.stride, layer.pad), ws, b))
        return out

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
        ``observe(i, x)``, if given, sees CIM layer i's stored input (NHWC numpy view) before the layer runs:
        the place where per-layer input activations are available."""
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

    def _float_conv(self, st, layer, xin: torch.Tensor) -> torch.Tensor:
        if xin.dtype != st.dtype:
            xin = xin.to(st.dtype)
        acc = tf.conv2d(xin.contiguous(memory_format=CL), st.weight, st.bias if st.bias_full is None else None,
                        stride=layer.stride, padding=layer.pad)
        if not self.checked:
            exact = acc * st.unscale
            if not torch.equal(exact, exact.round()):
                raise ExactnessError(f"layer {layer.name!r}: torch's convolution is not exact on this machine "
                                     "(a fast algorithm?); use FastEmulator(program, backend='numpy')")
        return acc

    def _int8_conv(self, st, layer, xin: torch.Tensor) -> torch.Tensor:
        xu = xin.to(torch.uint8).contiguous(memory_format=CL)
        acc = None
        for part, packed, ws, bias in st.int8:
            xp = xu if part == "x" else xu >> 1 if part == "hi" else xu & 1
            y = int8_conv(xp, packed, ws, bias, layer.stride, layer.pad)
            acc = y if acc is None else acc.add_(y)
        if acc.dtype != st.dtype:
            acc = acc.to(st.dtype)
        if not self.checked:  # first batch: the int8 engine must agree with the float engine
            want = self._float_conv(st, layer, xin)
            if not torch.equal(acc, want):
                warnings.warn(f"layer {layer.name!r}: the int8 convolution differs from the exact float one on this "
                              "machine; the layer uses the float engine from now on", RuntimeWarning, stacklevel=3)
                st.int8 = None
                self.engines[layer.name] = "float"
                return want
        return acc

    def _cim(self, i: int, layer, x: torch.Tensor, env: dict) -> torch.Tensor:
        st = self.steps[i]
        n = x.shape[0]
        t_out = self.program.tensors[layer.out_tensor]
        if len(st.live_f) and st.weight.shape[1]:
            xin = x if st.in_pos is None else x.index_select(1, st.in_pos)
            acc = self._float_conv(st, layer, xin) if st.int8 is None else self._int8_conv(st, layer, xin)
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
