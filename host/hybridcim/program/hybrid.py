"""A hybrid layer's parameters (architecture.md §9, program-format.md "Hybrid section", format 1.1).

The 64-byte hybrid section of a layer in mode 1:

| offset | type | field |
|---|---|---|
| 0 | u8 | n_levels T (1…8) |
| 1 | u8 | sal_planes h (1…bits_in) |
| 2 | u8 | noise_pairs (0…64; 0 = noise off) |
| 3 | u8 | noise_shift (0…8) |
| 4 | u32 | noise_seed |
| 8 | u8[8] | reserved, 0 |
| 16 | u32[7] | thresholds t_1 < … < t_{T−1}; entries past T−1 are 0 |
| 44 | u8[8] | digital_depth D_0 … D_{T−1}; entries past T−1 are 0 |
| 52 | u8[8] | keep_depth E_0 … E_{T−1}; entries past T−1 are 0 |
| 60 | u8[4] | reserved, 0 |
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from ..cim.hybrid import DEPTH_ALL, MAX_LEVELS, MAX_NOISE_PAIRS, MAX_NOISE_SHIFT

HYBRID = struct.Struct("<BBBBI8x7I8B8B4x")
HYBRID_RESERVED = ((8, 8), (60, 4))
assert HYBRID.size == 64


@dataclass(frozen=True)
class HybridParams:
    """Level table and noise of one hybrid conv/fc layer.

    thresholds: T − 1 saliency thresholds (u32, strictly ascending); level = #{t_k ≤ saliency}.
    digital_depth, keep_depth: T pairs (D_ℓ, E_ℓ), 0…15, D_ℓ ≤ E_ℓ, both nondecreasing in ℓ:
    a pair of MSB-aligned depth d is digital if d < D_ℓ, analog if D_ℓ ≤ d < E_ℓ, skipped otherwise.
    sal_planes: input planes (from the MSB) the saliency reads. noise_pairs / noise_shift /
    noise_seed: analog noise (§9.6), off when noise_pairs = 0.
    """

    digital_depth: tuple[int, ...]
    keep_depth: tuple[int, ...]
    thresholds: tuple[int, ...] = ()
    sal_planes: int = 1
    noise_pairs: int = 0
    noise_shift: int = 0
    noise_seed: int = 0

    @classmethod
    def static(cls, digital_depth: int, keep_depth: int = DEPTH_ALL, **kw) -> "HybridParams":
        """One level: the static boundary (ASiM ``hybrid_levels`` = digital_depth)."""
        return cls((int(digital_depth),), (int(keep_depth),), (), **kw)

    @property
    def n_levels(self) -> int:
        return len(self.digital_depth)

    def problem(self, bits_in: int) -> str | None:
        """The first broken rule as a message naming the field, or None (§9.5 validity)."""
        t, d, e = list(self.thresholds), list(self.digital_depth), list(self.keep_depth)
        if not 1 <= len(d) <= MAX_LEVELS or len(e) != len(d):
            return f"hybrid n_levels {len(d)} must be 1..{MAX_LEVELS} with as many keep_depth entries (got {len(e)})"
        if len(t) != len(d) - 1:
            return f"hybrid thresholds: {len(t)} given, n_levels {len(d)} needs {len(d) - 1}"
        if any(not 0 <= v <= 0xFFFFFFFF for v in t) or any(b <= a for a, b in zip(t, t[1:])):
            return f"hybrid thresholds {t} must be u32 and strictly ascending"
        if any(not 0 <= v <= DEPTH_ALL for v in d + e):
            return f"hybrid digital_depth {d} / keep_depth {e} must lie in 0..{DEPTH_ALL}"
        if any(a > b for a, b in zip(d, e)):
            return f"hybrid digital_depth {d} must not exceed keep_depth {e} at any level"
        if any(b < a for a, b in zip(d, d[1:])) or any(b < a for a, b in zip(e, e[1:])):
            return f"hybrid digital_depth {d} and keep_depth {e} must be nondecreasing in the level (monotone)"
        if not 1 <= self.sal_planes <= bits_in:
            return f"hybrid sal_planes {self.sal_planes} must lie in 1..bits_in ({bits_in})"
        if not 0 <= self.noise_pairs <= MAX_NOISE_PAIRS:
            return f"hybrid noise_pairs {self.noise_pairs} must lie in 0..{MAX_NOISE_PAIRS}"
        if not 0 <= self.noise_shift <= MAX_NOISE_SHIFT:
            return f"hybrid noise_shift {self.noise_shift} must lie in 0..{MAX_NOISE_SHIFT}"
        if not 0 <= self.noise_seed <= 0xFFFFFFFF:
            return f"hybrid noise_seed {self.noise_seed} must be a u32"
        return None

    def pack(self) -> bytes:
        """The 64-byte section (little-endian; unused entries 0)."""
        t = list(self.thresholds) + [0] * (MAX_LEVELS - 1 - len(self.thresholds))
        d = list(self.digital_depth) + [0] * (MAX_LEVELS - len(self.digital_depth))
        e = list(self.keep_depth) + [0] * (MAX_LEVELS - len(self.keep_depth))
        return HYBRID.pack(self.n_levels, self.sal_planes, self.noise_pairs, self.noise_shift, self.noise_seed,
                           *t, *d, *e)

    @classmethod
    def unpack(cls, raw: bytes) -> "HybridParams":
        """Inverse of :meth:`pack` for a section whose n_levels is 1..8 (checked by the reader)."""
        v = HYBRID.unpack(raw)
        n, h, pairs, shift, seed = v[:5]
        t, d, e = v[5:12], v[12:20], v[20:28]
        return cls(tuple(d[:n]), tuple(e[:n]), tuple(t[:n - 1]), h, pairs, shift, seed)


def section_problem(raw: bytes, bits_in: int) -> str | None:
    """Rules of a raw 64-byte hybrid section: reserved bytes and unused entries 0, then :meth:`problem`."""
    if any(raw[o:o + n].count(0) != n for o, n in HYBRID_RESERVED):
        return "hybrid section reserved bytes 8..15 and 60..63 must be 0"
    v = HYBRID.unpack(raw)
    n = v[0]
    if not 1 <= n <= MAX_LEVELS:
        return f"hybrid n_levels {n} must be 1..{MAX_LEVELS}"
    if any(v[5 + k] for k in range(n - 1, MAX_LEVELS - 1)) or any(v[12 + k] or v[20 + k] for k in range(n, MAX_LEVELS)):
        return f"hybrid thresholds / level entries past n_levels ({n}) must be 0"
    return HybridParams.unpack(raw).problem(bits_in)
