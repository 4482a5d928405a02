"""CSimDevice: the HLS kernel compiled with g++ (hls/), called through ctypes.

The buffers passed are exactly the board's DDR buffers (:mod:`.buffers`): u64 program words,
u64-padded uint8 NCHW images, int32 outputs and the int32 scratch arena; the only difference
from :class:`~.pynq_device.PynqDevice` is the transport. The library is built on first use
(:func:`.csim_build.build`) and shared by every device of the process; calls are serialized
(the kernel's on-chip memories are static arrays).
"""
from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

import numpy as np

from ..emulator.result import final_output
from ..program.model import Program
from ..spec.hardware import HardwarePreset, get_preset
from . import buffers
from .buffers import FLAG_COUNTERS, FLAG_TRACE, INFO_FIELDS, KernelInfo
from .device import Device, as_program
from .errors import DeviceError, kernel_error

_LIBS: dict[str, "CSimLibrary"] = {}
_LOCK = threading.Lock()
_U64P = ctypes.POINTER(ctypes.c_uint64)
_I32P = ctypes.POINTER(ctypes.c_int32)
_U32P = ctypes.POINTER(ctypes.c_uint32)


def _ptr(a: np.ndarray, typ):
    return a.ctypes.data_as(typ)


class CSimLibrary:
    """The loaded shared library of one preset: raw kernel calls with numpy buffers."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            lib = ctypes.CDLL(str(self.path))
        except OSError as e:
            raise DeviceError(f"cannot load the csim library {self.path}: {e}") from None
        lib.hcim_csim_run.argtypes = [_U64P, ctypes.c_uint32, _U64P, ctypes.c_uint32, ctypes.c_uint32, _I32P,
                                      ctypes.c_uint32, _I32P, ctypes.c_uint32, ctypes.c_uint32, _U64P,
                                      ctypes.c_uint32, ctypes.c_uint32]
        lib.hcim_csim_run.restype = ctypes.c_uint32
        lib.hcim_csim_layout.argtypes = [_U64P, ctypes.c_uint32, _U32P, _U32P]
        lib.hcim_csim_layout.restype = ctypes.c_uint32
        lib.hcim_csim_info.argtypes = [_U32P, ctypes.c_uint32]
        lib.hcim_csim_info.restype = ctypes.c_uint32
        lib.hcim_csim_preset_name.restype = ctypes.c_char_p
        lib.hcim_csim_n_loops.restype = ctypes.c_uint32
        for fn in ("hcim_csim_loop_ii", "hcim_csim_loop_depth"):
            getattr(lib, fn).argtypes, getattr(lib, fn).restype = [ctypes.c_uint32], ctypes.c_uint32
        lib.hcim_csim_loop_name.argtypes, lib.hcim_csim_loop_name.restype = [ctypes.c_uint32], ctypes.c_char_p
        for fn in ("hcim_csim_loop_stats", "hcim_csim_burst_stats"):
            getattr(lib, fn).argtypes, getattr(lib, fn).restype = [ctypes.c_uint32, _U64P, _U64P], ctypes.c_int
        self.lib = lib
        buf = np.zeros(len(INFO_FIELDS), dtype=np.uint32)
        n = lib.hcim_csim_info(_ptr(buf, _U32P), len(buf))
        if n != len(INFO_FIELDS):
            raise DeviceError(f"{self.path}: hcim_csim_info returned {n} fields, expected {len(INFO_FIELDS)} "
                              "(library and Python package out of sync: rebuild)")
        self.info = KernelInfo(*(int(v) for v in buf))
        self.preset_name = lib.hcim_csim_preset_name().decode()
        self.lock = threading.Lock()

    def layout(self, words: np.ndarray) -> tuple[int, int, int]:
        """(status, scratch words per image, output words per image) of a program buffer."""
        s, o = np.zeros(1, np.uint32), np.zeros(1, np.uint32)
        with self.lock:
            rc = self.lib.hcim_csim_layout(_ptr(words, _U64P), len(words), _ptr(s, _U32P), _ptr(o, _U32P))
        return int(rc), int(s[0]), int(o[0])

    def run(self, words: np.ndarray, images: np.ndarray, n: int, out: np.ndarray, scratch: np.ndarray,
            flags: int = 0, counters: np.ndarray | None = None, image_base: int = 0) -> int:
        """One kernel call over the board-layout buffers; returns the status word.

        ``counters`` (u64) receives the activity counters when ``flags`` has FLAG_COUNTERS;
        ``image_base`` (u32) is the global index of the first image (the ``image_base`` register).
        """
        if not 0 <= int(image_base) <= 0xFFFFFFFF:
            raise DeviceError(f"image_base {image_base} must be a u32")
        cnt = counters if counters is not None else np.zeros(0, dtype=np.uint64)
        for name, a, dt in (("program", words, np.uint64), ("images", images, np.uint64), ("out", out, np.int32),
                            ("scratch", scratch, np.int32), ("counters", cnt, np.uint64)):
            if a.dtype != dt or not a.flags.c_contiguous:
                raise DeviceError(f"{name} buffer must be C-contiguous {np.dtype(dt)}, got {a.dtype}")
        cnt_ptr = _ptr(cnt, _U64P) if counters is not None else None
        with self.lock:
            return int(self.lib.hcim_csim_run(_ptr(words, _U64P), words.size, _ptr(images, _U64P), images.size, n,
                                              _ptr(out, _I32P), out.size, _ptr(scratch, _I32P), scratch.size, flags,
                                              cnt_ptr, cnt.size, int(image_base)))

    def loops(self) -> list[dict]:
        """The kernel's loop table (hls/hcim_loops.h): name, ii (0 = not pipelined), depth."""
        lib = self.lib
        return [{"name": lib.hcim_csim_loop_name(k).decode(), "ii": int(lib.hcim_csim_loop_ii(k)),
                 "depth": int(lib.hcim_csim_loop_depth(k))} for k in range(lib.hcim_csim_n_loops())]

    def profile(self, n_layers: int) -> list[dict]:
        """Per layer of the last call: loop entries and iterations, AXI bursts and bytes [read, write]."""
        n = int(self.lib.hcim_csim_n_loops())
        out = []
        with self.lock:
            for i in range(n_layers):
                e, it = np.zeros(n, np.uint64), np.zeros(n, np.uint64)
                b, nb = np.zeros(2, np.uint64), np.zeros(2, np.uint64)
                if self.lib.hcim_csim_loop_stats(i, _ptr(e, _U64P), _ptr(it, _U64P)) or \
                        self.lib.hcim_csim_burst_stats(i, _ptr(b, _U64P), _ptr(nb, _U64P)):
                    raise DeviceError(f"{self.path}: no loop profile for layer {i} (library built without "
                                      "HCIM_CYCLE_COUNT, or the layer is past the kernel's tables)")
                out.append({"entries": [int(v) for v in e], "iters": [int(v) for v in it],
                            "bursts": [int(v) for v in b], "bytes": [int(v) for v in nb]})
        return out


def load_library(preset: "str | HardwarePreset" = "sun-mars-256", path: "str | os.PathLike | None" = None) -> CSimLibrary:
    """The csim library of ``preset``, built on demand (or the one at ``path``), loaded once per process."""
    from .csim_build import build
    with _LOCK:
        lib_path = Path(path) if path is not None else build(preset)
        key = str(lib_path.resolve())
        if key not in _LIBS:
            _LIBS[key] = CSimLibrary(lib_path)
        return _LIBS[key]


class CSimDevice(Device):
    """The HLS C++ kernel in C simulation, with the board's buffer layout."""

    name = "csim"

    def __init__(self, preset: "str | HardwarePreset" = "sun-mars-256", library: "str | os.PathLike | None" = None,
                 batch_size: int = 64):
        super().__init__()
        self._preset = get_preset(preset)
        self.lib = load_library(self._preset, library)
        if not self.lib.info.matches(self._preset):
            raise DeviceError(f"csim library {self.lib.path} is built for fingerprint {self.lib.info.fingerprint:08x} "
                              f"({self.lib.preset_name}), not preset {self._preset.name!r}")
        self.batch_size = batch_size
        self._words: np.ndarray | None = None
        self._per_image = self._out_words = 0
        self._profile = None

    @property
    def preset(self) -> HardwarePreset:
        return self._preset

    @property
    def info(self) -> KernelInfo:
        return self.lib.info

    def load(self, program: "Program | bytes | str | os.PathLike") -> None:
        """Host checks (decode, validate, capacity), then the kernel's own image checks. Hybrid
        programs run on a kernel >= 1.3; dual-path programs (architecture.md §10) on a kernel >= 1.4
        built for their preset with the second macro type (``CSimDevice("tiny-64-dual")``)."""
        self._check_open()
        info = self.lib.info
        prog, image = as_program(program, self._preset, limits=info, hybrid=True if (
            info.kernel_major, info.kernel_minor) >= (1, 3) else f"csim kernel {info.kernel_version} predates hybrid mode")
        buffers.check_capacity(prog, self.lib.info)
        self.load_image(image, prog)

    def load_image(self, image: bytes, program: Program | None = None) -> None:
        """Hand a raw image to the kernel's checks only (no host validation): the negative-test path.

        Raises the kernel's error (a KernelError that is also the matching ProgramError).
        """
        words = buffers.program_words(image) if len(image) % 8 == 0 else \
            buffers.program_words(bytes(image) + b"\0" * (-len(image) % 8))
        rc, per_image, out_words = self.lib.layout(words)
        names = [l.name for l in program.layers] if program is not None else None
        if rc:
            raise kernel_error(rc, f"{self.name} kernel ({self._preset.name})", names)
        if program is not None:
            _, host_per = buffers.scratch_layout(program)
            if (host_per, buffers.output_words(program)) != (per_image, out_words):
                raise DeviceError(f"kernel and host disagree on the buffer layout: kernel S={per_image}, "
                                  f"out={out_words}; host S={host_per}, out={buffers.output_words(program)}")
        self._words, self._per_image, self._out_words = words, per_image, out_words
        self._set_program(program)

    def _call(self, images: np.ndarray, trace: bool, image_base: int = 0) -> tuple[np.ndarray, np.ndarray]:
        prog, packed = self._board_input(images)
        n = len(images)
        if not (0 <= image_base and image_base + max(n, 1) - 1 <= 0xFFFFFFFF):
            raise DeviceError(f"image_base {image_base}: global image indices must fit a u32")
        out = np.zeros(n * self._out_words, dtype=np.int32)
        scratch = np.zeros(self._per_image * (n if trace else 1), dtype=np.int32)
        counters = np.zeros(buffers.counters_words(prog), dtype=np.uint64)
        rc = self.lib.run(self._words, packed, n, out, scratch, FLAG_COUNTERS | (FLAG_TRACE if trace else 0), counters,
                          image_base)
        if rc:
            raise kernel_error(rc, f"{self.name} kernel ({self._preset.name})", [l.name for l in prog.layers])
        self._add_counters(buffers.counters_from_buffer(prog, counters))
        self._profile = (self.lib.profile(len(prog.layers)), n)
        return out, scratch

    def run(self, images: np.ndarray, image_base: int = 0) -> np.ndarray:
        """Outputs of ``images`` in kernel calls of ``batch_size`` images; call k gets image_base
        ``image_base + k * batch_size``, so the bits do not depend on the batching."""
        images = np.asarray(images)
        parts = []
        for s in range(0, max(len(images), 1), self.batch_size):
            out, _ = self._call(images[s:s + self.batch_size], trace=False, image_base=image_base + s)
            parts.append(out)
        t = self.program.output
        y = np.concatenate(parts).astype(np.int64).reshape(len(images), t.height, t.width, t.channels)
        return final_output(self.program, y)

    def trace(self, images: np.ndarray, image_base: int = 0) -> dict[str, np.ndarray]:
        images = np.asarray(images)
        _, scratch = self._call(images, trace=True, image_base=image_base)
        return buffers.tensors_from_scratch(self.program, scratch, len(images))

    def kernel_profile(self) -> dict:
        """Loop and DDR profile of the last kernel call (hls/hcim_loops.h), for the cycle model:
        ``{"loops": [{"name", "ii", "depth"}...], "layers": [{"entries", "iters", "bursts": [r, w],
        "bytes": [r, w]} per program layer], "images": images of that call}``. Counts are summed over
        the call's images; the image load counts with layer 0 and the output copy with the last."""
        if getattr(self, "_profile", None) is None:
            raise DeviceError(f"{self.name}: no kernel call yet (run or trace images first)")
        layers, n = self._profile
        return {"loops": self.lib.loops(), "layers": layers, "images": n}
