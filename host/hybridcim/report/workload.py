"""The activity counters a report costs, and how they were obtained (numpy only).

Every counter of architecture.md §7 but one follows from the program alone; ``input_ones``
(the 1 bits driven on the word lines) depends on the images. Two ways to get it:

* **measured** — run the fast emulator on real images (the report's default: the first
  ``limit`` CIFAR-10 test images when a CIFAR-10 folder is known), counters summed exactly;
* **assumed** — the static counters of one image with ``input_ones`` set to a fixed fraction
  of the driven word-line slots (50 %, ZigZag's assumption) when no images are given (in a
  dual-path layer ``tern_input_ones`` too, of the ternary word-line slots).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..emulator.counters import LayerCounters, dual_static_counters
from ..program.model import Program

ASSUMED_ONES = 0.5
"""1-bit density of the word-line inputs assumed without images (ZigZag's default)."""


@dataclass
class Workload:
    """counters: one LayerCounters per program layer over ``images`` images; source: one line
    saying how ``input_ones`` was obtained."""

    counters: list[LayerCounters]
    images: int
    source: str
    measured: bool


def measure(program: Program, images: np.ndarray | None = None, batch_size: int = 64,
            what: str = "images", backend: str = "numpy") -> Workload:
    """Counters of ``program`` on ``images`` (uint8 NCHW; measured), or of one image with
    ``input_ones`` at :data:`ASSUMED_ONES` when ``images`` is None or empty (assumed).

    ``backend``: the fast emulator's (numpy by default: a report runs a few dozen images, where
    the torch backend's start-up costs more than it saves; the counters are the same)."""
    if images is None or len(images) == 0:
        from ..cost import assume_input_ones
        static = [dual_static_counters(l, program, 1) for l in program.layers]  # dual-path layers included (§10.4)
        return Workload(assume_input_ones(program, static, ASSUMED_ONES), 1,
                        f"input_ones assumed: {ASSUMED_ONES:.0%} of the driven word-line bits are 1 "
                        "(ZigZag's assumption; no images were run); every other counter exact", False)
    from ..emulator import FastEmulator
    emu = FastEmulator(program, backend)
    total = None
    for i in range(0, len(images), batch_size):
        got = emu.run(images[i:i + batch_size]).counters
        total = got if total is None else [a + b for a, b in zip(total, got)]
    return Workload(total, len(images), f"counters measured by the fast emulator on {len(images)} {what}", True)


def cost_fields(program: Program, counters: "list[LayerCounters] | None", preset) -> dict:
    """The cost fields ``run --json`` and ``emulate --json`` add: ``energy_uj_per_image`` (µJ) and
    ``latency_us_per_image`` (µs, CIM chip latency) from ``counters`` (None or no image: both None),
    and ``cost_preset`` (the preset's name)."""
    from ..cost import cost, load_cost_preset
    preset = load_cost_preset(preset)
    out = {"energy_uj_per_image": None, "latency_us_per_image": None, "cost_preset": preset.name}
    if counters and max(c.images for c in counters) > 0:
        c = cost(program, counters, preset)
        out.update(energy_uj_per_image=c.energy_uj_per_image, latency_us_per_image=c.latency_us_per_image)
    return out
