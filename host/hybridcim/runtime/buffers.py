"""The DDR buffer layout shared by the board and the csim library (program-format.md "Runtime buffers").

- program: the image as little-endian u64 words (image_bytes / 8 words);
- images: N uint8 NCHW images, each padded with zeros to ceil(C*H*W / 8) u64 words;
- out: N x (output H*W*C) int32, NHWC per image;
- scratch: int32 activation arena; tensor t of one image at offset sum_{t'<t} C*H*W (tensor
  table order), S = sum of all; with the TRACE flag image n uses words [n*S, (n+1)*S);
- counters (with the COUNTERS flag): one header word (magic, layout version, counters per layer,
  n_layers), then n_layers x len(COUNTER_FIELDS) u64, layer-major, the activity counters of one
  call (architecture.md §7).

>>> tensor_offsets([(3, 2, 2), (4, 1, 1)])
[0, 12]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..emulator.counters import DUAL_EXTRA, HYBRID_EXTRA, PER_IMAGE, LayerCounters, dual_static_counters
from ..program.model import Program
from ..spec.hardware import HardwarePreset
from .errors import CapacityError, DeviceError

FLAG_TRACE = 1
FLAG_VALIDATE_ONLY = 2
FLAG_COUNTERS = 4
COUNTER_FIELDS = PER_IMAGE + HYBRID_EXTRA + DUAL_EXTRA
"""Order of the kernel's counters of one layer (HCIM_C_* in hls/hybridcim_accel.h); append-only:
layout 1 (kernel 1.2) has the first 16 (PER_IMAGE), layout 2 (kernel 1.3) the first 25, layout 3
(kernel 1.4: the second macro type's counters, architecture.md §10.4) all 32."""
COUNTERS_MAGIC = 0x544E4348
"""Low 32 bits of the counters buffer's header word: "HCNT" (HCIM_CNT_MAGIC)."""
COUNTERS_LAYOUT = 3
"""Layout version of the counters buffer (HCIM_CNT_LAYOUT): one header word, then layer-major rows.
Layouts 1 (kernel 1.2, 16 counters: no hybrid-mode counters) and 2 (kernel 1.3, 25: no dual-path
counters) are read too, the counters they lack as 0."""
COUNTERS_PER_LAYOUT = {1: len(PER_IMAGE), 2: len(PER_IMAGE) + len(HYBRID_EXTRA),
                       3: len(PER_IMAGE) + len(HYBRID_EXTRA) + len(DUAL_EXTRA)}
"""Counters a buffer of each layout version holds at least (those this package reads)."""
COUNTERS_HEADER_WORDS = 1
INFO_FIELDS = ("kernel_major", "kernel_minor", "fingerprint", "rows", "cols", "rows_active", "group_width",
               "n_macros", "acc_bits", "adc_bits", "precision_mask", "max_tensors", "max_layers", "max_filters",
               "max_groups", "max_rowblocks", "max_cwords", "max_pack_words")
"""Order of the constants ``hcim_csim_info`` returns (hls/csim_api.cpp)."""


@dataclass(frozen=True)
class KernelInfo:
    """Compile-time constants of a kernel build (csim library or bitstream manifest)."""

    kernel_major: int
    kernel_minor: int
    fingerprint: int
    rows: int
    cols: int
    rows_active: int
    group_width: int
    n_macros: int
    acc_bits: int
    adc_bits: int
    precision_mask: int
    max_tensors: int
    max_layers: int
    max_filters: int
    max_groups: int
    max_rowblocks: int
    max_cwords: int
    max_pack_words: int

    @property
    def kernel_version(self) -> str:
        return f"{self.kernel_major}.{self.kernel_minor}"

    def matches(self, preset: HardwarePreset) -> bool:
        return self.fingerprint == preset.fingerprint


def tensor_offsets(shapes) -> list[int]:
    """Scratch offsets (int32 words) of tensors with (C, H, W) shapes, in table order."""
    offs, total = [], 0
    for c, h, w in shapes:
        offs.append(total)
        total += c * h * w
    return offs


def scratch_layout(program: Program) -> tuple[list[int], int]:
    """(offset of every tensor, S = int32 words per image) of ``program``'s scratch arena."""
    shapes = [(t.channels, t.height, t.width) for t in program.tensors]
    offs = tensor_offsets(shapes)
    return offs, sum(c * h * w for c, h, w in shapes)


def output_words(program: Program) -> int:
    t = program.output
    return t.channels * t.height * t.width


def program_words(image: bytes) -> np.ndarray:
    """The image as a contiguous little-endian uint64 array (the program buffer)."""
    if len(image) % 8:
        raise ValueError(f"program image of {len(image)} bytes is not a multiple of 8")
    return np.frombuffer(bytes(image), dtype="<u8").astype(np.uint64).copy()


def pack_images(images: np.ndarray) -> np.ndarray:
    """uint8 NCHW images -> (N, ceil(C*H*W/8)) uint64 words, bytes in NCHW order, zero padded."""
    images = np.asarray(images)
    x = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), int(np.prod(images.shape[1:])))
    words = -(-x.shape[1] // 8)
    buf = np.zeros((x.shape[0], words * 8), dtype=np.uint8)
    buf[:, :x.shape[1]] = x
    return buf.view("<u8").astype(np.uint64, copy=False)


def tensors_from_scratch(program: Program, scratch: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Every tensor of ``n`` traced images: name -> int64 (N, H, W, C) from a TRACE-mode scratch."""
    offs, per = scratch_layout(program)
    s = np.asarray(scratch)[:n * per].reshape(n, per)
    return {t.name: s[:, o:o + t.channels * t.height * t.width].astype(np.int64).reshape(n, t.height, t.width, t.channels)
            for t, o in zip(program.tensors, offs)}


class CounterLayoutError(DeviceError):
    """A counters buffer whose header does not describe a layout this package reads."""


def counters_header(n_layers: int, n_counters: int = len(COUNTER_FIELDS), layout: int = COUNTERS_LAYOUT) -> int:
    """The header word: magic | layout << 32 | counters per layer << 40 | n_layers << 48.

    >>> hex(counters_header(2, 32))
    '0x22003544e4348'
    """
    return COUNTERS_MAGIC | layout << 32 | n_counters << 40 | n_layers << 48


def parse_counters_header(word: int, n_layers: int) -> int:
    """Counters per layer of a buffer whose header word is ``word``; raises CounterLayoutError on a
    wrong magic or layout version, a layer count other than ``n_layers``, or fewer counters than
    this package reads (a newer kernel's extra counters are allowed: they come after ours)."""
    word = int(word)
    magic, layout = word & 0xFFFFFFFF, (word >> 32) & 0xFF
    n_counters, layers = (word >> 40) & 0xFF, (word >> 48) & 0xFFFF
    if magic != COUNTERS_MAGIC:
        raise CounterLayoutError(f"counters buffer: header magic {magic:#010x} is not {COUNTERS_MAGIC:#010x} "
                                 "('HCNT'); a kernel before 1.2 has no counter header: rebuild it")
    if layout not in COUNTERS_PER_LAYOUT:
        raise CounterLayoutError(f"counters buffer: layout version {layout} is not supported (this package reads "
                                 f"layouts {sorted(COUNTERS_PER_LAYOUT)})")
    if layers != n_layers:
        raise CounterLayoutError(f"counters buffer: header says {layers} layers, the program has {n_layers}")
    need = COUNTERS_PER_LAYOUT[layout]
    if n_counters < need:
        raise CounterLayoutError(f"counters buffer: {n_counters} counters per layer, layout {layout} has {need} "
                                 f"(missing {', '.join(COUNTER_FIELDS[n_counters:need])})")
    return n_counters


def counters_words(program: Program) -> int:
    """u64 words of the counters buffer of ``program`` (header included)."""
    return COUNTERS_HEADER_WORDS + len(program.layers) * len(COUNTER_FIELDS)


def counters_to_words(counters: list[LayerCounters]) -> np.ndarray:
    """LayerCounters -> the kernel's counters buffer: uint64 header word, then n_layers x len(COUNTER_FIELDS)."""
    rows = [[getattr(c, f) for f in COUNTER_FIELDS] for c in counters]
    return np.array([counters_header(len(counters))] + [v for r in rows for v in r], dtype=np.uint64)


def counters_from_buffer(program: Program, buf: np.ndarray) -> list[LayerCounters]:
    """The kernel's counters buffer -> one LayerCounters per layer (static fields from the program).

    Reads the header first (:func:`parse_counters_header`); counters past the ones this package
    knows are ignored."""
    words = np.asarray(buf, dtype=np.uint64).ravel()
    n_layers = len(program.layers)
    if words.size < COUNTERS_HEADER_WORDS:
        raise CounterLayoutError("counters buffer is empty")
    n_counters = parse_counters_header(words[0], n_layers)
    need = COUNTERS_HEADER_WORDS + n_layers * n_counters
    if words.size < need:
        raise CounterLayoutError(f"counters buffer of {words.size} words, its header needs {need}")
    rows = words[COUNTERS_HEADER_WORDS:need].reshape(n_layers, n_counters)
    known = COUNTER_FIELDS[:COUNTERS_PER_LAYOUT[(int(words[0]) >> 32) & 0xFF]]  # layouts 1, 2: fewer counters
    out = []
    for layer, row in zip(program.layers, rows):
        c = dual_static_counters(layer, program, 0)  # the static fields (a dual-path layer's ternary ones too)
        for name, v in zip(known, row):
            setattr(c, name, int(v))
        out.append(c)
    return out


def check_capacity(program: Program, info: KernelInfo) -> None:
    """Raise CapacityError naming the layer and limit if ``program`` exceeds the kernel's buffers.

    Mirrors the kernel's own checks (hls/hcim_program.cpp), so a program that passes here is
    never refused by the kernel with status LIMIT.
    """
    def fail(what: str) -> None:
        raise CapacityError(f"program {program.name!r} does not fit the kernel ({info.kernel_version}, "
                            f"fingerprint {info.fingerprint:08x}): {what}")
    if len(program.tensors) > info.max_tensors:
        fail(f"{len(program.tensors)} tensors > max_tensors {info.max_tensors}")
    if len(program.layers) > info.max_layers:
        fail(f"{len(program.layers)} layers > max_layers {info.max_layers}")
    _, per = scratch_layout(program)
    if per > 0x7FFFFFFF:
        fail(f"scratch of {per} int32 words per image exceeds 2^31 - 1")
    for i, l in enumerate(program.layers):
        if not l.op.is_cim:
            continue
        t = program.tensors[l.in_tensor]
        cw = -(-t.channels // 64)
        checks = (("filters", l.n_filters, info.max_filters), ("column groups", l.n_groups, info.max_groups),
                  ("row blocks", l.n_rowblocks, info.max_rowblocks),
                  ("input plane words per pixel (ceil(C/64))", cw, info.max_cwords),
                  ("packed input words (H*W*bits*ceil(C/64))", t.height * t.width * t.bits * cw, info.max_pack_words))
        for what, got, limit in checks:
            if got > limit:
                fail(f"layer {i} ({l.name!r}): {what} = {got} > {limit}")
