"""The kernel's on-chip capacity per preset: the host-side mirror of ``HCIM_MAX_*`` in hls/presets/*.h.

A program over these is refused by the kernel (status LIMIT); the host uses them where no
kernel is at hand (a board-less machine, a pip install without hls/), e.g. to bound the size
of a program file before reading it. Every preset with a header (PRESETS and the -dual presets of
HOST_PRESETS) has an entry; tests/spec/test_capacity.py checks every value against the headers. Field meanings as in the headers: filters, column groups and row blocks of one
CIM layer; 64-bit words per pixel per bit plane (channels <= 64 * max_cwords); packed input
words of one CIM layer (H * W * bits * ceil(C / 64)).
"""
from __future__ import annotations

from dataclasses import dataclass

from .hardware import HardwarePreset, get_preset


@dataclass(frozen=True)
class KernelLimits:
    """Capacity constants of one kernel build (counts, not bytes)."""

    max_tensors: int
    max_layers: int
    max_filters: int
    max_groups: int
    max_rowblocks: int
    max_cwords: int
    max_pack_words: int


KERNEL_LIMITS: dict[str, KernelLimits] = {
    "sun-mars-256": KernelLimits(128, 128, 512, 512, 128, 16, 16384),
    "tiny-64": KernelLimits(128, 128, 512, 512, 512, 16, 16384),
    "wide-512": KernelLimits(128, 128, 512, 512, 256, 16, 16384),
    # kernel 1.4 builds for the presets with the second macro type (HOST_PRESETS, architecture.md §10.6)
    "sun-mars-256-dual": KernelLimits(128, 128, 512, 512, 128, 16, 16384),
    "tiny-64-dual": KernelLimits(128, 128, 512, 512, 512, 16, 16384),
}


def kernel_limits(preset: "str | HardwarePreset") -> KernelLimits:
    """Limits of the kernel built for ``preset`` (a named preset; PresetError otherwise)."""
    return KERNEL_LIMITS[get_preset(preset).name]
