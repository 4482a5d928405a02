"""Column result of one macro cycle (architecture.md §4, §9).

In digital mode the adder tree returns the bit-line count n (0..rows_active) unchanged.
The analog path (ADC transfer function) is reserved for a later spec version.
"""
from __future__ import annotations

import numpy as np

MODE_DIGITAL = 0
MODE_HYBRID = 1


def column_result(count: np.ndarray, mode: int = MODE_DIGITAL) -> np.ndarray:
    """Sensed value of bit-line counts ``count`` (int, 0..rows_active) in ``mode``."""
    if mode == MODE_DIGITAL:
        return count
    raise NotImplementedError(f"CIM mode {mode} (hybrid/analog) is reserved in spec 1.0")
