"""Integer number formats shared by Python and the HLS C++ (architecture.md §2).

One definition: range, numpy container and the ``ap_int`` spelling the C++ uses.
``tests/hls/test_types_header.py`` checks the HLS header against this table.

>>> IntFormat(4, signed=True).min, IntFormat(4, signed=True).max
(-8, 7)
>>> IntFormat(4, signed=False).ap_type
'ap_uint<4>'
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class IntFormat:
    """A two's complement (signed) or unsigned integer of ``bits`` bits (1..32)."""

    bits: int
    signed: bool

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= 32:
            raise ValueError(f"bits={self.bits} must be in 1..32")

    @property
    def min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def numpy_dtype(self) -> np.dtype:
        """Smallest numpy integer container."""
        for b in (8, 16, 32):
            if self.bits <= b:
                return np.dtype(f"int{b}" if self.signed else f"uint{b}")
        raise AssertionError("unreachable")

    @property
    def ap_type(self) -> str:
        return f"ap_int<{self.bits}>" if self.signed else f"ap_uint<{self.bits}>"

    def contains(self, a: np.ndarray) -> bool:
        """True if every element of ``a`` is representable."""
        a = np.asarray(a)
        return a.size == 0 or (int(a.min()) >= self.min and int(a.max()) <= self.max)


UINT8 = IntFormat(8, signed=False)
INT32 = IntFormat(32, signed=True)
