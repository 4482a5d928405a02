"""Dual-path layers (DualNet): an INT4 path on the SRAM macros beside a ternary-weight x binary-input
path on the eDRAM-like second macro type (architecture.md §10, program-format.md "Dual section", format 1.2).

A dual-path conv/fc layer of F filters computes its first F − F_t output channels on the SRAM
path (§4, the layer's ordinary column map and weights) and its last F_t = ⌊F · q / 8⌋ channels
(q = ``ratio_eighths``, 0…8) on the ternary path: acc[f] = Σ_k T[f, k] · z[k], T ∈ {−1, 0, 1},
z[k] = 1 if x[k] ≥ ``bin_threshold`` else 0. Both go through the per-filter requant of §6.

The 16-byte dual section of a layer with flags bit 0:

| offset | type | field |
|---|---|---|
| 0 | u8 | ratio_eighths q (0…8) |
| 1 | u8 | bin_threshold θ (1…2^bits_in − 1) |
| 2 | u16 | n_tern_rowblocks R_t = ⌈K / tern_rows_active⌉ |
| 4 | u32 | n_tern_words = 2 · F_t · R_t |
| 8 | u32 | off_tern_weights (u64[n_tern_words]) |
| 12 | u8[4] | reserved, 0 |

Ternary weights (uint64 (F_t, R_t, 2) in memory): for ternary filter u = 0…F_t−1 (layer filter
F − F_t + u), row block b: word 0 holds the positive cells (bit r ⇔ T[f, b·A_t + r] = +1), word 1
the negative cells (T = −1); a weight 0 has both cells 0; both cells 1 is not a ternary value.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ..cim.bitplanes import pack_rows, unpack_rows
from ..cim.popcount import popcount64

DUAL = struct.Struct("<BBHII4x")
DUAL_RESERVED = ((12, 4),)
assert DUAL.size == 16

RATIO_STEPS = 8
"""The ratio is q / RATIO_STEPS, q in 0..RATIO_STEPS (the allowed set: 0, 1/8, …, 1)."""


@dataclass(frozen=True)
class DualPathParams:
    """The dual-path parameters of one conv/fc layer (architecture.md §10.2).

    ratio_eighths: q in 0…8; the ternary path computes the last ⌊F·q/8⌋ output channels, the
    SRAM (INT4) path the others. bin_threshold: θ in 1…2^bits_in − 1; the ternary path's binary
    input is z = 1 where the layer input x ≥ θ (zero padding gives z = 0).
    """

    ratio_eighths: int
    bin_threshold: int = 1

    def n_tern(self, n_filters: int) -> int:
        """F_t = ⌊F · q / 8⌋: output channels of the ternary path (the last F_t filters)."""
        return n_filters * self.ratio_eighths // RATIO_STEPS

    def first_tern(self, n_filters: int) -> int:
        """Index of the first ternary-path filter (F − F_t)."""
        return n_filters - self.n_tern(n_filters)

    def problem(self, bits_in: int) -> str | None:
        """The first broken rule as a message naming the field, or None (§10.5)."""
        q, t = self.ratio_eighths, self.bin_threshold
        if not isinstance(q, (int, np.integer)) or not 0 <= q <= RATIO_STEPS:
            return (f"dual ratio_eighths {q} is outside the allowed set 0..{RATIO_STEPS} "
                    f"(ternary share q/{RATIO_STEPS} of the output channels)")
        if not isinstance(t, (int, np.integer)) or not 1 <= t <= (1 << bits_in) - 1:
            return f"dual bin_threshold {t} must lie in 1..{(1 << bits_in) - 1} (2^bits_in - 1 of the layer input)"
        return None

    def pack(self, n_rowblocks: int, n_words: int, off_words: int) -> bytes:
        """The 16-byte section (little-endian)."""
        return DUAL.pack(self.ratio_eighths, self.bin_threshold, n_rowblocks, n_words, off_words)

    @classmethod
    def unpack(cls, raw: bytes) -> "tuple[DualPathParams, int, int, int]":
        """(params, n_tern_rowblocks, n_tern_words, off_tern_weights) of a raw section."""
        q, t, r, n, off = DUAL.unpack(raw)
        return cls(q, t), r, n, off


# --- header bytes 61..63 (format 1.2): the second macro type's geometry ---------------------------

def tern_header_bytes(preset) -> bytes:
    """Header bytes 61..63 of a preset (program-format.md, architecture.md §10.1): 0 0 0 without the
    second macro type; else byte 61 = log2 tern_rows | log2 tern_cols << 4, byte 62 =
    log2(tern_rows_active) − 3 | log2 tern_n_macros << 2, byte 63 = log2 tern_refresh_cycles | 0x80."""
    if not preset.has_tern:
        return b"\0\0\0"
    lg = lambda v: v.bit_length() - 1
    return bytes((lg(preset.tern_rows) | lg(preset.tern_cols) << 4,
                  (lg(preset.tern_rows_active) - 3) | lg(preset.tern_n_macros) << 2,
                  lg(preset.tern_refresh_cycles) | 0x80))


def tern_from_header(b61: int, b62: int, b63: int) -> dict:
    """Inverse of :func:`tern_header_bytes`: the tern_* preset fields ({} when byte 63 bit 7 is 0).
    Bits the encoding leaves unused are ignored here; :func:`tern_header_ok` checks them."""
    if not b63 & 0x80:
        return {}
    return {"tern_rows": 1 << (b61 & 15), "tern_cols": 1 << (b61 >> 4), "tern_rows_active": 8 << (b62 & 3),
            "tern_n_macros": 1 << ((b62 >> 2) & 15), "tern_refresh_cycles": 1 << (b63 & 31)}


def tern_header_ok(b61: int, b62: int, b63: int) -> bool:
    """True if header bytes 61..63 are a canonical encoding: all 0 without the presence bit, else
    byte 62 bits 6..7 and byte 63 bits 5..6 zero (row 7 of the reader checks, format >= 1.2)."""
    if not b63 & 0x80:
        return not (b61 or b62 or b63)
    return not (b62 & 0xC0 or b63 & 0x60)


# --- ternary weights <-> words ------------------------------------------------------------------

def encode_ternary(t: np.ndarray, rows_active: int) -> np.ndarray:
    """Ternary matrix T int (F_t, K), values in {−1, 0, 1} -> words uint64 (F_t, R_t, 2) (positive, negative cells)."""
    t = np.asarray(t, dtype=np.int64)
    f, k = t.shape
    if t.size and (t.min() < -1 or t.max() > 1):
        raise ValueError(f"ternary weights must lie in {{-1, 0, 1}}, got [{t.min()}, {t.max()}]")
    r = -(-k // rows_active)
    pad = np.zeros((f, r * rows_active), dtype=np.int64)
    pad[:, :k] = t
    pos = pack_rows((pad == 1).astype(np.uint8).reshape(f, r, rows_active))
    neg = pack_rows((pad == -1).astype(np.uint8).reshape(f, r, rows_active))
    return np.stack([pos, neg], axis=-1).astype(np.uint64).reshape(f, r, 2)


def decode_ternary(words: np.ndarray, k_rows: int, rows_active: int) -> np.ndarray:
    """Inverse of :func:`encode_ternary`: T int64 (F_t, K) (a cell pair (1, 1) reads as 0)."""
    words = np.asarray(words, dtype=np.uint64)
    f, r = words.shape[:2]
    bits = unpack_rows(words.reshape(f * r, 2), rows_active).astype(np.int64)  # (F_t*R_t, 2, A)
    t = (bits[:, 0] - bits[:, 1]).reshape(f, r * rows_active)
    return t[:, :k_rows]


def binarize(x: np.ndarray, threshold: int) -> np.ndarray:
    """The ternary path's binary input: 1 where x ≥ threshold, else 0 (int64, same shape)."""
    return (np.asarray(x, dtype=np.int64) >= int(threshold)).astype(np.int64)


# --- mapping onto the ternary macros and the path's counters (§10.3, §10.4) ------------------------

def tern_tiles(n_tern: int, n_rowblocks: int, preset) -> tuple[np.ndarray, np.ndarray, int]:
    """Tile of every (ternary filter u, row block b) and the macro of each tile.

    A ternary macro holds tern_cols/2 filters × tern_rows/tern_rows_active row blocks; tile
    t = (u // filters_per_macro) · n_row_tiles + b // blocks_per_macro (filter-tile-major, as §5);
    tile t runs on ternary macro t mod tern_n_macros. Returns (tile int64 (F_t, R_t),
    macro_of_tile int64 (n_tiles,), n_tiles)."""
    n_row_tiles = -(-n_rowblocks // preset.tern_blocks_per_macro)
    ft = np.arange(n_tern)[:, None] // preset.tern_filters_per_macro
    rt = np.arange(n_rowblocks)[None, :] // preset.tern_blocks_per_macro
    n_tiles = -(-n_tern // preset.tern_filters_per_macro) * n_row_tiles if n_tern else 0
    return ft * n_row_tiles + rt, np.arange(n_tiles) % preset.tern_n_macros, int(n_tiles)


def tile_blocks(n_tern: int, n_rowblocks: int, preset) -> np.ndarray:
    """int64 (n_tiles,): row blocks of every ternary tile (every block of a tile is stored and activated)."""
    tile, _, n_tiles = tern_tiles(n_tern, n_rowblocks, preset)
    if not n_tiles:
        return np.zeros(0, dtype=np.int64)
    return np.array([np.unique(np.nonzero(tile == t)[1]).size for t in range(n_tiles)], dtype=np.int64)


def refresh_events_per_image(n_tern: int, n_rowblocks: int, pixels: int, preset) -> int:
    """Row refreshes of the ternary macros for one image (§10.4): tile t is written just before its
    macro processes it and is busy pixels · blocks_t cycles; each of its blocks_t · tern_rows_active
    rows is refreshed every tern_refresh_cycles cycles of that time: Σ_t blocks_t · A_t ·
    ⌊pixels · blocks_t / tern_refresh_cycles⌋."""
    blocks = tile_blocks(n_tern, n_rowblocks, preset)
    a, per = preset.tern_rows_active, preset.tern_refresh_cycles
    return int(sum(int(nb) * a * (pixels * int(nb) // per) for nb in blocks))


TERN_PER_IMAGE = ("tern_rowblock_activations", "tern_cycles", "tern_column_reads", "tern_bit_ops",
                  "tern_weight_load_bits", "tern_input_ones", "refresh_events")
"""Per-image counters of the ternary path (architecture.md §10.4), in counter-block order (indices 25..31)."""


def tern_static(layer, program, images: int) -> dict:
    """The ternary path's data-independent counters of a dual-path ``layer`` for ``images`` images, and
    what it adds to the layer's shared counters (act_buffer_bits, dram_bytes): a dict of counter -> int
    (``tern_input_ones`` is data dependent: 0 here). §10.4 formulas."""
    pr = program.preset
    t_in, t_out = program.tensors[layer.in_tensor], program.tensors[layer.out_tensor]
    pixels = t_out.height * t_out.width
    f_t = layer.dual.n_tern(layer.n_filters)
    a = pr.tern_rows_active
    r_t = -(-layer.k_rows // a)
    blocks = tile_blocks(f_t, r_t, pr)
    tile, macro_of_tile, n_tiles = tern_tiles(f_t, r_t, pr)
    per_macro = np.zeros(pr.tern_n_macros, dtype=np.int64)
    np.add.at(per_macro, macro_of_tile, blocks)
    n_ftiles = -(-f_t // pr.tern_filters_per_macro) if f_t else 0
    n_rounds = max(1, -(-n_tiles // pr.tern_n_macros))
    cells = 2 * f_t * r_t * a
    d = {
        "tern_rowblock_activations": int(blocks.sum()) * pixels * images,
        "tern_cycles": int(per_macro.max(initial=0)) * pixels * images,
        "tern_column_reads": 2 * f_t * r_t * pixels * images,
        "tern_bit_ops": 2 * f_t * layer.k_rows * pixels * images,
        "tern_weight_load_bits": cells * images,
        "tern_input_ones": 0,
        "refresh_events": refresh_events_per_image(f_t, r_t, pixels, pr) * images,
        "tern_weight_bits": 2 * f_t * layer.k_rows,
        "tern_cells_allocated": cells,
        "tern_tiles": n_tiles,
        "act_buffer_bits": ((t_in.channels * t_in.height * t_in.width if f_t else 0)
                            + pixels * n_ftiles * layer.k_rows) * images,
        "dram_bytes": (DUAL.size + cells // 8 + 2 * (n_rounds - 1) * pixels * f_t * (pr.acc_bits // 8)) * images,
    }
    return d


def tern_path(words: np.ndarray, b_cols: np.ndarray, rows_active: int) -> np.ndarray:
    """The ternary path's accumulators, dense: int64 (M, F_t) = Σ_b popcount(b & pos) − popcount(b & neg)
    for binary windows ``b_cols`` int (M, K) and words (F_t, R_t, 2). For tests and tools."""
    m, k = b_cols.shape
    f, r = words.shape[:2]
    pad = np.zeros((m, r * rows_active), dtype=np.int64)
    pad[:, :k] = b_cols
    bw = pack_rows(pad.reshape(m, r, rows_active).astype(np.uint8))  # (M, R)
    acc = np.zeros((m, f), dtype=np.int64)
    for u in range(f):
        for b in range(r):
            acc[:, u] += popcount64(bw[:, b] & words[u, b, 0]).astype(np.int64) - \
                popcount64(bw[:, b] & words[u, b, 1]).astype(np.int64)
    return acc


def tern_input_ones(layer, program, x: np.ndarray) -> int:
    """``tern_input_ones`` of a dual-path layer from its NHWC input ``x`` (§10.4), without im2col:
    (filter tiles) × Σ over images, output pixels and kernel offsets of the ones of z = x ≥ θ in the
    zero-padded window (every filter tile reads every row of K once per pixel)."""
    pr = program.preset
    f_t = layer.dual.n_tern(layer.n_filters)
    if not f_t:
        return 0
    n_ftiles = -(-f_t // pr.tern_filters_per_macro)
    out = program.tensors[layer.out_tensor]
    ones = (np.asarray(x) >= layer.dual.bin_threshold).sum(axis=(0, 3), dtype=np.int64)  # (H, W)
    return n_ftiles * window_ones(ones, layer, out.height, out.width)


def window_ones(ones: np.ndarray, layer, ho: int, wo: int) -> int:
    """Σ over the ho × wo output pixels and the kh × kw kernel offsets of the per-position counts ``ones``
    (H, W) of the layer's input, zero padding contributing 0."""
    p, s = layer.pad, layer.stride
    ones = np.pad(ones, ((p, p), (p, p)))
    total = 0
    for ky in range(layer.kh):
        for kx in range(layer.kw):
            total += int(ones[ky:ky + s * (ho - 1) + 1:s, kx:kx + s * (wo - 1) + 1:s].sum())
    return total
