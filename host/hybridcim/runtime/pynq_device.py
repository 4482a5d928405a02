"""PynqDevice: the overlay on a PYNQ board (pynq.Overlay + pynq.allocate), same buffers as csim.

Setup on the board: ``bitstreams/<board>/{hybridcim.bit, hybridcim.hwh, manifest.json}`` from
``overlay/build.sh``, found as :mod:`.bitstream_path` says (a folder, or a board name searched in
``$HYBRIDCIM_BITSTREAMS``, the checkout's ``bitstreams/``, the installed package's data). ``load`` checks the manifest (kernel major version, preset fingerprint,
capacity) against the program before anything touches the FPGA; the kernel checks the image
again (CRC, preset) and a refusal is raised as the matching error.

Control registers (s_axilite "control"): offsets and the pointer width (32 or 64 bits) come
from the HLS-generated driver header ``xhybridcim_accel_hw.h`` when the manifest names one, else
from the .hwh register map pynq parses (``Overlay.ip_dict``), else from :data:`REGISTERS` /
:data:`REGISTERS_64` (docs/program-format.md "Control registers"; ``runtime.regmap`` derives the
same map from the prototype). A call checks ap_idle, flushes its inputs, cleans its outputs,
starts, polls ap_done with a backing-off sleep, then invalidates its outputs; a call that
never finishes leaves its buffers allocated (the IP may still write them) and the device
refuses further calls. Uses only pynq APIs present in pynq 3.0.1 (the PYNQ-Z2 v3.0.1 image):
``Overlay``, ``Overlay.ip_dict``, ``DefaultIP.read/write``, ``allocate``, ``PynqBuffer.sync_to_device /
sync_from_device / freebuffer / device_address``. Off-board it fails with
DeviceNotAvailableError, never an ImportError traceback.
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
             "counters": 0x68, "counters_words": 0x70, "image_base": 0x78}
"""Offsets with 32-bit m_axi addresses (Zynq-7000, ``m_axi_addr64=false``): one word per pointer.
``image_base`` exists from kernel 1.3 on (appended: the earlier offsets are unchanged)."""
REGISTERS_64 = {"ap_ctrl": 0x00, "gie": 0x04, "ier": 0x08, "isr": 0x0C, "ap_return": 0x10,
                "prog": 0x18, "prog_words": 0x24, "images": 0x2C, "image_words": 0x38, "n_images": 0x40,
                "out": 0x48, "out_words": 0x54, "scratch": 0x5C, "scratch_words": 0x68, "flags": 0x70,
                "counters": 0x78, "counters_words": 0x84, "image_base": 0x8C}
"""Offsets with 64-bit m_axi addresses (Zynq UltraScale+): pointer = low word, high word, reserved."""
POINTERS = ("prog", "images", "out", "scratch", "counters")
AP_START, AP_DONE, AP_IDLE = 0x1, 0x2, 0x4
POLL_FIRST_S, POLL_MAX_S = 20e-6, 5e-3
"""The poll loop sleeps 20 us after the first unfinished read, doubling up to 5 ms."""
IP_VLNV_PREFIX = "hybridcim.org:hls:hybridcim_accel:"
_QUARANTINE: list = []
"""Buffers handed to an IP that never reported ap_done: the IP may still write them, so they are
kept referenced (never freed, never garbage-collected) for the life of the process."""
_sleep = time.sleep


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
                                      "runs on a PYNQ board image (its preinstalled pynq, 3.0.1 or later)") from None
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
        self.ip_name = self.manifest.get("ip_name", "hybridcim_accel_0")
        self.ip = self._find_ip()
        self.regs, self.addr_bits = self._register_map()
        self.batch_size, self.timeout_s = batch_size, timeout_s
        self._prog_buf = None
        self._wedged: str | None = None  # why the IP must not be started again (it may still be running)
        self._per_image = self._out_words = 0

    def _find_ip(self):
        """The accelerator's IP object; a bitstream without it (or with another IP there) is refused."""
        ip_dict = getattr(self.overlay, "ip_dict", None)
        if ip_dict is None:  # not a pynq.Overlay (every pynq Overlay has ip_dict): nothing to check
            return getattr(self.overlay, self.ip_name)
        if self.ip_name not in ip_dict:
            raise DeviceError(f"{self.board_dir / self.manifest['bitstream']}: the overlay has no IP "
                              f"{self.ip_name!r} (it has {sorted(ip_dict)[:8]}): wrong bitstream or .hwh")
        vlnv = str(ip_dict[self.ip_name].get("type", ""))
        if not vlnv.startswith(IP_VLNV_PREFIX):
            raise DeviceError(f"{self.board_dir.name}: IP {self.ip_name!r} is {vlnv!r}, not {IP_VLNV_PREFIX}*: "
                              "wrong bitstream")
        return getattr(self.overlay, self.ip_name)

    def _addr_bits_from_manifest(self) -> int:
        """m_axi address width: ``m_axi_addr_bits`` in the manifest, else 64 on a Zynq UltraScale+
        part (xczu*, xck26, xck24) and 32 on a Zynq-7000 one (the overlay builds' settings)."""
        bits = self.manifest.get("m_axi_addr_bits")
        if bits in (32, 64):
            return bits
        part = str(self.manifest.get("part", "")).lower()
        return 64 if part.startswith(("xczu", "xck26", "xck24")) else 32

    def _register_map(self) -> tuple[dict[str, int], int]:
        """Control-register offsets and the pointer width, from (in order) the HLS driver header
        the manifest names, the .hwh register map pynq parsed, or REGISTERS / REGISTERS_64."""
        from . import regmap
        found: dict[str, tuple[int, int]] = {}
        header = self.manifest.get("driver_header")
        if header and (self.board_dir / header).is_file():
            found = regmap.offsets_from_hw_header((self.board_dir / header).read_text(), "XHYBRIDCIM_ACCEL_CONTROL")
            source = header
        else:
            hwh_regs = (getattr(self.overlay, "ip_dict", {}).get(self.ip_name) or {}).get("registers") or {}
            if hwh_regs:
                try:
                    found = regmap.from_hwh_registers(hwh_regs)
                except regmap.RegmapError as e:
                    raise DeviceError(f"{self.board_dir / self.manifest['hwh']}: {e}") from None
                source = self.manifest["hwh"]
        if not found:
            bits = self._addr_bits_from_manifest()
            regs = dict(REGISTERS if bits == 32 else REGISTERS_64)
            if not self.has_hybrid:
                del regs["image_base"]
            return regs, bits
        need = [k for k in REGISTERS if (self.has_counters or not k.startswith("counters")) and
                (self.has_hybrid or k != "image_base")]
        missing = [k for k in need if k not in found]
        if missing:
            raise DeviceError(f"{self.board_dir / source}: no control register {', '.join(missing)} "
                              "(not a hybridcim_accel control map: wrong bitstream, .hwh or header)")
        widths = {found[k][1] for k in POINTERS if k in found}
        if len(widths) != 1 or not widths <= {32, 64}:
            raise DeviceError(f"{self.board_dir / source}: pointer registers have widths {sorted(widths)}, "
                              "want all 32 or all 64 bits")
        return {k: found[k][0] for k in need + [k for k in ("gie", "ier", "isr") if k in found]}, widths.pop()

    @property
    def preset(self) -> HardwarePreset:
        return self._preset

    def load(self, program: "Program | bytes | str | os.PathLike") -> None:
        self._check_open()
        self._check_not_wedged()
        prog, image = as_program(program, self._preset, limits=self.info, hybrid=True if self.has_hybrid else
                                 f"the bitstream's kernel {self.info.kernel_version} predates hybrid mode (1.3)")
        buffers.check_capacity(prog, self.info)
        words = buffers.program_words(image)
        buf = self._pynq.allocate(shape=words.shape, dtype=np.uint64)
        buf[:] = words
        buf.sync_to_device()  # flush: the IP reads DDR, not the CPU's cache
        if self._prog_buf is not None:
            self._prog_buf.freebuffer()  # the IP is idle here (no call in flight)
        self._prog_buf = buf
        _, self._per_image = buffers.scratch_layout(prog)
        self._out_words = buffers.output_words(prog)
        self._set_program(prog)
        try:
            self._start(0, None, None, None, buffers.FLAG_VALIDATE_ONLY)  # the kernel's own checks
        except Exception:
            self._set_program(None)
            raise

    def _start(self, n: int, images, out, scratch, flags: int, counters=None, image_base: int = 0) -> None:
        """One kernel call on the given buffers, raising the kernel's status. ``images=None``: a
        validate-only call, where one int32 dummy (freed after) stands for images, out and scratch
        (any valid buffers satisfy the kernel's null checks; sized for the word counts written)."""
        if images is None:
            dummy = self._pynq.allocate(shape=(max(self._per_image, self._out_words, 1),), dtype=np.int32)
            try:
                status = self._execute(n, dummy, dummy, dummy, None, flags, [dummy], image_base)
            finally:
                self._release([dummy])
        else:
            outs = [out, scratch] + ([counters] if counters is not None else [])
            status = self._execute(n, images, out, scratch, counters, flags, outs, image_base)
        self._raise_status(status)

    @property
    def has_counters(self) -> bool:
        """Kernels from 1.2 on have the counter block this package reads (COUNTERS flag, counters buffer
        with a header word). A 1.1 kernel's block has no header and lacks counters: it runs without."""
        return (self.info.kernel_major, self.info.kernel_minor) >= (1, 2)

    @property
    def has_hybrid(self) -> bool:
        """Kernels from 1.3 on run hybrid layers (format 1.1) and have the ``image_base`` register."""
        return (self.info.kernel_major, self.info.kernel_minor) >= (1, 3)

    @property
    def reports_counters(self) -> bool:
        return self.has_counters

    def _check_not_wedged(self) -> None:
        if self._wedged:
            raise DeviceError(f"pynq: {self._wedged}; the IP may still be writing its buffers, which are kept "
                              "allocated: reload the overlay (a new PynqDevice) or reboot the board")

    def _release(self, bufs) -> None:
        """Free ``bufs`` unless the IP may still use them (then they stay in the quarantine)."""
        if self._wedged:
            return
        for b in bufs:
            b.freebuffer()

    def _write_pointer(self, name: str, buf) -> None:
        addr = 0 if buf is None else int(buf.device_address)
        off = self.regs[name]
        self.ip.write(off, addr & 0xFFFFFFFF)
        if self.addr_bits == 64:
            self.ip.write(off + 4, addr >> 32)
        elif addr >> 32:
            raise DeviceError(f"pynq: buffer {name} at 0x{addr:x} is above 4 GiB, but the IP has 32-bit addresses")

    def _execute(self, n: int, images, out, scratch, counters, flags: int, outputs, image_base: int = 0) -> int:
        """One kernel call on allocated buffers; returns ap_return. Inputs must be flushed already;
        ``outputs`` are cleaned before the start and invalidated after ap_done. Frees nothing; if
        the call was started and did not report ap_done, every buffer it was given goes to the
        quarantine and the device refuses further calls."""
        self._check_not_wedged()
        r, ip = self.regs, self.ip
        ctrl = int(ip.read(r["ap_ctrl"]))
        if not ctrl & AP_IDLE:
            raise DeviceError(f"pynq: the IP is not idle before a start (AP_CTRL = 0x{ctrl:x}): another call "
                              "is running or a previous one never finished; reload the overlay")
        for b in outputs:  # clean the CPU's dirty lines now: a later eviction would overwrite what the IP writes
            b.sync_to_device()
        # sizes in the kernel's units (u64 images and counters, int32 out and scratch), from bytes
        self._write_pointer("prog", self._prog_buf)
        ip.write(r["prog_words"], int(self._prog_buf.shape[0]))
        self._write_pointer("images", images)
        ip.write(r["image_words"], int(images.nbytes) // 8)
        ip.write(r["n_images"], int(n))
        self._write_pointer("out", out)
        ip.write(r["out_words"], int(out.nbytes) // 4)
        self._write_pointer("scratch", scratch)
        ip.write(r["scratch_words"], int(scratch.nbytes) // 4)
        ip.write(r["flags"], int(flags))
        if self.has_counters:
            self._write_pointer("counters", counters)
            ip.write(r["counters_words"], int(counters.nbytes) // 8 if counters is not None else 0)
        if "image_base" in r:
            ip.write(r["image_base"], int(image_base))
        elif image_base:
            raise DeviceError(f"pynq: kernel {self.info.kernel_version} has no image_base register (1.3 on)")
        done = False
        try:
            ip.write(r["ap_ctrl"], AP_START)  # auto_restart (bit 7) stays 0: one run per start
            deadline, delay = time.monotonic() + self.timeout_s, POLL_FIRST_S
            while not int(ip.read(r["ap_ctrl"])) & AP_DONE:  # ap_done clears on this read
                if time.monotonic() > deadline:
                    raise DeviceError(f"pynq: kernel did not finish within {self.timeout_s} s; its buffers "
                                      "stay allocated (the IP may still write them)")
                _sleep(delay)
                delay = min(2 * delay, POLL_MAX_S)
            done = True
        finally:
            if not done:  # timed out or interrupted while the IP runs
                held = [self._prog_buf, images, out, scratch, counters]
                _QUARANTINE.extend(b for b in held if b is not None)
                self._prog_buf = None
                self._wedged = "a kernel call did not report ap_done"
        status = int(ip.read(r["ap_return"]))
        for b in outputs:
            b.sync_from_device()  # invalidate: read what the IP wrote, not stale cache lines
        return status

    def _raise_status(self, status: int) -> None:
        if status:
            raise kernel_error(status, f"pynq kernel ({self.board_dir.name})",
                               [l.name for l in self._program.layers] if self._program else None)

    def _call(self, images: np.ndarray, trace: bool, image_base: int = 0) -> tuple[np.ndarray, np.ndarray]:
        self._check_not_wedged()
        prog, packed = self._board_input(images)
        n = len(images)
        if not (0 <= image_base and image_base + max(n, 1) - 1 <= 0xFFFFFFFF):
            raise DeviceError(f"image_base {image_base}: global image indices must fit a u32")
        alloc = self._pynq.allocate
        ib = alloc(shape=packed.shape, dtype=np.uint64)
        ob = alloc(shape=(n * self._out_words,), dtype=np.int32)
        sb = alloc(shape=(self._per_image * (n if trace else 1),), dtype=np.int32)
        cb = alloc(shape=(buffers.counters_words(prog),), dtype=np.uint64) if self.has_counters else None
        flags = (buffers.FLAG_TRACE if trace else 0) | (buffers.FLAG_COUNTERS if cb is not None else 0)
        outs = [ob, sb] + ([cb] if cb is not None else [])
        try:
            ib[:] = packed
            ib.sync_to_device()  # flush the images before the start
            self._start(n, ib, ob, sb, flags, cb, image_base)
            if cb is not None:
                self._add_counters(buffers.counters_from_buffer(prog, np.array(cb)))
            return np.array(ob), np.array(sb)
        finally:
            self._release([ib] + outs)

    def run(self, images: np.ndarray, image_base: int = 0) -> np.ndarray:
        """Outputs of ``images``; call k of ``batch_size`` images gets image_base + k * batch_size."""
        images = np.asarray(images)
        parts = [self._call(images[s:s + self.batch_size], False, image_base + s)[0]
                 for s in range(0, len(images), self.batch_size)]
        t = self.program.output
        y = np.concatenate(parts).astype(np.int64).reshape(len(images), t.height, t.width, t.channels)
        return final_output(self.program, y)

    def trace(self, images: np.ndarray, image_base: int = 0) -> dict[str, np.ndarray]:
        images = np.asarray(images)
        _, scratch = self._call(images, True, image_base)
        return buffers.tensors_from_scratch(self.program, scratch, len(images))

    def close(self) -> None:
        if self._prog_buf is not None and not self._wedged:
            self._prog_buf.freebuffer()
        self._prog_buf = None
        super().close()
