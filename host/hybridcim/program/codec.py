"""Encode/decode the binary program image and read/write it atomically (docs/program-format.md).

``decode`` applies the reader checks of program-format.md in their order: the header (size,
magic, major version, declared size, CRC-32, preset), the kernel's table checks (the same
sequence as hls/hcim_program.cpp, so host and kernel give one verdict class), then the
embedded manifest and the host-only rules of :mod:`.validate`. Every size is checked against
the image's real length before anything it sizes is allocated.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np

from ..spec.hardware import HardwarePreset, PresetError, preset_by_fingerprint
from .errors import (BadMagicError, ChecksumError, ManifestError, PresetMismatchError, ProgramError, SectionError,
                     TruncatedError, VersionError)
from .format import (ALIGN, FLAG_DUAL, HEADER, LAYER, LAYER_OFF_DUAL, LAYER_OFF_HYBRID, MAGIC, MANIFEST_MAX_DEPTH,
                     MODE_HYBRID, NO_TENSOR, TENSOR, VERSION_MAJOR, VERSION_MINOR, VERSION_MINOR_DUAL,
                     VERSION_MINOR_HYBRID, Op, align)
from .dualpath import DUAL, DualPathParams, tern_from_header, tern_header_bytes
from .hybrid import HYBRID, HybridParams
from .reader import Names, check_structure, json_depth_ok, section_ok
from ..fileio import atomic_write_bytes  # noqa: F401  (re-exported: older imports keep working)
from .model import Layer, Program, TensorSpec
from .validate import check_manifest, validate

_CIM_ARRAYS = (("precision", np.uint8), ("bias", np.int32), ("shift", np.int8), ("res_shift", np.int8))


def _precision_mask(precisions) -> int:
    return sum(1 << (p - 1) for p in precisions)


def encode(program: Program) -> bytes:
    """Serialize a (validated) program to the little-endian image."""
    validate(program)
    pr = program.preset
    gw = pr.group_width
    body = bytearray()
    base = HEADER.size

    def put(data: bytes) -> int:
        off = base + len(body)
        body.extend(data)
        body.extend(b"\0" * (align(len(data)) - len(data)))
        return off

    tensor_off = put(b"".join(TENSOR.pack(t.channels, t.height, t.width, t.bits, int(t.signed), t.exponent)
                              for t in program.tensors))
    layer_off = put(b"\0" * (LAYER.size * len(program.layers)))
    records = []
    for l in program.layers:
        offs, off_hybrid, off_dual = [0] * 8, 0, 0
        if l.op.is_cim:
            offs[:4] = [put(getattr(l, n).astype(dt).astype("<" + np.dtype(dt).str[1:]).tobytes()) for n, dt in _CIM_ARRAYS]
            cm = np.where(l.col_filter >= 0, l.col_filter.astype(np.uint32) | (l.col_plane.astype(np.uint32) << 16) | (1 << 24), 0)
            offs[4] = put(cm.astype("<u4").tobytes())
            offs[5] = put(np.packbits(l.present.reshape(-1).astype(np.uint8), bitorder="little").tobytes())
            offs[6] = put(l.words.astype("<u8").tobytes())
            offs[7] = int(l.words.size)
            if l.mode == MODE_HYBRID:
                off_hybrid = put(l.hybrid.pack())
            if l.flags & FLAG_DUAL:  # format 1.2: ternary weights, then the dual section pointing at them
                tw = l.tern_words.astype("<u8")
                off_tw = put(tw.tobytes())
                off_dual = put(l.dual.pack(tw.shape[1] if tw.ndim == 3 else 0, int(tw.size), off_tw))
        records.append(LAYER.pack(int(l.op), l.mode, l.kh, l.kw, l.stride, l.pad, l.flags, l.in_tensor, l.out_tensor,
                                  NO_TENSOR if l.res_tensor is None else l.res_tensor, l.n_filters, l.k_rows,
                                  l.n_groups, l.n_rowblocks, l.clamp_lo, l.clamp_hi, l.pool_shift, *offs)
                       [:LAYER_OFF_HYBRID] + off_hybrid.to_bytes(4, "little") + off_dual.to_bytes(4, "little")
                       + bytes(LAYER.size - LAYER_OFF_DUAL - 4))
    body[layer_off - base:layer_off - base + LAYER.size * len(records)] = b"".join(records)
    meta = {"name": program.name, "tensors": [t.name for t in program.tensors],
            "layers": [l.name for l in program.layers], "metadata": program.metadata}
    meta_bytes = json.dumps(meta, sort_keys=True).encode("utf-8")
    meta_off = put(meta_bytes)
    total = base + len(body)
    header = HEADER.pack(MAGIC, VERSION_MAJOR, format_minor(program), total, 0, pr.fingerprint, pr.rows, pr.cols,
                         pr.rows_active, gw, pr.n_macros, pr.acc_bits, pr.adc_bits, len(program.tensors),
                         len(program.layers), program.input_tensor, program.output_tensor, tensor_off,
                         layer_off, meta_off, len(meta_bytes), _precision_mask(pr.precisions))
    image = bytearray(header + bytes(body))
    if format_minor(program) >= VERSION_MINOR_DUAL:  # the second macro type's geometry (architecture.md §10.1)
        image[61:64] = tern_header_bytes(pr)
    image[16:20] = image_crc(image).to_bytes(4, "little")
    return bytes(image)


def format_minor(program: Program) -> int:
    """Minor format version a writer writes: 2 when the preset has the second macro type or a layer is
    dual-path (format 1.2), else 1 when a layer is hybrid (format 1.1), else 0 (1.0, unchanged bits)."""
    if program.preset.has_tern or any(l.flags & FLAG_DUAL for l in program.layers):
        return VERSION_MINOR_DUAL
    return VERSION_MINOR_HYBRID if any(l.mode == MODE_HYBRID for l in program.layers) else VERSION_MINOR


def image_crc(image: bytes | bytearray) -> int:
    """CRC-32 (zlib) of the whole image with its crc32 field (bytes 16..19) read as zero."""
    crc = zlib.crc32(bytes(image[:16]))
    crc = zlib.crc32(b"\0\0\0\0", crc)
    return zlib.crc32(bytes(image[20:]), crc) & 0xFFFFFFFF


def _section(buf: bytes, off: int, count: int, dtype: str, what: str) -> np.ndarray:
    n = count * np.dtype(dtype).itemsize
    if not section_ok(off, n, len(buf)):
        raise SectionError(f"{what}: section [{off}, {off + n}) lies outside the {len(buf)}-byte image, "
                           f"overlaps the header or is misaligned")
    return np.frombuffer(buf, dtype=dtype, count=count, offset=off).copy()


def _preset_from_header(h: tuple, expected: HardwarePreset | None, tern: bytes = b"\0\0\0") -> HardwarePreset:
    (_, _, vmin, _, _, fp, rows, cols, ra, gw, nm, acc, adc, *_rest) = h
    mask = h[-1]
    precisions = tuple(p for p in range(1, 9) if mask >> (p - 1) & 1)
    known = preset_by_fingerprint(fp)
    # format >= 1.2: header bytes 61..63 hold the second macro type's geometry (1.0 / 1.1: reserved, row 7)
    extra = tern_from_header(*tern) if vmin >= VERSION_MINOR_DUAL else {}
    if extra:  # the fingerprint decides whether they describe the preset; if not, row 7 refuses the bytes
        try:
            if HardwarePreset("x", rows, cols, ra, gw, nm, acc, adc, precisions, **extra).fingerprint != fp:
                raise PresetError("")
        except PresetError:
            try:
                if HardwarePreset("x", rows, cols, ra, gw, nm, acc, adc, precisions).fingerprint == fp:
                    extra = {}
            except PresetError:
                pass
    try:
        preset = HardwarePreset(known.name if known else "custom", rows, cols, ra, gw, nm, acc, adc, precisions, **extra)
    except PresetError as e:
        raise PresetMismatchError(f"image header holds an invalid preset: {e}") from None
    if preset.fingerprint != fp:
        raise PresetMismatchError(f"preset fingerprint {fp:08x} does not match the header geometry ({preset.canonical()} -> {preset.fingerprint:08x})")
    if expected is not None and expected.fingerprint != fp:
        raise PresetMismatchError(f"program compiled for preset {preset.name!r} ({preset.canonical()}), "
                                  f"but the device is {expected.name!r} ({expected.canonical()})")
    return preset


def decode(buf: bytes, expected_preset: HardwarePreset | None = None, limits=None) -> Program:
    """Parse and validate an image; raises a ProgramError subclass naming what is wrong.

    The checks run in the order of program-format.md "Reader checks": the header, then the
    kernel's table checks (with ``limits``, an object with the kernel's ``max_*`` capacities such
    as :class:`hybridcim.runtime.KernelInfo`, also its LIMIT checks at the kernel's points), then
    the embedded manifest and the host-only rules of :mod:`.validate` (errors marked
    ``host_only``). Nothing is allocated before the sizes it depends on are checked against the
    image's length.
    """
    buf = bytes(buf)
    if len(buf) < HEADER.size:
        raise TruncatedError(f"image is {len(buf)} bytes, shorter than the {HEADER.size}-byte header")
    h = HEADER.unpack_from(buf, 0)
    magic, vmaj, vmin, total, crc = h[:5]
    if magic != MAGIC:
        raise BadMagicError(f"bad magic {magic!r}: not a hybridcim program image (expected {MAGIC!r})")
    if vmaj != VERSION_MAJOR:
        raise VersionError(f"program format {vmaj}.{vmin} is not supported by this reader (format {VERSION_MAJOR}.x)")
    if len(buf) < total:
        raise TruncatedError(f"image is truncated: header declares {total} bytes, got {len(buf)}")
    if len(buf) > total:
        raise TruncatedError(f"image has {len(buf) - total} trailing bytes past the declared {total}")
    if total % ALIGN:
        raise TruncatedError(f"image size {total} is not a multiple of {ALIGN} bytes")
    got = image_crc(buf)
    if got != crc:
        raise ChecksumError(f"CRC-32 mismatch: header says {crc:08x}, image gives {got:08x} (corrupt image)")
    preset = _preset_from_header(h, expected_preset, buf[61:64])
    meta_off, meta_len = h[19:21]
    trec = check_structure(buf, h, limits, Names(buf, meta_off, meta_len), preset)
    try:
        return _decode_checked(buf, h, preset, trec)
    except ProgramError as e:
        e.host_only = True  # the kernel leaves these rules to the host
        raise


def _decode_checked(buf: bytes, h: tuple, preset: HardwarePreset, trec: list[tuple]) -> Program:
    """Manifest and host-only rules of an image that passed the kernel's checks."""
    n_t, n_l, t_in, t_out, tensor_off, layer_off, meta_off, meta_len = h[13:21]
    raw = bytes(_section(buf, meta_off, meta_len, "u1", "manifest"))
    if not json_depth_ok(raw):
        raise ManifestError(f"embedded manifest nests deeper than {MANIFEST_MAX_DEPTH} levels")
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ManifestError(f"embedded manifest is not valid UTF-8 JSON: {e}") from None
    check_manifest(meta, n_t, n_l)
    tensors = [TensorSpec(meta["tensors"][i], c, hh, w, bits, bool(sgn), exp)
               for i, (c, hh, w, bits, sgn, exp) in enumerate(trec)]
    layers = []
    for i, rec in enumerate(LAYER.iter_unpack(buf[layer_off:layer_off + LAYER.size * n_l])):
        (op, mode, kh, kw, stride, pad, flags, lin, lout, lres, f, k, ng, nrb, lo, hi, pshift, *offs) = rec
        op = Op(op)
        layer = Layer(meta["layers"][i], op, lin, lout, None if lres == NO_TENSOR else lres, kh, kw, stride, pad, mode,
                      flags, lo, hi, pshift, f, k)
        if op.is_cim:
            where = f"layer {i} ({layer.name!r})"
            for (attr, dt), off in zip(_CIM_ARRAYS, offs[:4]):
                setattr(layer, attr, _section(buf, off, f, "<" + np.dtype(dt).str[1:], f"{where} {attr}").astype(dt))
            cm = _section(buf, offs[4], ng * preset.group_width, "<u4", f"{where} column map").reshape(ng, preset.group_width)
            used = (cm >> 24) & 1
            layer.col_filter = np.where(used == 1, cm & 0xFFFF, -1).astype(np.int32)
            layer.col_plane = np.where(used == 1, (cm >> 16) & 0xFF, 0).astype(np.uint8)
            bits = _section(buf, offs[5], (ng * nrb + 7) // 8, "u1", f"{where} skip index")
            layer.present = np.unpackbits(bits, bitorder="little")[:ng * nrb].reshape(ng, nrb).astype(bool)
            layer.words = _section(buf, offs[6], offs[7], "<u8", f"{where} weights").astype(np.uint64)
            layer.words = layer.words.reshape(-1, preset.group_width)
            if mode == MODE_HYBRID:  # the reader checked the section (format 1.1)
                oh = int.from_bytes(buf[layer_off + LAYER.size * i + LAYER_OFF_HYBRID:][:4], "little")
                layer.hybrid = HybridParams.unpack(buf[oh:oh + HYBRID.size])
            if flags & FLAG_DUAL:  # the reader checked the section and its weights (format 1.2)
                od = int.from_bytes(buf[layer_off + LAYER.size * i + LAYER_OFF_DUAL:][:4], "little")
                layer.dual, r_t, n_tw, off_tw = DualPathParams.unpack(buf[od:od + DUAL.size])
                f_t = layer.dual.n_tern(f)
                layer.tern_words = _section(buf, off_tw, n_tw, "<u8", f"{where} ternary weights").astype(
                    np.uint64).reshape(f_t, r_t, 2)
        layers.append(layer)
    program = Program(preset, tensors, layers, t_in, t_out, meta["name"], meta["metadata"])
    return validate(program)


def manifest(program: Program, image: bytes) -> dict:
    """The human-facing JSON manifest written beside the image (program-format.md §Manifest)."""
    return {
        "format": "hybridcim-program", "format_version": f"{VERSION_MAJOR}.{format_minor(program)}",
        "name": program.name, "image_bytes": len(image), "image_sha256": hashlib.sha256(image).hexdigest(),
        "preset": program.preset.to_dict(), "preset_fingerprint": f"{program.preset.fingerprint:08x}",
        "input": program.input.name, "output": program.output.name,
        "tensors": [{"name": t.name, "shape_hwc": list(t.shape_hwc), "bits": t.bits, "signed": t.signed,
                     "exponent": t.exponent} for t in program.tensors],
        "layers": [{"name": l.name, "op": l.op.name.lower(), "in": program.tensors[l.in_tensor].name,
                    "out": program.tensors[l.out_tensor].name,
                    "res": None if l.res_tensor is None else program.tensors[l.res_tensor].name,
                    **({"mode": "hybrid", "hybrid": dataclasses.asdict(l.hybrid)} if l.mode == MODE_HYBRID else {}),
                    **({"dual": dict(dataclasses.asdict(l.dual), n_tern=l.dual.n_tern(l.n_filters))}
                       if l.flags & FLAG_DUAL else {})}
                   for l in program.layers],
        "metadata": program.metadata,
    }


def max_image_bytes(preset: HardwarePreset | None = None) -> int:
    """Largest program file accepted (bytes): a program that fills the kernel of ``preset`` to
    every capacity limit (hls/presets/*.h, :mod:`hybridcim.spec.capacity`: max_tensors tensors,
    max_layers CIM layers each of max_filters filters, max_groups column groups and max_rowblocks
    row blocks, every unit present, and a dual section per layer on a preset with the second macro
    type) plus MANIFEST_ALLOWANCE bytes of embedded manifest. Without a
    preset (or for an unnamed geometry): the largest over the named presets. Used by
    :func:`read_program` (before reading a byte past the header) and :func:`write_program`."""
    from ..spec.capacity import KERNEL_LIMITS
    from ..spec.hardware import PRESETS
    if preset is None or preset.name not in KERNEL_LIMITS or preset_by_fingerprint(preset.fingerprint) is None:
        return max(max_image_bytes(p) for p in PRESETS.values())
    lim, gw = KERNEL_LIMITS[preset.name], preset.group_width
    units = lim.max_groups * lim.max_rowblocks
    f = lim.max_filters
    per_layer = (align(f) + align(4 * f) + align(f) + align(f) + align(4 * lim.max_groups * gw)
                 + align(-(-units // 8)) + align(8 * units * gw))
    if preset.has_tern:  # a dual section per layer; a ternary filter's cells (2 words a row tile) take fewer
        per_layer += align(DUAL.size)  # bytes than the SRAM words of the 8-bit filter it stands in for
    return (HEADER.size + align(TENSOR.size * lim.max_tensors) + align(LAYER.size * lim.max_layers)
            + lim.max_layers * per_layer + MANIFEST_ALLOWANCE)


MANIFEST_ALLOWANCE = 1 << 20
"""Bytes of embedded manifest counted in :func:`max_image_bytes` (1 MiB; a compiled ResNet-20's is 2 KB)."""


def _image_limit(head: bytes) -> int:
    """:func:`max_image_bytes` for the preset whose fingerprint the header holds (else the largest)."""
    preset = None
    if len(head) >= HEADER.size and head[:len(MAGIC)] == MAGIC:
        preset = preset_by_fingerprint(HEADER.unpack_from(head, 0)[5])
    return max_image_bytes(preset)


def write_program(program: Program, path: str | os.PathLike) -> Path:
    """Write ``path`` (the image) and ``path + '.json'`` (the manifest) atomically, as a pair:
    both files are replaced or neither (:func:`hybridcim.fileio.atomic_write_files`); an image
    over :func:`max_image_bytes` is refused (read_program would refuse it)."""
    from ..fileio import atomic_write_files
    path = Path(path)
    image = encode(program)
    cap = max_image_bytes(program.preset)
    if len(image) > cap:
        from .errors import InvalidProgramError
        raise InvalidProgramError(f"program {program.name!r} encodes to {len(image):,} bytes, over the "
                            f"{cap:,}-byte limit of preset {program.preset.name!r}")
    atomic_write_files([(path, image), (path.with_name(path.name + ".json"),
                        (json.dumps(manifest(program, image), indent=2) + "\n").encode("utf-8"))], "program image")
    return path


def read_program(path: str | os.PathLike, expected_preset: HardwarePreset | None = None) -> Program:
    """Read and validate an image file; errors name the file. Only a regular file (symlinks
    followed) of at most :func:`max_image_bytes` for the preset its header names is read: a
    device, FIFO or folder is refused before any byte is read (FileError, a ValueError)."""
    from ..fileio import read_regular_file
    path = Path(path)
    data = read_regular_file(path, _image_limit, "program image")
    try:
        return decode(data, expected_preset)
    except ProgramError as e:
        raise type(e)(f"{path}: {e}") from None
