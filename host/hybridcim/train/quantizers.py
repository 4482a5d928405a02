"""Power-of-two quantizers whose integer semantics are architecture.md §2/§6 exactly.

Weights (training): per-filter precision p_f and per-filter power-of-two scale 2^-e_f; the
code is ``clamp(round_half_even(w * 2^e_f), -2^(p_f-1), 2^(p_f-1)-1)``, gradients by the
straight-through estimator. The exponent is chosen per filter among three candidates
(the smallest that covers max|w|, and one or two finer ones) by least quantization MSE,
because a max-based scale zeroes most weights of a 2-bit filter.

Activations: stock Brevitas fixed-point quantizers (``Uint8ActPerTensorFixedPoint``:
learned power-of-two scale, round half to even, clamp [0, 2^A - 1]) with the bit width
overridden. ``deploy`` variants hold a scale set exactly from an exported exponent
(``set_pot_exponent``); the reference model and the QONNX export are built from them.
"""
from __future__ import annotations

import math

import torch
from brevitas.inject.enum import ScalingImplType
from brevitas.nn import QuantConv2d, QuantIdentity, QuantReLU
from brevitas.quant import Int32Bias
from brevitas.quant.fixed_point import (Int8ActPerTensorFixedPoint, Int8WeightPerChannelFixedPoint,
                                        Uint8ActPerTensorFixedPoint)

PRUNED_EXPONENT = 8
"""Weight exponent given to a pruned (all-zero) filter; sets its bias grid to 2^-(e_in+8)."""
BIAS_CODE_MAX = (1 << 22) - 1
"""|bias code| cap: keeps every float32 partial sum of the Brevitas model exact (< 2^24)."""
EXPONENT_RANGE = (-8, 20)
"""Weight exponents are clamped here (a filter of ~1e-6 weights just quantizes to 0)."""
RES_SHIFT_MAX = 15
"""res_shift cap: an 8-bit residual << 15 stays < 2^22, so acc + bias + res < 2^24 (float32 exact)."""


class RoundSte(torch.autograd.Function):
    """torch.round (half to even) forward, identity backward."""

    @staticmethod
    def forward(ctx, x):  # noqa: D401
        return torch.round(x)

    @staticmethod
    def backward(ctx, g):
        return g


def code_range(precision: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(lo, hi) float tensors of the two's complement range of each precision (0 -> [0, 0])."""
    p = precision.to(torch.float32)
    half = torch.where(p > 0, torch.pow(2.0, p - 1), torch.zeros_like(p))
    return -half, torch.clamp(half - 1, min=0)


def choose_exponents(w: torch.Tensor, precision: torch.Tensor, per_tensor: bool = False,
                     min_exponent: float | None = None, max_exponent: float | None = None) -> torch.Tensor:
    """Per-filter int64 exponents e (scale 2^-e) for weights w (F, ...) at ``precision`` (F,).

    Candidates: e0 = floor(log2(hi / max|w_f|)) (no clipping of the largest weight) and
    e0 + 1, e0 + 2; the one with least squared error wins (ties: the smallest). Pruned or
    all-zero filters get PRUNED_EXPONENT. ``per_tensor``: one exponent for all filters
    (chosen on the whole tensor), used for the logits layer. ``min_exponent``: lower bound
    (a layer with a residual needs e_in + e_f >= e_res so that res_shift >= 0);
    ``max_exponent``: upper bound (keeps res_shift <= RES_SHIFT_MAX).
    """
    with torch.no_grad():
        f = w.shape[0]
        w2 = w.detach().reshape(f, -1).to(torch.float32)
        lo, hi = code_range(precision)
        amax = w2.abs().amax(dim=1)
        live = (precision > 0) & (amax > 0)
        safe_hi = torch.clamp(hi, min=0.5)
        e0 = torch.floor(torch.log2(safe_hi / torch.clamp(amax, min=1e-30)))
        if per_tensor and live.any():  # one exponent: the finest that clips no filter, then finer
            e0 = torch.where(live, e0[live].min().expand(f), e0)
        best_e, best_err = None, None
        for k in range(3):
            e = e0 + k
            q = torch.clamp(torch.round(w2 * torch.pow(2.0, e)[:, None]), lo[:, None], hi[:, None])
            err = ((q * torch.pow(2.0, -e)[:, None] - w2) ** 2).sum(dim=1)
            if per_tensor:
                err = torch.where(live, (err * live).sum().expand(f), err)
            if best_e is None:
                best_e, best_err = e, err
            else:
                better = err < best_err
                best_e, best_err = torch.where(better, e, best_e), torch.where(better, err, best_err)
        e = torch.where(live, best_e, torch.full_like(best_e, PRUNED_EXPONENT)).clamp(*EXPONENT_RANGE)
        if max_exponent is not None:
            e = torch.clamp(e, max=float(max_exponent))
        if min_exponent is not None:
            e = torch.clamp(e, min=float(min_exponent))
        return e.to(torch.int64)


def quantize_weight(w: torch.Tensor, precision: torch.Tensor, exponent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(dequantized weights with STE gradient, integer codes as float) for w (F, ...)."""
    shape = (-1,) + (1,) * (w.dim() - 1)
    scale = torch.pow(2.0, exponent.to(torch.float32)).view(shape)
    lo, hi = code_range(precision)
    q = RoundSte.apply(w * scale)
    q = torch.maximum(torch.minimum(q, hi.view(shape)), lo.view(shape))
    return q / scale, q.detach()


def quantize_bias(b: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
    """Integer bias codes (float) on the accumulator grid ``unit`` (F,) = 2^-(e_in+e_w), STE."""
    q = RoundSte.apply(b / unit)
    return torch.clamp(q, -BIAS_CODE_MAX, BIAS_CODE_MAX)


def exponent_of(scale: torch.Tensor) -> int:
    """The integer e with scale == 2^-e exactly; raises if scale is not a power of two."""
    s = float(scale.detach().reshape(-1)[0])
    e = -math.log2(s) if s > 0 else float("nan")
    if not math.isfinite(e) or e != round(e) or scale.detach().numel() != 1:
        raise ValueError(f"activation scale {s} is not a single power of two")
    return int(round(e))


# --------------------------------------------------------------------- Brevitas quantizers
class UintActPoT(Uint8ActPerTensorFixedPoint):
    """Unsigned activations, per-tensor power-of-two scale learned from runtime stats.

    Bit width and the stats-collection length are passed as keyword overrides
    (``bit_width=``, ``collect_stats_steps=``) and checked by :func:`assert_act_bits`.
    """


class UintActPoTDeploy(Uint8ActPerTensorFixedPoint):
    """Unsigned activations whose power-of-two scale is a parameter set by set_pot_exponent."""

    scaling_impl_type = ScalingImplType.PARAMETER
    scaling_init = 1.0


class IntActPoT(Int8ActPerTensorFixedPoint):
    """Signed activations (full range -2^(A-1)..2^(A-1)-1), per-tensor learned power-of-two scale."""


class IntActPoTDeploy(Int8ActPerTensorFixedPoint):
    """Signed activations whose power-of-two scale is a parameter set by set_pot_exponent."""

    scaling_impl_type = ScalingImplType.PARAMETER
    scaling_init = 1.0


class Int8WeightPoTDeploy(Int8WeightPerChannelFixedPoint):
    """8-bit (full range) per-filter power-of-two weights; scale set by set_pot_exponent.

    Per-filter precisions p <= 8 are exported as 8-bit codes: the integers are identical.
    """

    narrow_range = False
    scaling_impl_type = ScalingImplType.PARAMETER
    scaling_init = 1.0


def act_quant(bits: int, collect_stats_steps: int, relu: bool = True, signed: bool = False):
    """A Brevitas QuantReLU (or unsigned / signed QuantIdentity) returning QuantTensors."""
    cls = QuantReLU if relu else QuantIdentity
    m = cls(act_quant=IntActPoT if signed else UintActPoT, bit_width=bits, collect_stats_steps=collect_stats_steps,
            return_quant_tensor=True)
    assert_act_bits(m, bits)
    return m


def input_quant() -> QuantIdentity:
    """The 8-bit unsigned input quantizer with the fixed scale 2^-8 (architecture.md §2)."""
    m = QuantIdentity(act_quant=UintActPoTDeploy, bit_width=8, return_quant_tensor=True)
    set_pot_exponent(m.act_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl, lambda: m.act_quant.scale(), 8)
    m.requires_grad_(False)
    assert_act_bits(m, 8)
    return m


def deploy_act(bits: int, exponent: int, relu: bool = True, signed: bool = False):
    """Brevitas activation quantizer with the exact scale 2^-exponent (frozen)."""
    cls = QuantReLU if relu else QuantIdentity
    m = cls(act_quant=IntActPoTDeploy if signed else UintActPoTDeploy, bit_width=bits, return_quant_tensor=True)
    set_pot_exponent(m.act_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl, lambda: m.act_quant.scale(), exponent)
    m.requires_grad_(False)
    assert_act_bits(m, bits)
    return m


def deploy_conv(cin: int, cout: int, k: int, stride: int, pad: int, exponents) -> QuantConv2d:
    """Brevitas QuantConv2d with 8-bit per-filter power-of-two weights 2^-exponents and int32 bias."""
    m = QuantConv2d(cin, cout, k, stride=stride, padding=pad, bias=True, weight_quant=Int8WeightPoTDeploy,
                    bias_quant=Int32Bias, return_quant_tensor=False)
    set_pot_exponent(m.weight_quant.tensor_quant.scaling_impl, lambda: m.quant_weight().scale, exponents)
    m.requires_grad_(False)
    bw = int(m.quant_weight().bit_width)
    if bw != 8:
        raise AssertionError(f"deploy conv realized {bw}-bit weights, expected 8")
    return m


def set_pot_exponent(scaling_impl, read_scale, exponent) -> None:
    """Set a Brevitas power-of-two ParameterScaling so that its scale is exactly 2^-exponent.

    The log-domain parameter goes through ceil and a threshold division, so the offset is
    probed once (value 0) and then compensated; the realized scale is checked.
    """
    value = scaling_impl.value
    with torch.no_grad():
        value.zero_()
        probe = read_scale().detach().reshape(-1)[0]
        k0 = round(math.log2(float(probe)))
        target = -torch.as_tensor(exponent, dtype=torch.float32).reshape(-1)
        value.copy_((target - k0).reshape(value.shape) if target.numel() == value.numel()
                    else (target - k0).expand(value.numel()).reshape(value.shape))
        got = read_scale().detach().reshape(-1)
        want = torch.pow(2.0, target).expand_as(got) if target.numel() == 1 else torch.pow(2.0, target)
        if not torch.equal(got, want):
            raise AssertionError(f"power-of-two scale not realized: wanted {want.tolist()[:4]}, got {got.tolist()[:4]}")


def assert_act_bits(module, bits: int) -> None:
    """Brevitas silently ignores misspelled kwargs (STYLE.md 4): check the realized width."""
    bw = module.act_quant.bit_width()
    if bw is None or int(bw) != bits:
        raise AssertionError(f"{type(module).__name__} realized {None if bw is None else int(bw)} bits, expected {bits}")
