"""Typed errors of the runtime: devices, the kernel's status word, the csim build.

A status word the kernel returns is ``code | detail << 16`` (hls/hybridcim_accel.h). A code
that means "bad program" raises a class that is both a :class:`KernelError` and the matching
:mod:`hybridcim.program.errors` class, so ``except ChecksumError`` catches the host's and the
kernel's verdict alike.
"""
from __future__ import annotations

from ..program.errors import (BadMagicError, CapacityError, ChecksumError, InvalidProgramError,  # noqa: F401
                              PresetMismatchError, ProgramError, TruncatedError, VersionError)


class DeviceError(RuntimeError):
    """A device cannot be opened or used (missing library, no board, bad buffers)."""


class DeviceNotAvailableError(DeviceError):
    """The backend's software or hardware is not present here (pynq, a board, g++, hls4ml)."""


class CSimBuildError(DeviceError):
    """g++ failed to build the csim library; the message holds g++'s own stderr."""


class KernelError(DeviceError):
    """The kernel returned a non-zero status word."""

    code: int = -1
    detail: int = 0


# status codes of hls/hybridcim_accel.h -> (name, meaning, program error class or None)
STATUS = {
    0: ("OK", "success", None),
    1: ("ARGS", "bad kernel arguments (null buffer or an output buffer too small)", None),
    2: ("MAGIC", "not a hybridcim program image (bad magic)", BadMagicError),
    3: ("VERSION", "program format major version not supported by this kernel", VersionError),
    4: ("SIZE", "header image_bytes differs from the program buffer size", TruncatedError),
    5: ("CHECKSUM", "CRC-32 of the program image does not match its header (corrupt image)", ChecksumError),
    6: ("PRESET", "program compiled for another hardware preset than this kernel's", PresetMismatchError),
    7: ("LIMIT", "program exceeds a capacity of the kernel's on-chip buffers", CapacityError),
    8: ("LAYER", "malformed layer record or section", InvalidProgramError),
    9: ("SCRATCH", "scratch buffer too small for the program's tensors", None),
    10: ("INPUT", "an input pixel exceeds the input tensor's bit width", None),
    11: ("TENSOR", "malformed tensor table", InvalidProgramError),
    12: ("HYBRID", "malformed hybrid section of a hybrid-mode layer (levels, thresholds, saliency or noise)",
         InvalidProgramError),
}
_CLASSES: dict[int, type] = {}


def kernel_error(status: int, where: str = "kernel", layer_names: list[str] | None = None) -> KernelError:
    """The exception for a non-zero kernel status word; names the layer when the detail is one."""
    code, detail = status & 0xFFFF, status >> 16
    name, meaning, base = STATUS.get(code, (f"UNKNOWN{code}", "unknown status code", None))
    if code not in _CLASSES:
        bases = (KernelError, base) if base is not None else (KernelError,)
        _CLASSES[code] = type(f"Kernel{name.title()}Error", bases, {})
    ctx = ""
    if code in (7, 8, 12) and detail != 0xFFFF:
        lname = layer_names[detail] if layer_names and detail < len(layer_names) else f"#{detail}"
        ctx = f" at layer {detail} ({lname!r})"
    elif code == 10:
        ctx = f" in image {detail}"
    elif code == 11 and detail != 0xFFFF:
        ctx = f" at tensor {detail}"
    err = _CLASSES[code](f"{where}: status {code} ({name}): {meaning}{ctx}")
    err.code, err.detail = code, detail
    return err
