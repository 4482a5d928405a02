"""EmulatorDevice: the golden fast emulator behind the Device interface."""
from __future__ import annotations

import os

import numpy as np

from ..emulator.fast import FastEmulator
from ..program.model import Program
from ..spec.hardware import HardwarePreset, get_preset
from .device import Device, as_program


class EmulatorDevice(Device):
    """Runs programs with :class:`~hybridcim.emulator.FastEmulator` (any preset unless one is given; hybrid
    layers, architecture.md §9, and dual-path layers, §10, included)."""

    name = "emulator"

    def __init__(self, preset: "str | HardwarePreset | None" = None, backend: str = "auto"):
        super().__init__()
        self._preset = get_preset(preset) if preset is not None else None
        self.backend = backend
        self._emu: FastEmulator | None = None

    @property
    def preset(self) -> HardwarePreset | None:
        if self._preset is None and self._program is not None:
            return self._program.preset
        return self._preset

    def load(self, program: "Program | bytes | str | os.PathLike") -> None:
        self._check_open()
        prog, _ = as_program(program, self._preset, hybrid=True)  # the fast emulator runs hybrid mode (§9)
        self._emu = FastEmulator(prog, backend=self.backend)
        self._set_program(prog)

    def _emulator(self) -> FastEmulator:
        self._check_open()
        _ = self.program  # raises if nothing is loaded
        return self._emu

    def run(self, images: np.ndarray, image_base: int = 0) -> np.ndarray:
        res = self._emulator().run(images, image_base=image_base)
        self._add_counters(res.counters)
        return res.outputs

    def trace(self, images: np.ndarray, image_base: int = 0) -> dict[str, np.ndarray]:
        res = self._emulator().run(images, trace=True, image_base=image_base)
        self._add_counters(res.counters)
        return res.tensors
