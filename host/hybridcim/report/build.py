"""Assemble the report of one program: cost it, draw the figures, lay out the tables.

The roofline-style bound uses 1b×1b-normalized operations (2 × ``bit_ops``: every stored
weight bit meets every input bit plane once), which is what a bit-serial SRAM-CIM macro
executes whatever the weight precision: the compute roof is 2 × n_macros × rows_active ×
cols operations per cycle at the cost preset's clock, the bandwidth slope the preset's DRAM
bandwidth, and a layer's operational intensity its 1b operations per DRAM byte.
"""
from __future__ import annotations

import numpy as np

from ..compiler.report import program_compression
from ..program.model import Program
from . import figures
from .document import Document, Figure, Section, Table
from .dualpath import dual_section, utilization_line
from .mapping import precision_map, tile_utilization
from .workload import Workload


def _f(v: float, nd: int = 3) -> str:
    return f"{v:.{nd}g}" if abs(v) < 1000 else f"{v:,.0f}"


def roofline(program: Program, c, counters, preset) -> dict:
    """Per CIM layer: 1b ops per DRAM byte and attained 1b GOPS; the compute roof (GOPS) and the
    DRAM slope (GB/s = GOPS per op/byte)."""
    hw = program.preset
    peak = 2 * hw.n_macros * hw.rows_active * hw.cols * preset["clock_mhz"] / 1e3  # GOPS
    names, x, y, bound = [], [], [], []
    for l, lc, k in zip(program.layers, c.layers, counters):
        if not l.op.is_cim or not lc.latency_ns:
            continue
        ops = 2 * k.bit_ops
        names.append(l.name)
        x.append(ops / k.dram_bytes if k.dram_bytes else 0.0)
        y.append(ops / lc.latency_ns)
        bound.append(lc.bound)
    return {"layers": names, "intensity": np.array(x), "attained": np.array(y), "bound": bound,
            "peak_gops": peak, "bandwidth": preset["dram_gbytes_per_s"]}


def program_document(program: Program, workload: Workload, preset="dcim-28nm", seeds=None,
                     source: str = "", seeds_error: str = "") -> Document:
    """The report of ``program`` costed from ``workload`` under cost ``preset``; ``seeds``: a
    cost.seeds.SeedReport to include (None: the section says why not, ``seeds_error``, or how
    to get it)."""
    from ..cost import cost, load_cost_preset
    preset = load_cost_preset(preset)
    c = cost(program, workload.counters, preset)
    hw = program.preset
    comp = program_compression(program)
    cim = [(l, lc, k) for l, lc, k in zip(program.layers, c.layers, workload.counters) if l.op.is_cim]
    weight_bits = sum(k.weight_bits for _, _, k in cim)
    cells = sum(k.cells_allocated for _, _, k in cim)
    mem = c.memory_bits
    headline = [
        ("energy per image", f"{c.energy_uj_per_image:.4g} µJ"),
        ("CIM chip latency per image", f"{c.latency_us_per_image:.4g} µs ({c.images_per_s:,.0f} images/s)"),
        ("throughput / efficiency (dense-equivalent ops)", f"{c.gops:.4g} GOPS, {c.tops_per_w:.4g} TOPS/W, "
                                                          f"{c.tops_per_mm2:.4g} TOPS/mm²"),
        ("chip area", f"{c.area_total_mm2:.4g} mm² (" + ", ".join(f"{k} {v:.3g}" for k, v in c.area_mm2.items()) + ")"),
        ("stored on chip", f"{c.memory_total_bits / 8192:.1f} KiB (" + ", ".join(
            f"{k} {v / 8192:.1f} KiB" for k, v in mem.items()) + ")"),
        ("macro utilization", utilization_line(c) if hw.has_tern else
         f"{weight_bits / cells:.1%} of the allocated cells hold weight bits" if cells else "n/a"),
        ("compression", f"{comp['avg_bits']:.2f} average weight bits, {comp['structural_sparsity']:.1%} of the "
                        f"weights structurally pruned" + (f", {comp['ternary_fraction']:.1%} ternary (dual-path)"
                                                          if comp["ternary_fraction"] else "")),
        ("hardware preset", f"{hw.name}: {hw.n_macros} macros of {hw.rows}×{hw.cols}, {hw.rows_active} word lines "
                            f"at once, {hw.group_width}-column groups" + (
                                f"; {hw.tern_n_macros} ternary macros of {hw.tern_rows}×{hw.tern_cols}, "
                                f"{hw.tern_rows_active} rows at once, refresh every {hw.tern_refresh_cycles} cycles"
                                if hw.has_tern else "")),
        ("cost preset", f"{preset.name} (version {preset.version}, {preset.technology_nm:g} nm, "
                        f"{preset['clock_mhz']:g} MHz): {preset.description}"),
    ]
    notes = [workload.source + ".",
             f"Latency is the {c.latency_kind} of the emulated SRAM-CIM accelerator, not the FPGA overlay's "
             "throughput."] + [a + "." for a in c.assumptions]
    title = f"hybridcim report: {program.name}" + (f" ({source})" if source else "")
    doc = Document(title, headline, notes)

    # energy / latency per layer (all layers: pools cost buffer, requant and DRAM energy)
    names = [lc.layer for lc in c.layers]
    per = 1.0 / max(c.images, 1)
    kinds = [k for k in c.energy_by_kind if c.energy_by_kind[k]]
    energy = {k: np.array([lc.energy_pj.get(k, 0.0) * per for lc in c.layers]) for k in kinds}
    clock = preset["clock_mhz"]
    lat = {"compute": np.array([lc.compute_cycles / clock * per for lc in c.layers]),
           "weight loads": np.array([lc.load_cycles / clock * per for lc in c.layers]),
           "DRAM": np.array([lc.dram_ns / 1e3 * per for lc in c.layers])}
    rows = []
    for l, lc, k in zip(program.layers, c.layers, workload.counters):
        top = max(lc.energy_pj.items(), key=lambda t: t[1])[0] if lc.energy_total_pj else "-"
        rows.append([lc.layer, lc.op, _f(lc.energy_total_pj * per / 1e3), top, _f(lc.latency_ns * per / 1e3),
                     lc.bound, f"{k.utilization:.1%}" if l.op.is_cim else "-", str(k.tiles) if l.op.is_cim else "-",
                     "-" if lc.input_ones_fraction is None else f"{lc.input_ones_fraction:.1%}"])
    doc.sections.append(Section(
        "Energy and latency per layer",
        [f"Per image: {c.energy_uj_per_image:.4g} µJ in total; by event kind: " + ", ".join(
            f"{k} {_f(v * per / 1e3)} nJ" for k, v in c.energy_by_kind.items() if v) + "."],
        [Figure("breakdown", figures.breakdown_png(names, energy, lat, f"{program.name}: per-layer energy and latency"),
                "Per-layer energy per image by event kind (nJ, stacked) and CIM chip latency per image by component "
                "(µs, stacked).")],
        [Table(["layer", "op", "energy nJ/image", "largest event", "latency µs/image", "bound", "macro util.",
                "tiles", "1-bit density on word lines"], rows)]))

    dual = dual_section(program, c, clock)
    if dual is not None:
        doc.sections.append(dual)

    # macro x tile utilization
    tm = tile_utilization(program)
    doc.sections.append(Section(
        "Macro utilization (macro × tile load)",
        [f"Each column is one tile load: tile t of a layer runs on macro t mod {hw.n_macros}; a layer with more "
         f"tiles than macros reloads weights. {tm.util.shape[1]} load slots, {int((~np.isnan(tm.util)).sum())} tile "
         f"loads, mean utilization of a loaded macro {tm.mean_loaded:.1%} (used weight bits / {hw.rows}×{hw.cols} "
         "cells); grey: the macro is idle in that slot."],
        [Figure("macro-tiles", figures.tile_heatmap_png(tm.util, tm.spans, f"{program.name}: macro utilization per tile"),
                "Macro × tile-load utilization heatmap.")]))

    # pruning and precision
    pn, pp, pd = precision_map(program)
    prec_rows = []
    for name, p, d in zip(pn, pp, pd):
        counts = "/".join(str(int((p == b).sum())) for b in (*sorted(hw.precisions, reverse=True), 0))
        prec_rows.append([name, str(len(p)), counts, f"{p[p > 0].mean():.2f}" if (p > 0).any() else "0", f"{d:.1%}"])
    doc.sections.append(Section(
        "Pruning and precision map",
        ["One row per conv/fc layer, one cell per filter coloured by its weight precision (grey: pruned); "
         "right: the fraction of (row block × column group) units stored (the rest is skipped)."],
        [Figure("precision-map", figures.precision_map_png(pn, pp, pd, hw.precisions, f"{program.name}: pruning and precision"),
                "Pruning and precision map.")],
        [Table(["layer", "filters", "filters at " + "/".join(f"{b}" for b in sorted(hw.precisions, reverse=True))
                + "/pruned bits", "avg bits", "units stored"], prec_rows)]))

    # roofline
    rf = roofline(program, c, workload.counters, preset)
    doc.sections.append(Section(
        "Roofline-style bound per layer",
        [f"1b×1b-normalized operations (2 per AND+count of a stored weight bit and an input bit). Compute roof: "
         f"2 × {hw.n_macros} macros × {hw.rows_active} rows × {hw.cols} columns × {clock:g} MHz = "
         f"{rf['peak_gops']:,.0f} GOPS; slope: DRAM at {rf['bandwidth']:g} GB/s. A layer below both roofs loses "
         "time to partly filled row blocks, idle macros or weight reloads."],
        [Figure("roofline", figures.roofline_png(rf["layers"], rf["intensity"], rf["attained"], rf["peak_gops"],
                                                 rf["bandwidth"], f"{program.name}: roofline-style bound",
                                                 "1b ops per DRAM byte", "attained 1b GOPS"),
                "Roofline-style bound per layer.")],
        [Table(["layer", "1b ops / DRAM byte", "attained 1b GOPS", "share of the roof", "bound"],
               [[n, _f(x), _f(y), f"{y / min(rf['peak_gops'], rf['bandwidth'] * x):.1%}" if x else "-", b]
                for n, x, y, b in zip(rf["layers"], rf["intensity"], rf["attained"], rf["bound"])])]))

    # seeds
    if seeds is not None:
        from ..cost.seeds import seeds_table
        h, r = seeds_table(seeds)
        doc.sections.append(Section(
            "The seeds' headline comparisons",
            [f"Computed for {seeds.program} under cost preset {seeds.cost_preset}; {seeds.workload}. A figure counts "
             "as reproduced only if no cost-preset constant was taken from or fitted to that paper; the goal is a "
             "ratio within ±10 %."] + seeds.notes[1:],
            tables=[Table(h, r)]))
    else:
        why = f"Not computed for this program: {seeds_error}." if seeds_error else \
            "Not computed for this page; run `hybridcim report --seeds`."
        doc.sections.append(Section("The seeds' headline comparisons", [why]))

    # preset constants
    doc.sections.append(Section(
        "Cost preset constants",
        [f"Every constant of {preset.name} with its basis and source (docs/cost-model.md)."],
        tables=[Table(["constant", "value", "unit", "basis", "seed paper", "source"],
                      [[r["name"], "null" if r["value"] is None else f"{r['value']:g}", r["unit"], r["basis"],
                        r["seed"] or "-", r["source"]] for r in preset.sources()])]))
    return doc
