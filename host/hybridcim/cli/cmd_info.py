"""``hybridcim info [PROGRAM]``: the hardware presets, or a program's summary.

A program's summary is one row per layer (its mode among them: digital, or hybrid of
architecture.md §9) and, for each hybrid layer, its level table: the saliency range of every
level, its boundary (D, E), the digital/analog/skipped pairs of a filter of each stored
precision, the saliency planes and the analog noise. For a program with dual-path layers
(architecture.md §10), the table's mode is ``dual`` there and a second table gives each dual
layer's ratio (q/8, ternary filters F_t of F, threshold θ), both paths' cycles (they run in
parallel; the layer takes the longer) and the utilization of both macro types (used weight bits
/ allocated cells of the SRAM macros; ternary weight cells, 2 per weight, / allocated ternary
cells). ``--json``: the manifest with ``mode`` on every layer, a ``hybrid`` entry (parameters
and level table) on each hybrid layer and, on each dual layer, its ``dual`` entry with
``sram_cycles``, ``tern_cycles``, ``sram_utilization`` and ``tern_utilization`` (per image).
"""
from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("info", help="list hardware presets, or summarize a program image")
    p.add_argument("program", nargs="?", help="program image (.cim)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--plot", metavar="PNG", help="draw the program's per-layer precision, utilization, "
                                                 "pruned units, tiles and cycles (needs matplotlib)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..emulator.counters import DATA_DEPENDENT, dual_static_counters
    from ..program import manifest, read_program
    from ..program.codec import encode
    from ..spec.hardware import PRESETS
    if args.program is None and args.plot:
        raise ValueError("--plot draws a program's layers: give the program image (hybridcim info PROGRAM --plot PNG)")
    if args.program is None:
        if args.json:
            print(json.dumps({n: dict(p.to_dict(), fingerprint=f"{p.fingerprint:08x}") for n, p in PRESETS.items()}))
        else:
            for p in PRESETS.values():
                print(f"{p.name:<14s} {p.fingerprint:08x}  {p.canonical()}")
        return 0
    if args.plot:
        from ._plot import check_plot_output
        check_plot_output(args.plot, "--plot")
    prog = read_program(args.program)
    if args.plot:
        from ..compiler.report import layer_report
        from ._plot import write_layer_plot
        write_layer_plot(layer_report(prog), args.plot, model_name(prog, args.program))
    counters = [dual_static_counters(l, prog, 1) for l in prog.layers]
    if args.json:
        m = manifest(prog, encode(prog))
        m["counters_per_image"] = [{**c.as_dict(), **dict.fromkeys(DATA_DEPENDENT)} for c in counters]  # null: needs data
        from ._hybrid import DATA_DEPENDENT_HYBRID, hybrid_layers, layer_hybrid_dict, mode_name, program_mode
        for i in hybrid_layers(prog):  # data-dependent in a hybrid layer: null
            m["counters_per_image"][i].update(dict.fromkeys(DATA_DEPENDENT_HYBRID))
            m["layers"][i]["hybrid"] = layer_hybrid_dict(prog, i)
        for entry, l in zip(m["layers"], prog.layers):
            entry["mode"] = mode_name(l.mode)
        for i in dual_layers(prog):
            m["counters_per_image"][i]["tern_input_ones"] = None  # data dependent
            m["layers"][i]["dual"].update(dual_row(prog, i, counters[i]))
        m["mode"] = program_mode(prog)
        print(json.dumps(m))
        return 0
    print(layer_table(prog, counters))
    print(f"  total cycles/image: {sum(c.cycles for c in counters)}")
    if dual_layers(prog):
        print(dual_table(prog, counters))
    from ._hybrid import hybrid_layers, level_tables
    if hybrid_layers(prog):
        print(level_tables(prog))
    return 0


def card_name(folder, program_file: str | None = None) -> str | None:
    """The model name in ``folder/card.json`` (a shipped model's card), or None when there is no
    readable card (or, with ``program_file``, the card describes another program file)."""
    import json
    from pathlib import Path

    from ..fileio import read_regular_file
    try:
        c = json.loads(read_regular_file(Path(folder) / "card.json", 1 << 20, "model card"))
    except (OSError, ValueError, RecursionError):  # no card, or not one
        return None
    if not isinstance(c, dict) or not isinstance(c.get("name"), str):
        return None
    if program_file is not None and c.get("program") != program_file:
        return None
    return c["name"]


def model_name(prog, path) -> str:
    """The name a user knows the program by: a shipped model's (``card.json`` beside the image,
    e.g. resnet20-w4a4-p50), else the name embedded in the image (its training config's)."""
    from pathlib import Path
    return card_name(Path(path).parent, Path(path).name) or prog.name


def layer_table(prog, counters) -> str:
    """The program's title line and one row per layer: output tensor (HxWxC, u/i bits), kernel,
    mode (digital or hybrid), stored/all filters, average stored weight bits, present/all units,
    residual input, CIM cycles per image, macro utilization and tiles (architecture.md §7)."""
    from ._hybrid import hybrid_layers, mode_name
    from ..table import format_table
    rows = []
    for i, (l, c) in enumerate(zip(prog.layers, counters)):
        o = prog.tensors[l.out_tensor]
        mode = "dual" if getattr(l, "dual", None) is not None else mode_name(l.mode)
        row = [i, l.name, l.op.name.lower(), mode if l.op.is_cim else "",
               f"{o.height}x{o.width}x{o.channels}", f"{'i' if o.signed else 'u'}{o.bits}"]
        if l.op.is_cim:
            p = l.precision
            kept = int((p > 0).sum())
            row += [f"k{l.kh}x{l.kw}/s{l.stride}", f"{kept}/{l.n_filters}", f"{p[p > 0].mean() if kept else 0:.2f}",
                    f"{int(l.present.sum())}/{l.present.size}"]
        else:
            row += [f"k{l.kh}x{l.kw}/s{l.stride}" if l.kh else "", "", "", ""]
        row += ["" if l.res_tensor is None else prog.tensors[l.res_tensor].name, c.cycles,
                f"{c.utilization:.1%}" if c.units_total else "", c.tiles if c.units_total else ""]
        rows.append(row)
    title = (f"program {prog.name!r} for preset {prog.preset.name!r} (fingerprint {prog.preset.fingerprint:08x}), "
             f"{len(prog.layers)} layers")
    n_hyb, n_dual = len(hybrid_layers(prog)), len(dual_layers(prog))
    title += f", {n_hyb} in hybrid mode" if n_hyb else ""
    title += f", {n_dual} dual-path" if n_dual else ""
    title += "" if n_hyb or n_dual else ", all digital"
    table = format_table(["#", "layer", "op", "mode", "output", "fmt", "kernel", "filters", "avg bits", "units", "+res",
                          "cycles/img", "util", "tiles"], rows, ">" + "<" * 6 + ">" * 3 + "<" + ">" * 3, indent="  ")
    return title + "\n" + table


def dual_layers(prog) -> list[int]:
    """Indices of the program's dual-path layers (architecture.md §10)."""
    return [i for i, l in enumerate(prog.layers) if getattr(l, "dual", None) is not None]


def dual_row(prog, i: int, c) -> dict:
    """Per image, of dual layer ``i`` with counters ``c`` (dual_static_counters, one image): ratio q, F_t, F,
    θ, the SRAM path's and the ternary path's compute cycles, and both macro types' utilization."""
    from ..cost.dualpath import sram_compute_cycles
    l = prog.layers[i]
    return {"ratio": l.dual.ratio_eighths / 8, "n_filters": l.n_filters,
            "sram_cycles": sram_compute_cycles(l, prog, 1), "tern_cycles": c.tern_cycles,
            "sram_utilization": c.weight_bits / c.cells_allocated if c.cells_allocated else None,
            "tern_utilization": c.tern_weight_bits / c.tern_cells_allocated if c.tern_cells_allocated else None}


def dual_table(prog, counters) -> str:
    """One row per dual-path layer: ratio q/8, ternary filters F_t/F, threshold θ, cycles per image of
    each path (in parallel: the layer takes the longer), utilization of the SRAM and the ternary
    macros, ternary tiles and refresh events per image; then both macro types' utilization over the program."""
    from ..table import format_table
    rows = []
    for i in dual_layers(prog):
        l, c = prog.layers[i], counters[i]
        d = dual_row(prog, i, c)
        longer = "ternary" if d["tern_cycles"] > d["sram_cycles"] else "sram"
        pct = lambda v: "-" if v is None else f"{v:.1%}"
        rows.append([i, l.name, f"{l.dual.ratio_eighths}/8", f"{l.dual.n_tern(l.n_filters)}/{l.n_filters}",
                     f"x>={l.dual.bin_threshold}", d["sram_cycles"], d["tern_cycles"], longer,
                     pct(d["sram_utilization"]), pct(d["tern_utilization"]), c.tern_tiles, c.refresh_events])
    pr = prog.preset
    table = format_table(["#", "layer", "ratio", "ternary", "threshold", "SRAM cycles", "tern cycles", "longer",
                          "SRAM util", "tern util", "tern tiles", "refresh/img"], rows,
                         ">" + "<" * 4 + ">" * 2 + "<" + ">" * 4, indent="  ")
    cells = sum(c.cells_allocated for c in counters)
    tcells = sum(c.tern_cells_allocated for c in counters)
    util = (f"  macro utilization: SRAM {sum(c.weight_bits for c in counters) / cells:.1%}" if cells
            else "  macro utilization: SRAM - (no SRAM weights)")
    util += (f", ternary {sum(c.tern_weight_bits for c in counters) / tcells:.1%}" if tcells
             else ", ternary - (no ternary filters)")
    title = (f"dual-path layers (architecture.md §10): {len(rows)}; second macro type: {pr.tern_n_macros} ternary "
             f"macros of {pr.tern_rows}x{pr.tern_cols} cells, {pr.tern_rows_active} rows at once, refresh every "
             f"{pr.tern_refresh_cycles} cycles; the two paths run in parallel")
    return title + "\n" + table + "\n" + util
