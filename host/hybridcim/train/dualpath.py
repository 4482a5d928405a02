"""Dual-path (DualNet) convolutions for QAT: an INT4 path beside a ternary-weight x binary-input path.

Integer semantics are architecture.md §10.2 exactly. A :class:`DualConv2d` of F filters at ratio
q (0…8) computes its first F − F_t output channels on the **INT4 path** (the CIMConv2d recipe: BN
folded into the weights, per-filter power-of-two scale 2^-e_f, 4-bit codes, bias on the accumulator
grid) and its last F_t = ⌊F·q/8⌋ channels on the **ternary path**:

- binary input b[k] = 1 if x[k] ≥ θ else 0 (x the layer's integer input, θ = ``bin_threshold``,
  default 2^(bits_in−1), the input's MSB); in float b enters at the input's scale s_in (value
  b·s_in), so every per-filter formula of the export (shift = e_f + e_in − e_out, bias grid
  2^-(e_in+e_f), res_shift) is the INT4 path's. Backward: none: the ternary path passes no gradient
  to its input (the INT4 path and the residual carry the layer's input gradient). A straight-through
  gradient (slope 1/θ) grew about tenfold per layer, because BN scales the sparse binary input's
  weights up, and 18 such layers diverged or stalled a supernet at chance level from the first step.
- ternary weights T ∈ {−1, 0, 1}: W_f (the path's own latent weights, BN folded with the path's own
  batch norm) → T = sign(W) where |W| > Δ_f, Δ_f = δ · mean|W_f| with δ a learned per-layer
  threshold ratio (gradient by a sigmoid surrogate of the step); scale α_f = mean |W_f| over
  T ≠ 0 (TWN), rounded to the nearest power of two 2^-e_f (e_f clamped like the INT4 path's,
  e.g. kept in [e_res − e_in, e_res − e_in + 15] on a residual layer). The real weight is T·2^-e_f
  (straight-through to W).

Both paths carry weights, batch norms and statistics for all F channels (weight sharing over
ratios: channel f uses the same INT4 parameters in every candidate that puts it on the INT4 path);
only the selected slice of each is computed. The ratio is a buffer: ``ratio`` (fixed mode, eval
and export); in **supernet** mode (``allowed`` has ≥ 2 ratios) every training forward draws q
uniformly from ``allowed`` with a generator seeded by (sample_seed, sample_step, sample_salt), the
step counter being a buffer, so a resumed run draws the same ratios.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import CIMConv2d
from .quantizers import EXPONENT_RANGE, PRUNED_EXPONENT, RES_SHIFT_MAX, choose_exponents, quantize_bias, quantize_weight

RATIO_STEPS = 8
"""The ratio is q / RATIO_STEPS, q in 0..RATIO_STEPS (architecture.md §10.2)."""
DELTA_RANGE = (0.05, 1.9)
"""The learned threshold ratio δ is clamped here when used."""


def msb_threshold(bits_in: int) -> int:
    """θ = 2^(bits_in − 1): the binary input is the MSB of the layer input."""
    return 1 << (bits_in - 1)


def ternarize(wf: torch.Tensor, delta: torch.Tensor, e_min: float | None = None,
              e_max: float | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(weights T·2^-e with STE, codes T as float (detached), exponents e int64 (F,)) of folded weights wf (F, ...).

    Δ_f = δ·mean|W_f|; T = sign(W)·[|W| > Δ_f]; e_f = round(−log2 α_f), α_f = mean |W_f| over T ≠ 0
    (PRUNED_EXPONENT for an all-zero filter), clamped to EXPONENT_RANGE and to [e_min, e_max].
    Gradients: identity to wf; to δ through sigmoid((|W| − Δ)/(0.1·Δ)) in place of the step.
    """
    shape = (-1,) + (1,) * (wf.dim() - 1)
    d = torch.clamp(delta, *DELTA_RANGE)
    a = wf.detach().abs()
    mean = a.flatten(1).mean(dim=1).clamp_min(1e-30)
    thr = (d * mean).view(shape)  # carries δ's gradient
    hard = (a > thr.detach()).to(wf.dtype)
    with torch.no_grad():
        nz = hard.flatten(1).sum(dim=1)
        alpha = (a * hard).flatten(1).sum(dim=1) / nz.clamp_min(1)
        e = torch.where(nz > 0, torch.round(-torch.log2(alpha.clamp_min(1e-30))),
                        torch.full_like(alpha, PRUNED_EXPONENT)).clamp(*EXPONENT_RANGE)
        if e_max is not None:
            e = torch.clamp(e, max=float(e_max))
        if e_min is not None:
            e = torch.clamp(e, min=float(e_min))
    soft = torch.sigmoid((a - thr) / (0.1 * thr.detach()))
    # forward value exactly sign·hard: (soft − soft) is exactly 0, whereas (hard + soft) − soft can miss 1 by an ulp
    codes = torch.sign(wf.detach()) * (hard + (soft - soft.detach()))
    scale = torch.pow(2.0, -e).view(shape)
    wq = codes * scale + (wf - wf.detach())
    return wq, (torch.sign(wf.detach()) * hard), e.to(torch.int64)


class TernaryPath(nn.Module):
    """The ternary path's parameters for all F channels: latent weight, its batch norm, threshold ratio δ."""

    def __init__(self, cin: int, cout: int, k: int, tern_delta: float):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, cin, k, k))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.bn_weight = nn.Parameter(torch.ones(cout))
        self.bn_bias = nn.Parameter(torch.zeros(cout))
        self.register_buffer("running_mean", torch.zeros(cout))
        self.register_buffer("running_var", torch.ones(cout))
        self.delta = nn.Parameter(torch.tensor(float(tern_delta)))


class DualConv2d(CIMConv2d):
    """A conv whose last ⌊F·q/8⌋ output channels run on the ternary-binary path (module docstring)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, pad: int = 0, in_bits: int = 4,
                 bin_threshold: int | None = None, tern_delta: float = 0.7, keep_dead_bias: bool = False,
                 precision: int = 4):
        super().__init__(cin, cout, k, stride, pad, bn=True, precision=precision, keep_dead_bias=keep_dead_bias)
        theta = msb_threshold(in_bits) if bin_threshold is None else int(bin_threshold)
        if not 1 <= theta <= (1 << in_bits) - 1:
            raise ValueError(f"bin_threshold {theta} must lie in 1..{(1 << in_bits) - 1} for a {in_bits}-bit input")
        self.in_bits, self.theta = in_bits, theta
        self.tern = TernaryPath(cin, cout, k, tern_delta)
        self.register_buffer("ratio", torch.zeros((), dtype=torch.int64))
        self.register_buffer("allowed", torch.zeros(RATIO_STEPS + 1, dtype=torch.bool))
        self.register_buffer("sample_step", torch.zeros((), dtype=torch.int64))
        self.register_buffer("sample_seed", torch.zeros((), dtype=torch.int64))
        self.register_buffer("sample_salt", torch.zeros((), dtype=torch.int64))

    # ------------------------------------------------------------------ ratio
    def n_tern(self, q: int | None = None) -> int:
        """F_t = ⌊F·q/8⌋ (q: the eval ratio by default)."""
        return self.cout * int(self.ratio if q is None else q) // RATIO_STEPS

    def current_ratio(self) -> int:
        """The ratio of this forward: a fresh draw from ``allowed`` in supernet training, else ``ratio``."""
        choices = torch.nonzero(self.allowed).flatten()
        if not (self.training and len(choices) >= 2):
            return int(self.ratio)
        seed = (int(self.sample_seed) * 1_000_003 + int(self.sample_step)) * 4099 + int(self.sample_salt)
        g = torch.Generator().manual_seed(seed & ((1 << 63) - 1))
        self.sample_step += 1
        return int(choices[int(torch.randint(len(choices), (1,), generator=g))])

    # ------------------------------------------------------------------ pieces
    def _fold_slice(self, x, w, gamma, beta, rmean, rvar, var_floor=None):
        """(W_f, b_f) of one path's channel slice; batch statistics update that slice's running stats.

        ``var_floor`` (F,): the batch variance used in a training fold is at least this (ternary path, see
        forward), and so is the variance the running statistics (eval, export) accumulate."""
        if self.training and not bool(self.bn_frozen):
            with torch.set_grad_enabled(self.bn_stats_grad and torch.is_grad_enabled()):
                z = F.conv2d(x, w, None, self.stride, self.pad)
                mean = z.mean(dim=(0, 2, 3))
                var = (z - mean.view(1, -1, 1, 1)).square().mean(dim=(0, 2, 3))
            if var_floor is not None:
                var = torch.maximum(var, var_floor)
            with torch.no_grad():  # the running variance is the floored one: eval and export fold what training did
                n = z.numel() / z.shape[1]
                m = self.bn_momentum
                rmean.mul_(1 - m).add_(m * mean.detach())
                rvar.mul_(1 - m).add_(m * var.detach() * n / max(n - 1, 1))
        else:
            mean, var = rmean, rvar
        inv = gamma / torch.sqrt(var + self.bn_eps)
        return w * inv.view(-1, 1, 1, 1), beta - mean * inv

    def binarize(self, x: torch.Tensor, in_scale: torch.Tensor) -> torch.Tensor:
        """b·s_in with b = [x/s_in ≥ θ], exact, without gradient (module docstring)."""
        s = in_scale.detach().reshape(())
        return (torch.round(x.detach() / s) >= self.theta).to(x.dtype) * s

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, in_scale: torch.Tensor, res_scale: torch.Tensor | None = None) -> torch.Tensor:
        """Pre-activation output: channels 0…F−F_t−1 from the INT4 path, F−F_t…F−1 from the ternary path."""
        q = self.current_ratio()
        f, ft = self.cout, self.cout * q // RATIO_STEPS
        f0 = f - ft
        e_min = e_max = None
        if res_scale is not None:
            e_min = float(torch.ceil(torch.log2(in_scale.detach().reshape(()) / res_scale.detach().reshape(())) - 1e-6))
            e_max = e_min + RES_SHIFT_MAX
        s_in = in_scale.detach().reshape(())
        alive = self.alive()
        prec = torch.where(alive, self.precision, torch.zeros_like(self.precision))
        prec[f0:] = 0
        exps = torch.zeros(f, dtype=torch.int64, device=x.device)
        codes = torch.zeros_like(self.weight).detach()
        bias_codes = torch.zeros(f, device=x.device)
        ys = []
        if f0:
            w = self.weight[:f0] * self.mask[:f0]
            wf, bf = self._fold_slice(x, w, self.bn_weight[:f0], self.bn_bias[:f0],
                                      self.running_mean[:f0], self.running_var[:f0])
            e = choose_exponents(wf, prec[:f0], False, e_min, e_max)
            wq, c = quantize_weight(wf, prec[:f0], e)
            unit = s_in * torch.pow(2.0, -e.to(torch.float32))
            if not self.keep_dead_bias:
                bf = bf * alive[:f0]
            bq = quantize_bias(bf, unit)
            ys.append(F.conv2d(x, wq, bq * unit, self.stride, self.pad))
            exps[:f0], codes[:f0], bias_codes[:f0] = e, c, bq.detach()
        tern_codes = torch.zeros((0,) + tuple(self.weight.shape[1:]), device=x.device)
        if ft:
            t = self.tern
            b = self.binarize(x, in_scale)
            # A binary input is often sparse (b = the MSB is mostly 0): in a batch where no bit of a
            # channel's receptive field is set, the batch variance is 0 and the fold multiplies the weights
            # by γ/√eps (≈316γ), so that one set bit moves an output by hundreds of γ. The floor is the
            # variance of a response to one set bit per receptive field on average, s_in²·mean(W²): one set
            # bit then gives an output of order γ. The running variance accumulates the floored one.
            tw = t.weight[f0:]
            floor = s_in.square() * tw.square().flatten(1).mean(dim=1)
            wf, bf = self._fold_slice(b, tw, t.bn_weight[f0:], t.bn_bias[f0:],
                                      t.running_mean[f0:], t.running_var[f0:], var_floor=floor)
            wq, tern_codes, e = ternarize(wf, t.delta, e_min, e_max)
            unit = s_in * torch.pow(2.0, -e.to(torch.float32))
            bq = quantize_bias(bf, unit)
            ys.append(F.conv2d(b, wq, bq * unit, self.stride, self.pad))
            exps[f0:], bias_codes[f0:] = e, bq.detach()
        self.last = {"exponent": exps, "codes": codes, "bias_codes": bias_codes, "precision": prec,
                     "tern_codes": tern_codes.detach(), "ratio": torch.tensor(q), "bin_threshold": torch.tensor(self.theta)}
        return ys[0] if len(ys) == 1 else torch.cat(ys, dim=1)


# ---------------------------------------------------------------------- model-level helpers
def dual_layers(model) -> list[tuple[str, DualConv2d]]:
    """The model's dual-path convs in network order."""
    return [(n, l) for n, l in model.cim_layers() if isinstance(l, DualConv2d)]


def set_ratios(model, ratios: "dict[str, int] | int") -> None:
    """Set the (eval/export) ratio q of dual layers: one q for all, or {layer name: q}."""
    layers = dict(dual_layers(model))
    if not isinstance(ratios, dict):
        ratios = {n: ratios for n in layers}
    unknown = sorted(set(ratios) - set(layers))
    if unknown:
        raise KeyError(f"no dual-path layers named {unknown} (dual layers: {', '.join(layers)})")
    for n, q in ratios.items():
        if isinstance(q, bool) or not isinstance(q, int) or not 0 <= q <= RATIO_STEPS:
            raise ValueError(f"layer {n!r}: ratio {q!r} is outside the allowed set 0..{RATIO_STEPS}")
        layers[n].ratio.fill_(q)


def get_ratios(model) -> dict[str, int]:
    """{dual layer name: q} of the eval/export ratios."""
    return {n: int(l.ratio) for n, l in dual_layers(model)}


def recalibrate_bn(model, batches) -> None:
    """Re-estimate the running BN statistics of every CIM layer (both paths of a dual layer, for the
    channels its current ``ratio`` puts on each) as the plain average over ``batches`` (float NCHW
    model inputs), with the ratios fixed (no supernet draws) and no gradient; the eval-mode fold, and so
    the exported integer model, then matches these ratios. A candidate of the ratio search needs this
    after ``set_ratios``: the statistics a supernet keeps are averaged over the sampled ratios."""
    layers = [l for _, l in model.cim_layers() if l.has_bn]
    saved = [(l.bn_momentum, l.bn_frozen.clone(), getattr(l, "allowed", None)) for l in layers]
    allowed = [None if a is None else a.clone() for _, _, a in saved]
    was = model.training
    try:
        model.train()
        for l in layers:
            l.bn_frozen.fill_(False)
            if isinstance(l, DualConv2d):
                l.allowed.zero_()
        with torch.no_grad():
            for i, x in enumerate(batches):
                for l in layers:
                    l.bn_momentum = 1.0 / (i + 1)
                model(x)
    finally:
        for l, (mom, frozen, _), a in zip(layers, saved, allowed):
            l.bn_momentum = mom
            l.bn_frozen.copy_(frozen)
            if a is not None:
                l.allowed.copy_(a)
        model.train(was)


def configure_dual(model, dual, seed: int) -> None:
    """Apply a config's ``dual`` section (config.DualConfig) to a built or loaded model: the fixed ratios
    (``layer_ratios`` in network order, else ``ratio``) and, in supernet mode, the sampling set and seed.
    The sampling step counters (checkpointed buffers) are kept, so a resumed run continues its draws."""
    from .config import ConfigError
    layers = dual_layers(model)
    if dual.layer_ratios is not None and len(dual.layer_ratios) != len(layers):
        raise ConfigError(f"dual.layer_ratios has {len(dual.layer_ratios)} entries, the model has {len(layers)} "
                          f"dual-path layers ({', '.join(n for n, _ in layers)})")
    qs = list(dual.layer_ratios) if dual.layer_ratios is not None else [dual.ratio] * len(layers)
    for i, ((_, l), q) in enumerate(zip(layers, qs)):
        l.ratio.fill_(int(q))
        l.allowed.zero_()
        if dual.mode == "supernet":
            l.allowed[list(dual.ratios)] = True
        l.sample_seed.fill_(int(seed))
        l.sample_salt.fill_(i)
