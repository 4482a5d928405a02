"""CIM-aware convolution: BN fused into power-of-two-quantized weights during QAT (MARS).

``CIMConv2d`` holds a float weight W (F, C, kh, kw), an optional batch norm (gamma, beta,
running mean/var) and two explicit buffers: ``precision`` (F,) int64 in {0} ∪ precisions
(0 = pruned filter) and ``mask`` (F, C, kh, kw) bool (structured pruning, built by
``pruning.py`` in macro units). Forward, for an input with power-of-two scale s_in:

    W_f = mask * W * gamma / sqrt(var + eps),  b_f = beta - mean * gamma / sqrt(var + eps)
    e_f = choose_exponents(W_f, precision);  Q = quantized codes (per-filter precision)
    B   = round(b_f / (s_in * 2^-e_f))  (int32 grid of the accumulator)
    y   = conv(x, Q * 2^-e_f) + B * s_in * 2^-e_f

so y is exactly 2^-(e_in+e_f) * (acc + bias) of architecture.md §6. In training the fold
uses the batch statistics of the float conv (computed without gradient, which also updates
the running statistics) until ``bn_frozen`` is set; in eval it uses the running statistics.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .quantizers import RES_SHIFT_MAX, choose_exponents, quantize_bias, quantize_weight


class CIMConv2d(nn.Module):
    """Conv (or fc as a conv over a 1x1 input) with fused BN, per-filter precision and mask."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, pad: int = 0, bn: bool = True,
                 precision: int = 8, per_tensor_scale: bool = False, keep_dead_bias: bool = False,
                 bn_momentum: float = 0.1, bn_eps: float = 1e-5):
        super().__init__()
        self.cin, self.cout, self.k, self.stride, self.pad = cin, cout, k, stride, pad
        self.per_tensor_scale, self.keep_dead_bias = per_tensor_scale, keep_dead_bias
        self.weight = nn.Parameter(torch.empty(cout, cin, k, k))
        if bn:
            nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        else:  # a plain linear/logits layer: torch.nn.Linear's default init
            nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)
        self.has_bn = bn
        if bn:
            self.bn_weight = nn.Parameter(torch.ones(cout))
            self.bn_bias = nn.Parameter(torch.zeros(cout))
            self.register_buffer("running_mean", torch.zeros(cout))
            self.register_buffer("running_var", torch.ones(cout))
        else:
            self.bias = nn.Parameter(torch.zeros(cout))
        self.bn_momentum, self.bn_eps = bn_momentum, bn_eps
        self.register_buffer("bn_frozen", torch.zeros((), dtype=torch.bool))
        self.register_buffer("precision", torch.full((cout,), precision, dtype=torch.int64))
        self.register_buffer("mask", torch.ones(cout, cin, k, k, dtype=torch.bool))
        self.bn_stats_grad = True  # gradients flow through the batch statistics (as in plain BN)
        self.last: dict = {}

    # ------------------------------------------------------------------ folding
    def fold(self, x: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(W_f, b_f): masked weights and bias with BN folded (batch stats while training)."""
        w = self.weight * self.mask
        if not self.has_bn:
            return w, self.bias
        if self.training and not bool(self.bn_frozen) and x is not None:
            with torch.set_grad_enabled(self.bn_stats_grad and torch.is_grad_enabled()):
                z = F.conv2d(x, w, None, self.stride, self.pad)
                mean = z.mean(dim=(0, 2, 3))  # two-pass variance: torch's var over (0,2,3) is ~6x slower on CPU
                var = (z - mean.view(1, -1, 1, 1)).square().mean(dim=(0, 2, 3))
            with torch.no_grad():
                n = z.numel() / z.shape[1]
                m = self.bn_momentum
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / max(n - 1, 1))
        else:
            mean, var = self.running_mean, self.running_var
        inv = self.bn_weight / torch.sqrt(var + self.bn_eps)
        return w * inv.view(-1, 1, 1, 1), self.bn_bias - mean * inv

    def alive(self) -> torch.Tensor:
        """Bool (F,): filters that are stored (precision > 0 and not fully masked)."""
        return (self.precision > 0) & self.mask.flatten(1).any(dim=1)

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, in_scale: torch.Tensor, res_scale: torch.Tensor | None = None) -> torch.Tensor:
        """Pre-activation output (float, exact multiples of 2^-(e_in+e_f)) for input x at scale in_scale.

        ``res_scale``: scale of the residual added to the output; the weight exponents are kept
        >= e_res - e_in so that the residual lies on the accumulator grid (res_shift >= 0).
        """
        wf, bf = self.fold(x)
        alive = self.alive()
        prec = torch.where(alive, self.precision, torch.zeros_like(self.precision))
        e_min = e_max = None
        if res_scale is not None:
            e_min = float(torch.ceil(torch.log2(in_scale.detach().reshape(()) / res_scale.detach().reshape(())) - 1e-6))
            e_max = e_min + RES_SHIFT_MAX
        e = choose_exponents(wf, prec, self.per_tensor_scale, e_min, e_max)
        wq, codes = quantize_weight(wf, prec, e)
        unit = in_scale.detach().reshape(()) * torch.pow(2.0, -e.to(torch.float32))
        if not self.keep_dead_bias:
            bf = bf * alive
        bq = quantize_bias(bf, unit)
        self.last = {"exponent": e, "codes": codes, "bias_codes": bq.detach(), "precision": prec}
        return F.conv2d(x, wq, bq * unit, self.stride, self.pad)

    def integer_params(self, in_scale: torch.Tensor, res_scale: torch.Tensor | None = None) -> dict:
        """Eval-mode integer parameters: codes (F,C,k,k), bias codes, exponents, precision (int64)."""
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                x = torch.zeros(1, self.cin, self.k, self.k, device=self.weight.device)
                self.forward(x, in_scale, res_scale)
        finally:
            self.train(was)
        out = {k: v.to(torch.int64) for k, v in self.last.items()}
        return out
