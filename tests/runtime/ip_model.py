"""A register-level model of the hybridcim_accel IP behind a fake ``pynq`` module (tests only).

Independent of the driver: the register offsets come from :mod:`hybridcim.runtime.regmap`
(derived from the HLS prototype), never from ``pynq_device.REGISTERS``, and the overlay's IP
table comes from a ``.hwh`` file parsed by pynq's own parser (``pynq.pl_server.hwh_parser``).

* :class:`Memory` is the board's DDR: ``allocate`` hands out :class:`SimBuffer` arrays whose host
  view is separate from the device bytes, as with cached buffers: only ``sync_to_device``
  (flush) and ``sync_from_device`` (invalidate) move data. Every action goes to ``events``.
* :class:`HlsIpModel` is the s_axilite register file with ap_ctrl_hs semantics (UG1399):
  ap_start (set by a write, cleared at the handshake), ap_done and ap_ready clear-on-read,
  ap_idle, auto_restart, GIE/IER/ISR (ISR toggles on write, as in the 2023.1 headers). A start snapshots the argument
  registers; the kernel (the csim library) runs on the device bytes those registers point at
  when the run completes, after ``polls`` reads of AP_CTRL, or never (``never_finish``).
  Protocol errors (a write to a reserved offset, ap_start while busy, arguments changed while
  running, a free while the IP may write, an access outside a live buffer, a value over 32
  bits written to a 32-bit register) are appended to ``violations``.
* :func:`hwh_text` writes a Vivado hardware-handoff file for the block design with the IP's
  registers from the independent map; :func:`fake_pynq` returns the module to inject.
"""
from __future__ import annotations

import types
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from hybridcim.runtime import regmap
from hybridcim.runtime.regmap import AP_DONE, AP_IDLE, AP_READY, AP_START, AUTO_RESTART

IP_INSTANCE = "hybridcim_accel_0"
IP_VLNV = "hybridcim.org:hls:hybridcim_accel:1.0"
BOARDS = {  # board -> (pynq hwh family, PS module type, PS instance, arch, address width, IP base address)
    "pynq-z2": ("zynq", "processing_system7", "ps7", "zynq", 32, 0x4000_0000),
    "kv260": ("zynqmp", "zynq_ultra_ps_e", "zynq_ultra_ps_e_0", "zynquplus", 64, 0xA000_0000),
}


class MemoryFault(AssertionError):
    """The IP would touch bytes outside every live buffer."""


class SimBuffer(np.ndarray):
    """A ``pynq.allocate`` buffer: host view (this array), device bytes apart, a physical address."""

    def _host_bytes(self):
        return self.view(np.ndarray).reshape(-1).view(np.uint8)

    def sync_to_device(self):
        self.mem.log("flush", self.device_address)
        self.mem.device_bytes(self.device_address)[:] = self._host_bytes()

    def sync_from_device(self):
        self.mem.log("invalidate", self.device_address)
        self._host_bytes()[:] = self.mem.device_bytes(self.device_address)

    flush, invalidate = sync_to_device, sync_from_device

    def freebuffer(self):
        self.mem.free(self.device_address)

    @property
    def physical_address(self):
        return self.device_address


class Memory:
    """DDR as {physical address: device bytes}; ``base`` above 4 GiB exercises 64-bit pointers."""

    def __init__(self, base: int = 0x1000_0000):
        self.blocks: dict[int, np.ndarray] = {}
        self.next_address, self.events, self.violations, self.ip = base, [], [], None

    def log(self, *event):
        self.events.append(event)

    def allocate(self, shape, dtype=np.uint32, cacheable=True, **_):
        buf = np.zeros(shape, dtype=dtype).view(SimBuffer)
        buf.mem, buf.device_address = self, self.next_address
        self.blocks[self.next_address] = np.zeros(buf.nbytes, dtype=np.uint8)
        self.log("alloc", self.next_address, buf.nbytes)
        self.next_address += (buf.nbytes + 0xFFF) // 0x1000 * 0x1000 + 0x1000
        return buf

    def free(self, addr):
        self.log("free", addr)
        if self.ip is not None and self.ip.busy and addr in self.ip.in_use:
            self.violations.append(f"buffer 0x{addr:x} freed while the IP may write it")
        if addr not in self.blocks:
            self.violations.append(f"buffer 0x{addr:x} freed twice")
        self.blocks.pop(addr, None)

    def device_bytes(self, addr):
        return self.blocks[addr]

    def span(self, addr: int, nbytes: int) -> np.ndarray:
        """The device bytes [addr, addr + nbytes): must lie inside one live buffer."""
        for base, block in self.blocks.items():
            if base <= addr and addr + nbytes <= base + block.size:
                return block[addr - base:addr - base + nbytes]
        raise MemoryFault(f"the IP would access {nbytes} bytes at 0x{addr:x}, outside every live buffer")


class HlsIpModel:
    """The control register file of hybridcim_accel; ``kernel(prog, images, n, out, scratch, flags,
    counters, image_base) -> status`` computes on device memory views (the csim library's ``run``)."""

    def __init__(self, mem: Memory, regs: dict[str, regmap.Register], kernel, polls: int = 1,
                 never_finish: bool = False):
        self.mem, self.map, self.kernel = mem, regs, kernel
        self.polls, self.never_finish = polls, never_finish
        mem.ip = self
        self.words: dict[int, int] = {}  # data word offset -> value
        for r in regs.values():
            if r.name not in ("ap_ctrl", "gie", "ier", "isr", "ap_return"):
                for i in range(r.words):
                    self.words[r.offset + 4 * i] = 0
        self.start_bit = self.done = self.ready = False
        self.auto_restart = False
        self.gie = self.ier = self.isr = 0
        self.ap_return = 0
        self.busy, self.polls_seen, self.in_use, self.snapshot, self.starts = False, 0, set(), {}, 0

    # ---- MMIO (DefaultIP.read / write) ----
    def read(self, offset: int = 0, length: int = 4) -> int:
        m = self.map
        self.mem.log("read", offset)
        if offset == m["ap_ctrl"].offset:
            if self.busy:
                self.polls_seen += 1
                if not self.never_finish and self.polls_seen >= self.polls:
                    self._complete()
            v = (AP_START * self.start_bit | AP_DONE * self.done | AP_IDLE * (not self.busy) | AP_READY * self.ready
                 | AUTO_RESTART * self.auto_restart)
            self.done = self.ready = False  # clear on read
            return v
        if offset == m["gie"].offset:
            return self.gie
        if offset == m["ier"].offset:
            return self.ier
        if offset == m["isr"].offset:
            return self.isr
        if offset == m["ap_return"].offset:
            return self.ap_return
        if offset in self.words:
            return self.words[offset]
        self.mem.violations.append(f"read of unmapped control offset 0x{offset:x}")
        return 0

    def write(self, offset: int, value) -> None:
        m = self.map
        if not isinstance(value, (int, np.integer)) or not 0 <= int(value) <= 0xFFFFFFFF:
            self.mem.violations.append(f"write of {value!r} to 0x{offset:x}: not a 32-bit register value")
            value = int(value) & 0xFFFFFFFF
        value = int(value)
        self.mem.log("write", offset, value)
        if offset == m["ap_ctrl"].offset:
            self.auto_restart = bool(value & AUTO_RESTART)
            if value & AP_START:
                if self.busy:
                    self.mem.violations.append("ap_start written while the IP is busy")
                else:
                    self._start()
        elif offset == m["gie"].offset:
            self.gie = value & 1
        elif offset == m["ier"].offset:
            self.ier = value & 3
        elif offset == m["isr"].offset:
            self.isr ^= value & 3
        elif offset in self.words:
            if self.busy:
                self.mem.violations.append(f"argument register 0x{offset:x} written while the IP runs")
            self.words[offset] = value
        else:
            self.mem.violations.append(f"write to unmapped or read-only control offset 0x{offset:x}")

    # ---- the run ----
    def arg(self, name: str, words=None) -> int:
        r = self.map[name]
        src = self.words if words is None else words
        return sum(src[r.offset + 4 * i] << (32 * i) for i in range(r.words))

    def _start(self):
        self.busy, self.start_bit, self.polls_seen, self.starts = True, True, 0, self.starts + 1
        self.snapshot = dict(self.words)
        self.in_use = {self.arg(p, self.snapshot) for p in regmap_pointers(self.map)} - {0}
        self.mem.log("start")

    def _view(self, name: str, words_name: str, dtype):
        addr, n = self.arg(name, self.snapshot), self.arg(words_name, self.snapshot)
        if addr == 0:
            return None
        return self.mem.span(addr, n * np.dtype(dtype).itemsize).view(dtype)

    def _complete(self):
        v = self._view
        counters = v("counters", "counters_words", np.uint64) if "counters" in self.map else None
        self.ap_return = int(self.kernel(v("prog", "prog_words", np.uint64), v("images", "image_words", np.uint64),
                                         self.arg("n_images", self.snapshot), v("out", "out_words", np.int32),
                                         v("scratch", "scratch_words", np.int32), self.arg("flags", self.snapshot),
                                         counters, self.arg("image_base", self.snapshot) if "image_base" in self.map
                                         else 0))
        self.busy, self.start_bit, self.done, self.ready, self.in_use = False, False, True, True, set()
        self.isr |= self.ier & 3
        self.mem.log("done")


def regmap_pointers(regs: dict[str, regmap.Register]) -> list[str]:
    return [r.name for r in regs.values() if r.pointer]


# ---- .hwh (Vivado hardware handoff), the part pynq's parser reads ----
def _prop(name, value):
    return f'<PROPERTY NAME="{name}" VALUE={quoteattr(str(value))}/>'


def _register_xml(name: str, offset: int, size: int, access: str, desc: str, fields) -> str:
    fx = "".join(f'<FIELD NAME="{fn}">{_prop("DESCRIPTION", fd)}{_prop("ADDRESS_OFFSET", 0)}{_prop("ACCESS", fa)}'
                 f'{_prop("BIT_OFFSET", fo)}{_prop("BIT_WIDTH", fw)}</FIELD>' for fn, fo, fw, fa, fd in fields)
    return (f'        <REGISTER NAME="{name}">{_prop("DESCRIPTION", desc)}{_prop("ADDRESS_OFFSET", hex(offset))}'
            f'{_prop("SIZE", size)}{_prop("ACCESS", access)}{_prop("IS_ENABLED", "true")}{_prop("RESET_VALUE", "0x0")}'
            f'<FIELDS>{fx}</FIELDS></REGISTER>\n')


def hwh_registers_xml(regs: dict[str, regmap.Register]) -> str:
    """The IP's REGISTERS block: CTRL/GIER/IP_IER/IP_ISR, ap_return, then each argument as one
    register per 32-bit data word (``<name>`` or ``<name>_1``/``<name>_2``), as Vivado names them."""
    out = [_register_xml("CTRL", regs["ap_ctrl"].offset, 32, "read-write", "Control signals",
                         [("AP_START", 0, 1, "read-write", "ap_start"), ("AP_DONE", 1, 1, "read-only", "ap_done"),
                          ("AP_IDLE", 2, 1, "read-only", "ap_idle"), ("AP_READY", 3, 1, "read-only", "ap_ready"),
                          ("AUTO_RESTART", 7, 1, "read-write", "auto_restart"),
                          ("INTERRUPT", 9, 1, "read-only", "interrupt")]),
           _register_xml("GIER", regs["gie"].offset, 32, "read-write", "Global Interrupt Enable Register",
                         [("Enable", 0, 1, "read-write", "GIE")]),
           _register_xml("IP_IER", regs["ier"].offset, 32, "read-write", "IP Interrupt Enable Register",
                         [("CHAN0_INT_EN", 0, 1, "read-write", "ap_done"), ("CHAN1_INT_EN", 1, 1, "read-write", "ap_ready")]),
           _register_xml("IP_ISR", regs["isr"].offset, 32, "read-write", "IP Interrupt Status Register",
                         [("CHAN0_INT_ST", 0, 1, "read-write", "ap_done"), ("CHAN1_INT_ST", 1, 1, "read-write", "ap_ready")])]
    for r in regs.values():
        if r.name in ("ap_ctrl", "gie", "ier", "isr"):
            continue
        access = "read-only" if r.name == "ap_return" else "write-only"
        for i, name in enumerate(regmap.hwh_register_names(r)):
            bits = min(32, r.bits - 32 * i)
            out.append(_register_xml(name, r.offset + 4 * i, 32, access, f"Data signal of {r.name}",
                                     [(r.name, 0, bits, access, f"Bit {32 * i + bits - 1} to {32 * i} of {r.name}")]))
    return "".join(out)


def hwh_text(board: str = "pynq-z2", regs: "dict[str, regmap.Register] | None" = None) -> str:
    """A hardware handoff for the overlay of ``board``: the PS (FCLK0 = 100 MHz) and the IP at its
    base address with the register map ``regs`` (default: regmap.control_map at the board's width)."""
    family, ps_type, ps, arch, bits, base = BOARDS[board]
    regs = regs or regmap.control_map(bits)
    rng = 1 << regmap.address_width(regs)
    if family == "zynq":
        clk = [("PCW_FPGA_FCLK%d_ENABLE" % i, int(i == 0)) for i in range(4)] + \
              [("PCW_FCLK%d_PERIPHERAL_DIVISOR%d" % (i, j), (10 if j == 0 else 1) if i == 0 else 1)
               for i in range(4) for j in range(2)]
        master, ps_vlnv = "M_AXI_GP0", "xilinx.com:ip:processing_system7:5.5"
    else:
        clk = [("PSU__FPGA_PL%d_ENABLE" % i, int(i == 0)) for i in range(4)] + \
              [("PSU__CRL_APB__PL%d_REF_CTRL__DIVISOR%d" % (i, j), (15 if j == 0 else 1) if i == 0 else 1)
               for i in range(4) for j in range(2)]
        master, ps_vlnv = "M_AXI_HPM0_FPD", "xilinx.com:ip:zynq_ultra_ps_e:3.5"
    params = "".join(f'<PARAMETER NAME="{k}" VALUE="{v}"/>' for k, v in clk)
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="no" ?>
<!-- hybridcim test fixture: written by tests/runtime/ip_model.py from hybridcim.runtime.regmap, not by Vivado -->
<EDKSYSTEM EDWVERSION="1.2" TIMESTAMP="fixture" VIVADOVERSION="2023.2">
  <SYSTEMINFO ARCH="{arch}" BOARD="{board}" DEVICE="fixture" NAME="hybridcim" PACKAGE="fixture" SPEEDGRADE="-1"/>
  <EXTERNALPORTS/>
  <MODULES>
    <MODULE FULLNAME="/{ps}" HWVERSION="1" INSTANCE="{ps}" IPTYPE="PERIPHERAL" MODTYPE="{ps_type}" VLNV="{ps_vlnv}">
      <PARAMETERS>{params}</PARAMETERS>
      <MEMORYMAP>
        <MEMRANGE ADDRESSBLOCK="Reg" BASENAME="C_S_AXI_CONTROL_BASEADDR" BASEVALUE="0x{base:08X}" HIGHNAME="C_S_AXI_CONTROL_HIGHADDR" HIGHVALUE="0x{base + rng - 1:08X}" INSTANCE="{IP_INSTANCE}" IS_DATA="TRUE" IS_INSTRUCTION="TRUE" MASTERBUSINTERFACE="{master}" MEMTYPE="REGISTER" SLAVEBUSINTERFACE="s_axi_control"/>
      </MEMORYMAP>
      <PORTS/>
    </MODULE>
    <MODULE FULLNAME="/{IP_INSTANCE}" HWVERSION="1.0" INSTANCE="{IP_INSTANCE}" IPTYPE="PERIPHERAL" MODTYPE="hybridcim_accel" VLNV="{IP_VLNV}">
      <PARAMETERS><PARAMETER NAME="C_S_AXI_CONTROL_ADDR_WIDTH" VALUE="{regmap.address_width(regs)}"/><PARAMETER NAME="C_M_AXI_GMEM0_ADDR_WIDTH" VALUE="{bits}"/></PARAMETERS>
      <ADDRESSBLOCKS>
       <ADDRESSBLOCK ACCESS="read-write" INTERFACE="s_axi_control" NAME="Reg" RANGE="{rng}" USAGE="register">
        <REGISTERS>
{hwh_registers_xml(regs)}        </REGISTERS>
       </ADDRESSBLOCK>
      </ADDRESSBLOCKS>
      <PORTS/>
    </MODULE>
  </MODULES>
</EDKSYSTEM>
"""


def parse_hwh(path: "str | Path", board: str):
    """pynq's own parser on ``path`` (the Zynq or the Zynq UltraScale+ flavour)."""
    from pynq.pl_server.hwh_parser import _HWHUltrascale, _HWHZynq
    return (_HWHZynq if BOARDS[board][0] == "zynq" else _HWHUltrascale)(hwh_name=str(path))


class FakeOverlay:
    """``pynq.Overlay(bitfile)``: needs the .bit and the .hwh of the same name beside it."""

    def __init__(self, bitfile, board: str, ips: dict):
        path = Path(bitfile)
        if not path.is_file():
            raise IOError(f"bitstream file {path} does not exist")
        hwh = path.with_suffix(".hwh")
        if not hwh.is_file():
            raise IOError(f"cannot find {hwh}")
        self.bitfile_name, self.ip_dict = str(path), parse_hwh(hwh, board).ip_dict
        self._ips = ips

    def __getattr__(self, name):
        if name.startswith("_") or name not in self.ip_dict or name not in self._ips:
            raise AttributeError(f"overlay has no attribute {name!r}")
        return self._ips[name]


def fake_pynq(mem: Memory, ip: HlsIpModel, board: str = "pynq-z2") -> types.ModuleType:
    """A module with the pynq 3.0.1 names PynqDevice uses: Device.devices, Overlay, allocate."""
    mod = types.ModuleType("pynq")
    mod.__version__ = "3.0.1"
    mod.Device = types.SimpleNamespace(devices=["model-fpga"])
    mod.allocate = mem.allocate
    mod.Overlay = lambda bitfile, download=True, **kw: FakeOverlay(bitfile, board, {IP_INSTANCE: ip})
    return mod
