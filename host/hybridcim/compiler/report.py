"""Per-layer compile report: precision mix, sparsity, utilization (naive vs paired), cycles.

Utilization is the macro utilization of architecture.md §7 (used weight bits / allocated
cells of present units), from ``static_counters`` on the paired program and on the same
layer packed naively (one filter per column group).
"""
from __future__ import annotations

import numpy as np

from ..emulator.counters import static_counters
from ..program import Program


def layer_report(program: Program, naive: Program | None = None) -> list[dict]:
    """One dict per CIM layer (and pools with cycles 0) for one image."""
    rows = []
    for i, l in enumerate(program.layers):
        c = static_counters(l, program, 1)
        if not l.op.is_cim:
            continue
        prec = l.precision.astype(np.int64)
        hist = {int(p): int((prec == p).sum()) for p in np.unique(prec)}
        row = {"layer": l.name, "filters": l.n_filters, "k_rows": l.k_rows, "precision": hist,
               "avg_bits": float(prec[prec > 0].mean()) if (prec > 0).any() else 0.0,
               "groups_paired": l.n_groups, "groups_naive": int((prec > 0).sum()),
               "units_present": c.units_present, "units_total": c.units_total,
               "unit_sparsity": 1 - c.units_present / c.units_total if c.units_total else 0.0,
               "util_paired": c.utilization, "cycles": c.cycles, "tiles": c.tiles}
        if naive is not None:
            cn = static_counters(naive.layers[i], naive, 1)
            row.update(util_naive=cn.utilization, cycles_naive=cn.cycles, groups_naive=naive.layers[i].n_groups,
                       tiles_naive=cn.tiles)
        rows.append(row)
    return rows


def weight_sparsity(model) -> dict[str, float]:
    """Fraction of zero integer weights per layer of an IntegerModel (and 'total')."""
    out, z, t = {}, 0, 0
    for l in model.layers:
        if l["op"] in ("conv", "fc"):
            w = model.array(l["name"], "weight")
            out[l["name"]] = float((w == 0).mean())
            z += int((w == 0).sum())
            t += w.size
    out["total"] = z / t if t else 0.0
    return out


def format_report(rows: list[dict], sparsity: dict | None = None) -> str:
    """A text table of :func:`layer_report` rows."""
    hdr = (f"{'layer':<14s} {'F':>4s} {'K':>5s} {'bits(8/4/2/0)':>14s} {'groups n/p':>11s} {'util n/p':>13s} "
           f"{'units':>11s} {'w-sparse':>8s} {'cycles/img':>11s}")
    out = [hdr]
    for r in rows:
        h = r["precision"]
        bits = "/".join(str(h.get(p, 0)) for p in (8, 4, 2, 0))
        un = r.get("util_naive", float("nan"))
        sp = sparsity.get(r["layer"], float("nan")) if sparsity else float("nan")
        out.append(f"{r['layer']:<14s} {r['filters']:>4d} {r['k_rows']:>5d} {bits:>14s} "
                   f"{r['groups_naive']:>5d}/{r['groups_paired']:<5d} {un:>6.1%}/{r['util_paired']:<6.1%} "
                   f"{r['units_present']:>5d}/{r['units_total']:<5d} {sp:>8.1%} {r['cycles']:>11d}")
    tot_c = sum(r["cycles"] for r in rows)
    tot_n = sum(r.get("cycles_naive", 0) for r in rows)
    out.append(f"total cycles/image: {tot_c} (naive packing: {tot_n})")
    if sparsity:
        out.append(f"weight sparsity (zero integer weights): {sparsity['total']:.1%}")
    return "\n".join(out)


def program_compression(program: Program) -> dict:
    """Compression of a program read from its image alone, over all conv/fc layers.

    avg_bits: Σ p_f·K / Σ K over stored filters (precision > 0);
    structural_sparsity: 1 − (weights inside present (row block × group) units of stored
    filters) / (all F·K weights): the fraction pruned by whole filters and whole units;
    weights: F·K summed over the layers.
    """
    bits = stored_k = total = kept = 0
    for l in program.layers:
        if not l.op.is_cim:
            continue
        prec = l.precision.astype(np.int64)
        bits += int(prec.sum()) * l.k_rows
        stored_k += int((prec > 0).sum()) * l.k_rows
        total += l.n_filters * l.k_rows
        a = program.preset.rows_active
        rows_real = np.minimum(a, l.k_rows - np.arange(l.n_rowblocks) * a)
        filters_in_group = np.array([len(set(int(f) for f in row if f >= 0)) for row in l.col_filter], dtype=np.int64)
        kept += int((l.present * filters_in_group[:, None] * rows_real[None, :]).sum())
    return {"avg_bits": bits / stored_k if stored_k else 0.0,
            "structural_sparsity": 1 - kept / total if total else 0.0, "weights": total}
