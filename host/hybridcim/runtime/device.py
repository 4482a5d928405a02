"""The one interface every executor backend implements (emulator, csim, board).

A device holds one loaded program. ``run(images)`` takes uint8 NCHW images and returns int64
outputs, (N, classes) for a 1x1 output tensor, else (N, H, W, C) -- the emulators' layout.
``trace(images)`` returns every tensor of the program, name -> int64 NHWC (N, H, W, C), the
input included, for locating a mismatch layer by layer. ``counters`` holds the activity
counters of everything run since the program was loaded.
"""
from __future__ import annotations

import abc
import os
from pathlib import Path

import numpy as np

from ..emulator.counters import LayerCounters, static_counters
from ..program.codec import decode, encode, max_image_bytes, read_program
from ..program.model import Program
from ..spec.hardware import HardwarePreset
from .errors import DeviceError


def as_program(program: "Program | bytes | str | os.PathLike", preset: HardwarePreset | None = None,
               limits=None, hybrid: "bool | str" = False) -> tuple[Program, bytes]:
    """(validated Program, its image bytes) from a Program, an image or an image path; a program
    with a hybrid (mode 1) layer is refused (UnsupportedModeError) unless ``hybrid`` is True (the
    device runs hybrid mode: a kernel >= 1.3); a string ``hybrid`` is the reason it does not, named
    in the error.

    ``limits``: the device kernel's capacities (an object with its ``max_*`` fields, e.g.
    :class:`~hybridcim.runtime.buffers.KernelInfo`). An image or file is then decoded with the
    kernel's LIMIT checks at the kernel's points (``decode(..., limits=...)``), so an image that is
    both over capacity and malformed gets the error class the kernel gives (program-format.md
    "Reader checks"). A file is read as :func:`~hybridcim.program.read_program` reads it (regular
    file, at most ``max_image_bytes`` of the preset its header names; errors name the file)."""
    prog, image = _as_program(program, preset, limits)
    layers = [f"{i} ({l.name!r})" for i, l in enumerate(prog.layers) if l.mode != 0]
    if layers and hybrid is not True:
        from ..program.errors import UnsupportedModeError
        why = hybrid if isinstance(hybrid, str) and hybrid else "this device does not run hybrid mode"
        raise UnsupportedModeError(f"layer {layers[0]} runs in hybrid mode 1: {why} (the reference emulator and "
                                   "the csim kernel >= 1.3 run it)")
    return prog, image


def _as_program(program, preset, limits):
    if isinstance(program, Program):
        image = encode(program)
        if preset is not None and preset.fingerprint != program.preset.fingerprint:
            decode(image, preset)  # raises PresetMismatchError with both presets named
        return program, image
    if isinstance(program, (bytes, bytearray, memoryview)):
        image = bytes(program)
        return decode(image, preset, limits=limits), image
    path = Path(program)
    if limits is None:
        prog = read_program(path, preset)
        return prog, path.read_bytes()
    from ..fileio import read_regular_file
    from ..program.errors import ProgramError
    image = read_regular_file(path, _file_cap, "program image")
    try:
        return decode(image, preset, limits=limits), image
    except ProgramError as e:
        err = type(e)(f"{path}: {e}")
        err.host_only = getattr(e, "host_only", False)
        raise err from None


def _file_cap(head: bytes) -> int:
    """read_program's file-size cap: max_image_bytes of the preset whose fingerprint the header
    holds (the largest over the named presets for any other header)."""
    from ..program.format import HEADER, MAGIC
    from ..spec.hardware import preset_by_fingerprint
    named = None
    if len(head) >= HEADER.size and head[:len(MAGIC)] == MAGIC:
        named = preset_by_fingerprint(HEADER.unpack_from(head, 0)[5])
    return max_image_bytes(named)


class Device(abc.ABC):
    """Base class: ``with SomeDevice(...) as dev: dev.load(p); logits = dev.run(images)``."""

    name = "device"

    def __init__(self) -> None:
        self._program: Program | None = None
        self._closed = False
        self._counters: list[LayerCounters] | None = None

    def _set_program(self, program: Program | None) -> None:
        """Make ``program`` the loaded one (counters start from zero)."""
        self._program = program
        self._counters = None

    @property
    def reports_counters(self) -> bool:
        """Whether ``counters`` is measured (False: a kernel without the counter block, all zeros)."""
        return True

    @property
    def counters(self) -> list[LayerCounters]:
        """Activity counters (architecture.md §7), one per layer, summed over every image run or
        traced since ``load`` or ``reset_counters``: the emulator's, or the kernel's counter block."""
        prog = self.program
        if self._counters is None:
            return [static_counters(l, prog, 0) for l in prog.layers]
        return list(self._counters)

    def reset_counters(self) -> None:
        self._counters = None

    def _add_counters(self, counters: list[LayerCounters]) -> None:
        self._counters = list(counters) if self._counters is None else \
            [a + b for a, b in zip(self._counters, counters)]

    @property
    @abc.abstractmethod
    def preset(self) -> HardwarePreset | None:
        """The hardware preset this device runs (None: any, until a program is loaded)."""

    @property
    def program(self) -> Program:
        if self._program is None:
            raise DeviceError(f"{self.name}: no program loaded (call load(program) first)")
        return self._program

    @abc.abstractmethod
    def load(self, program: "Program | bytes | str | os.PathLike") -> None:
        """Validate ``program`` against this device and make it the one that runs."""

    @abc.abstractmethod
    def run(self, images: np.ndarray, image_base: int = 0) -> np.ndarray:
        """int64 outputs of uint8 NCHW ``images``; ``image_base`` is the global index of
        ``images[0]`` (u32: keys the analog noise of hybrid layers, architecture.md §9.6)."""

    @abc.abstractmethod
    def trace(self, images: np.ndarray, image_base: int = 0) -> dict[str, np.ndarray]:
        """Every tensor (name -> int64 NHWC) of the program for ``images``."""

    def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise DeviceError(f"{self.name}: device is closed")

    def _board_input(self, images: np.ndarray) -> tuple[Program, np.ndarray]:
        """The loaded program and ``images`` checked and packed into the board's u64 image buffer layout."""
        from ..emulator.result import check_images
        from .buffers import pack_images
        self._check_open()
        prog = self.program
        check_images(prog, images)
        return prog, pack_images(images)

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        p = self.preset.name if self.preset else "any preset"
        loaded = self._program.name if self._program is not None else None
        return f"{type(self).__name__}({p}, program={loaded!r})"
