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
    """One dict per CIM layer for one image. ``unit_sparsity``: fraction of the layer's (row block x
    column group) units absent (units of stored filters only: a whole-pruned filter has no group);
    ``filters_pruned``: filters of precision 0; ``weights_pruned``: fraction of the F * K weights
    removed by whole-filter and unit pruning together (:func:`kept_weights`)."""
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
               "filters_pruned": hist.get(0, 0),
               "weights_pruned": 1 - kept_weights(l, program.preset) / (l.n_filters * l.k_rows)
               if l.n_filters * l.k_rows else 0.0,
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
    """A text table of :func:`layer_report` rows (column widths from the cells)."""
    from ..table import format_table
    body = []
    for r in rows:
        h = r["precision"]
        un = r.get("util_naive")
        sp = sparsity.get(r["layer"]) if sparsity else None
        body.append([r["layer"], r["filters"], r["k_rows"], "/".join(str(h.get(p, 0)) for p in (8, 4, 2, 0)),
                     f"{r['groups_naive']}/{r['groups_paired']}",
                     f"{'-' if un is None else format(un, '.1%')}/{r['util_paired']:.1%}",
                     f"{r['units_present']}/{r['units_total']}", "-" if sp is None else f"{sp:.1%}", r["cycles"]])
    out = [format_table(["layer", "F", "K", "bits(8/4/2/0)", "groups n/p", "util n/p", "units", "w-sparse",
                         "cycles/img"], body)]
    tot_c = sum(r["cycles"] for r in rows)
    tot_n = sum(r.get("cycles_naive", 0) for r in rows)
    out.append(f"total cycles/image: {tot_c} (naive packing: {tot_n})")
    if sparsity:
        out.append(f"weight sparsity (zero integer weights): {sparsity['total']:.1%}")
    return "\n".join(out)


def kept_weights(layer, preset) -> int:
    """Weights (filter x row pairs) of a CIM layer inside present (row block x group) units of
    stored filters; F * K minus this is what whole-filter and unit pruning removed."""
    a = preset.rows_active
    rows_real = np.minimum(a, layer.k_rows - np.arange(layer.n_rowblocks) * a)
    filters_in_group = np.array([len(set(int(f) for f in row if f >= 0)) for row in layer.col_filter], dtype=np.int64)
    return int((layer.present * filters_in_group[:, None] * rows_real[None, :]).sum())


def program_compression(program: Program) -> dict:
    """Compression of a program read from its image alone, over all conv/fc layers.

    avg_bits: Σ p_f·K / Σ K over the filters stored in the SRAM macros (precision > 0);
    structural_sparsity: 1 − (weights inside present (row block × group) units of stored
    filters, plus every weight of a dual-path layer's ternary filters, which the ternary macros
    store densely) / (all F·K weights): the fraction pruned by whole filters and whole units;
    ternary_fraction: the ternary filters' share of all F·K weights (0 without dual-path layers;
    their weights are in {−1, 0, 1}, two cells each, and not in avg_bits);
    weights: F·K summed over the layers.
    """
    bits = stored_k = total = kept = tern = 0
    for l in program.layers:
        if not l.op.is_cim:
            continue
        prec = l.precision.astype(np.int64)
        bits += int(prec.sum()) * l.k_rows
        stored_k += int((prec > 0).sum()) * l.k_rows
        total += l.n_filters * l.k_rows
        n_tern = l.dual.n_tern(l.n_filters) if l.dual is not None else 0
        kept += kept_weights(l, program.preset) + n_tern * l.k_rows
        tern += n_tern * l.k_rows
    return {"avg_bits": bits / stored_k if stored_k else 0.0,
            "structural_sparsity": 1 - kept / total if total else 0.0,
            "ternary_fraction": tern / total if total else 0.0, "weights": total}
