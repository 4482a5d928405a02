"""Column result of one macro cycle (architecture.md §4, §9).

In digital mode the adder tree returns the bit-line count n (0..rows_active) unchanged.
In hybrid mode the result depends on the pair's path (digital, analog through the ADC, or
skipped): :mod:`hybridcim.cim.hybrid` computes it (architecture.md §9).
"""
from __future__ import annotations

import numpy as np

MODE_DIGITAL = 0
MODE_HYBRID = 1


def column_result(count: np.ndarray, mode: int = MODE_DIGITAL) -> np.ndarray:
    """Sensed value of bit-line counts ``count`` (int, 0..rows_active) in ``mode``."""
    if mode == MODE_DIGITAL:
        return count
    raise ValueError(f"CIM mode {mode}: a hybrid column result depends on the pair's path; "
                     "use hybridcim.cim.hybrid (pair_path, adc_code, adc_count)")
