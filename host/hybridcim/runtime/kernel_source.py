"""The kernel sources read as data: preset constants, element types, arrays and their partitioning.

For the resource estimate (:mod:`.kernel_resources`): hls/*.cpp with comments stripped, every
``#define`` / ``const`` constant of the preset header and the kernel headers evaluated, every
array (file scope, static, local; struct members flattened) with its element bits, dimensions
and ``ARRAY_PARTITION`` banks, and the variable-by-variable multiply sites.
"""
from __future__ import annotations

import re
from math import ceil
from pathlib import Path

from ..spec.hardware import HardwarePreset

KERNEL_SOURCES = ("hybridcim_accel.cpp", "hcim_program.cpp", "hcim_layers.cpp")
HEADERS = ("hybridcim_accel.h", "hcim_internal.h", "hcim_loops.h")
PRIMITIVE_BITS = {"bool": 1, "char": 8, "uint8_t": 8, "int8_t": 8, "uint16_t": 16, "int16_t": 16, "uint32_t": 32,
                  "int32_t": 32, "int": 32, "unsigned": 32, "uint64_t": 64, "int64_t": 64, "float": 32, "double": 64}


def _strip(src: str) -> str:
    return re.sub(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\])*"', " ", src, flags=re.S)


class SourceModel:
    """Constants, types and arrays of the kernel sources for one preset."""

    def __init__(self, hls_dir: Path, preset: HardwarePreset):
        texts = [(hls_dir / "presets" / f"{preset.name}.h").read_text()]
        texts += [(hls_dir / h).read_text() for h in HEADERS if (hls_dir / h).is_file()]
        self.sources = {f: _strip((hls_dir / f).read_text()) for f in KERNEL_SOURCES}
        text = _strip("\n".join(texts)) + "\n" + "\n".join(self.sources.values())
        self._raw = dict(re.findall(r"^\s*#define\s+(\w+)\s+([^\n]+)", text, re.M))
        self._raw.update(re.findall(r"\b(?:static\s+)?(?:const|constexpr)\s+\w+\s+(\w+)\s*=\s*([^;{}]+);", text))
        self._raw["HCIM_N_LOOPS"] = str(len(re.findall(r'X\(\w+,\s*"\w+"', text)))
        self._consts: dict[str, int | None] = {}
        self.types = dict(PRIMITIVE_BITS)
        for m in re.finditer(r"typedef\s+(?:ap_u?int<(\d+)>|(\w+))\s+(\w+)\s*;", text):
            self.types[m.group(3)] = int(m.group(1)) if m.group(1) else self.types.get(m.group(2), 32)
        self.structs: dict[str, list[tuple[str, int, list[int]]]] = {}
        for m in re.finditer(r"struct\s+(\w+)\s*\{([^{}]*)\}\s*;", text):
            self.structs[m.group(1)] = [f for d in m.group(2).split(";") for f in self._declarators(d.strip())]
        for s in self.structs:
            self.types[s] = sum(b * _prod(dims) for _, b, dims in self.structs[s])

    def const(self, expr: str) -> int | None:
        """Integer value of a constant expression of the sources (None if not constant)."""
        def name(m):
            v = self._name(m.group(0))
            if v is None:
                raise ValueError(m.group(0))
            return str(v)
        e = re.sub(r"\b(\d+)[uUlL]+\b", r"\1", expr.strip())
        e = re.sub(r"\(\s*(?:u?int\d+_t|int|unsigned)\s*\)", "", e)
        try:
            e = re.sub(r"\b[A-Za-z_]\w*\b", name, e)
            if not re.fullmatch(r"[\d\s()+\-*/%<>&|^~?:]*", e):
                return None
            return int(eval(e.replace("/", "//"), {"__builtins__": {}}))  # digits and operators only
        except (ValueError, SyntaxError, ZeroDivisionError, TypeError):
            return None

    def _name(self, n: str) -> int | None:
        if n not in self._consts:
            self._consts[n] = None  # a cycle evaluates to None
            self._consts[n] = self.const(self._raw[n]) if n in self._raw else None
        return self._consts[n]

    def _declarators(self, decl: str) -> list[tuple[str, int, list[int]]]:
        m = re.match(r"(?:static\s+|const\s+|volatile\s+)*(\w+)\s+(.+)$", decl, re.S)
        if not m or m.group(1) not in self.types or "(" in m.group(2):
            return []
        out = []
        for d in m.group(2).split(","):
            dm = re.match(r"\s*(\w+)\s*((?:\[[^\]]+\]\s*)*)(?:=.*)?$", d, re.S)
            if not dm:
                continue
            dims = [self.const(x) for x in re.findall(r"\[([^\]]+)\]", dm.group(2))]
            if None not in dims:
                out.append((dm.group(1), self.types[m.group(1)], dims))
        return out

    def arrays(self) -> list[dict]:
        """Every array variable of the kernel sources (struct members flattened): name, width, dims, banks."""
        out = []
        for f, src in self.sources.items():
            body = re.sub(r"\([^()]*(?:\([^()]*\)[^()]*)*\)", "()", src)  # drop parameter lists
            body = re.sub(r"^\s*#[^\n]*", "", body, flags=re.M)  # and preprocessor lines
            for decl in re.split(r"[;{}]", body):
                for name, bits, dims in self._declarators(decl.strip()):
                    tm = re.match(r"(?:static\s+|const\s+)*(\w+)", decl.strip())
                    if dims:
                        out.append({"file": f, "name": name, "width": bits, "dims": dims})
                    elif tm and tm.group(1) in self.structs:
                        out += [{"file": f, "name": f"{name}.{m}", "width": b, "dims": d}
                                for m, b, d in self.structs[tm.group(1)] if d]
        parts = re.findall(r"#pragma\s+HLS\s+ARRAY_PARTITION\s+([^\n]+)", "\n".join(self.sources.values()), re.I)
        for a in out:
            banks = 1
            for p in parts:
                if not re.search(rf"variable\s*=\s*{re.escape(a['name'])}\b", p):
                    continue
                dm = re.search(r"dim\s*=\s*(\d+)", p)
                dim = int(dm.group(1)) if dm else 0
                fm = re.search(r"factor\s*=\s*(\w+)", p)
                for k, n in enumerate(a["dims"]):
                    if dim in (0, k + 1):
                        banks *= n if re.search(r"\bcomplete\b", p) else min(n, self.const(fm.group(1)) if fm else n)
            total = _prod(a["dims"])
            a["banks"], a["depth"] = banks, ceil(total / banks)
        return out

    def multiply_sites(self) -> tuple[int, int, int]:
        """Variable x variable `a * b` sites: (all, inside pipelined loops, functions with others).

        Sites in a pipelined loop each need their own multiplier; the others, in non-pipelined
        code, can share one per function (HLS binds operations of different states to one unit).
        """
        total = piped = funcs = 0
        for src in self.sources.values():
            sites = []
            for m in re.finditer(r"([\w\].)]+)\s*\*\s*\(?\s*([A-Za-z_][\w.\->\[\]]*)", src):
                a, b = m.group(1), m.group(2)
                if a in self.types or a in ("const", "void", "return") or a.endswith("_t"):
                    continue  # a pointer declaration or a dereference, not a product
                if not (re.fullmatch(r"\d+\w*|[A-Z_][A-Z0-9_]*", a) or re.fullmatch(r"[A-Z_][A-Z0-9_]*", b)):
                    sites.append(m.start())
            spans = [_enclosing_block(src, m.start()) for m in re.finditer(r"#pragma\s+HLS\s+PIPELINE", src, re.I)]
            fn = _function_spans(src)
            rest = set()
            for pos in sites:
                if any(a <= pos < b for a, b in spans):
                    piped += 1
                else:
                    rest.add(next((k for k, (a, b) in enumerate(fn) if a <= pos < b), -1))
            total += len(sites)
            funcs += len(rest)
        return total, piped, funcs


def _enclosing_block(s: str, pos: int) -> tuple[int, int]:
    depth, i = 0, pos
    while i > 0:
        i -= 1
        depth += (s[i] == "}") - (s[i] == "{")
        if depth < 0:
            break
    j, depth = i, 0
    for j in range(i, len(s)):
        depth += (s[j] == "{") - (s[j] == "}")
        if depth == 0:
            break
    return i, j + 1


def _function_spans(s: str) -> list[tuple[int, int]]:
    out, depth, start = [], 0, 0
    for i, ch in enumerate(s):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                out.append((start, i + 1))
    return out


def _prod(xs) -> int:
    p = 1
    for x in xs:
        p *= x
    return p
