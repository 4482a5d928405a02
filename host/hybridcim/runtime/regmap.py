"""The AXI4-Lite control register map of an HLS top function, derived by the Vitis HLS rules.

Computed from the top function's C prototype and its ``INTERFACE`` pragmas
(``hls/hybridcim_accel.h`` / ``hls/hybridcim_accel.cpp``), without the driver's constants, so
that a test can hold the two against each other and against public Vitis-generated headers.

Rules (Vitis HLS 2022.1-2024.2 with ``ap_ctrl_hs``; AMD UG1399 "Vitis High-Level Synthesis User
Guide", section "S_AXILITE Control Register Map"; the generated ``x<top>_hw.h`` comments state
the same layout):

* 0x00 ``AP_CTRL``: bit 0 ap_start (R/W, cleared on handshake), bit 1 ap_done (R, clear on
  read), bit 2 ap_idle (R), bit 3 ap_ready (R, clear on read from 2022.1 on), bit 7
  auto_restart (R/W), bit 9 interrupt (R).
* 0x04 ``GIE`` (bit 0), 0x08 ``IER`` (bit 0 ap_done, bit 1 ap_ready), 0x0C ``ISR`` (same bits;
  toggle on write in the 2023.1 headers, clear on read in some 2022.1 ones).
* from 0x10, in order: ``ap_return`` (a non-void return in the bundle), then every argument
  in prototype order that is in the bundle (an ``s_axilite`` port, or an ``m_axi`` port with
  ``offset = slave``). Each takes ``ceil(bits / 32)`` 32-bit data words and one more word
  (reserved for an input; ``ap_vld`` for an output), so the next starts 4 bytes after it.
  A pointer is ``addr_bits`` wide: 32 bits (``m_axi_addr64=false``, Zynq-7000: data + reserved
  = 8 bytes) or 64 bits (the default, Zynq UltraScale+: low word, high word, reserved = 12
  bytes, so offsets are 4-byte aligned only).

>>> m = control_map(addr_bits=32)
>>> hex(m["ap_return"].offset), hex(m["prog"].offset), hex(m["counters_words"].offset)
('0x10', '0x18', '0x70')
>>> m64 = control_map(addr_bits=64)
>>> hex(m64["prog"].offset), m64["prog"].words, hex(m64["prog_words"].offset)
('0x18', 2, '0x24')
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

AP_START, AP_DONE, AP_IDLE, AP_READY, AUTO_RESTART, AP_INTERRUPT = 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 7, 1 << 9
"""AP_CTRL bits (0x00)."""
AP_CTRL, GIE, IER, ISR, FIRST_DATA = 0x00, 0x04, 0x08, 0x0C, 0x10
"""Fixed offsets of the ap_ctrl_hs block and where ap_return / the arguments begin."""
TOP = "hybridcim_accel"
BUNDLE = "control"

_CTYPE_BITS = {"uint8_t": 8, "int8_t": 8, "uint16_t": 16, "int16_t": 16, "uint32_t": 32, "int32_t": 32,
               "unsigned": 32, "int": 32, "unsigned int": 32, "uint64_t": 64, "int64_t": 64, "float": 32,
               "double": 64, "acc_t": 32, "cnt_t": 64, "word_t": 64}


class RegmapError(ValueError):
    """The prototype or its pragmas cannot be turned into a register map."""


@dataclass(frozen=True)
class Register:
    """One bundle entry: byte ``offset``, ``bits`` of data in ``words`` 32-bit words (low word
    first), then one reserved word; ``pointer`` for an m_axi address."""

    name: str
    offset: int
    bits: int
    pointer: bool = False

    @property
    def words(self) -> int:
        return (self.bits + 31) // 32

    @property
    def end(self) -> int:
        """First byte after the entry's data words and its reserved / control word."""
        return self.offset + 4 * (self.words + 1)


@dataclass(frozen=True)
class Arg:
    name: str
    ctype: str
    pointer: bool


def parse_prototype(text: str, top: str = TOP) -> tuple[str, list[Arg]]:
    """Return type and arguments of ``top``'s first declaration or definition in C++ ``text``."""
    m = re.search(r"([\w:<> ]+?)\s+\b" + re.escape(top) + r"\s*\(([^)]*)\)", _strip_comments(text))
    if not m:
        raise RegmapError(f"no prototype of {top}() found")
    args = []
    for part in m.group(2).split(","):
        part = " ".join(part.replace("*", " * ").split())
        am = re.fullmatch(r"(?:const\s+)?([\w:<> ]+?)\s*(\*)?\s*(?:const\s+)?(?:__restrict\s+)?(\w+)", part)
        if not am:
            raise RegmapError(f"{top}: cannot parse argument {part!r}")
        args.append(Arg(am.group(3), am.group(1).strip(), am.group(2) is not None))
    return m.group(1).split()[-1], args


def parse_interface_pragmas(text: str) -> dict[str, dict[str, str]]:
    """``#pragma HLS INTERFACE <mode> port=<p> k=v ...`` -> {port: {"mode": .., k: v, ...}} (later
    pragmas for the same port and mode add keys; an s_axilite pragma is kept under "s_axilite")."""
    out: dict[str, dict[str, str]] = {}
    for line in _strip_comments(text).splitlines():
        m = re.match(r"\s*#\s*pragma\s+HLS\s+INTERFACE\s+(\w+)\s+(.*)$", line, re.I)
        if not m:
            continue
        kv = dict(re.findall(r"(\w+)\s*=\s*([\w./]+)", m.group(2)))
        port = kv.pop("port", None)
        if port is None:
            raise RegmapError(f"INTERFACE pragma without port=: {line.strip()!r}")
        entry = out.setdefault(port, {})
        mode = m.group(1).lower()
        if mode == "s_axilite":
            entry["s_axilite"] = kv.get("bundle", BUNDLE)
        else:
            entry.update(mode=mode, **kv)
    return out


def derive(return_type: str, args: list[Arg], pragmas: dict[str, dict[str, str]], addr_bits: int = 32,
           bundle: str = BUNDLE) -> dict[str, Register]:
    """Register map of one s_axilite bundle by the rules in the module docstring."""
    if addr_bits not in (32, 64):
        raise RegmapError(f"addr_bits must be 32 or 64, not {addr_bits}")

    def in_bundle(port: str) -> bool:
        p = pragmas.get(port, {})
        if p.get("s_axilite") == bundle:
            return True
        return p.get("mode") == "m_axi" and p.get("offset") == "slave" and bundle == BUNDLE

    regs = {n: Register(n, off, 32) for n, off in (("ap_ctrl", AP_CTRL), ("gie", GIE), ("ier", IER), ("isr", ISR))}
    at = FIRST_DATA
    if return_type != "void" and pragmas.get("return", {}).get("s_axilite") == bundle:
        regs["ap_return"] = Register("ap_return", at, _bits(return_type, False, addr_bits))
        at = regs["ap_return"].end
    for a in args:
        if not in_bundle(a.name):
            continue
        if a.pointer and pragmas.get(a.name, {}).get("mode") != "m_axi":
            raise RegmapError(f"pointer argument {a.name!r} in the s_axilite bundle without an m_axi pragma")
        regs[a.name] = Register(a.name, at, _bits(a.ctype, a.pointer, addr_bits), a.pointer)
        at = regs[a.name].end
    return regs


def control_map(addr_bits: int = 32, hls: "Path | None" = None) -> dict[str, Register]:
    """The hybridcim_accel control map read from ``hls/`` (header prototype, .cpp pragmas)."""
    if hls is None:
        from .csim_build import hls_dir
        hls = hls_dir()
    hls = Path(hls)
    ret, args = parse_prototype((hls / "hybridcim_accel.h").read_text())
    ret_cpp, args_cpp = parse_prototype((hls / "hybridcim_accel.cpp").read_text())
    if (ret, args) != (ret_cpp, args_cpp):
        raise RegmapError("hybridcim_accel.h and hybridcim_accel.cpp declare different prototypes")
    return derive(ret, args, parse_interface_pragmas((hls / "hybridcim_accel.cpp").read_text()), addr_bits)


def address_width(regs: dict[str, Register]) -> int:
    """AXI4-Lite address bits of the bundle (Vitis: enough for the last entry, at least 4)."""
    end = max([r.end for r in regs.values()] + [FIRST_DATA])
    return max(4, (end - 1).bit_length())


def offsets_from_hw_header(text: str, prefix: str) -> dict[str, tuple[int, int]]:
    """``{name: (offset, bits)}`` from a Vitis ``x<top>_hw.h`` (``<prefix>_ADDR_<N>_DATA`` and
    ``<prefix>_BITS_<N>_DATA``; ``AP_CTRL``/``GIE``/``IER``/``ISR`` with 32 bits), names lowercased."""
    addr, bits = {}, {}
    for kind, name, value in re.findall(rf"#define\s+{re.escape(prefix)}_(ADDR|BITS)_(\w+?)\s+(0x[0-9a-fA-F]+|\d+)",
                                        text):
        if name.endswith("_CTRL") and name != "AP_CTRL":
            continue  # an output's ap_vld word
        key = name[:-5] if name.endswith("_DATA") else name
        (addr if kind == "ADDR" else bits)[key.lower()] = int(value, 0)
    return {k: (v, bits.get(k, 32)) for k, v in addr.items()}


def hw_header_defines(regs: dict[str, Register], prefix: str = "XHYBRIDCIM_ACCEL_CONTROL") -> str:
    """The ``#define <prefix>_ADDR_<NAME>[_DATA]`` / ``_BITS_`` lines Vitis writes into
    ``x<top>_hw.h`` for ``regs`` (what :func:`offsets_from_hw_header` reads back)."""
    lines = []
    for k, r in regs.items():
        fixed = k in ("ap_ctrl", "gie", "ier", "isr")
        name = k.upper() if fixed or k == "ap_return" else k.upper() + "_DATA"
        lines.append(f"#define {prefix}_ADDR_{name} 0x{r.offset:02x}")
        if not fixed:
            lines.append(f"#define {prefix}_BITS_{name} {r.bits}")
    return "\n".join(lines) + "\n"


def hwh_register_names(reg: Register) -> list[str]:
    """The register names Vivado's hardware handoff gives one entry: ``prog`` for one data word,
    ``prog_1`` / ``prog_2`` (low / high word) for two."""
    return [reg.name] if reg.words == 1 else [f"{reg.name}_{i + 1}" for i in range(reg.words)]


def from_hwh_registers(registers: dict[str, dict]) -> dict[str, tuple[int, int]]:
    """``{name: (offset, bits)}`` from pynq's ``ip_dict[ip]["registers"]`` (parsed .hwh): joins
    ``<name>_1``/``<name>_2`` word pairs, maps ``CTRL``/``GIER``/``IP_IER``/``IP_ISR``."""
    fixed = {"CTRL": "ap_ctrl", "GIER": "gie", "IP_IER": "ier", "IP_ISR": "isr"}
    out: dict[str, tuple[int, int]] = {}
    parts: dict[str, dict[int, tuple[int, int]]] = {}
    for name, r in registers.items():
        off, size = int(r["address_offset"]), int(r["size"])
        m = re.fullmatch(r"(\w+)_([12])", name)
        if name in fixed:
            out[fixed[name]] = (off, 32)
        elif m and not name.startswith("ap_"):
            parts.setdefault(m.group(1), {})[int(m.group(2))] = (off, size)
        else:
            out[name] = (off, size)
    for base, p in parts.items():
        if set(p) != {1, 2} or p[2][0] != p[1][0] + 4:
            raise RegmapError(f".hwh register {base!r}: words {sorted(p)} are not a low/high pair")
        out[base] = (p[1][0], p[1][1] + p[2][1])
    return out


def _bits(ctype: str, pointer: bool, addr_bits: int) -> int:
    if pointer:
        return addr_bits
    m = re.fullmatch(r"ap_u?int<(\d+)>", ctype.replace(" ", ""))
    if m:
        return int(m.group(1))
    if ctype not in _CTYPE_BITS:
        raise RegmapError(f"unknown scalar type {ctype!r} in the top prototype")
    return _CTYPE_BITS[ctype]


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)
