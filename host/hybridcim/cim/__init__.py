"""The CIM arithmetic as pure numpy functions (architecture.md §4, §6).

Classes elsewhere only compose these. Every function states its bit widths and layouts.
"""
from .bitplanes import pack_rows, twos_complement_planes, unsigned_planes, plane_sign
from .popcount import popcount64
from .requant import clamp, requantize, rshift_rne
from .macro import column_result

__all__ = ["pack_rows", "twos_complement_planes", "unsigned_planes", "plane_sign", "popcount64",
           "clamp", "requantize", "rshift_rne", "column_result"]
