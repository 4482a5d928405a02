"""Encode/decode the binary program image and read/write it atomically (docs/program-format.md).

``decode`` checks, in order: size >= header, magic, major version, declared size vs actual
(truncation), CRC-32, preset fingerprint vs the geometry fields and vs the expected preset,
table and section bounds, then the semantic rules of :mod:`.validate`.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np

from ..spec.hardware import HardwarePreset, PresetError, preset_by_fingerprint
from .errors import (BadMagicError, ChecksumError, PresetMismatchError, ProgramError,
                     TruncatedError, VersionError)
from .format import HEADER, LAYER, MAGIC, NO_TENSOR, TENSOR, VERSION_MAJOR, VERSION_MINOR, Op, align
from .model import Layer, Program, TensorSpec
from .validate import validate

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
        offs = [0] * 8
        if l.op.is_cim:
            offs[:4] = [put(getattr(l, n).astype(dt).astype("<" + np.dtype(dt).str[1:]).tobytes()) for n, dt in _CIM_ARRAYS]
            cm = np.where(l.col_filter >= 0, l.col_filter.astype(np.uint32) | (l.col_plane.astype(np.uint32) << 16) | (1 << 24), 0)
            offs[4] = put(cm.astype("<u4").tobytes())
            offs[5] = put(np.packbits(l.present.reshape(-1).astype(np.uint8), bitorder="little").tobytes())
            offs[6] = put(l.words.astype("<u8").tobytes())
            offs[7] = int(l.words.size)
        records.append(LAYER.pack(int(l.op), l.mode, l.kh, l.kw, l.stride, l.pad, l.flags, l.in_tensor, l.out_tensor,
                                  NO_TENSOR if l.res_tensor is None else l.res_tensor, l.n_filters, l.k_rows,
                                  l.n_groups, l.n_rowblocks, l.clamp_lo, l.clamp_hi, l.pool_shift, *offs))
    body[layer_off - base:layer_off - base + LAYER.size * len(records)] = b"".join(records)
    meta = {"name": program.name, "tensors": [t.name for t in program.tensors],
            "layers": [l.name for l in program.layers], "metadata": program.metadata}
    meta_bytes = json.dumps(meta, sort_keys=True).encode("utf-8")
    meta_off = put(meta_bytes)
    total = base + len(body)
    header = HEADER.pack(MAGIC, VERSION_MAJOR, VERSION_MINOR, total, 0, pr.fingerprint, pr.rows, pr.cols,
                         pr.rows_active, gw, pr.n_macros, pr.acc_bits, pr.adc_bits, len(program.tensors),
                         len(program.layers), program.input_tensor, program.output_tensor, tensor_off,
                         layer_off, meta_off, len(meta_bytes), _precision_mask(pr.precisions))
    image = bytearray(header + bytes(body))
    image[16:20] = image_crc(image).to_bytes(4, "little")
    return bytes(image)


def image_crc(image: bytes | bytearray) -> int:
    """CRC-32 (zlib) of the whole image with its crc32 field (bytes 16..19) read as zero."""
    crc = zlib.crc32(bytes(image[:16]))
    crc = zlib.crc32(b"\0\0\0\0", crc)
    return zlib.crc32(bytes(image[20:]), crc) & 0xFFFFFFFF


def _section(buf: bytes, off: int, count: int, dtype: str, what: str) -> np.ndarray:
    n = count * np.dtype(dtype).itemsize
    if off < HEADER.size or off % 8 or off + n > len(buf):
        raise TruncatedError(f"{what}: section [{off}, {off + n}) lies outside the {len(buf)}-byte image or is misaligned")
    return np.frombuffer(buf, dtype=dtype, count=count, offset=off).copy()


def _preset_from_header(h: tuple, expected: HardwarePreset | None) -> HardwarePreset:
    (_, _, _, _, _, fp, rows, cols, ra, gw, nm, acc, adc, *_rest) = h
    mask = h[-1]
    precisions = tuple(p for p in range(1, 9) if mask >> (p - 1) & 1)
    known = preset_by_fingerprint(fp)
    try:
        preset = HardwarePreset(known.name if known else "custom", rows, cols, ra, gw, nm, acc, adc, precisions)
    except PresetError as e:
        raise PresetMismatchError(f"image header holds an invalid preset: {e}") from None
    if preset.fingerprint != fp:
        raise PresetMismatchError(f"preset fingerprint {fp:08x} does not match the header geometry ({preset.canonical()} -> {preset.fingerprint:08x})")
    if expected is not None and expected.fingerprint != fp:
        raise PresetMismatchError(f"program compiled for preset {preset.name!r} ({preset.canonical()}), "
                                  f"but the device is {expected.name!r} ({expected.canonical()})")
    return preset


def decode(buf: bytes, expected_preset: HardwarePreset | None = None) -> Program:
    """Parse and validate an image; raises a ProgramError subclass naming what is wrong."""
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
    if total % 8:
        raise ProgramError(f"image size {total} is not a multiple of 8 bytes")
    got = image_crc(buf)
    if got != crc:
        raise ChecksumError(f"CRC-32 mismatch: header says {crc:08x}, image gives {got:08x} (corrupt image)")
    preset = _preset_from_header(h, expected_preset)
    n_t, n_l, t_in, t_out, tensor_off, layer_off, meta_off, meta_len = h[13:21]
    try:
        meta = json.loads(bytes(_section(buf, meta_off, meta_len, "u1", "manifest")).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProgramError(f"embedded manifest is not valid JSON: {e}") from None
    if not isinstance(meta, dict) or not all(isinstance(meta.get(k, []), list) for k in ("tensors", "layers")):
        raise ProgramError("embedded manifest must be a JSON object with 'tensors' and 'layers' name lists")
    t_names = meta.get("tensors", [])
    l_names = meta.get("layers", [])
    tbytes = bytes(_section(buf, tensor_off, n_t * TENSOR.size, "u1", "tensor table"))
    tensors = [TensorSpec(t_names[i] if i < len(t_names) else f"t{i}", *rec[:4], bool(rec[4]), rec[5])
               for i, rec in enumerate(TENSOR.iter_unpack(tbytes))]
    lbytes = bytes(_section(buf, layer_off, n_l * LAYER.size, "u1", "layer table"))
    layers = []
    for i, rec in enumerate(LAYER.iter_unpack(lbytes)):
        (op, mode, kh, kw, stride, pad, flags, lin, lout, lres, f, k, ng, nrb, lo, hi, pshift, *offs) = rec
        name = l_names[i] if i < len(l_names) else f"L{i}"
        try:
            op = Op(op)
        except ValueError:
            raise ProgramError(f"layer {i} ({name!r}): unknown op code {op}") from None
        layer = Layer(name, op, lin, lout, None if lres == NO_TENSOR else lres, kh, kw, stride, pad, mode, flags, lo,
                      hi, pshift, f, k)
        if op.is_cim:
            where = f"layer {i} ({name!r})"
            for (attr, dt), off in zip(_CIM_ARRAYS, offs[:4]):
                setattr(layer, attr, _section(buf, off, f, "<" + np.dtype(dt).str[1:], f"{where} {attr}").astype(dt))
            cm = _section(buf, offs[4], ng * preset.group_width, "<u4", f"{where} column map").reshape(ng, preset.group_width)
            used = (cm >> 24) & 1
            layer.col_filter = np.where(used == 1, cm & 0xFFFF, -1).astype(np.int32)
            layer.col_plane = np.where(used == 1, (cm >> 16) & 0xFF, 0).astype(np.uint8)
            bits = _section(buf, offs[5], (ng * nrb + 7) // 8, "u1", f"{where} skip index")
            layer.present = np.unpackbits(bits, bitorder="little")[:ng * nrb].reshape(ng, nrb).astype(bool)
            layer.words = _section(buf, offs[6], offs[7], "<u8", f"{where} weights").astype(np.uint64)
            if offs[7] % preset.group_width:
                raise ProgramError(f"{where}: {offs[7]} weight words is not a multiple of group_width")
            layer.words = layer.words.reshape(-1, preset.group_width)
        layers.append(layer)
    program = Program(preset, tensors, layers, t_in, t_out, meta.get("name", "program"), meta.get("metadata", {}))
    return validate(program)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def manifest(program: Program, image: bytes) -> dict:
    """The human-facing JSON manifest written beside the image (program-format.md §Manifest)."""
    return {
        "format": "hybridcim-program", "format_version": f"{VERSION_MAJOR}.{VERSION_MINOR}",
        "name": program.name, "image_bytes": len(image), "image_sha256": hashlib.sha256(image).hexdigest(),
        "preset": program.preset.to_dict(), "preset_fingerprint": f"{program.preset.fingerprint:08x}",
        "input": program.input.name, "output": program.output.name,
        "tensors": [{"name": t.name, "shape_hwc": list(t.shape_hwc), "bits": t.bits, "signed": t.signed,
                     "exponent": t.exponent} for t in program.tensors],
        "layers": [{"name": l.name, "op": l.op.name.lower(), "in": program.tensors[l.in_tensor].name,
                    "out": program.tensors[l.out_tensor].name,
                    "res": None if l.res_tensor is None else program.tensors[l.res_tensor].name}
                   for l in program.layers],
        "metadata": program.metadata,
    }


def write_program(program: Program, path: str | os.PathLike) -> Path:
    """Atomically write ``path`` (the image) and ``path + '.json'`` (the manifest)."""
    path = Path(path)
    image = encode(program)
    atomic_write_bytes(path, image)
    atomic_write_bytes(path.with_name(path.name + ".json"),
                       (json.dumps(manifest(program, image), indent=2) + "\n").encode("utf-8"))
    return path


def read_program(path: str | os.PathLike, expected_preset: HardwarePreset | None = None) -> Program:
    """Read and validate an image file; errors name the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"program image {str(path)!r} does not exist") from None
    try:
        return decode(data, expected_preset)
    except ProgramError as e:
        raise type(e)(f"{path}: {e}") from None
