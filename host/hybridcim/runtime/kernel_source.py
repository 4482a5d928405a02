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


SYNTHESIS_DEFINES = frozenset({"__SYNTHESIS__", "HCIM_HW_DATAPATH"})  # what Vitis HLS compiles; no HCIM_CYCLE_COUNT


def _preprocess(text: str, value, defines: frozenset = frozenset()) -> str:
    """Keep the branches of #if/#ifdef/#ifndef/#elif/#else a synthesis build takes (blank the others).

    ``value(expr)`` evaluates a condition after ``defined(X)`` is replaced; None (unknown) keeps the branch.
    ``#ifdef X`` / ``#ifndef X`` see X defined if it is a synthesis define, one of ``defines`` (the
    board build's ``-D`` flags, e.g. ``HCIM_URAM``) or was ``#define``d on an active line before (the
    preset header's optional fields, e.g. the second macro type's).
    """
    out, stack = [], []  # stack: [this branch active, some branch taken]
    given = SYNTHESIS_DEFINES | frozenset(defines)
    seen = set(given)
    for line in text.split("\n"):
        m = re.match(r"\s*#\s*(ifdef|ifndef|if|elif|else|endif)\b(.*)", line)
        active = all(a for a, _ in stack)
        if not m:
            d = re.match(r"\s*#\s*define\s+(\w+)", line)
            if d and active:
                seen.add(d.group(1))
            out.append(line if active else "")
            continue
        kind, cond = m.group(1), m.group(2).strip()
        if kind in ("ifdef", "ifndef"):
            c = (cond in seen) == (kind == "ifdef")
            stack.append([c, c])
        elif kind in ("if", "elif"):
            e = re.sub(r"defined\s*\(?\s*(\w+)\s*\)?", lambda d: "1" if d.group(1) in given else "0", cond)
            v = value(e)
            c = True if v is None else bool(v)
            if kind == "if":
                stack.append([c, c])
            elif stack:
                stack[-1] = [c and not stack[-1][1], stack[-1][1] or c]
        elif kind == "else" and stack:
            stack[-1] = [not stack[-1][1], True]
        elif kind == "endif" and stack:
            stack.pop()
        out.append("")
    return "\n".join(out)


class SourceModel:
    """Constants, types and arrays of the kernel sources for one preset."""

    def __init__(self, hls_dir: Path, preset: HardwarePreset, defines: "frozenset[str] | tuple" = ()):
        self.defines = frozenset(defines)  # -D flags of the build on top of the synthesis defines
        texts = [(hls_dir / "presets" / f"{preset.name}.h").read_text()]
        texts += [(hls_dir / h).read_text() for h in HEADERS if (hls_dir / h).is_file()]
        raw_sources = {f: _strip((hls_dir / f).read_text()) for f in KERNEL_SOURCES}
        text = _strip("\n".join(texts)) + "\n" + "\n".join(raw_sources.values())
        self._raw = dict(re.findall(r"^\s*#define\s+(\w+)\s+([^\n]+)", text, re.M))
        self._consts = {}
        full = text
        for _ in range(2):  # the branches synthesis takes; their #defines win (twice: a define may select a branch)
            text = _preprocess(full, self.condition, self.defines)
            self._raw.update(re.findall(r"^\s*#define\s+(\w+)\s+([^\n]+)", text, re.M))
            self._consts = {}
        self.sources = {f: _preprocess(t, self.condition, self.defines) for f, t in raw_sources.items()}
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

    def condition(self, expr: str) -> int | None:
        """Value of a preprocessor condition (``==``, ``!=``, ``&&``, ``||``, ``!``), None if unknown."""
        self._consts = {}
        e = expr.replace("&&", " and ").replace("||", " or ")
        e = re.sub(r"!(?!=)", " not ", e)
        return self.const(e, allow_logic=True)

    def const(self, expr: str, bindings: "dict[str, int] | None" = None, allow_logic: bool = False) -> int | None:
        """Integer value of a constant expression of the sources (None if not constant).

        ``bindings``: values of names that are not macros (template parameters of an instantiation).
        """
        def name(m):
            if m.group(0) in ("and", "or", "not") and allow_logic:
                return m.group(0)
            if bindings and m.group(0) in bindings:
                return str(bindings[m.group(0)])
            if m.group(0) in ("true", "false"):
                return "1" if m.group(0) == "true" else "0"
            v = self._name(m.group(0))
            if v is None:
                raise ValueError(m.group(0))
            return str(v)
        e = re.sub(r"\b(\d+|0x[0-9a-fA-F]+)[uUlL]+\b", r"\1", expr.strip())
        e = re.sub(r"\b0x[0-9a-fA-F]+\b", lambda h: str(int(h.group(0), 16)), e)
        e = re.sub(r"\(\s*(?:u?int\d+_t|int|unsigned)\s*\)", "", e)
        try:
            e = re.sub(r"\b[A-Za-z_]\w*\b", name, e)
            if not re.fullmatch(r"[\d\s()+\-*/%<>=!&|^~]*" if not allow_logic else r"[\d\s()+\-*/%<>=!&|^~andortn]*", e):
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
        binds = re.findall(r"#pragma\s+HLS\s+BIND_STORAGE\s+([^\n]+)", "\n".join(self.sources.values()), re.I)
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
            impls = [im.group(1).lower() for p in binds if re.search(rf"variable\s*=\s*{re.escape(a['name'])}\b", p)
                     for im in [re.search(r"\bimpl\s*=\s*(\w+)", p, re.I)] if im]
            a["impl"] = impls[-1] if impls else None  # BIND_STORAGE impl (lutram, uram, bram, ...) or HLS's choice
            a["lutram"] = a["impl"] == "lutram"
        return out

    def multiply_sites(self) -> tuple[int, int, int]:
        """Variable x variable `a * b` sites: (all, inside pipelined loops, functions with others).

        Sites in a pipelined loop each need their own multiplier; the others, in non-pipelined
        code, can share one per function (HLS binds operations of different states to one unit).
        """
        total = piped = funcs = 0
        for src in self.sources.values():
            sites = [pos for pos, both_var, _ in self._products(src, 0, len(src)) if both_var]
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

    def _products(self, src: str, a: int, b: int):
        """(offset, both operands variable, DSP48 count) of every product `x * y` in src[a:b]."""
        for m in re.finditer(r"([\w\].)]+)\s*\*\s*\(?\s*([A-Za-z_0-9][\w.\->\[\]]*)", src[a:b]):
            x, y = m.group(1), m.group(2)
            if ")" in x and not x.endswith(")"):
                x = x.rsplit(")", 1)[1]  # `(uint64_t)K * y`: the operand after the cast
            if x in self.types or x in ("const", "void", "return") or x.endswith("_t"):
                continue  # a pointer declaration or a dereference, not a product
            cx = bool(re.fullmatch(r"\d\w*|0x[0-9a-fA-F]+\w*|[A-Z_][A-Z0-9_]*", x))
            cy = bool(re.fullmatch(r"\d\w*|0x[0-9a-fA-F]+\w*|[A-Z_][A-Z0-9_]*", y))
            if cx and cy:
                continue
            k = self.const(re.sub(r"[uUlL]+$", "", x if cx else y)) if (cx or cy) else None
            if k is not None and (k & (k - 1) == 0 or abs(k) < 1024):
                continue  # a power of two is a shift, a small constant a few LUT adders: no DSP
            wide = re.search(r"u?int64_t|wide_t|cnt_t", src[max(a, a + m.start() - 40):a + m.end()])
            yield a + m.start(), not (cx or cy), 4 if wide else 3

    def pipeline_multipliers(self) -> list[tuple[str, str, int]]:
        """DSP48s of the multipliers inside pipelined loops: (file, loop label, DSP48s) per pipelined loop.

        A pipelined loop's body is replicated as HLS builds it: loops inside it unrolled (their
        constant trip counts multiply), called functions inlined with the template arguments of
        their largest instantiation. Each product takes its own multiplier (3 DSP48 for 32-bit
        operands, 4 for a 64-bit result: the 25 x 18 DSP48E1/E2 multiplier tiled).
        """
        funcs = self._functions()
        out = []
        for f, src in self.sources.items():
            for m in re.finditer(r"#pragma\s+HLS\s+PIPELINE", src, re.I):
                a, b = _enclosing_block(src, m.start())
                lab = re.search(r"(\w+)\s*:\s*(?:for|while)\s*\([^{]*$", src[max(0, a - 300):a])
                host = next((fn for fn in funcs.values() if fn["file"] == f and fn["span"][0] <= a < fn["span"][1]), None)
                binds = host["binds"] if host else {}
                out.append((f, lab.group(1) if lab else "(unlabelled)", self._dsp(src, a, b, binds, funcs, 0)))
        return out

    def _dsp(self, src: str, a: int, b: int, binds: dict, funcs: dict, depth: int) -> int:
        loops = []
        for m in re.finditer(r"\bfor\s*\(", src[a:b]):
            h0 = a + m.end() - 1
            h1 = _match_close(src, h0, "(", ")")
            cond = src[h0 + 1:h1 - 1].split(";")
            n = None
            for conj in (cond[1].split("&&") if len(cond) == 3 else []):
                cm = re.match(r"\s*\w+\s*(<=?)\s*(.+?)\s*$", conj)
                v = self.const(cm.group(2), binds) if cm else None
                if v is not None:
                    n = v + (cm.group(1) == "<=") if n is None else min(n, v + (cm.group(1) == "<="))
            loops.append((h1, _stmt_end(src, h1), n or 1))
        def weight(pos):
            return _prod(n for s0, s1, n in loops if s0 <= pos < s1)
        total = sum(weight(pos) * d for pos, _, d in self._products(src, a, b))
        if depth < 8:
            for name, fn in funcs.items():
                for m in re.finditer(rf"\b{name}\s*(?:<([^<>;{{}}]*)>)?\s*\(", src[a:b]):
                    callee = dict(fn["binds"])
                    if m.group(1):
                        for k, v in zip(fn["params"], m.group(1).split(",")):
                            cv = self.const(v, binds)
                            if cv is not None:
                                callee[k] = cv
                    s2 = self.sources[fn["file"]]
                    total += weight(a + m.start()) * self._dsp(s2, *fn["body"], callee, funcs, depth + 1)
        return total

    def _functions(self) -> dict[str, dict]:
        """Function definitions: file, span, body, template parameters and their largest instantiation."""
        funcs = {}
        for f, src in self.sources.items():
            for a, b in _function_spans(src):
                sig = src[max(0, a - 400):a]
                m = re.search(r"(\w+)\s*\([^;{}]*\)\s*(?:const\s*)?$", sig)
                if not m or m.group(1) in ("if", "for", "while", "switch"):
                    continue
                t = re.search(r"template\s*<([^<>]*)>\s*[^;{}]*$", sig)
                params = re.findall(r"(?:int|bool|unsigned)\s+(\w+)", t.group(1)) if t else []
                funcs[m.group(1)] = {"file": f, "span": (a, b), "body": (a, b), "params": params, "binds": {}}
        for name, fn in funcs.items():  # largest value of each template argument over the calls
            for src in self.sources.values():
                for m in re.finditer(rf"\b{name}\s*<([^<>;{{}}]*)>\s*\(", src):
                    for k, v in zip(fn["params"], m.group(1).split(",")):
                        cv = self.const(v)
                        if cv is not None:
                            fn["binds"][k] = max(fn["binds"].get(k, cv), cv)
        return funcs


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


def _match_close(s: str, i: int, o: str, c: str) -> int:
    depth = 0
    for j in range(i, len(s)):
        depth += (s[j] == o) - (s[j] == c)
        if depth == 0:
            return j + 1
    return len(s)


def _stmt_end(s: str, i: int) -> int:
    while i < len(s) and s[i].isspace():
        i += 1
    if i < len(s) and s[i] == "{":
        return _match_close(s, i, "{", "}")
    m = re.match(r"(for|while)\s*\(", s[i:])
    if m:
        return _stmt_end(s, _match_close(s, i + m.end() - 1, "(", ")"))
    j = s.find(";", i)
    return len(s) if j < 0 else j + 1
