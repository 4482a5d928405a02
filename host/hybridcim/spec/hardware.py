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
                f"acc_bits={self.acc_bits};adc_bits={self.adc_bits};precisions={prec}")

    @property
    def fingerprint(self) -> int:
        """CRC-32 of :meth:`canonical` (unsigned 32-bit)."""
        return zlib.crc32(self.canonical().encode("ascii")) & 0xFFFFFFFF

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["precisions"] = list(self.precisions)
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


PRESETS: dict[str, HardwarePreset] = {
    p.name: p
    for p in (
        HardwarePreset("sun-mars-256"),
        HardwarePreset("tiny-64", rows=64, cols=64, rows_active=16, group_width=8, n_macros=2, adc_bits=4),
        HardwarePreset("wide-512", rows=512, cols=512, rows_active=32, group_width=8, n_macros=8),
    )
}
DEFAULT_PRESET = "sun-mars-256"


def get_preset(name_or_preset: "str | HardwarePreset" = DEFAULT_PRESET) -> HardwarePreset:
    """Look a preset up by name (or pass a preset through)."""
    if isinstance(name_or_preset, HardwarePreset):
        return name_or_preset
    try:
        return PRESETS[name_or_preset]
    except KeyError:
        raise PresetError(f"unknown preset {name_or_preset!r}; known: {sorted(PRESETS)}") from None


def preset_by_fingerprint(fingerprint: int) -> "HardwarePreset | None":
    """The named preset with this fingerprint, or None."""
    for p in PRESETS.values():
        if p.fingerprint == fingerprint:
            return p
    return None
