"""In-memory program: tensors and layers as decoded from / encoded to the image.

Array layouts (per CIM layer of F filters, K rows, R row blocks, NG column groups, G = group_width):
- precision: uint8 (F,), 0 = pruned filter;  bias: int32 (F,);  shift, res_shift: int8 (F,)
- col_filter: int32 (NG, G), -1 for an unused column; col_plane: uint8 (NG, G)
- present: bool (NG, R) skip index;  words: uint64 (n_present, G), units in (g, b) order
- hybrid: HybridParams of a mode-1 (hybrid) layer, else None
- dual: DualPathParams of a dual-path layer (flags bit 0, architecture.md §10), else None;
  tern_words: uint64 (F_t, R_t, 2) its ternary weights (positive, negative cells), else None
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..spec.hardware import HardwarePreset
from ..spec.numformat import IntFormat
from .format import Op
from .dualpath import DualPathParams
from .hybrid import HybridParams


@dataclass(frozen=True)
class TensorSpec:
    """An activation tensor: C×H×W integers of ``bits`` bits; real value = int × 2^-exponent."""

    name: str
    channels: int
    height: int
    width: int
    bits: int
    signed: bool
    exponent: int = 0

    @property
    def shape_hwc(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)

    @property
    def fmt(self) -> IntFormat:
        return IntFormat(self.bits, self.signed)


@dataclass
class Layer:
    """One layer; CIM fields are None for pools."""

    name: str
    op: Op
    in_tensor: int
    out_tensor: int
    res_tensor: int | None = None
    kh: int = 1
    kw: int = 1
    stride: int = 1
    pad: int = 0
    mode: int = 0
    flags: int = 0
    clamp_lo: int = 0
    clamp_hi: int = 0
    pool_shift: int = 0
    n_filters: int = 0
    k_rows: int = 0
    precision: np.ndarray | None = None
    bias: np.ndarray | None = None
    shift: np.ndarray | None = None
    res_shift: np.ndarray | None = None
    col_filter: np.ndarray | None = None
    col_plane: np.ndarray | None = None
    present: np.ndarray | None = None
    words: np.ndarray | None = None
    hybrid: HybridParams | None = None   # mode 1 only (architecture.md §9)
    dual: DualPathParams | None = None   # flags bit 0 only (architecture.md §10)
    tern_words: np.ndarray | None = None

    @property
    def n_groups(self) -> int:
        return 0 if self.col_filter is None else int(self.col_filter.shape[0])

    @property
    def n_rowblocks(self) -> int:
        return 0 if self.present is None else int(self.present.shape[1])


@dataclass
class Program:
    """A compiled program: what every executor runs (architecture.md, program-format.md)."""

    preset: HardwarePreset
    tensors: list[TensorSpec]
    layers: list[Layer]
    input_tensor: int
    output_tensor: int
    name: str = "program"
    metadata: dict = field(default_factory=dict)

    @property
    def input(self) -> TensorSpec:
        return self.tensors[self.input_tensor]

    @property
    def output(self) -> TensorSpec:
        return self.tensors[self.output_tensor]

    def layer_by_name(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r}; layers: {[l.name for l in self.layers]}")

    def summary(self) -> str:
        """Human-readable one-line-per-layer table."""
        lines = [f"program {self.name!r} for preset {self.preset.name!r} "
                 f"(fingerprint {self.preset.fingerprint:08x}), {len(self.layers)} layers"]
        for i, l in enumerate(self.layers):
            o = self.tensors[l.out_tensor]
            line = f"  {i:3d} {l.name:<20s} {l.op.name.lower():<8s} -> {o.height}x{o.width}x{o.channels} u{o.bits}" \
                if not o.signed else f"  {i:3d} {l.name:<20s} {l.op.name.lower():<8s} -> {o.height}x{o.width}x{o.channels} i{o.bits}"
            if l.op.is_cim:
                p = l.precision
                kept = int((p > 0).sum())
                line += (f"  k{l.kh}x{l.kw}/s{l.stride}  filters {kept}/{l.n_filters}"
                         f"  avg {p[p > 0].mean() if kept else 0:.2f} b  units {int(l.present.sum())}/{l.present.size}")
                if l.res_tensor is not None:
                    line += f"  +res({self.tensors[l.res_tensor].name})"
                if l.hybrid is not None:
                    line += f"  hybrid({l.hybrid.n_levels} levels)"
                if l.dual is not None:
                    line += f"  dual(ternary {l.dual.n_tern(l.n_filters)}/{l.n_filters}, x>={l.dual.bin_threshold})"
            lines.append(line)
        return "\n".join(lines)
