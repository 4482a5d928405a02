"""Runtime: run a program image on a device and check it against a reference.

Devices share one interface (:class:`Device`): :class:`EmulatorDevice` (golden numpy/torch
emulator), :class:`CSimDevice` (the HLS C++ kernel compiled with g++, called through ctypes
with the board's buffer layout) and :class:`PynqDevice` (the FPGA overlay). :class:`Session`
streams CIFAR-10 through a device and compares every output with a reference executor.
Importing this package needs numpy only; ctypes libraries and pynq load lazily.
"""
from .buffers import KernelInfo, check_capacity, pack_images, scratch_layout, tensors_from_scratch
from .device import Device
from .emulator_device import EmulatorDevice
from .errors import (CapacityError, CSimBuildError, DeviceError, DeviceNotAvailableError, KernelError,
                     kernel_error)

_LAZY = {"CSimDevice": ".csim_device", "PynqDevice": ".pynq_device", "Session": ".session",
         "SessionReport": ".session", "Mismatch": ".session", "first_mismatch": ".session"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_device(backend: str, preset=None, **kw) -> Device:
    """A device by backend name: 'emulator', 'csim' or 'pynq'."""
    if backend == "emulator":
        return EmulatorDevice(preset, **kw)
    if backend == "csim":
        from .csim_device import CSimDevice
        return CSimDevice(preset or "sun-mars-256", **kw)
    if backend == "pynq":
        from .pynq_device import PynqDevice
        return PynqDevice(preset=preset, **kw)
    raise ValueError(f"unknown backend {backend!r}; known: emulator, csim, pynq")


__all__ = ["Device", "EmulatorDevice", "CSimDevice", "PynqDevice", "Session", "SessionReport", "Mismatch",
           "first_mismatch", "open_device", "KernelInfo", "check_capacity", "pack_images", "scratch_layout",
           "tensors_from_scratch", "CapacityError", "CSimBuildError", "DeviceError", "DeviceNotAvailableError",
           "KernelError", "kernel_error"]
