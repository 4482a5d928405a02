"""Activity counters per layer (architecture.md §7).

``static_counters`` computes them from the program alone (digital mode is data
independent); the reference emulator counts them literally while it runs and the tests
check both agree.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..program.model import Layer, Program


PER_IMAGE = ("images", "macs", "unit_activations", "units_skipped", "rowblock_activations", "cycles", "bit_ops",
             "digital_column_reads", "analog_column_reads", "adc_conversions", "skipped_bitplanes")
"""Counters that grow with the number of images; the others describe the layer's mapping."""


@dataclass
class LayerCounters:
    """Integer activity counts of one layer over ``images`` images (architecture.md §7)."""

    layer: str
    images: int = 0
    pixels: int = 0
    macs: int = 0
    units_total: int = 0
    units_present: int = 0
    unit_activations: int = 0
    units_skipped: int = 0
    rowblock_activations: int = 0
    cycles: int = 0
    bit_ops: int = 0
    weight_bits: int = 0
    cells_allocated: int = 0
    tiles: int = 0
    digital_column_reads: int = 0
    analog_column_reads: int = 0
    adc_conversions: int = 0
    skipped_bitplanes: int = 0

    @property
    def utilization(self) -> float:
        """Macro utilization: used weight bits / allocated bit cells (0 for pools)."""
        return self.weight_bits / self.cells_allocated if self.cells_allocated else 0.0

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["utilization"] = self.utilization
        return d

    def times(self, images: int) -> "LayerCounters":
        """These per-image counters scaled to ``images`` images (static fields unchanged)."""
        out = dataclasses.replace(self)
        for name in PER_IMAGE:
            setattr(out, name, getattr(self, name) * images)
        return out

    def __add__(self, other: "LayerCounters") -> "LayerCounters":
        if other.layer != self.layer:
            raise ValueError(f"cannot add counters of {self.layer!r} and {other.layer!r}")
        out = LayerCounters(self.layer)
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            setattr(out, f.name, a + b if f.name in PER_IMAGE else a)
        return out


def tile_of_units(layer: Layer, program: Program) -> tuple[np.ndarray, np.ndarray, int]:
    """Tile index of each (group, row block) and the macro of each tile (architecture.md §5).

    Returns (tile int64 (NG, R), macro_of_tile int64 (n_tiles,), n_tiles).
    """
    pr = program.preset
    ng, r = layer.present.shape
    n_row_tiles = -(-r // pr.blocks_per_macro)
    gt = np.arange(ng)[:, None] // pr.groups_per_macro
    rt = np.arange(r)[None, :] // pr.blocks_per_macro
    tile = gt * n_row_tiles + rt
    n_tiles = int(-(-ng // pr.groups_per_macro) * n_row_tiles) if ng else 0
    return tile, np.arange(n_tiles) % pr.n_macros, n_tiles


def static_counters(layer: Layer, program: Program, images: int) -> LayerCounters:
    """Counters of ``layer`` for ``images`` images computed from the program alone."""
    out_t = program.tensors[layer.out_tensor]
    pixels = out_t.height * out_t.width
    c = LayerCounters(layer.name, images=images, pixels=pixels)
    if not layer.op.is_cim:
        return c
    pr = program.preset
    a = pr.rows_active
    bits_in = program.tensors[layer.in_tensor].bits
    n = pixels * images * bits_in
    present = layer.present
    ng, r = present.shape
    rows_real = np.minimum(a, layer.k_rows - np.arange(r) * a)  # (R,)
    used_cols = (layer.col_filter >= 0).sum(axis=1)  # (NG,)
    c.macs = layer.n_filters * layer.k_rows * pixels * images
    c.units_total = ng * r
    c.units_present = int(present.sum())
    c.unit_activations = c.units_present * n
    c.units_skipped = (c.units_total - c.units_present) * n
    c.weight_bits = int((present * used_cols[:, None] * rows_real[None, :]).sum())
    c.cells_allocated = c.units_present * pr.group_width * a
    c.bit_ops = c.weight_bits * n
    c.digital_column_reads = int((present * used_cols[:, None]).sum()) * n
    tile, macro_of_tile, n_tiles = tile_of_units(layer, program)
    c.tiles = n_tiles
    per_macro = np.zeros(pr.n_macros, dtype=np.int64)
    activations = 0
    for t in range(n_tiles):
        blocks = np.unique(np.nonzero(present & (tile == t))[1]).size
        activations += blocks
        per_macro[macro_of_tile[t]] += blocks
    c.rowblock_activations = activations * n
    c.cycles = int(per_macro.max(initial=0)) * n
    return c
