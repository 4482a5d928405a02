"""What the report draws of a program's macro map, computed from the program alone (numpy only).

``tile_utilization``: every tile of every CIM layer placed on its macro (architecture.md §5:
tile t of a layer runs on macro t mod n_macros, a macro runs its tiles one after the other,
layers run one after the other), with its utilization = used weight bits of its present units
/ the macro's rows × cols cells.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..emulator.counters import tile_of_units
from ..program.model import Program


@dataclass
class TileMap:
    """util: float (n_macros, n_slots), NaN where a macro holds no tile in that slot;
    spans: (layer, first slot, end slot) per CIM layer, in program order."""

    util: np.ndarray
    spans: list[tuple[str, int, int]]

    @property
    def mean_loaded(self) -> float:
        """Mean utilization over the tile loads that happen (idle slots excluded)."""
        v = self.util[~np.isnan(self.util)]
        return float(v.mean()) if v.size else 0.0


def tile_utilization(program: Program) -> TileMap:
    """The macro × tile-load utilization map of ``program`` (see the module docstring)."""
    pr = program.preset
    cells = pr.rows * pr.cols
    a = pr.rows_active
    columns: list[np.ndarray] = []
    spans = []
    slot = 0
    for l in program.layers:
        if not l.op.is_cim:
            continue
        tile, macro_of_tile, n_tiles = tile_of_units(l, program)
        rows_real = np.minimum(a, l.k_rows - np.arange(l.n_rowblocks) * a)
        used_cols = (l.col_filter >= 0).sum(axis=1)
        bits = l.present * used_cols[:, None] * rows_real[None, :]
        per_tile = np.bincount(tile.ravel(), weights=bits.ravel(), minlength=n_tiles)[:n_tiles]
        n_slots = -(-n_tiles // pr.n_macros)
        block = np.full((pr.n_macros, n_slots), np.nan)
        for t in range(n_tiles):
            block[macro_of_tile[t], t // pr.n_macros] = per_tile[t] / cells
        columns.append(block)
        spans.append((l.name, slot, slot + n_slots))
        slot += n_slots
    util = np.concatenate(columns, axis=1) if columns else np.full((pr.n_macros, 0), np.nan)
    return TileMap(util, spans)


def precision_map(program: Program) -> tuple[list[str], list[np.ndarray], np.ndarray]:
    """(CIM layer names, per-filter precision arrays (0 = pruned), fraction of units stored per layer)."""
    names, precs, density = [], [], []
    for l in program.layers:
        if l.op.is_cim:
            names.append(l.name)
            precs.append(l.precision.astype(np.int64))
            density.append(float(l.present.mean()) if l.present.size else 0.0)
    return names, precs, np.array(density)
