"""PynqDevice: the overlay on a PYNQ board (pynq.Overlay + pynq.allocate), same buffers as csim.

Setup on the board: ``bitstreams/<board>/{hybridcim.bit, hybridcim.hwh, manifest.json}`` from
``overlay/build.sh``, found as :mod:`.bitstream_path` says (a folder, or a board name searched in
``$HYBRIDCIM_BITSTREAMS``, the checkout's ``bitstreams/``, the installed package's data). ``load`` checks the manifest (kernel major version, preset fingerprint,
capacity) against the program before anything touches the FPGA; the kernel checks the image
again (CRC, preset) and a refusal is raised as the matching error.

Control registers (s_axilite "control"): offsets come from the HLS-generated driver header
``xhybridcim_accel_hw.h`` when the manifest names one, else from the .hwh register map pynq
parses, else from :data:`REGISTERS` (what Vitis HLS generates for this prototype with 32-bit
m_axi addresses; docs/program-format.md "Runtime buffers"). This module cannot be exercised without a board;
off-board it fails with DeviceNotAvailableError, never an ImportError traceback.
"""
from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np

from ..emulator.result import final_output
from ..program.model import Program
from ..spec.hardware import HardwarePreset, get_preset
from . import buffers
from .bitstream import load_manifest, manifest_kernel_info
from .bitstream_path import find_board_dir
from .device import Device, as_program
from .errors import DeviceError, DeviceNotAvailableError, kernel_error

REGISTERS = {"ap_ctrl": 0x00, "gie": 0x04, "ier": 0x08, "isr": 0x0C, "ap_return": 0x10,
             "prog": 0x18, "prog_words": 0x20, "images": 0x28, "image_words": 0x30, "n_images": 0x38,
             "out": 0x40, "out_words": 0x48, "scratch": 0x50, "scratch_words": 0x58, "flags": 0x60,
             "counters": 0x68, "counters_words": 0x70}
AP_START, AP_DONE = 0x1, 0x2


def offsets_from_driver_header(text: str) -> dict[str, int]:
    """Register offsets from Vitis HLS's ``xhybridcim_accel_hw.h`` (``..._CONTROL_ADDR_<NAME>[_DATA] 0x..``).

    >>> offsets_from_driver_header("#define XHYBRIDCIM_ACCEL_CONTROL_ADDR_N_IMAGES_DATA 0x38\\n"
    ...                            "#define XHYBRIDCIM_ACCEL_CONTROL_ADDR_AP_RETURN 0x10")
    {'n_images': 56, 'ap_return': 16}
    """
    import re
    out = {}
    for name, value in re.findall(r"#define\s+XHYBRIDCIM_ACCEL_CONTROL_ADDR_(\w+?)(?:_DATA)?\s+0x([0-9a-fA-F]+)", text):
        key = name.lower()
        if key.endswith(("_bits", "_ctrl")) and key != "ap_ctrl":
            continue
        out[key] = int(value, 16)
    return out


def _import_pynq():
    try:
        import pynq  # noqa: F401  (heavy; only on the board path)
    except Exception as e:  # pynq raises more than ImportError off-board
        raise DeviceNotAvailableError(f"pynq is not importable here ({type(e).__name__}: {e}); the pynq backend "
                                      "runs on a PYNQ board image with pynq==4.0.0 (pip install -e '.[board]')") from None
    return pynq


class PynqDevice(Device):
    """The hybridcim overlay on a PYNQ board."""

    name = "pynq"

    def __init__(self, board: str = "pynq-z2", bitstream_dir: "str | os.PathLike | None" = None,
                 preset: "str | HardwarePreset | None" = None, batch_size: int = 64, timeout_s: float = 60.0):
        super().__init__()
        self.board_dir = find_board_dir(board, bitstream_dir)  # bitstream_path.py: search order
        self.manifest = load_manifest(self.board_dir)
        self.info = manifest_kernel_info(self.manifest)
        self._preset = HardwarePreset.from_dict(self.manifest["preset"])
        if preset is not None and get_preset(preset).fingerprint != self._preset.fingerprint:
            raise DeviceError(f"bitstream {self.board_dir} is built for preset {self._preset.name!r}, "
                              f"not {get_preset(preset).name!r}")
        with warnings.catch_warnings():  # off-board pynq warns "No devices found" at import and lookup
            warnings.simplefilter("ignore")
            pynq = _import_pynq()
            devices = pynq.Device.devices
        if not devices:
            raise DeviceNotAvailableError("pynq found no FPGA device: PynqDevice runs on a PYNQ board")
        self._pynq = pynq
        self.overlay = pynq.Overlay(str(self.board_dir / self.manifest["bitstream"]))
        self.ip = getattr(self.overlay, self.manifest.get("ip_name", "hybridcim_accel_0"))
        self.regs = self._register_offsets()
        self.batch_size, self.timeout_s = batch_size, timeout_s
        self._prog_buf = None
        self._per_image = self._out_words = 0

    def _register_offsets(self) -> dict[str, int]:
        regs = dict(REGISTERS)
        header = self.manifest.get("driver_header")
        if header and (self.board_dir / header).is_file():
            found = offsets_from_driver_header((self.board_dir / header).read_text())
            regs.update({k: v for k, v in found.items() if k in regs})
            return regs
        rmap = getattr(self.ip, "register_map", None)
        for name in list(regs):
            reg = getattr(rmap, name, None) if rmap is not None else None
            addr = getattr(reg, "address", None)
            if addr is not None:
                regs[name] = int(addr)
        return regs

    @property
    def preset(self) -> HardwarePreset:
        return self._preset

    def load(self, program: "Program | bytes | str | os.PathLike") -> None:
        self._check_open()
        prog, image = as_program(program, self._preset)
        buffers.check_capacity(prog, self.info)
        words = buffers.program_words(image)
        buf = self._pynq.allocate(shape=words.shape, dtype=np.uint64)
        buf[:] = words
        buf.sync_to_device()
        if self._prog_buf is not None:
            self._prog_buf.freebuffer()
        self._prog_buf = buf
        _, self._per_image = buffers.scratch_layout(prog)
        self._out_words = buffers.output_words(prog)
        self._set_program(prog)
        try:
            self._start(0, None, None, None, buffers.FLAG_VALIDATE_ONLY)  # the kernel's own checks
        except Exception:
            self._set_program(None)
            raise

    @property
    def has_counters(self) -> bool:
        """Kernels from 1.1 on have the counter block (COUNTERS flag, counters buffer)."""
        return (self.info.kernel_major, self.info.kernel_minor) >= (1, 1)

    @property
    def reports_counters(self) -> bool:
        return self.has_counters

    def _start(self, n: int, images, out, scratch, flags: int, counters=None) -> None:
        w = self.ip.write
        r = self.regs
        w(r["prog"], self._prog_buf.device_address)
        w(r["prog_words"], int(self._prog_buf.shape[0]))
        dummy = None
        if images is None:  # validate-only call: any valid buffers satisfy the null checks
            dummy = self._pynq.allocate(shape=(max(self._per_image, self._out_words, 1),), dtype=np.int32)
            images, out, scratch = dummy, dummy, dummy
        # sizes in the kernel's units (u64 images and counters, int32 out and scratch), from bytes:
        # the validate-only call passes one int32 dummy for every buffer
        w(r["images"], images.device_address)
        w(r["image_words"], int(images.nbytes) // 8)
        w(r["n_images"], n)
        w(r["out"], out.device_address)
        w(r["out_words"], int(out.nbytes) // 4)
        w(r["scratch"], scratch.device_address)
        w(r["scratch_words"], int(scratch.nbytes) // 4)
        w(r["flags"], flags)
        if self.has_counters:
            w(r["counters"], counters.device_address if counters is not None else 0)
            w(r["counters_words"], int(counters.nbytes) // 8 if counters is not None else 0)
        w(r["ap_ctrl"], AP_START)
        t0 = time.monotonic()
        while not (self.ip.read(r["ap_ctrl"]) & AP_DONE):
            if time.monotonic() - t0 > self.timeout_s:
                raise DeviceError(f"pynq: kernel did not finish within {self.timeout_s} s")
        status = int(self.ip.read(r["ap_return"]))
        if dummy is not None:
            dummy.freebuffer()
        if status:
            raise kernel_error(status, f"pynq kernel ({self.board_dir.name})",
                               [l.name for l in self._program.layers] if self._program else None)

    def _call(self, images: np.ndarray, trace: bool) -> tuple[np.ndarray, np.ndarray]:
        prog, packed = self._board_input(images)
        n = len(images)
        alloc = self._pynq.allocate
        ib = alloc(shape=packed.shape, dtype=np.uint64)
        ob = alloc(shape=(n * self._out_words,), dtype=np.int32)
        sb = alloc(shape=(self._per_image * (n if trace else 1),), dtype=np.int32)
        cb = alloc(shape=(buffers.counters_words(prog),), dtype=np.uint64) if self.has_counters else None
        flags = (buffers.FLAG_TRACE if trace else 0) | (buffers.FLAG_COUNTERS if cb is not None else 0)
        try:
            ib[:] = packed
            ib.sync_to_device()
            self._start(n, ib, ob, sb, flags, cb)
            ob.sync_from_device()
            sb.sync_from_device()
            if cb is not None:
                cb.sync_from_device()
                self._add_counters(buffers.counters_from_buffer(prog, np.array(cb)))
            return np.array(ob), np.array(sb)
        finally:
            for b in (ib, ob, sb) + ((cb,) if cb is not None else ()):
                b.freebuffer()

    def run(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        parts = [self._call(images[s:s + self.batch_size], False)[0] for s in range(0, len(images), self.batch_size)]
        t = self.program.output
        y = np.concatenate(parts).astype(np.int64).reshape(len(images), t.height, t.width, t.channels)
        return final_output(self.program, y)

    def trace(self, images: np.ndarray) -> dict[str, np.ndarray]:
        images = np.asarray(images)
        _, scratch = self._call(images, True)
        return buffers.tensors_from_scratch(self.program, scratch, len(images))

    def close(self) -> None:
        if self._prog_buf is not None:
            self._prog_buf.freebuffer()
            self._prog_buf = None
        super().close()
