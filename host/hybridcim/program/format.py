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
"""Minor version written for an all-digital program (1.0 images stay byte-identical; the kernel's format)."""
VERSION_MINOR_HYBRID = 1
"""Minor version written when a layer is hybrid (mode 1 and its hybrid section, format 1.1)."""
VERSION_MINOR_DUAL = 2
"""Minor version written when the preset has the second macro type or a layer is dual-path (format 1.2)."""
NO_TENSOR = 0xFFFF
ALIGN = 8

# header: 64 bytes
HEADER = struct.Struct("<8sHHIII" "HHHHHBB" "HHHH" "IIII" "B3x")
# tensor record: channels, height, width, bits, signed, exponent
TENSOR = struct.Struct("<HHHBBb7x")
# layer record: 96 bytes (format 1.0's fields; format 1.1 adds off_hybrid, below)
LAYER = struct.Struct("<BBBBBBH" "HHHH" "I" "HH" "ii" "b3x" "IIIIIIII" "28x")
LAYER_OFF_HYBRID = 68   # u32 offset of a hybrid layer's section (format 1.1); 0 in a digital layer
LAYER_OFF_DUAL = 72     # u32 offset of a dual-path layer's section (format 1.2, flags bit 0); else reserved 0

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


# reserved byte ranges (offset, length) of each record; all must be 0. LAYER_RESERVED is format 1.0's
# (the kernel's): it covers off_hybrid (68..71), which is 0 in a digital layer; a hybrid layer's
# reserved bytes are LAYER_RESERVED_HYBRID
HEADER_RESERVED = ((61, 3),)
TENSOR_RESERVED = ((9, 7),)
LAYER_RESERVED = ((33, 3), (68, 28))
LAYER_RESERVED_HYBRID = ((33, 3), (72, 24))
LAYER_RESERVED_DUAL = ((33, 3), (68, 4), (76, 20))   # a dual-path layer: off_hybrid 0 (mode 0), off_dual set

FLAG_DUAL = 1   # layer flags bit 0: dual-path layer (format >= 1.2, conv/fc, mode 0; architecture.md §10)

# header bytes 61..63 (format >= 1.2): the second macro type's geometry (architecture.md §10.1), 0 when absent
HDR_TERN_PRESENT = 0x80   # byte 63 bit 7
MODE_DIGITAL = 0
MODE_HYBRID = 1   # format >= 1.1, conv/fc only (architecture.md §9)

# embedded manifest schema limits (program-format.md "Embedded manifest")
MANIFEST_MAX_DEPTH = 32      # nesting of JSON arrays/objects, the top-level object counting 1
MANIFEST_MAX_NAME = 256      # characters of a program, tensor or layer name

# column map entry: filter | plane << 16 | used << 24; bits 25..31 are 0
CM_PLANE_SHIFT = 16
CM_USED_SHIFT = 24
