"""Binary layout constants of the program image (docs/program-format.md).

Little-endian throughout. All offsets are absolute byte offsets from the image start and
8-byte aligned.
"""
from __future__ import annotations

import enum
import struct

MAGIC = b"HCIMPROG"
VERSION_MAJOR = 1
VERSION_MINOR = 0
NO_TENSOR = 0xFFFF
ALIGN = 8

# header: 64 bytes
HEADER = struct.Struct("<8sHHIII" "HHHHHBB" "HHHH" "IIII" "B3x")
# tensor record: channels, height, width, bits, signed, exponent
TENSOR = struct.Struct("<HHHBBb7x")
# layer record: 96 bytes
LAYER = struct.Struct("<BBBBBBH" "HHHH" "I" "HH" "ii" "b3x" "IIIIIIII" "28x")

assert HEADER.size == 64 and TENSOR.size == 16 and LAYER.size == 96


class Op(enum.IntEnum):
    """Layer operation codes (architecture.md §3)."""

    CONV = 1
    FC = 2
    MAXPOOL = 3
    AVGPOOL = 4

    @property
    def is_cim(self) -> bool:
        """True for layers that run on the CIM macros (conv, fc)."""
        return self in (Op.CONV, Op.FC)


def colmap_entry(filter_index: int, plane: int) -> int:
    """u32 column map entry of a used column: filter | plane << 16 | 1 << 24."""
    return filter_index | (plane << 16) | (1 << 24)


def align(n: int) -> int:
    """Round n up to the section alignment."""
    return (n + ALIGN - 1) // ALIGN * ALIGN


# reserved byte ranges (offset, length) of each record; all must be 0 in format 1.0
HEADER_RESERVED = ((61, 3),)
TENSOR_RESERVED = ((9, 7),)
LAYER_RESERVED = ((33, 3), (68, 28))

# embedded manifest schema limits (program-format.md "Embedded manifest")
MANIFEST_MAX_DEPTH = 32      # nesting of JSON arrays/objects, the top-level object counting 1
MANIFEST_MAX_NAME = 256      # characters of a program, tensor or layer name

# column map entry: filter | plane << 16 | used << 24; bits 25..31 are 0
CM_PLANE_SHIFT = 16
CM_USED_SHIFT = 24
