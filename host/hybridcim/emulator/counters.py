"""Activity counters per layer (architecture.md §7).

``static_counters`` computes every data-independent counter of the SRAM macros (§7) from the
program alone, and ``dual_static_counters`` adds a dual-path layer's ternary path (§10.4); the
data-dependent counter ``input_ones`` (1 bits on the word lines) comes from the layer's input
activations (:class:`InputOnesCounter`, vectorized: the fast emulator calls it on every CIM
layer's input), as does a dual-path layer's ``tern_input_ones``
(:func:`hybridcim.program.dualpath.tern_input_ones`). The reference emulator counts everything literally while it
runs and the tests check that all three agree (and the HLS kernel's counter block).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..program.format import Op
from ..program.dualpath import window_ones
from ..program.model import Layer, Program


PER_IMAGE = ("images", "macs", "unit_activations", "units_skipped", "rowblock_activations", "cycles", "bit_ops",
             "digital_column_reads", "analog_column_reads", "adc_conversions", "skipped_bitplanes",
             "weight_load_bits", "dram_bytes", "act_buffer_bits", "requant_ops", "input_ones")
"""Counters that grow with the number of images (summed over images and batches), in the order of
the kernel's counter block (HCIM_C_*; append-only); the others describe the layer's mapping."""

HYBRID_EXTRA = ("saliency_ops",) + tuple(f"decisions_level{k}" for k in range(8))
"""Per-image counters of hybrid mode appended after :data:`PER_IMAGE` (architecture.md §9.7: counter
indices 16..24 of a later counter-block layout); 0 in digital mode. ``decisions_level<k>`` is the
histogram of chosen boundary levels."""

DUAL_EXTRA = ("tern_rowblock_activations", "tern_cycles", "tern_column_reads", "tern_bit_ops", "tern_weight_load_bits",
              "tern_input_ones", "refresh_events")
"""Per-image counters of a dual-path layer's ternary path on the second macro type (architecture.md §10.4:
counter indices 25..31 of a later counter-block layout); 0 in other layers. Same order as
:data:`hybridcim.program.dualpath.TERN_PER_IMAGE`."""

DATA_DEPENDENT = ("input_ones",)
"""Counters that depend on the input data: ``static_counters`` leaves them 0."""

DATA_DEPENDENT_HYBRID = ("digital_column_reads", "analog_column_reads", "adc_conversions", "skipped_bitplanes") + \
    tuple(f"decisions_level{k}" for k in range(8))
"""Further counters that depend on the data in a hybrid layer (0 from ``static_counters`` there)."""

POPCOUNT8 = np.array([bin(v).count("1") for v in range(256)], dtype=np.uint8)
"""Number of 1 bits of every byte value."""


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
    weight_load_bits: int = 0
    dram_bytes: int = 0
    act_buffer_bits: int = 0
    requant_ops: int = 0
    input_ones: int = 0
    saliency_ops: int = 0
    decisions_level0: int = 0
    decisions_level1: int = 0
    decisions_level2: int = 0
    decisions_level3: int = 0
    decisions_level4: int = 0
    decisions_level5: int = 0
    decisions_level6: int = 0
    decisions_level7: int = 0
    tern_rowblock_activations: int = 0
    tern_cycles: int = 0
    tern_column_reads: int = 0
    tern_bit_ops: int = 0
    tern_weight_load_bits: int = 0
    tern_input_ones: int = 0
    refresh_events: int = 0
    tern_weight_bits: int = 0
    tern_cells_allocated: int = 0
    tern_tiles: int = 0

    @property
    def boundary_histogram(self) -> list[int]:
        """Decisions per boundary level 0..7 (hybrid layers; all 0 in digital mode)."""
        return [getattr(self, f"decisions_level{k}") for k in range(8)]

    @property
    def utilization(self) -> float:
        """Macro utilization: used weight bits / allocated bit cells (0 for pools)."""
        return self.weight_bits / self.cells_allocated if self.cells_allocated else 0.0

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["utilization"] = self.utilization
        return d

    def times(self, images: int) -> "LayerCounters":
        """These per-image counters scaled to ``images`` images (static fields unchanged).

        Exact for the data-independent counters; a data-dependent one (``input_ones``) is scaled
        too, which is only right when every image has the same data: sum runs with ``+`` instead."""
        out = dataclasses.replace(self)
        for name in PER_IMAGE + HYBRID_EXTRA + DUAL_EXTRA:
            setattr(out, name, getattr(self, name) * images)
        return out

    def __add__(self, other: "LayerCounters") -> "LayerCounters":
        if other.layer != self.layer:
            raise ValueError(f"cannot add counters of {self.layer!r} and {other.layer!r}")
        out = LayerCounters(self.layer)
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            setattr(out, f.name, a + b if f.name in PER_IMAGE or f.name in HYBRID_EXTRA or f.name in DUAL_EXTRA else a)
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


def tensor_bytes(t, images: int = 1) -> int:
    """Bytes of ``images`` copies of tensor ``t`` packed at its bit width (each image rounded up to a byte)."""
    return -(-t.channels * t.height * t.width * t.bits // 8) * images


def table_bytes(layer: Layer, program: Program) -> int:
    """Bytes of a conv/fc layer's control tables as the image stores them (program-format.md):
    precision u8, bias i32, shift i8, res_shift i8 per filter, column map u32 per column, skip
    index bits (unpadded)."""
    ng, r = layer.present.shape
    return 7 * layer.n_filters + 4 * ng * program.preset.group_width + -(-ng * r // 8)


def activated_blocks(layer: Layer, program: Program) -> np.ndarray:
    """int64 (R,): in how many tiles each row block is activated (some group of the tile present there)."""
    tile, _, n_tiles = tile_of_units(layer, program)
    ng, r = layer.present.shape
    mult = np.zeros(r, dtype=np.int64)
    for t in range(n_tiles):
        mult += (layer.present & (tile == t)).any(axis=0)
    return mult


def real_rows(layer: Layer, program: Program) -> np.ndarray:
    """int64 (R,): rows of each row block inside K (A, the last one K - (R-1)*A)."""
    a = program.preset.rows_active
    return np.minimum(a, layer.k_rows - np.arange(layer.n_rowblocks) * a).astype(np.int64)


def static_counters(layer: Layer, program: Program, images: int) -> LayerCounters:
    """Counters of ``layer`` for ``images`` images computed from the program alone.

    The data-dependent counters (:data:`DATA_DEPENDENT`) are 0 here."""
    t_in, out_t = program.tensors[layer.in_tensor], program.tensors[layer.out_tensor]
    pixels = out_t.height * out_t.width
    c = LayerCounters(layer.name, images=images, pixels=pixels)
    if not layer.op.is_cim:
        c.dram_bytes = tensor_bytes(t_in, images) + tensor_bytes(out_t, images)
        c.requant_ops = out_t.channels * images if layer.op == Op.AVGPOOL else 0
        return c
    pr = program.preset
    a = pr.rows_active
    bits_in = t_in.bits
    n = pixels * images * bits_in
    present = layer.present
    ng, r = present.shape
    rows = real_rows(layer, program)  # (R,)
    used_cols = (layer.col_filter >= 0).sum(axis=1)  # (NG,)
    c.macs = layer.n_filters * layer.k_rows * pixels * images
    c.units_total = ng * r
    c.units_present = int(present.sum())
    c.unit_activations = c.units_present * n
    c.units_skipped = (c.units_total - c.units_present) * n
    c.weight_bits = int((present * used_cols[:, None] * rows[None, :]).sum())
    c.cells_allocated = c.units_present * pr.group_width * a
    c.bit_ops = c.weight_bits * n
    c.digital_column_reads = int((present * used_cols[:, None]).sum()) * n
    if layer.mode == 1:  # hybrid (§9.7): the digital/analog/skipped split and the level histogram are data dependent
        c.digital_column_reads = 0
        c.saliency_ops = layer.hybrid.sal_planes * int(present.any(axis=0).sum()) * pixels * images
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
    c.weight_load_bits = c.cells_allocated * images
    c.requant_ops = layer.n_filters * pixels * images
    n_rounds = max(1, -(-n_tiles // pr.n_macros))
    res_t = program.tensors[layer.res_tensor] if layer.res_tensor is not None else None
    c.dram_bytes = (table_bytes(layer, program) * images + c.weight_load_bits // 8 + tensor_bytes(t_in, images)
                    + tensor_bytes(out_t, images) + (tensor_bytes(res_t, images) if res_t is not None else 0)
                    + 2 * (n_rounds - 1) * pixels * layer.n_filters * (pr.acc_bits // 8) * images)
    streamed_rows = int((activated_blocks(layer, program) * rows).sum())
    c.act_buffer_bits = (t_in.channels * t_in.height * t_in.width + pixels * streamed_rows) * bits_in * images
    return c


def dual_static_counters(layer: Layer, program: Program, images: int) -> LayerCounters:
    """Every data-independent counter of ``layer`` for ``images`` images: :func:`static_counters`
    and, in a dual-path layer (architecture.md §10.4), the ternary path's counters
    (:func:`hybridcim.program.dualpath.tern_static`; ``tern_input_ones`` is data dependent: 0 here) and
    the four shared ones: ``cycles`` the longer path, ``act_buffer_bits`` + the binary plane and the
    ternary rows read, ``dram_bytes`` with the SRAM filters' partial sums only + the dual section,
    the ternary weights and the ternary partial sums."""
    c = static_counters(layer, program, images)
    if layer.dual is None:
        return c
    from ..program.dualpath import tern_static
    pr = program.preset
    f_t = layer.dual.n_tern(layer.n_filters)
    out = program.tensors[layer.out_tensor]
    n_rounds = max(1, -(-c.tiles // pr.n_macros))
    c.dram_bytes -= 2 * (n_rounds - 1) * out.height * out.width * f_t * (pr.acc_bits // 8) * images
    d = tern_static(layer, program, images)
    c.act_buffer_bits += d.pop("act_buffer_bits")
    c.dram_bytes += d.pop("dram_bytes")
    for name, v in d.items():
        setattr(c, name, v)
    c.cycles = max(c.cycles, c.tern_cycles)
    return c


_M1, _M2, _M4 = (np.uint64(0x5555555555555555), np.uint64(0x3333333333333333), np.uint64(0x0F0F0F0F0F0F0F0F))
_S1, _S2, _S4 = np.uint64(1), np.uint64(2), np.uint64(4)


def popcount_sum(x: np.ndarray, bits: int = 8) -> np.ndarray:
    """int64 (prod(x.shape[1:]),): Σ over axis 0 of the number of 1 bits of each value of ``x``
    (exact integers 0 … 2^bits − 1, bits ≤ 8, any numeric dtype).

    Cache-sized chunks of images are cast to bytes, popcounted eight bytes at a time (SWAR on
    the uint64 view, in place; only the steps ``bits`` needs) and summed over the chunk as words
    (chunks of ≤ 32 and ≤ ⌊255 / bits⌋ images: no byte carries).

    >>> popcount_sum(np.array([[3, 255, 0], [1, 128, 7]])).tolist()
    [3, 9, 3]
    """
    n, m = x.shape[0], int(np.prod(x.shape[1:]))
    flat = x.reshape(n, m)
    mw = -(-m // 8)
    acc = np.zeros(mw * 8, dtype=np.int64)
    if n == 0 or m == 0:
        return acc[:m]
    chunk = min(n, 32, 255 // max(bits, 1))  # 32 images: a cache-sized chunk
    buf = np.zeros((chunk, mw * 8), dtype=np.uint8)
    tmp = np.empty((chunk, mw), dtype=np.uint64)
    for s in range(0, n, chunk):
        c = min(chunk, n - s)
        np.copyto(buf[:c, :m], flat[s:s + c], casting="unsafe")
        w, t = buf[:c].view(np.uint64), tmp[:c]
        if bits > 1:  # 2-bit fields: their popcounts
            np.right_shift(w, _S1, out=t)
            t &= _M1
            w -= t
        if bits > 2:  # nibbles
            np.right_shift(w, _S2, out=t)
            t &= _M2
            w &= _M2
            w += t
        if bits > 4:  # bytes
            np.right_shift(w, _S4, out=t)
            w += t
            w &= _M4
        acc += np.add.reduce(w, axis=0).view(np.uint8)
    return acc[:m]


class InputOnesCounter:
    """``input_ones`` of one conv/fc layer from its input activations, vectorized (architecture.md §7).

    ``input_ones`` = Σ over tiles, over the row blocks the tile activates, over output pixels
    and input bit planes, of the 1 bits of that plane in the block's rows of the zero-padded
    input window = Σ_k mult[k // A] · Σ_{images, pixels} popcount(x_window[k]), with mult the
    tiles that activate each row block. Computed as: per (y, x, c) the popcount of the input
    summed over the images (:func:`popcount_sum`), then per kernel offset (ky, kx) a strided
    window sum.
    """

    def __init__(self, layer: Layer, program: Program):
        if not layer.op.is_cim:
            raise ValueError(f"layer {layer.name!r} is not a conv/fc layer")
        self.layer, self.t_in = layer, program.tensors[layer.in_tensor]
        a, c = program.preset.rows_active, self.t_in.channels
        per_row = np.repeat(activated_blocks(layer, program), a)[:layer.k_rows]  # (K,)
        self.row_mult = per_row.reshape(layer.kh, layer.kw, c)
        out = program.tensors[layer.out_tensor]
        self.ho, self.wo = out.height, out.width

    def __call__(self, x: np.ndarray, channels: np.ndarray | None = None) -> int:
        """``x``: NHWC input values (exact integers 0…255, any numeric dtype) of the stored channels
        ``channels`` (indices into the tensor's channels; None: all); missing channels are 0."""
        l, t = self.layer, self.t_in
        x = np.asarray(x)
        ones = np.zeros((t.height, t.width, t.channels), dtype=np.int64)
        if x.size:
            per_pos = popcount_sum(x, t.bits).reshape(x.shape[1:])  # (H, W, C')
            if channels is None:
                ones[...] = per_pos
            else:
                ones[..., channels] = per_pos
        p, s = l.pad, l.stride
        ones = np.pad(ones, ((p, p), (p, p), (0, 0)))
        total = 0
        for ky in range(l.kh):
            for kx in range(l.kw):
                win = ones[ky:ky + s * (self.ho - 1) + 1:s, kx:kx + s * (self.wo - 1) + 1:s, :].sum(axis=(0, 1))
                total += int(win @ self.row_mult[ky, kx])
        return total


class TernOnesCounter:
    """``tern_input_ones`` of one dual-path layer from its input activations (architecture.md §10.4), vectorized.

    Every ternary filter tile drives every row of K once per output pixel (the ternary path is dense), so
    ``tern_input_ones`` = (filter tiles) × Σ over images, output pixels and kernel offsets of the 1 bits of
    z = [x ≥ θ] in the zero-padded window: per (y, x) the ones of z summed over images and channels (a
    row reduction over the images first, in bytes: numpy sums a leading axis fast), then per kernel
    offset a strided window sum. The same integer as :func:`hybridcim.program.dualpath.tern_input_ones`.
    """

    def __init__(self, layer: Layer, program: Program):
        if layer.dual is None:
            raise ValueError(f"layer {layer.name!r} is not a dual-path layer")
        self.layer, self.t_in = layer, program.tensors[layer.in_tensor]
        f_t = layer.dual.n_tern(layer.n_filters)
        self.n_ftiles = -(-f_t // program.preset.tern_filters_per_macro) if f_t else 0
        out = program.tensors[layer.out_tensor]
        self.ho, self.wo = out.height, out.width

    def __call__(self, x: np.ndarray) -> int:
        """``x``: NHWC input values of any subset of the tensor's channels (a channel left out is 0, so
        z = 0 there: θ ≥ 1), exact integers of any numeric dtype."""
        l, t = self.layer, self.t_in
        x = np.asarray(x)
        if not self.n_ftiles or not x.size:
            return 0
        z = (x.reshape(x.shape[0], -1) >= l.dual.bin_threshold).view(np.uint8)
        per_pos = np.zeros(z.shape[1], dtype=np.int64)
        for a in range(0, z.shape[0], 255):  # ≤ 255 images summed in bytes (no carry), 7x faster than in int64
            per_pos += np.add.reduce(z[a:a + 255], axis=0, dtype=np.uint8)
        ones = per_pos.reshape(t.height, t.width, -1).sum(axis=-1)  # (H, W)
        return self.n_ftiles * window_ones(ones, l, self.ho, self.wo)
