"""Reader checks that the HLS kernel applies too, in the kernel's order (program-format.md "Reader checks", rows 7-13).

:func:`check_structure` mirrors ``hcim_load_tables`` of hls/hcim_program.cpp check for check,
so an image with several defects gets the same error class from the host and the kernel. It
reads only fields and sections already checked to lie inside the image, so nothing it
allocates is larger than a constant times the image.
"""
from __future__ import annotations

import json
import re

import numpy as np

from .errors import CapacityError, InvalidProgramError, SectionError
from .format import (ALIGN, CM_PLANE_SHIFT, CM_USED_SHIFT, FLAG_DUAL, HEADER, HEADER_RESERVED, LAYER, LAYER_OFF_DUAL,
                     LAYER_RESERVED, LAYER_OFF_HYBRID, LAYER_RESERVED_DUAL, LAYER_RESERVED_HYBRID, MANIFEST_MAX_DEPTH,
                     MODE_HYBRID, NO_TENSOR, TENSOR, TENSOR_RESERVED, VERSION_MINOR_DUAL, VERSION_MINOR_HYBRID)
from .dualpath import DUAL, DUAL_RESERVED, DualPathParams, tern_from_header, tern_header_bytes, tern_header_ok
from .hybrid import HYBRID, section_problem


def section_ok(off: int, nbytes: int, total: int) -> bool:
    """A section [off, off + nbytes) starts past the header on an 8-byte boundary and ends inside the image.

    An empty section (nbytes = 0) obeys the same rule; sections may overlap each other, the
    tables and the manifest.
    """
    return off >= HEADER.size and off % ALIGN == 0 and off + nbytes <= total


def _reserved_zero(buf: bytes, base: int, ranges) -> bool:
    return all(not any(buf[base + o:base + o + n]) for o, n in ranges)


class Names:
    """Best-effort names from the manifest for messages while the structure is checked."""

    def __init__(self, buf: bytes, off: int, n: int):
        self.tensors: list = []
        self.layers: list = []
        if section_ok(off, n, len(buf)) and json_depth_ok(buf[off:off + n]):
            try:
                meta = json.loads(buf[off:off + n].decode("utf-8"))
                self.tensors, self.layers = list(meta.get("tensors", [])), list(meta.get("layers", []))
            except (UnicodeDecodeError, ValueError, AttributeError, TypeError):
                pass

    def layer(self, i: int) -> str:
        n = self.layers[i] if i < len(self.layers) else None
        return f"layer {i} ({n!r})" if isinstance(n, str) else f"layer {i}"

    def tensor(self, i: int) -> str:
        n = self.tensors[i] if i < len(self.tensors) else None
        return f"tensor {i} ({n!r})" if isinstance(n, str) else f"tensor {i}"


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


def json_depth_ok(raw: bytes) -> bool:
    """True if the JSON text nests arrays/objects at most MANIFEST_MAX_DEPTH deep (checked before parsing)."""
    s = np.frombuffer(_STRINGS.sub(b'""', bytes(raw)), dtype=np.uint8)
    step = (np.isin(s, (ord("["), ord("{"))).astype(np.int64) - np.isin(s, (ord("]"), ord("}"))))
    return not len(step) or int(np.cumsum(step).max()) <= MANIFEST_MAX_DEPTH


def _check_dual(buf: bytes, base: int, total: int, f: int, k: int, bits_in: int, prec: np.ndarray,
                tern: dict, bad, where: str) -> None:
    """Row 12(f): a dual-path layer (flags bit 0) in the order of program-format.md."""
    if not tern:
        bad("dual-path layer (flags bit 0) on a preset without the second macro type (no tern_* geometry in "
            "the header): the ternary path has no macro to run on")
    od = int.from_bytes(buf[base + LAYER_OFF_DUAL:base + LAYER_OFF_DUAL + 4], "little")
    if not section_ok(od, DUAL.size, total):
        raise SectionError(f"{where} dual: section [{od}, {od + DUAL.size}) lies outside the {total}-byte image, "
                           "overlaps the header or is misaligned")
    if not _reserved_zero(buf, od, DUAL_RESERVED):
        bad("dual section reserved bytes 12..15 must be 0")
    params, r_t, n_words, off_w = DualPathParams.unpack(buf[od:od + DUAL.size])
    problem = params.problem(bits_in)
    if problem:
        bad(problem)
    a = tern["tern_rows_active"]
    f_t = params.n_tern(f)
    if r_t != -(-k // a) or n_words != 2 * f_t * r_t:
        bad(f"dual n_tern_rowblocks {r_t} must be ceil(K / {a}) = {-(-k // a)} and n_tern_words {n_words} = "
            f"2 x ternary filters ({f_t}) x n_tern_rowblocks")
    if not section_ok(off_w, 8 * n_words, total):
        raise SectionError(f"{where} ternary weights: section [{off_w}, {off_w + 8 * n_words}) lies outside the "
                           f"{total}-byte image, overlaps the header or is misaligned")
    w = np.frombuffer(buf, "<u8", n_words, off_w)
    if a < 64 and n_words and np.any(w >> np.uint64(a)):
        bad(f"ternary weight words hold bits above tern_rows_active ({a}): bits {a}..63 must be 0")
    if n_words and np.any(w[0::2] & w[1::2]):
        u = int(np.nonzero(w[0::2] & w[1::2])[0][0]) // r_t
        bad(f"ternary filter {f - f_t + u}: a weight has both its positive and negative cell set, which is not a "
            "ternary weight (outside {-1, 0, 1})")
    if f_t and np.any(prec[f - f_t:]):
        bad(f"ternary-path filters {f - f_t}..{f - 1} must have SRAM precision 0 (their weights are on the "
            "ternary macros)")


def check_structure(buf: bytes, h: tuple, limits, names: Names, preset=None) -> list[tuple]:
    """The kernel's table checks (hls/hcim_program.cpp ``hcim_load_tables``), in its order.

    Raises InvalidProgramError (kernel status LAYER / TENSOR), SectionError (the same, for a
    section) or, with ``limits``, CapacityError (LIMIT) at the point the kernel does. ``preset``: the
    preset row 6 read from the header (format 1.2: row 7 then wants its canonical bytes 61..63). Touches
    only sizes bounded by the image's length. Returns the raw tensor records.
    """
    total = len(buf)
    n_t, n_l, t_in, t_out, toff, loff = h[13:19]
    tern = tern_from_header(*buf[61:64]) if h[2] >= VERSION_MINOR_DUAL else {}
    if h[2] >= VERSION_MINOR_DUAL and preset is not None and bytes(buf[61:64]) != tern_header_bytes(preset):
        raise InvalidProgramError(f"header bytes 61..63 = {bytes(buf[61:64]).hex()} are not the second macro type of "
                                  f"the preset the fingerprint names ({tern_header_bytes(preset).hex()})")
    if h[2] >= VERSION_MINOR_DUAL and not tern_header_ok(*buf[61:64]):
        raise InvalidProgramError("header bytes 61..63 (format 1.2: the second macro type's geometry) hold bits "
                                  "the encoding leaves 0, or bits without the presence bit (byte 63 bit 7)")
    if preset is not None:
        tern = {"tern_rows_active": preset.tern_rows_active} if preset.has_tern else {}
    if h[2] < VERSION_MINOR_DUAL and not _reserved_zero(buf, 0, HEADER_RESERVED):
        raise InvalidProgramError("header reserved bytes 61..63 must be 0 (format < 1.2)")
    if limits is not None and (n_t > limits.max_tensors or n_l > limits.max_layers):
        raise CapacityError(f"{n_t} tensors / {n_l} layers exceed the kernel's tables "
                            f"({limits.max_tensors} / {limits.max_layers})")
    if n_t < 2 or n_l < 1:
        raise InvalidProgramError(f"a program has >= 2 tensors and >= 1 layer, got {n_t} and {n_l}")
    if not section_ok(toff, TENSOR.size * n_t, total):
        raise SectionError(f"tensor table [{toff}, {toff + TENSOR.size * n_t}) lies outside the {total}-byte image, "
                           "overlaps the header or is misaligned")
    if not section_ok(loff, LAYER.size * n_l, total):
        raise SectionError(f"layer table [{loff}, {loff + LAYER.size * n_l}) lies outside the {total}-byte image, "
                           "overlaps the header or is misaligned")
    trec, scratch = [], 0
    for i in range(n_t):
        c, hh, w, bits, sgn, exp = rec = TENSOR.unpack_from(buf, toff + TENSOR.size * i)
        if not (c and hh and w) or not 1 <= bits <= (32 if sgn else 31) or sgn > 1 or \
                not _reserved_zero(buf, toff + TENSOR.size * i, TENSOR_RESERVED):
            raise InvalidProgramError(f"{names.tensor(i)}: shape {c}x{hh}x{w}, bits {bits}, signed byte {sgn} or "
                                      "reserved bytes invalid (shape >= 1, signed 0/1, 1..32 bits signed, "
                                      "1..31 unsigned, reserved 0)")
        scratch += c * hh * w
        if limits is not None and scratch > 0x7FFFFFFF:
            raise CapacityError(f"scratch of the tensors up to {names.tensor(i)} exceeds 2^31 - 1 int32 words")
        trec.append(rec)
    if not (t_in < n_t and t_out < n_t and t_in != t_out):
        raise InvalidProgramError(f"input/output tensor ({t_in}, {t_out}) out of range or equal ({n_t} tensors)")
    if trec[t_in][4] or trec[t_in][3] > 8:
        raise InvalidProgramError(f"program input {names.tensor(t_in)} must be unsigned with <= 8 bits")
    g, a = h[9], h[8]
    produced = [False] * n_t
    produced[t_in] = True
    for i in range(n_l):
        base = loff + LAYER.size * i
        (op, mode, kh, kw, stride, pad, flags, lin, lout, lres, f, k, ng, nrb, lo, hi, pshift, *offs) = \
            LAYER.unpack_from(buf, base)
        where = names.layer(i)

        def bad(msg: str) -> None:
            raise InvalidProgramError(f"{where}: {msg}")
        if op not in (1, 2, 3, 4):
            bad(f"unknown op code {op}")
        if lin >= n_t or not produced[lin] or lout >= n_t or produced[lout]:
            bad(f"input tensor {lin} must be the program input or an earlier output and output tensor {lout} new")
        if lres != NO_TENSOR and (lres >= n_t or not produced[lres]):
            bad(f"residual tensor {lres} is not the program input or an earlier layer's output")
        ti, to = trec[lin], trec[lout]  # (c, h, w, bits, signed, exponent)
        hybrid = mode == MODE_HYBRID and h[2] >= VERSION_MINOR_HYBRID and op in (1, 2)
        dual = flags == FLAG_DUAL and h[2] >= VERSION_MINOR_DUAL and op in (1, 2)
        if kh < 1 or kw < 1 or stride < 1 or (mode != 0 and not hybrid) or (flags != 0 and not dual):
            bad(f"kernel {kh}x{kw} stride {stride} (>= 1), mode {mode} (0, or 1 = hybrid on conv/fc in format "
                f">= 1.{VERSION_MINOR_HYBRID}) and flags {flags:#x} (0, or 1 = dual-path on conv/fc in format "
                f">= 1.{VERSION_MINOR_DUAL})")
        if hybrid and dual:
            bad("mode 1 with flags bit 0: spec 1.2 combines the dual path with digital mode 0 only")
        reserved = LAYER_RESERVED_HYBRID if hybrid else LAYER_RESERVED_DUAL if dual else LAYER_RESERVED
        if not _reserved_zero(buf, base, reserved):
            bad("reserved bytes 33..35 and 76..95 of the layer record must be 0, off_hybrid (68..71) 0 "
                "unless mode = 1 and off_dual (72..75) 0 unless flags = 1")
        if op in (3, 4):
            if ti[4] or to[4]:
                bad("pools take and give unsigned tensors")
            if f or k or ng or nrb or any(offs):
                bad("pool records hold n_filters = k_rows = n_groups = n_rowblocks = n_weight_words = 0 and "
                    "all section offsets 0")
            if lres != NO_TENSOR:
                bad("pools take no residual")
        if op == 3 and (kh != kw or pad != 0 or lo != 0 or hi != 0 or pshift != 0):
            bad("maxpool window must be square with pad 0, clamp [0, 0] and pool_shift 0")
        if op == 4:
            if (kh, kw, to[1], to[2], to[0]) != (ti[1], ti[2], 1, 1, ti[0]) or stride != 1 or pad != 0:
                bad(f"global avgpool window must be {ti[1]}x{ti[2]}, stride 1, pad 0, output 1x1x{ti[0]}")
            if lo > 0 or hi < 0 or not -31 <= pshift <= 31:
                bad(f"avgpool clamp [{lo}, {hi}] must contain 0 and pool_shift {pshift} lie in -31..31")
            produced[lout] = True
            continue
        p = 0 if op == 3 else pad
        if ti[1] + 2 * p < kh or ti[2] + 2 * p < kw or \
                (to[1], to[2]) != ((ti[1] + 2 * p - kh) // stride + 1, (ti[2] + 2 * p - kw) // stride + 1):
            bad(f"output {to[1]}x{to[2]} != computed from input {ti[1]}x{ti[2]}, kernel {kh}x{kw}, stride {stride}, "
                f"pad {p}")
        if op == 3:
            if to[0] != ti[0]:
                bad("maxpool output channels must equal its input's")
            produced[lout] = True
            continue
        if ti[4] or ti[3] > 8 or to[0] != f or f < 1 or pshift != 0:
            bad(f"conv/fc input must be unsigned <= 8 bits, n_filters {f} = output channels {to[0]} >= 1, "
                f"pool_shift {pshift} = 0")
        if op == 2 and (kh, kw, stride, pad) != (ti[1], ti[2], 1, 0):
            bad(f"fc kernel must cover the input ({ti[1]}x{ti[2]}, stride 1, pad 0)")
        if k != kh * kw * ti[0] or nrb != -(-k // a):
            bad(f"K = {k} must be kh*kw*C = {kh * kw * ti[0]} and n_rowblocks {nrb} = ceil(K / {a})")
        if lres != NO_TENSOR and trec[lres][:3] != to[:3]:
            bad(f"residual tensor {lres} must have the output's shape")
        if limits is not None:
            cw = -(-ti[0] // 64)
            for what, got, lim in (("filters", f, limits.max_filters), ("column groups", ng, limits.max_groups),
                                   ("row blocks", nrb, limits.max_rowblocks),
                                   ("input plane words per pixel (ceil(C/64))", cw, limits.max_cwords),
                                   ("packed input words (H*W*bits*ceil(C/64))", ti[1] * ti[2] * ti[3] * cw,
                                    limits.max_pack_words)):
                if got > lim:
                    raise CapacityError(f"{where}: {what} = {got} > {lim}")
        n_words = offs[7]
        for what, off, nbytes in (("precision", offs[0], f), ("bias", offs[1], 4 * f), ("shift", offs[2], f),
                                  ("res_shift", offs[3], f), ("column map", offs[4], 4 * ng * g),
                                  ("skip index", offs[5], (ng * nrb + 7) // 8), ("weights", offs[6], 8 * n_words)):
            if not section_ok(off, nbytes, total):
                raise SectionError(f"{where} {what}: section [{off}, {off + nbytes}) lies outside the {total}-byte "
                                   "image, overlaps the header or is misaligned")
        prec = np.frombuffer(buf, np.uint8, f, offs[0]).astype(np.int64)
        shift = np.frombuffer(buf, np.int8, f, offs[2])
        rshift = np.frombuffer(buf, np.int8, f, offs[3])
        mask = h[-1]
        allowed = np.array([p == 0 or (p <= 8 and mask >> (p - 1) & 1) for p in range(256)])
        if not allowed[prec].all() or shift.min() < -31 or shift.max() > 31 or rshift.min() < 0 or rshift.max() > 31:
            bad("precisions must be 0 or in the preset's set, shifts in -31..31, res_shifts in 0..31")
        cm = np.frombuffer(buf, "<u4", ng * g, offs[4]).astype(np.int64)
        used = (cm >> CM_USED_SHIFT) & 1
        cf, cj = cm & 0xFFFF, (cm >> CM_PLANE_SHIFT) & 0xFF
        if np.any(cm >> (CM_USED_SHIFT + 1)) or np.any((used == 0) & (cm != 0)) or \
                np.any((used == 1) & ((cf >= f) | (cj >= prec[np.minimum(cf, max(f - 1, 0))]))):
            bad("column map entries must be 0 (unused) or filter < F | plane < precision << 16 | 1 << 24, "
                "bits 25..31 zero")
        skip = np.unpackbits(np.frombuffer(buf, np.uint8, (ng * nrb + 7) // 8, offs[5]), bitorder="little")
        if int(skip[:ng * nrb].sum()) * g != n_words:
            bad(f"{n_words} weight words != present units x group_width")
        if a < 64 and n_words and np.any(np.frombuffer(buf, "<u8", n_words, offs[6]) >> np.uint64(a)):
            bad(f"weight words hold bits above rows_active ({a}): bits {a}..63 must be 0")
        if hybrid:  # (e) format 1.1: the hybrid section (architecture.md §9.5)
            oh = int.from_bytes(buf[base + LAYER_OFF_HYBRID:base + LAYER_OFF_HYBRID + 4], "little")
            if not section_ok(oh, HYBRID.size, total):
                raise SectionError(f"{where} hybrid: section [{oh}, {oh + HYBRID.size}) lies outside the "
                                   f"{total}-byte image, overlaps the header or is misaligned")
            problem = section_problem(buf[oh:oh + HYBRID.size], ti[3])
            if problem:
                bad(problem)
        if dual:  # (f) format 1.2: the dual section and the ternary weights (architecture.md §10.5)
            _check_dual(buf, base, total, f, k, ti[3], prec, tern, bad, where)
        produced[lout] = True
    if not produced[t_out]:
        raise InvalidProgramError(f"output {names.tensor(t_out)} is never produced")
    return trec
