"""The report's section on dual-path layers (architecture.md §10; docs/cost-model.md, "Dual-path layers"):
per dual layer its ratio, both paths' time (in parallel: the layer takes the longer), both macro types'
utilization and the ternary path's energy; numpy only."""
from __future__ import annotations

from ..cost.dualpath import TERN_KINDS, n_tern
from ..program.model import Program
from .document import Section, Table


def _pct(v) -> str:
    return "-" if v is None else f"{v:.1%}"


def utilization_line(c) -> str:
    """Headline text: used weight bits / allocated cells of each macro type over the program."""
    u = c.macro_utilization
    out = (f"SRAM {u['sram']:.1%} of the allocated cells hold weight bits" if u.get("sram") is not None
           else "SRAM: no weights stored")
    if "ternary" in u:
        out += f"; ternary {u['ternary']:.1%} of the allocated ternary cells hold ternary weights (2 cells per weight)"
    return out


def dual_section(program: Program, c, clock_mhz: float) -> Section | None:
    """The section, or None when the program has no dual-path layer."""
    layers = [(l, lc) for l, lc in zip(program.layers, c.layers) if getattr(l, "dual", None) is not None]
    if not layers:
        return None
    hw = program.preset
    per = 1.0 / max(c.images, 1)
    rows = []
    for l, lc in layers:
        tern_nj = sum(lc.energy_pj[k] for k in TERN_KINDS) * per / 1e3
        rows.append([lc.layer, f"{l.dual.ratio_eighths}/8", f"{n_tern(l)}/{l.n_filters}", f"x>={l.dual.bin_threshold}",
                     f"{lc.sram_path_cycles / clock_mhz * per:.4g}", f"{lc.tern_path_cycles / clock_mhz * per:.4g}",
                     lc.critical_path, _pct(lc.sram_utilization), _pct(lc.tern_utilization), f"{tern_nj:.4g}",
                     _pct(lc.tern_input_ones_fraction)])
    mem = c.memory_bits
    area = c.memory_area_mm2
    text = [f"Dual-path layers: {len(layers)}. In each, the first F − F_t filters of each run on the SRAM macros (INT4 path), "
            f"the last F_t = ⌊F · q / 8⌋ on the second macro type ({hw.tern_n_macros} eDRAM-like ternary macros of "
            f"{hw.tern_rows}×{hw.tern_cols} cells, 2 cells per ternary weight, binary input x ≥ θ). The two paths run "
            "in parallel: a layer takes the longer path (compute + weight writes), DRAM transfers after it.",
            f"Weights stored: SRAM {mem.get('weights', 0):,} bits ({area.get('weights', 0):.4g} mm² of cells), "
            f"ternary {mem.get('tern_weights', 0):,} bits ({area.get('tern_weights', 0):.4g} mm² of cells). "
            f"Macro utilization: {utilization_line(c)}.",
            "Ternary path energy = its macro's 1-bit operations (macro2), accumulator updates (tern_accumulate), "
            "weight writes (tern_weight_load) and eDRAM refresh (edram_refresh)."]
    return Section("Dual-path layers", text, tables=[Table(
        ["layer", "ratio q/8", "ternary filters", "threshold θ", "SRAM path µs/image", "ternary path µs/image",
         "longer path", "SRAM util.", "ternary util.", "ternary path nJ/image", "1-bit density of x ≥ θ"], rows)])
