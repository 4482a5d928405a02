"""The cost of a dual-path layer's ternary path on the second (eDRAM-like) macro type.

architecture.md §10 defines the path and its counters (§10.4); docs/cost-model.md, "Dual-path
layers", the formulas priced here. Units: pJ, cycles, µW, bits. Every function is 0 / empty for
a layer without a dual section or with ratio 0 (F_t = 0), so such a layer costs exactly what the
plain digital layer with the same counters costs.

- energy: ``macro2`` = tern_bit_ops × macro2_bit_op_pj (the ternary macro's 1-bit AND + count,
  word lines and column-pair combine included); ``tern_accumulate`` = tern_column_reads / 2 ×
  accumulate_pj (one accumulator update per filter, row block and pixel); ``tern_weight_load`` =
  tern_weight_load_bits × weight_write_pj_per_bit; ``edram_refresh`` = refresh_events × tern_cols ×
  macro2_refresh_pj_per_bit;
- latency: the two paths run in parallel (§10.3), each its compute cycles plus the cycles that
  write its weights into its macros; the layer takes the longer path;
- memory: 2 cells per ternary weight, whole row blocks (2 · F_t · R_t · A_t), at the eDRAM-like
  macro's density (macro2_area_mm2_per_kb);
- leakage of the ternary macros: leakage_uw_per_macro per SRAM macro scaled by the cell count.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..emulator.counters import LayerCounters, tile_of_units
from ..program.model import Layer, Program
from .errors import CostError, priced
from .preset import CostPreset

MACRO2_PARAMS = ("macro2_bit_op_pj", "macro2_area_mm2_per_kb", "macro2_refresh_pj_per_bit", "macro2_retention_us")
"""Cost-preset constants a program on a hardware preset with the second macro type (architecture.md
§10.1) needs: without them the cost model refuses it (CostError naming the missing ones)."""

TERN_KINDS = ("macro2", "tern_accumulate", "tern_weight_load", "edram_refresh")
"""Energy kinds (cost.model.EVENT_KINDS) of the ternary path."""


def n_tern(layer: Layer) -> int:
    """F_t: output channels of the layer's ternary path (0 without a dual section)."""
    dual = getattr(layer, "dual", None)
    return dual.n_tern(layer.n_filters) if dual is not None else 0


def check_preset(program: Program, preset: CostPreset) -> None:
    """Refuse (CostError) a program whose hardware preset has the second macro type under a cost
    preset without its constants (MACRO2_PARAMS), or whose refresh period exceeds the cell's
    retention time (tern_refresh_cycles / clock > macro2_retention_us)."""
    hw = program.preset
    if not hw.has_tern:
        return
    missing = [k for k in MACRO2_PARAMS if preset[k] is None]
    if missing:
        raise CostError(f"program {program.name!r} is for hardware preset {hw.name!r}, which has the second "
                        f"(eDRAM-like ternary) macro type, but cost preset {preset.name!r} has no value for "
                        f"{', '.join(missing)} (null): use a cost preset that prices the second macro type")
    period_us = hw.tern_refresh_cycles / preset["clock_mhz"]
    if period_us > preset["macro2_retention_us"]:
        raise CostError(f"hardware preset {hw.name!r}: tern_refresh_cycles={hw.tern_refresh_cycles} at "
                        f"{preset['clock_mhz']:g} MHz is a refresh period of {period_us:g} us, longer than the "
                        f"cell's retention macro2_retention_us={preset['macro2_retention_us']:g} us of cost preset "
                        f"{preset.name!r}: the weights would decay between refreshes")


def _price(preset: CostPreset, param: str, count: float, layer: str, counter: str) -> float:
    return priced(preset, param, count, layer, counter, "use a preset that prices the second macro type")


def tern_energy_pj(c: LayerCounters, program: Program, preset: CostPreset) -> dict:
    """pJ of the ternary path by event kind (TERN_KINDS) from the §10.4 counters of ``c``."""
    hw = program.preset
    reads = getattr(c, "tern_column_reads", 0)
    if reads % 2:
        raise CostError(f"layer {c.layer!r}: tern_column_reads={reads} is odd, but every ternary filter reads a "
                        "positive and a negative column (architecture.md §10.4)")
    refresh_cells = getattr(c, "refresh_events", 0) * hw.tern_cols
    return {
        "macro2": _price(preset, "macro2_bit_op_pj", getattr(c, "tern_bit_ops", 0), c.layer, "tern_bit_ops"),
        "tern_accumulate": reads // 2 * preset["accumulate_pj"],
        "tern_weight_load": getattr(c, "tern_weight_load_bits", 0) * preset["weight_write_pj_per_bit"],
        "edram_refresh": _price(preset, "macro2_refresh_pj_per_bit", refresh_cells, c.layer, "refresh_events"),
    }


def sram_compute_cycles(layer: Layer, program: Program, images: int) -> int:
    """SRAM-path cycles of §7 over ``images`` images: pixels × images × bits_in × the most activated
    row blocks any SRAM macro runs (the dual layer's ``cycles`` counter is the max of this and
    tern_cycles, so the SRAM path's own length is recomputed from the program)."""
    if not layer.op.is_cim:
        return 0
    pr = program.preset
    tile, macro_of_tile, n_tiles = tile_of_units(layer, program)
    per_macro = np.zeros(pr.n_macros, dtype=np.int64)
    for t in range(n_tiles):
        per_macro[macro_of_tile[t]] += np.unique(np.nonzero(layer.present & (tile == t))[1]).size
    out = program.tensors[layer.out_tensor]
    return int(per_macro.max(initial=0)) * out.height * out.width * images * program.tensors[layer.in_tensor].bits


@dataclass(frozen=True)
class PathCycles:
    """Cycles of the two paths of one layer: compute (counters) and weight loads (bits / write port)."""

    sram_compute: float
    sram_load: float
    tern_compute: float = 0.0
    tern_load: float = 0.0

    @property
    def sram(self) -> float:
        return self.sram_compute + self.sram_load

    @property
    def tern(self) -> float:
        return self.tern_compute + self.tern_load

    @property
    def critical(self) -> str:
        """The path that sets the layer's time: "sram", or "ternary" when it is strictly longer."""
        return "ternary" if self.tern > self.sram else "sram"


def path_cycles(layer: Layer, c: LayerCounters, program: Program, preset: CostPreset) -> PathCycles:
    """Compute and weight-load cycles of the SRAM path and (dual-path layer) the ternary path.

    Loads: weight_load_bits / (macro_write_bits_per_cycle × the macros the layer's tiles occupy), the
    ternary macros' the same with tern_weight_load_bits, tern_tiles and tern_n_macros (each macro type
    writes its own macros). A layer without ternary counters is the SRAM path alone, with §7's cycles."""
    hw = program.preset
    port = preset["macro_write_bits_per_cycle"]
    sram_load = c.weight_load_bits / (port * max(1, min(hw.n_macros, c.tiles)))
    tern_bits = getattr(c, "tern_weight_load_bits", 0)
    tern_cyc = getattr(c, "tern_cycles", 0)
    if not (n_tern(layer) or tern_bits or tern_cyc):
        return PathCycles(float(c.cycles), float(sram_load))
    sram = sram_compute_cycles(layer, program, c.images)
    if max(sram, tern_cyc) != c.cycles:
        raise CostError(f"layer {c.layer!r}: cycles={c.cycles} is not max(SRAM path {sram}, tern_cycles {tern_cyc}) "
                        "(architecture.md §10.3): the counters do not match the program")
    tern_load = tern_bits / (port * max(1, min(hw.tern_n_macros, getattr(c, "tern_tiles", 0))))
    return PathCycles(float(sram), float(sram_load), float(tern_cyc), float(tern_load))


def tern_psum_bytes(layer: Layer, program: Program) -> tuple[int, int]:
    """Per image: (partial-sum bytes of the ternary path between its rounds (written and read back, §10.4),
    one round's partial sums when it has more than one round, else 0)."""
    f_t = n_tern(layer)
    if not f_t:
        return 0, 0
    from ..program.dualpath import tern_tiles
    pr = program.preset
    r_t = -(-layer.k_rows // pr.tern_rows_active)
    _, _, tiles = tern_tiles(f_t, r_t, pr)
    rounds = max(1, -(-tiles // pr.tern_n_macros))
    out = program.tensors[layer.out_tensor]
    psum = out.height * out.width * f_t * (pr.acc_bits // 8)
    return 2 * (rounds - 1) * psum, (psum if rounds > 1 else 0)


def tern_wordline_slots(layer: Layer, program: Program) -> int:
    """Ternary word lines driven per output pixel: every filter tile reads every row of K once (⌈F_t / S⌉ · K);
    tern_input_ones / (this × pixels × images) is the binary input's measured 1 density."""
    f_t = n_tern(layer)
    return -(-f_t // program.preset.tern_filters_per_macro) * layer.k_rows if f_t else 0


def binary_plane_bits(layer: Layer, program: Program) -> int:
    """Per image: the binary input plane z the comparator writes into the activation buffer (H·W·C bits, F_t > 0)."""
    if not n_tern(layer):
        return 0
    t = program.tensors[layer.in_tensor]
    return t.height * t.width * t.channels


def tern_cells(layer: Layer, program: Program) -> int:
    """Cells of the ternary macros the layer's weights occupy: 2 · F_t · R_t · tern_rows_active (2 per weight,
    whole row blocks; = the tern_cells_allocated counter)."""
    f_t = n_tern(layer)
    if not f_t:
        return 0
    a = program.preset.tern_rows_active
    return 2 * f_t * -(-layer.k_rows // a) * a


def tern_leakage_uw(program: Program, preset: CostPreset) -> float:
    """Static power of the ternary macros (0 without them): tern_n_macros × leakage_uw_per_macro ×
    (tern_rows · tern_cols) / (rows · cols), the SRAM macro's figure per cell (assumption)."""
    hw = program.preset
    if not hw.has_tern:
        return 0.0
    return hw.tern_n_macros * preset["leakage_uw_per_macro"] * hw.tern_rows * hw.tern_cols / (hw.rows * hw.cols)


def tern_macro_area_mm2(program: Program, preset: CostPreset) -> float:
    """Area of the ternary macros: tern_n_macros × tern_rows × tern_cols / 1024 × macro2_area_mm2_per_kb."""
    hw = program.preset
    return hw.tern_n_macros * hw.tern_rows * hw.tern_cols / 1024 * preset["macro2_area_mm2_per_kb"]
