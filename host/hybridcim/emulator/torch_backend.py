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
Every later batch checks its first image the same way (about 1/N of a batch of N images in
float): oneDNN's int8 kernels have shown races that give wrong outputs at random, not only
on the first call. A layer that fails it falls back to float for good and the batch is
rerun (:class:`Int8Mismatch`, caught by ``FastEmulator.run``), so no result of a failed
check is ever returned.

Sparsity: pruned filters are not computed. A tensor whose missing channels are provably 0
(outputs of pruned filters without residual whose requant(bias) is 0) is kept *compact*:
only its live channels are stored, with their original indices. Row-block sparsity inside
live filters is not exploited (a dense int8 convolution over the live filters is faster
than per-block products at these sizes; docs/performance.md).

Hybrid mode (architecture.md §9): hybrid layers run on :class:`~.torch_hybrid.TorchHybrid`
(torch_hybrid.py), whose accumulators this backend requantizes like any other layer's.

Dual-path layers (architecture.md §10): a step's computed filters form one or two *weight sets*,
the SRAM filters on the input x and a dual-path layer's ternary filters on the binary input
z = [x >= threshold] (0/1, computed per batch from the stored input; padding gives z = 0 as
threshold >= 1). Each set is its own convolution, int8 or float with the proofs above (the
ternary set has xmax = 1 and |w| <= 1: 2 * 1 * 1 pair sums, never split), with its requant
fused when every set's is; the outputs are concatenated in filter order, so compact tensors,
residuals and the first-batch and later-batch checks work as for any layer.
"""
from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as tf

from ..program.format import Op
from .plan import F32_EXACT, ExecPlan
from .torch_hybrid import PAIR_SUM_MAX, TorchHybrid

CL = torch.channels_last
ENGINES = ("auto", "int8", "float")


class ExactnessError(RuntimeError):
    """The torch convolution did not produce exact integers on this machine."""


class Int8Mismatch(RuntimeError):
    """A later batch's check found an int8 layer that differs from the float engine; the
    layer now uses the float engine and the batch must be run again."""


def _dt(np_dtype) -> torch.dtype:
    return torch.float32 if np_dtype == np.float32 else torch.float64


def int8_conv(x: torch.Tensor, packed: torch.Tensor, w_scale: torch.Tensor, bias: torch.Tensor | None,
              stride: int, pad: int, clamp: tuple[int, int] | None = None, out_zp: int = 0,
              res: torch.Tensor | None = None, res_scale: float = 1.0, res_zp: int = 0) -> torch.Tensor:
    """oneDNN int8 convolution: uint8 NCHW (channels-last) x, int8 weights prepacked by
    :func:`int8_pack`, int32 accumulation, then v = acc * w_scale[f] + bias[f] in float32.

    Returns v (float32), or with ``clamp = (lo, hi)`` the uint8 tensor
    clamp(round_half_even(v), lo, hi) + out_zp, requantized in the same kernel (lo + out_zp >= 0,
    hi + out_zp <= 255; out_zp = 128 stores int8 values). With ``res`` (uint8 holding
    residual + res_zp, the output's shape, channels-last; overwritten) the residual times
    ``res_scale`` is added to v before the rounding (oneDNN's sum post-op; ``clamp`` required)."""
    zp = torch.zeros(w_scale.shape[0], dtype=torch.int64)
    if res is not None:
        out = torch.ops.onednn.qconv2d_pointwise.binary(
            x, 1.0, 0, packed, w_scale, zp, res, bias, [stride, stride], [pad, pad], [1, 1], 1, 1.0, out_zp,
            torch.uint8, res_scale, res_zp, "sum", 1.0, "none", [], "")  # uint8 output saturates to [0, 255]
        lo, hi = clamp[0] + out_zp, clamp[1] + out_zp
        return out if (lo, hi) == (0, 255) else out.clamp_(lo, hi)
    if clamp is None:
        out_dtype, attr, scalars = torch.float32, "none", []
    else:
        out_dtype, attr, scalars = torch.uint8, "hardtanh", [float(clamp[0]), float(clamp[1])]
    return torch.ops.onednn.qconv2d_pointwise(x, 1.0, 0, packed, w_scale, zp, bias, [stride, stride], [pad, pad],
                                              [1, 1], 1, 1.0, out_zp, out_dtype, attr, scalars, "")


def binary_input(x: torch.Tensor, threshold: int) -> torch.Tensor:
    """The ternary path's binary input z = [x >= threshold] (architecture.md §10.2) of an NCHW tensor of
    exact integers, as a channels-last uint8 0/1 tensor. Compared by numpy on the NHWC view: torch's
    comparison of a uint8 tensor with a scalar took 6-11 ms for 250 x 16 x 32 x 32 values here, numpy's
    0.3 ms (1 thread)."""
    xn = x.permute(0, 2, 3, 1)
    z = np.greater_equal(xn.numpy() if xn.is_contiguous() else xn.contiguous().numpy(), threshold)
    return torch.from_numpy(z.view(np.uint8)).permute(0, 3, 1, 2)


def int8_pack(w: np.ndarray, w_scale: torch.Tensor, stride: int, pad: int) -> torch.Tensor:
    """Prepack int weights (F, C, kh, kw) (values in -128..127) for :func:`int8_conv`."""
    wt = torch.from_numpy(np.ascontiguousarray(w).astype(np.int8))
    return torch.ops.onednn.qconv_prepack(wt, w_scale, 1.0, 0, [stride, stride], [pad, pad], [1, 1], 1, None)


_PROBE: list = []


def int8_status() -> tuple[bool, str]:
    """(usable, reason): whether oneDNN's int8 convolution exists here and is exact on extreme
    operands, and its fused requant rounds half to even (probed once per process against
    int64 / float64 arithmetic)."""
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
            # fused requant: ties (x.5) both ways, both clamp sides
            x = rng.integers(0, 16, size=(20, 8, 4, 4))
            w = rng.integers(-8, 8, size=(8, 8, 1, 1))
            ws = torch.full((8,), 0.5)
            bias = torch.tensor([0.0, 0.5, -0.5, 1.5, 2.5, -20.0, 40.0, 3.0])
            packed = int8_pack(w, ws, 1, 0)
            got = int8_conv(torch.from_numpy(x.astype(np.uint8)).contiguous(memory_format=CL), packed, ws, bias, 1, 0,
                            clamp=(2, 13))
            want = (tf.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double()) * 0.5
                    + bias.double().view(1, -1, 1, 1)).round().clamp(2, 13)
            ok &= got.dtype == torch.uint8 and torch.equal(got.double(), want)
            r = rng.integers(0, 256, size=(20, 8, 4, 4))
            r[0] = 255
            got = int8_conv(torch.from_numpy(x.astype(np.uint8)).contiguous(memory_format=CL), packed, ws, bias, 1, 0,
                            clamp=(2, 200), res=torch.from_numpy(r.astype(np.uint8)).contiguous(memory_format=CL),
                            res_scale=0.5)
            want = (tf.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double()) * 0.5
                    + bias.double().view(1, -1, 1, 1) + torch.from_numpy(r).double() * 0.5).round().clamp(2, 200)
            ok &= got.dtype == torch.uint8 and torch.equal(got.double(), want)
            # int8 values stored with offset 128: a signed output and a signed residual
            got = int8_conv(torch.from_numpy(x.astype(np.uint8)).contiguous(memory_format=CL), packed, ws, bias, 1, 0,
                            clamp=(-7, 5), out_zp=128,
                            res=torch.from_numpy(r.astype(np.uint8)).contiguous(memory_format=CL), res_scale=0.25,
                            res_zp=128)
            want = (tf.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double()) * 0.5
                    + bias.double().view(1, -1, 1, 1) + (torch.from_numpy(r).double() - 128) * 0.25).round().clamp(-7, 5)
            ok &= got.dtype == torch.uint8 and torch.equal(got.double() - 128, want)
            got = int8_conv(torch.from_numpy(x.astype(np.uint8)).contiguous(memory_format=CL), packed, ws, bias, 1, 0,
                            clamp=(-100, 20), out_zp=128)
            want = (tf.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double()) * 0.5
                    + bias.double().view(1, -1, 1, 1)).round().clamp(-100, 20)
            ok &= got.dtype == torch.uint8 and torch.equal(got.double() - 128, want)
            _PROBE.append((bool(ok), "probe passed" if ok else "oneDNN int8 convolution gave inexact results"))
        except Exception as e:  # op missing in this torch build, or refused on this CPU
            _PROBE.append((False, f"oneDNN int8 convolution unavailable ({type(e).__name__}: {str(e)[:120]})"))
    return _PROBE[0]


class TorchPlan:
    """The ExecPlan's arrays as torch tensors (converted once); ``run`` executes the program.

    ``engine``: 'auto' (int8 for every layer where it is available and provably exact,
    float elsewhere), 'int8' (the same, but refuse a machine without a working int8 op) or
    'float'. ``engines`` names the engine of every CIM layer: 'int8' (requant fused into the
    convolution, uint8 output), 'int8+requant' (float32 output requantized after a residual
    add or for a wide clamp), 'int8-split' (8-bit input as two convolutions), 'float'.

    Activations are channels-last NCHW tensors: uint8 where an int8 layer wrote them (or
    the program input; a signed tensor's int8 values are stored + 128), else float32/float64
    holding exact integers.
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
        self.steps, self.engines, self.hybrid = {}, {}, {}
        for i, st in plan.steps.items():
            self.steps[i] = self._step(self.program.layers[i], st, use_int8 and i not in plan.hybrid)
            if i in plan.hybrid:
                layer = self.program.layers[i]
                th = TorchHybrid(plan.hybrid[i], use_int8)
                th.bias = torch.from_numpy(layer.bias.astype(np.float64))
                th.res_scale = torch.from_numpy(np.ldexp(1.0, layer.res_shift.astype(np.int64)))
                th.unshift = torch.from_numpy(np.ldexp(1.0, -layer.shift.astype(np.int64)))
                self.hybrid[i] = th
                self.engines[layer.name] = "hybrid-int8" if use_int8 else "hybrid-float"

    def _step(self, layer, st, use_int8: bool) -> SimpleNamespace:
        """Torch data of one CIM layer. The convolution computes the filters ``cols``: the
        live ones for a compact output, else all F (a non-live filter has zero weights, so
        its output is requant(bias [+ residual]) without scattering channels afterwards).
        ``sets``: the weight sets, each a namespace (theta: None for the input x, else the
        binary-input threshold; lo, hi: its columns cols[lo:hi]; weight, bias: float)."""
        dt, f = _dt(st.dtype), layer.n_filters
        full_width = not st.compact_out and len(st.live_f) < f
        cols = np.arange(f) if full_width else st.live_f
        w_int = st.w_int
        if full_width:
            w_int = np.zeros((f,) + st.w_int.shape[1:], dtype=np.int64)
            w_int[st.live_f] = st.w_int
        shift = layer.shift[cols].astype(np.int64)
        scale = np.ldexp(1.0, -shift)
        bias = layer.bias[cols] * scale
        lo, hi = layer.clamp_lo, layer.clamp_hi
        split = int(np.searchsorted(cols, layer.dual.first_tern(f))) if st.dual else len(cols)  # SRAM | ternary
        sets = [SimpleNamespace(theta=th, lo=a, hi=b, weight=torch.from_numpy(
                    w_int[a:b] * scale[a:b, None, None, None]).to(dt).contiguous(memory_format=CL),
                    bias=torch.from_numpy(bias[a:b]).to(dt))
                for th, a, b in ((None, 0, split), (st.threshold, split, len(cols))) if b > a]
        step = SimpleNamespace(
            in_pos=None if st.in_pos is None else torch.from_numpy(st.in_pos), n_cols=len(cols), n_in=w_int.shape[1],
            sets=sets, bias=torch.from_numpy(bias).to(dt), dtype=dt, residual=st.bias_full is not None,
            res_scale=None if st.res_scale is None else torch.from_numpy(st.res_scale).to(dt).view(1, f, 1, 1),
            unscale=torch.from_numpy(np.ldexp(1.0, shift)).to(dt).view(1, -1, 1, 1),
            out_zp=self._zp_of(layer.out_tensor, lo, hi), int8=None, fused=False, res_alpha=None)
        if use_int8 and len(cols) and w_int.shape[1]:
            if st.in_pos is not None:  # int8: read every stored channel (zero weights) rather than gather channels
                stored = self.plan.stored[layer.in_tensor]
                n_in = self.program.tensors[layer.in_tensor].channels if stored is None else len(stored)
                w_all = np.zeros((len(cols), n_in) + w_int.shape[2:], dtype=np.int64)
                w_all[:, st.in_pos] = w_int
                w_int = w_all
            step.int8 = [self._int8_parts(layer, st, w_int[ws.lo:ws.hi], scale[ws.lo:ws.hi], bias[ws.lo:ws.hi],
                                          1 if ws.theta is not None else None) for ws in sets]
            step.int8 = None if any(p is None for p in step.int8) else step.int8
            step.fused = step.int8 is not None and all(len(p) == 1 for p in step.int8) and step.out_zp is not None
            if step.fused and step.residual:  # oneDNN's sum post-op: one scalar scale, an 8-bit residual
                rel = layer.res_shift.astype(np.int64) - layer.shift.astype(np.int64)
                t_res = self.program.tensors[layer.res_tensor]
                step.fused = bool((rel == rel[0]).all()) and t_res.bits <= 8
                step.res_alpha = float(np.ldexp(1.0, int(rel[0]))) if step.fused else None
        self.engines[layer.name] = "float" if step.int8 is None else "int8-split" if \
            any(len(p) > 1 for p in step.int8) else "int8" if step.fused else "int8+requant"
        return step

    def _int8_parts(self, layer, st, w_int: np.ndarray, scale: np.ndarray, bias: np.ndarray,
                    xmax: int | None = None) -> list | None:
        """[(input part, prepacked weights, w_scale, bias)] whose float32 outputs sum to one weight
        set's scaled v (without residual), or None when the int8 engine is not provably exact.
        ``xmax``: the set's largest input (None: the layer input's; 1 for the binary input z)."""
        if st.bound >= F32_EXACT:  # float32 outputs (and the int32 accumulators) must be exact
            return None
        if xmax is None:
            xmax = self.program.tensors[layer.in_tensor].fmt.max
        wmax = int(np.abs(w_int).max(initial=0))
        if wmax > 128 or xmax > 255:
            return None
        b32 = torch.from_numpy(bias.astype(np.float32))
        if 2 * xmax * wmax <= PAIR_SUM_MAX:
            parts = [("x", scale, b32)]
        else:  # x = 2 * (x >> 1) + (x & 1): each part's pair sums stay within int16
            if 2 * (xmax >> 1) * wmax > PAIR_SUM_MAX:
                return None
            parts = [("hi", 2 * scale, b32), ("lo", scale, None)]
        out = []
        stride, pad = self._int8_geometry(layer)
        for part, sc, b in parts:
            ws = torch.from_numpy(sc.astype(np.float32))
            out.append((part, int8_pack(w_int, ws, stride, pad), ws, b))
        return out

    @staticmethod
    def _int8_geometry(layer) -> tuple[int, int]:
        """(stride, pad) the int8 convolution runs with. A 1x1 kernel with stride > 1 runs on
        the input subsampled beforehand, with stride 1: oneDNN 3.x's int8 1x1 strided kernel
        gave wrong outputs at random with 2 threads (e.g. C=8, 32x32 input, stride 2: 64 of
        100 calls differed), caught here by the first-batch check and reproduced in isolation."""
        if layer.kh == layer.kw == 1 and layer.stride > 1:
            return 1, 0
        return layer.stride, layer.pad

    def _zp_of(self, t: int, lo: int, hi: int) -> int | None:
        """Offset of tensor ``t`` stored as uint8 (0 unsigned, 128 signed), or None when a
        clamp [lo, hi] does not fit that byte."""
        zp = 128 if self.program.tensors[t].signed else 0
        return zp if 0 <= lo + zp and hi + zp <= 255 else None

    def _stored_zp(self, t: int, x: torch.Tensor) -> int:
        return (128 if self.program.tensors[t].signed else 0) if x.dtype == torch.uint8 else 0

    def _full(self, t: int, x: torch.Tensor) -> torch.Tensor:
        """Stored tensor ``t`` expanded to all its channels (missing ones are 0), same dtype and offset."""
        chans = self.plan.stored[t]
        if chans is None:
            return x
        n, _, h, w = x.shape
        out = torch.full((n, self.program.tensors[t].channels, h, w), self._stored_zp(t, x),
                         dtype=x.dtype).contiguous(memory_format=CL)
        out[:, torch.from_numpy(chans)] = x
        return out

    def _values(self, t: int, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Stored tensor ``t`` with all its channels as ``dtype`` values (uint8 offset removed)."""
        zp = self._stored_zp(t, x)
        y = self._full(t, x).to(dtype)
        return y.sub_(zp) if zp else y

    def run(self, x0: np.ndarray, keep_all: bool, observe=None, counters=None, image_base: int = 0,
            ones=None) -> dict[int, np.ndarray]:
        """x0: int64 NHWC input (uint8 range). Returns {tensor index: int64 NHWC} (all tensors if keep_all).
        ``observe(i, x)``, if given, sees CIM layer i's stored input (NHWC numpy view) before the layer runs:
        the place where per-layer input activations are available. ``ones``: {CIM layer i: its
        :class:`~hybridcim.emulator.counters.InputOnesCounter`}: ``input_ones`` is then counted in torch
        (:func:`input_ones_torch`) into ``counters[i]`` (``observe``, still called, must not count it). Hybrid
        layers add their data-dependent counters to ``counters[i]`` (required when the program has hybrid layers);
        ``image_base`` numbers the images for their analog noise."""
        p = self.program
        self._keep_all = keep_all
        env = {p.input_tensor: torch.from_numpy(x0.astype(np.uint8)).permute(0, 3, 1, 2)}
        with torch.inference_mode():
            for i, layer in enumerate(p.layers):
                x = env[layer.in_tensor]
                if layer.op.is_cim:
                    if ones is not None:
                        counters[i].input_ones += input_ones_torch(ones[i], x, self.plan.stored[layer.in_tensor])
                    if observe is not None:
                        observe(i, x.permute(0, 2, 3, 1).numpy())
                    y = self._hybrid(i, layer, x, env, counters[i], image_base) if i in self.plan.hybrid else \
                        self._cim(i, layer, x, env)
                elif layer.op == Op.MAXPOOL:
                    t_out = p.tensors[layer.out_tensor]
                    y = tf.max_pool2d(x.float() if x.dtype == torch.uint8 else x, layer.kh, layer.stride) \
                        if x.shape[1] else x.new_zeros((x.shape[0], 0, t_out.height, t_out.width))
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
        return {t: self._values(t, env[t], torch.float64).permute(0, 2, 3, 1).numpy().astype(np.int64)
                for t in keys}

    def _hybrid(self, i: int, layer, x: torch.Tensor, env: dict, c, image_base: int) -> torch.Tensor:
        """Hybrid layer (architecture.md §9): accumulators (:class:`TorchHybrid`), requant (§6) in float64
        (|v| < 2^53; power-of-two scaling, round half to even), stored whole as exact floats."""
        th = self.hybrid[i]
        t_out = self.program.tensors[layer.out_tensor]
        acc = th.accumulators(self._values(layer.in_tensor, x, torch.float32), image_base, c)
        v = acc.to(torch.float64).view(x.shape[0], t_out.height, t_out.width, -1) + th.bias
        if layer.res_tensor is not None:
            res = self._values(layer.res_tensor, env[layer.res_tensor], torch.float64).permute(0, 2, 3, 1)
            v += res * th.res_scale
        y = v.mul_(th.unshift).round_().clamp_(layer.clamp_lo, layer.clamp_hi)
        return y.to(_dt(self.plan.steps[i].dtype)).permute(0, 3, 1, 2)

    def _float_conv(self, st, layer, xin: torch.Tensor) -> torch.Tensor:
        """Float engine: scaled v without residual, (N, cols, Ho, Wo) in st.dtype (the weight sets'
        outputs concatenated: the ternary set's input is z = [xin >= threshold])."""
        outs = [tf.conv2d((xin if ws.theta is None else binary_input(xin, ws.theta)).to(st.dtype)
                          .contiguous(memory_format=CL),
                          ws.weight, ws.bias, stride=layer.stride, padding=layer.pad) for ws in st.sets]
        acc = outs[0] if len(outs) == 1 else torch.cat(outs, 1)
        if not self.checked:
            v = acc.double() * st.unscale.double()  # v itself: integers (power-of-two scaling, exact in float64)
            if not torch.equal(v, v.round()):
                raise ExactnessError(f"layer {layer.name!r}: torch's convolution is not exact on this machine "
                                     "(a fast algorithm?); use FastEmulator(program, backend='numpy')")
        return acc

    def _int8_conv(self, st, layer, x: torch.Tensor, env: dict) -> torch.Tensor:
        """Int8 engine on the stored input ``x``: the fused requantized uint8 output, or the
        scaled v without residual."""
        # later batches: image 0's float result, taken before a fused residual add may overwrite its input
        want0 = self._float_want(st, layer, x[:1], env, 1) if self.checked else None
        xu = x.to(torch.uint8)
        stride, pad = self._int8_geometry(layer)
        if stride != layer.stride:  # 1x1 strided: subsample first (unsigned input, zero padding)
            if layer.pad:
                xu = tf.pad(xu, (layer.pad,) * 4)
            xu = xu[:, :, ::layer.stride, ::layer.stride]
        xu = xu.contiguous(memory_format=CL)
        clamp = (layer.clamp_lo, layer.clamp_hi) if st.fused else None
        res, res_zp = None, 0
        if st.res_alpha is not None:  # the sum post-op overwrites its residual: copy a tensor still in use
            t = layer.res_tensor
            res_zp = 128 if self.program.tensors[t].signed else 0
            res = self._full(t, env[t])
            if res.dtype != torch.uint8:
                res = (res + res_zp if res_zp else res).to(torch.uint8)
            res = res.contiguous(memory_format=CL)
            if res.data_ptr() == env[t].data_ptr() and (self._keep_all or not self.checked or t == layer.in_tensor
                                                         or self.plan.last_use[t] != self._layer_index):
                res = res.clone(memory_format=CL)
        outs = []
        for wset, parts in zip(st.sets, st.int8):  # one convolution per weight set (two in a dual-path layer)
            xs = xu if wset.theta is None else binary_input(xu, wset.theta)
            rs = res if res is None or len(st.sets) == 1 else res[:, wset.lo:wset.hi].contiguous(memory_format=CL)
            acc = None
            for part, packed, ws, bias in parts:
                xp = xs if part == "x" else xs >> 1 if part == "hi" else xs & 1
                y = int8_conv(xp, packed, ws, bias, stride, pad, clamp, st.out_zp if st.fused else 0, rs,
                              st.res_alpha or 1.0, res_zp)
                acc = y if acc is None else acc.add_(y)
            outs.append(acc)
        acc = outs[0] if len(outs) == 1 else torch.cat(outs, 1)
        if not st.fused and acc.dtype != st.dtype:
            acc = acc.to(st.dtype)
        zp = st.out_zp if st.fused else 0
        if not self.checked:  # first batch: the int8 engine must agree with the float engine on every image
            want = self._float_want(st, layer, x, env, None)
            if not torch.equal(acc.to(want.dtype) - zp, want):
                self._to_float(st, layer)
                return (want + st.out_zp).to(torch.uint8) if clamp is not None else want
        elif not torch.equal(acc[:1].to(want0.dtype) - zp, want0):  # later batch: image 0
            self._to_float(st, layer)
            raise Int8Mismatch(f"layer {layer.name!r}: int8 result differs from the float engine's")
        return acc

    def _float_want(self, st, layer, x: torch.Tensor, env: dict, n: int | None) -> torch.Tensor:
        """The float engine's result for the int8 engine's output on ``x`` (the stored input,
        or its first ``n`` images): requantized as stored when the layer is fused, else the
        scaled v without residual."""
        want = self._float_conv(st, layer, x if st.in_pos is None else x.index_select(1, st.in_pos))
        if st.fused:
            if st.residual:
                r = env[layer.res_tensor] if n is None else env[layer.res_tensor][:n]
                want = want + self._values(layer.res_tensor, r, st.dtype) * st.res_scale
            want = want.round().clamp_(layer.clamp_lo, layer.clamp_hi)
        return want

    def _to_float(self, st, layer) -> None:
        """Switch one layer to the float engine for good, with a warning."""
        warnings.warn(f"layer {layer.name!r}: the int8 convolution differs from the exact float one on this "
                      "machine; the layer uses the float engine from now on", RuntimeWarning, stacklevel=4)
        st.int8, st.fused, st.res_alpha = None, False, None
        self.engines[layer.name] = "float"

    def _cim(self, i: int, layer, x: torch.Tensor, env: dict) -> torch.Tensor:
        st = self.steps[i]
        self._layer_index = i
        t_out = self.program.tensors[layer.out_tensor]
        if st.n_cols and st.n_in:
            if st.int8 is not None:
                v = self._int8_conv(st, layer, x, env)
                if v.dtype == torch.uint8:  # requant fused into the int8 convolution
                    return v
            else:
                v = self._float_conv(st, layer, x if st.in_pos is None else x.index_select(1, st.in_pos))
        else:  # nothing to compute: every filter pruned, or every input channel provably 0
            v = st.bias.view(1, -1, 1, 1).expand(x.shape[0], -1, t_out.height, t_out.width).clone(memory_format=CL)
        if st.residual:  # v = acc*2^-s + bias*2^-s + res*2^(rs-s), all filters
            v.addcmul_(self._values(layer.res_tensor, env[layer.res_tensor], st.dtype), st.res_scale)
        y = v.round_().clamp_(layer.clamp_lo, layer.clamp_hi)
        if st.out_zp is None or st.int8 is None:
            return y
        return (y.add_(st.out_zp) if st.out_zp else y).to(torch.uint8)


def popcount_sum_torch(x: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """int64 (H·W·C,): Σ over the images of the 1 bits of every value (< 2^bits) of a channels-last uint8
    NCHW tensor, in (y, x, c) order. Chunks of ≤ ⌊255 / bits⌋ images are copied into one reused buffer,
    popcounted by SWAR on its bytes viewed as int64 words (in place, into a reused scratch word array),
    summed over the chunk as words (no byte carries) and unpacked (as numpy's
    :func:`~hybridcim.emulator.counters.popcount_sum`)."""
    n = x.shape[0]
    flat = x.permute(0, 2, 3, 1).reshape(n, -1)
    m = flat.shape[1]
    mw = -(-m // 8)
    out = torch.zeros(mw * 8, dtype=torch.int64)
    if n == 0 or m == 0:
        return out[:m]
    step = min(n, 32, 255 // max(bits, 1))
    buf = torch.zeros((step, mw * 8), dtype=torch.uint8)
    tmp = torch.empty((step, mw), dtype=torch.int64)
    wsum = torch.empty(mw, dtype=torch.int64)
    for a in range(0, n, step):
        c = min(step, n - a)
        buf[:c, :m].copy_(flat[a:a + c])
        w, t = buf[:c].view(torch.int64), tmp[:c]
        if bits > 1:
            torch.bitwise_right_shift(w, 1, out=t).bitwise_and_(0x5555555555555555)
            w.sub_(t)
        if bits > 2:
            torch.bitwise_right_shift(w, 2, out=t).bitwise_and_(0x3333333333333333)
            w.bitwise_and_(0x3333333333333333).add_(t)
        if bits > 4:
            torch.bitwise_right_shift(w, 4, out=t)
            w.add_(t).bitwise_and_(0x0F0F0F0F0F0F0F0F)
        torch.sum(w, 0, out=wsum)
        out += wsum.view(torch.uint8)
    return out[:m]


def input_ones_torch(counter, x: torch.Tensor, channels: np.ndarray | None) -> int:
    """``input_ones`` of one CIM layer (architecture.md §7) from its stored input ``x`` (NCHW, uint8 or
    exact float values 0…255 of the stored ``channels``; None: all), counted in torch: per (y, x, channel)
    the 1 bits summed over the images (:func:`popcount_sum_torch`), then per kernel offset a strided window
    sum times the tiles that activate each row (the same integer as
    :class:`~hybridcim.emulator.counters.InputOnesCounter`)."""
    l, t = counter.layer, counter.t_in
    ones = torch.zeros((t.height, t.width, t.channels), dtype=torch.int64)
    if x.numel():
        xu = x if x.dtype == torch.uint8 else x.to(torch.uint8)
        per = popcount_sum_torch(xu, t.bits).view(t.height, t.width, -1)
        if channels is None:
            ones = per
        else:
            ones[..., torch.from_numpy(channels)] = per
    p, s = l.pad, l.stride
    if p:
        ones = tf.pad(ones, (0, 0, p, p, p, p))
    mult = torch.from_numpy(counter.row_mult)  # (kh, kw, C)
    total = 0
    for ky in range(l.kh):
        for kx in range(l.kw):
            win = ones[ky:ky + s * (counter.ho - 1) + 1:s, kx:kx + s * (counter.wo - 1) + 1:s, :].sum(dim=(0, 1))
            total += int(win @ mult[ky, kx])
    return total
