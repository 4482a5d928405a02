"""Sensitivity-based, pairing-aware per-filter precision assignment (SUN).

Method (documented in docs/training.md):

1. **Sensitivity.** For every filter f and precision p, the loss increase of quantizing
   the BN-folded filter W_f to p bits is estimated with the diagonal empirical Fisher
   (a second-order Taylor term with H ≈ E[g g]):
   ``Ω_f(p) = Σ_k E[g_k²] (W_f,k − Q_p(W_f,k))²`` where g is the gradient of the training
   loss w.r.t. the folded weight, averaged over a few batches, and Q_p is the layer's own
   power-of-two quantizer at p bits.
2. **Bundles.** A layer's stored filters are sorted by Ω_f(p_mid) and cut into bundles of
   ``B = group_width / min(precisions)`` filters (4 on the 8-column presets). A bundle
   has one precision, so at any choice its filters exactly fill whole column groups
   (one 8-bit filter, two 4-bit or four 2-bit per group): the pairing rule of
   architecture.md §5 holds by construction, and filters that are packed together are
   the ones whose (row block × group) units are pruned together (pruning.py). Left-over
   filters (count mod B) stay at the highest precision (one per group).
3. **Budget.** Starting from the highest precision everywhere, the bundle step down
   (8→4, 4→2) with the least ΔΩ per saved weight bit is taken greedily until the average
   precision over stored weights, Σ p_f K / Σ K, is ≤ ``avg_bits``. Layers listed in
   ``fixed`` (by default the first conv and the logits layer) stay at the highest precision.
"""
from __future__ import annotations

import heapq

import torch
import torch.nn.functional as F

from .models import CIMNet
from .quantizers import choose_exponents, quantize_weight


def fisher_diag(model: CIMNet, batches) -> dict[str, torch.Tensor]:
    """E[g²] of the loss w.r.t. each CIM layer's folded weight (F, C, k, k), eval-mode BN."""
    was = model.training
    model.eval()
    acc = {n: torch.zeros_like(l.weight) for n, l in model.cim_layers()}
    count = 0
    for x, y in batches:
        model.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        for n, l in model.cim_layers():
            if l.weight.grad is not None:
                inv = _bn_scale(l)
                acc[n] += (l.weight.grad / inv.view(-1, 1, 1, 1)).pow(2)
        count += 1
    model.zero_grad(set_to_none=True)
    model.train(was)
    return {n: a / max(count, 1) for n, a in acc.items()}


def _bn_scale(layer) -> torch.Tensor:
    if not layer.has_bn:
        return torch.ones(layer.cout, device=layer.weight.device)
    inv = layer.bn_weight / torch.sqrt(layer.running_var + layer.bn_eps)
    return torch.where(inv.abs() > 1e-12, inv, torch.full_like(inv, 1e-12)).detach()


def sensitivity(model: CIMNet, fisher: dict[str, torch.Tensor], precisions) -> dict[str, torch.Tensor]:
    """Ω (F, len(precisions)) per layer: Fisher-weighted quantization error of each filter at each p."""
    out = {}
    was = model.training
    model.eval()
    with torch.no_grad():
        for n, l in model.cim_layers():
            wf, _ = l.fold()
            cols = []
            for p in precisions:
                prec = torch.full((l.cout,), int(p), dtype=torch.int64, device=wf.device)
                wq, _ = quantize_weight(wf, prec, choose_exponents(wf, prec, l.per_tensor_scale))
                cols.append((fisher[n] * (wf - wq) ** 2).flatten(1).sum(dim=1))
            out[n] = torch.stack(cols, dim=1)
    model.train(was)
    return out


def assign_precision(model: CIMNet, omega: dict[str, torch.Tensor], precisions, avg_bits: float,
                     group_width: int, fixed: set[str]) -> dict:
    """Set every layer's ``precision`` buffer (stored filters only); returns a summary."""
    precs = sorted(int(p) for p in precisions)[::-1]  # descending
    bundle = max(group_width // precs[-1], 1)
    layers = dict(model.cim_layers())
    k_of = {n: l.cin * l.k * l.k for n, l in layers.items()}
    state: dict[tuple[str, int], int] = {}
    members: dict[tuple[str, int], list[int]] = {}
    total_w = total_bits = 0
    new_prec = {}
    for n, l in layers.items():
        alive = l.alive()
        prec = torch.where(alive, torch.full_like(l.precision, precs[0]), torch.zeros_like(l.precision))
        new_prec[n] = prec
        live = torch.nonzero(alive).flatten()
        total_w += len(live) * k_of[n]
        total_bits += len(live) * k_of[n] * precs[0]
        if n in fixed or len(precs) == 1:
            continue
        key = omega[n].cpu()[live.cpu(), len(precs) // 2]
        order = live.cpu()[torch.argsort(key, stable=True)].tolist()
        for b in range(len(order) // bundle):
            members[(n, b)] = order[b * bundle:(b + 1) * bundle]
            state[(n, b)] = 0
    heap = []

    def push(key):
        i = state[key]
        if i + 1 >= len(precs):
            return
        n = key[0]
        idx = members[key]
        d_omega = float(omega[n][idx, i + 1].sum() - omega[n][idx, i].sum())  # noqa: E501
        saved = len(idx) * k_of[n] * (precs[i] - precs[i + 1])
        heapq.heappush(heap, (d_omega / saved, key[0], key[1], saved))

    for key in members:
        push(key)
    while total_bits > avg_bits * total_w and heap:
        _, n, b, saved = heapq.heappop(heap)
        state[(n, b)] += 1
        new_prec[n][members[(n, b)]] = precs[state[(n, b)]]
        total_bits -= saved
        push((n, b))
    summary = {}
    for n, l in layers.items():
        l.precision.copy_(new_prec[n])
        summary[n] = {int(p): int((new_prec[n] == p).sum()) for p in [0] + precs}
    summary["avg_bits"] = total_bits / total_w if total_w else 0.0
    return summary


def average_bits(model: CIMNet) -> float:
    """Σ p_f K / Σ K over stored filters (precision > 0 and not fully masked)."""
    bits = w = 0
    for _, l in model.cim_layers():
        alive = l.alive()
        k = l.cin * l.k * l.k
        bits += int(l.precision[alive].sum()) * k
        w += int(alive.sum()) * k
    return bits / w if w else 0.0
