"""What every executor returns, and the input check they all share."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..program.model import Program
from .counters import LayerCounters


class InputShapeError(ValueError):
    """Images do not match the program input (shape, dtype or range)."""


@dataclass
class ExecutionResult:
    """outputs: int64 (N, classes) when the output is 1x1 spatial, else (N, H, W, C).
    counters: one LayerCounters per layer. tensors: name -> int64 NHWC array of every
    tensor (only with ``trace=True``), the program input included."""

    outputs: np.ndarray
    counters: list[LayerCounters]
    tensors: dict[str, np.ndarray] | None = field(default=None)


def check_images(program: Program, images: np.ndarray) -> np.ndarray:
    """Validate uint8-range NCHW images against the program input; return int64 NHWC."""
    t = program.input
    images = np.asarray(images)
    want = (t.channels, t.height, t.width)
    if images.ndim != 4 or images.shape[1:] != want:
        raise InputShapeError(f"images must be (N, {t.channels}, {t.height}, {t.width}) NCHW for program "
                              f"{program.name!r}, got {images.shape}")
    if images.dtype.kind not in "ui":
        raise InputShapeError(f"images must be integers (uint8 pixels), got dtype {images.dtype}")
    if images.size and (images.min() < 0 or images.max() > t.fmt.max):
        raise InputShapeError(f"image values must be in [0, {t.fmt.max}], got [{images.min()}, {images.max()}]")
    return images.transpose(0, 2, 3, 1).astype(np.int64)


def final_output(program: Program, y: np.ndarray) -> np.ndarray:
    """Program output in the result layout: (N, C) for a 1x1 output, else NHWC."""
    t = program.output
    return y.reshape(y.shape[0], t.channels) if (t.height, t.width) == (1, 1) else y
