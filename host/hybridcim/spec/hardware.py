"""Hardware presets: the parameters of the emulated SRAM CIM array (architecture.md §1).

A preset is frozen and closed: unknown keys are rejected, every field is validated. Its
fingerprint (CRC-32 of a canonical string) is written into every program image so that a
program and a device built for different geometries refuse each other.
"""
from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass


class PresetError(ValueError):
    """An invalid or unknown hardware preset."""


@dataclass(frozen=True)
class HardwarePreset:
    """Geometry of the emulated CIM array.

    rows, cols: word lines / bit lines of one macro. rows_active: word lines on per cycle
    (one row block; 8, 16, 32 or 64 so a block fits one 64-bit word). group_width: columns
    per column group (pairing unit). n_macros: parallel macros. acc_bits: signed
    accumulator width in bits. adc_bits: ADC resolution of the (reserved) analog path.
    precisions: allowed weight precisions in bits, ascending.

    The optional second macro type (architecture.md §10, spec 1.2; all five 0 = absent): an
    eDRAM-like ternary macro of tern_rows word lines x tern_cols bit lines (a ternary weight
    takes two adjacent columns: positive and negative cell), tern_rows_active word lines per
    cycle, tern_n_macros macros, every stored row refreshed each tern_refresh_cycles macro clock
    cycles. Powers of two (the image header holds their log2, program-format.md).
    """

    name: str
    rows: int = 256
    cols: int = 256
    rows_active: int = 64
    group_width: int = 8
    n_macros: int = 4
    acc_bits: int = 32
    adc_bits: int = 5
    precisions: tuple[int, ...] = (2, 4, 8)
    tern_rows: int = 0
    tern_cols: int = 0
    tern_rows_active: int = 0
    tern_n_macros: int = 0
    tern_refresh_cycles: int = 0

    def __post_init__(self) -> None:
        if self.rows_active not in (8, 16, 32, 64):
            raise PresetError(f"preset {self.name!r}: rows_active={self.rows_active} must be 8, 16, 32 or 64")
        if self.rows <= 0 or self.rows % self.rows_active:
            raise PresetError(f"preset {self.name!r}: rows={self.rows} must be a positive multiple of rows_active={self.rows_active}")
        if not 1 <= self.group_width <= 16:
            raise PresetError(f"preset {self.name!r}: group_width={self.group_width} must be in 1..16")
        if self.cols <= 0 or self.cols % self.group_width:
            raise PresetError(f"preset {self.name!r}: cols={self.cols} must be a positive multiple of group_width={self.group_width}")
        if not 1 <= self.n_macros <= 1024:
            raise PresetError(f"preset {self.name!r}: n_macros={self.n_macros} must be in 1..1024")
        if self.acc_bits != 32:
            raise PresetError(f"preset {self.name!r}: acc_bits={self.acc_bits}: spec 1.0 supports 32 only")
        if not 1 <= self.adc_bits <= 8:
            raise PresetError(f"preset {self.name!r}: adc_bits={self.adc_bits} must be in 1..8")
        p = tuple(self.precisions)
        if not p or list(p) != sorted(set(p)) or p[0] < 1 or p[-1] > min(8, self.group_width):
            raise PresetError(f"preset {self.name!r}: precisions={p} must be distinct, ascending, within 1..min(8, group_width)")
        object.__setattr__(self, "precisions", p)
        self._check_tern()

    def _check_tern(self) -> None:
        """The second macro type's rules (architecture.md §10.1): absent (all 0) or every field a power of two in range."""
        t = (self.tern_rows, self.tern_cols, self.tern_rows_active, self.tern_n_macros, self.tern_refresh_cycles)
        if not any(t):
            return
        pow2 = lambda v, lo, hi: isinstance(v, int) and lo <= v <= hi and v & (v - 1) == 0
        for name, v, lo, hi in (("tern_rows", t[0], 8, 1 << 15), ("tern_cols", t[1], 2, 1 << 15),
                                ("tern_rows_active", t[2], 8, 64), ("tern_n_macros", t[3], 1, 1024),
                                ("tern_refresh_cycles", t[4], 1, 1 << 31)):
            if not pow2(v, lo, hi):
                raise PresetError(f"preset {self.name!r}: {name}={v} must be a power of two in {lo}..{hi} "
                                  "(or every tern_* field 0: no second macro type)")
        if self.tern_rows % self.tern_rows_active:
            raise PresetError(f"preset {self.name!r}: tern_rows={self.tern_rows} must be a multiple of "
                              f"tern_rows_active={self.tern_rows_active}")

    @property
    def has_tern(self) -> bool:
        """True if the preset has the second (eDRAM-like ternary) macro type (§10)."""
        return self.tern_n_macros > 0

    @property
    def tern_blocks_per_macro(self) -> int:
        """Row blocks one ternary macro holds (tern_rows / tern_rows_active)."""
        return self.tern_rows // self.tern_rows_active

    @property
    def tern_filters_per_macro(self) -> int:
        """Ternary filters one ternary macro holds (tern_cols / 2: two cells per weight)."""
        return self.tern_cols // 2

    @property
    def blocks_per_macro(self) -> int:
        """Row blocks one macro holds (rows / rows_active)."""
        return self.rows // self.rows_active

    @property
    def groups_per_macro(self) -> int:
        """Column groups one macro holds (cols / group_width)."""
        return self.cols // self.group_width

    def canonical(self) -> str:
        """The string whose CRC-32 is the fingerprint (architecture.md §1)."""
        prec = ",".join(str(p) for p in self.precisions)
        return (f"rows={self.rows};cols={self.cols};rows_active={self.rows_active};"
                f"group_width={self.group_width};n_macros={self.n_macros};"
                f"acc_bits={self.acc_bits};adc_bits={self.adc_bits};precisions={prec}"
                + (f";tern_rows={self.tern_rows};tern_cols={self.tern_cols};tern_rows_active={self.tern_rows_active};"
                   f"tern_n_macros={self.tern_n_macros};tern_refresh_cycles={self.tern_refresh_cycles}"
                   if self.has_tern else ""))

    @property
    def fingerprint(self) -> int:
        """CRC-32 of :meth:`canonical` (unsigned 32-bit)."""
        return zlib.crc32(self.canonical().encode("ascii")) & 0xFFFFFFFF

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["precisions"] = list(self.precisions)
        if not self.has_tern:  # a preset without the second macro type reads as before spec 1.2
            for k in TERN_FIELDS:
                del d[k]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "HardwarePreset":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise PresetError(f"unknown preset keys: {sorted(unknown)} (known: {sorted(known)})")
        d = dict(d)
        if "precisions" in d:
            d["precisions"] = tuple(int(p) for p in d["precisions"])
        return cls(**d)


TERN_FIELDS = ("tern_rows", "tern_cols", "tern_rows_active", "tern_n_macros", "tern_refresh_cycles")
"""The second macro type's fields (§10.1), in the order of the canonical string."""

PRESETS: dict[str, HardwarePreset] = {
    p.name: p
    for p in (
        HardwarePreset("sun-mars-256"),
        HardwarePreset("tiny-64", rows=64, cols=64, rows_active=16, group_width=8, n_macros=2, adc_bits=4),
        HardwarePreset("wide-512", rows=512, cols=512, rows_active=32, group_width=8, n_macros=8),
    )
}
DEFAULT_PRESET = "sun-mars-256"
"""PRESETS are the presets of spec 1.1, each with a kernel build (hls/presets/<name>.h)."""

HOST_PRESETS: dict[str, HardwarePreset] = {
    p.name: p
    for p in (
        # sun-mars-256 plus four 256 x 512 eDRAM-like ternary macros (256 ternary filters x 4 row blocks each),
        # every row refreshed each 2^14 cycles (82 us at 200 MHz, 164 us at 100 MHz: inside a 200 us retention time)
        HardwarePreset("sun-mars-256-dual", tern_rows=256, tern_cols=512, tern_rows_active=64, tern_n_macros=4,
                       tern_refresh_cycles=1 << 14),
        # tiny-64 plus two 64 x 32 ternary macros (16 filters x 4 row blocks) refreshed every 256 cycles (tests)
        HardwarePreset("tiny-64-dual", rows=64, cols=64, rows_active=16, group_width=8, n_macros=2, adc_bits=4,
                       tern_rows=64, tern_cols=32, tern_rows_active=16, tern_n_macros=2, tern_refresh_cycles=256),
    )
}
"""Presets with the second macro type (spec 1.2, architecture.md §10.1), kept apart from PRESETS: the emulators
run them, and so does the kernel from version 1.4 (hls/presets/<name>.h, csim; §10.6)."""


def get_preset(name_or_preset: "str | HardwarePreset" = DEFAULT_PRESET) -> HardwarePreset:
    """Look a preset up by name (or pass a preset through)."""
    if isinstance(name_or_preset, HardwarePreset):
        return name_or_preset
    try:
        return PRESETS[name_or_preset] if name_or_preset in PRESETS else HOST_PRESETS[name_or_preset]
    except (KeyError, TypeError):
        raise PresetError(f"unknown preset {name_or_preset!r}; known: {sorted(PRESETS) + sorted(HOST_PRESETS)}") from None


def preset_by_fingerprint(fingerprint: int) -> "HardwarePreset | None":
    """The named preset with this fingerprint, or None."""
    for p in (*PRESETS.values(), *HOST_PRESETS.values()):
        if p.fingerprint == fingerprint:
            return p
    return None
