"""Structured pruning in macro units (SUN, MARS): (row block × column group), whole filters.

The unit is the one the hardware skips (architecture.md §5): rows b·A … b·A+A−1 of the
HWC reduction order k = (ky·kw + kx)·C + c, times the filters of one column group. The
groups are computed with the compiler's own ``pack_filters`` (paired) on the layer's
current precision, so the masks line up with the compiled program's skip index. A group
whose every row block is pruned removes its filters entirely (precision 0); because
bundles fill groups exactly (precision.py), the packing of the remaining filters does not
move.

Saliency of a unit: mean squared BN-folded weight over its cells. Each step prunes, per
layer, the least salient units until the layer's masked-weight fraction reaches the
step's target (``schedule``: cubic ramp of Zhu & Gupta 2017 from ``start_epoch`` to
``end_epoch``); masks only grow.
"""
from __future__ import annotations

import numpy as np
import torch

from ..program.packing import pack_filters
from .layers import CIMConv2d
from .models import CIMNet


def schedule(epoch: int, target: float, start_epoch: int, end_epoch: int) -> float:
    """Sparsity target at the start of ``epoch`` (0 before start, target from end on)."""
    if epoch < start_epoch or target <= 0:
        return 0.0
    if epoch >= end_epoch or end_epoch <= start_epoch:
        return target
    t = (epoch - start_epoch + 1) / (end_epoch - start_epoch + 1)
    return target * (1 - (1 - t) ** 3)


def hwc_to_oihw(m: torch.Tensor, c: int, k: int) -> torch.Tensor:
    """(F, K) HWC-order tensor -> (F, C, k, k) torch layout."""
    return m.reshape(m.shape[0], k, k, c).permute(0, 3, 1, 2).contiguous()


def oihw_to_hwc(m: torch.Tensor) -> torch.Tensor:
    """(F, C, k, k) -> (F, K) with K = (ky*kw + kx)*C + c."""
    return m.permute(0, 2, 3, 1).reshape(m.shape[0], -1)


def units(layer: CIMConv2d, rows_active: int, group_width: int) -> tuple[list[list[int]], int, int]:
    """(groups as lists of filter indices, K, number of row blocks) for the layer's current precision."""
    prec = torch.where(layer.alive(), layer.precision, torch.zeros_like(layer.precision)).cpu().tolist()
    groups = [[f for f, _ in g] for g in pack_filters(prec, group_width, "paired")]
    k = layer.cin * layer.k * layer.k
    return groups, k, -(-k // rows_active)


class BitBudget:
    """Σ p·K and Σ K over stored filters; a whole group may be removed only if the average stays ≤ avg_bits."""

    def __init__(self, model: CIMNet, avg_bits: float | None):
        self.avg_bits = avg_bits
        self.bits = self.weights = 0
        for _, l in model.cim_layers():
            k = l.cin * l.k * l.k
            alive = l.alive()
            self.bits += int(l.precision[alive].sum()) * k
            self.weights += int(alive.sum()) * k

    def try_remove(self, bits: int, weights: int) -> bool:
        if self.avg_bits is not None and self.weights > weights and \
                (self.bits - bits) > self.avg_bits * (self.weights - weights) + 1e-9:
            return False
        self.bits -= bits
        self.weights -= weights
        return True


def prune_layer(layer: CIMConv2d, target: float, rows_active: int, group_width: int,
                budget: BitBudget | None = None) -> float:
    """Grow the layer's mask with whole units until ≥ target of its weights are masked; returns the fraction.

    A unit that is the last one of its group removes the group's filters; with ``budget``
    that is done only if the average precision of the stored filters stays within it
    (removing cheap 2-bit groups would otherwise push the average up).
    """
    groups, k, r = units(layer, rows_active, group_width)
    with torch.no_grad():
        wf, _ = layer.fold()
        w2 = oihw_to_hwc(wf.detach()).pow(2).cpu().numpy()
        mask = oihw_to_hwc(layer.mask).cpu().numpy().copy()
    total = mask.size
    cand = []
    for g, fs in enumerate(groups):
        for b in range(r):
            rows = slice(b * rows_active, min(k, (b + 1) * rows_active))
            cells = mask[fs, rows]
            if not cells.any():
                continue
            cand.append((float(w2[fs, rows].mean()), g, b, cells.size))
    cand.sort()
    masked = total - int(mask.sum())
    need = int(np.ceil(target * total))
    prec = layer.precision.cpu().numpy()
    for _, g, b, size in cand:
        if masked >= need:
            break
        fs = groups[g]
        rows = slice(b * rows_active, min(k, (b + 1) * rows_active))
        if budget is not None and int(mask[fs].sum()) == int(mask[fs, rows].sum()):  # last unit of the group
            if not budget.try_remove(int(prec[fs].sum()) * k, len(fs) * k):
                continue
        masked += int(mask[fs, rows].sum())
        mask[fs, rows] = False
    with torch.no_grad():
        layer.mask.copy_(hwc_to_oihw(torch.from_numpy(mask), layer.cin, layer.k).to(layer.mask.device))
        dead = ~layer.mask.flatten(1).any(dim=1)
        layer.precision[dead] = 0
    return masked / total


def prune_model(model: CIMNet, target: float, rows_active: int, group_width: int, exclude: set[str],
                avg_bits: float | None = None) -> dict:
    """One pruning step: per prunable layer, a target chosen so the whole model reaches ``target``.

    ``avg_bits``: the precision budget that whole-group removal must respect (BitBudget).
    """
    layers = dict(model.cim_layers())
    total = sum(l.mask.numel() for l in layers.values())
    prunable = sum(l.mask.numel() for n, l in layers.items() if n not in exclude)
    per_layer = min(target * total / prunable, 0.98) if prunable else 0.0
    budget = BitBudget(model, avg_bits) if avg_bits is not None else None
    out: dict = {}
    for _ in range(40):  # refused group removals leave a deficit: raise the per-layer target and go again
        out = {n: prune_layer(l, per_layer, rows_active, group_width, budget)
               for n, l in layers.items() if n not in exclude}
        got = sparsity(model)
        if got >= target - 1e-12 or per_layer >= 0.98:
            break
        per_layer = min(per_layer + max((target - got) * total / prunable, 0.005), 0.98)
    out["total"] = sparsity(model)
    return out


def sparsity(model: CIMNet) -> float:
    """Fraction of all CIM weights that are structurally masked."""
    m = [l.mask for _, l in model.cim_layers()]
    return 1 - sum(int(x.sum()) for x in m) / sum(x.numel() for x in m)


def check_unit_structure(layer: CIMConv2d, rows_active: int, group_width: int) -> None:
    """Raise AssertionError unless the mask is a union of whole units of the current packing."""
    groups, k, r = units(layer, rows_active, group_width)
    mask = oihw_to_hwc(layer.mask).cpu().numpy()
    live = [f for g in groups for f in g]
    dead = sorted(set(range(layer.cout)) - set(live))
    if mask[dead].any():
        raise AssertionError(f"pruned filters {dead[:8]} have unmasked weights")
    for g, fs in enumerate(groups):
        for b in range(r):
            cells = mask[fs, b * rows_active:min(k, (b + 1) * rows_active)]
            if cells.any() and not cells.all():
                raise AssertionError(f"unit (group {g}, row block {b}) is partially masked")
