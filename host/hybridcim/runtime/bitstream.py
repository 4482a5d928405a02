"""Bitstream manifests: which preset and kernel a built overlay carries.

``bitstreams/<board>/manifest.json`` is written by ``overlay/build.sh`` next to the ``.bit``
and ``.hwh`` it copies there (never by hand, never without a real build)::

    {"format": "hybridcim-bitstream", "board": "pynq-z2", "part": "xc7z020clg400-1",
     "bitstream": "hybridcim.bit", "hwh": "hybridcim.hwh", "ip_name": "hybridcim_accel_0",
     "kernel_version": "1.2", "preset": {...}, "preset_fingerprint": "25da3f27",
     "limits": {"max_tensors": 128, ...}, "clock_mhz": 100, "driver_header": "xhybridcim_accel_hw.h",
     "tools": "...", "built_utc": "...", "bit_sha256": "..."}

:func:`kernel_info_from_headers` reads the same constants from ``hls/`` (the preset header and
hybridcim_accel.h), so the manifest always states what the IP was compiled with.
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import asdict
from pathlib import Path

from ..spec.hardware import HardwarePreset, PresetError, get_preset
from .buffers import INFO_FIELDS, KernelInfo
from .errors import DeviceError

FORMAT = "hybridcim-bitstream"
KERNEL_MAJOR = 1
"""Kernel interface major version this package drives (HCIM_KERNEL_VERSION_MAJOR)."""

_HEADER_NAMES = {"kernel_major": "HCIM_KERNEL_VERSION_MAJOR", "kernel_minor": "HCIM_KERNEL_VERSION_MINOR",
                 **{f: "HCIM_" + f.upper() for f in INFO_FIELDS if f not in ("kernel_major", "kernel_minor")}}


def header_defines(path: Path) -> dict[str, str]:
    """``#define NAME VALUE`` lines of a C header (comments stripped)."""
    out = {}
    for line in Path(path).read_text().splitlines():
        m = re.match(r"\s*#define\s+(\w+)\s+(.+?)\s*(//.*)?$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def _int(v: str) -> int:
    return int(v.rstrip("uUlL"), 0)


def kernel_info_from_headers(preset: "str | HardwarePreset", hls: Path | None = None) -> KernelInfo:
    """KernelInfo of ``preset`` as compiled from hls/ (hybridcim_accel.h + presets/<preset>.h)."""
    from .csim_build import hls_dir, preset_header
    preset = get_preset(preset)
    hls = hls or hls_dir()
    d = header_defines(hls / "hybridcim_accel.h")
    d.update(header_defines(preset_header(preset, hls)))
    return KernelInfo(**{f: _int(d[name]) for f, name in _HEADER_NAMES.items()})


def make_manifest(board: str, preset: "str | HardwarePreset", part: str, bitstream: str, hwh: str,
                  ip_name: str = "hybridcim_accel_0", clock_mhz: float = 100.0, **extra) -> dict:
    """The manifest dict; ``extra`` adds build facts (tools, built_utc, bit_sha256)."""
    preset = get_preset(preset)
    info = kernel_info_from_headers(preset)
    limits = {k: v for k, v in asdict(info).items() if k.startswith("max_")}
    return {"format": FORMAT, "board": board, "part": part, "bitstream": bitstream, "hwh": hwh, "ip_name": ip_name,
            "kernel_version": info.kernel_version, "preset": preset.to_dict(),
            "preset_fingerprint": f"{preset.fingerprint:08x}", "limits": limits, "clock_mhz": clock_mhz, **extra}


MANIFEST_MAX_BYTES = 1 << 20
"""A manifest is a few hundred bytes; a larger file is refused before it is parsed."""
_INT_MAX = 0xFFFFFFFF  # every number the kernel sees is a uint32 register or constant
_FILE_NAME = re.compile(r"[A-Za-z0-9_.+-]{1,255}")
_REQUIRED = ("format", "bitstream", "hwh", "kernel_version", "preset", "preset_fingerprint", "limits")
LIMIT_FIELDS = tuple(f for f in INFO_FIELDS if f.startswith("max_"))


def _bad(path, field: str, what: str) -> DeviceError:
    return DeviceError(f"{path}: field {field!r} {what}")


def _check_int(path, field: str, v, lo: int = 0, hi: int = _INT_MAX) -> int:
    if type(v) is not int:  # bool is an int subclass; floats and strings are not counts
        raise _bad(path, field, f"must be an integer, not {type(v).__name__}")
    if not lo <= v <= hi:
        raise _bad(path, field, f"= {v if abs(v) < 10**12 else 'a huge number'} is outside {lo}..{hi}")
    return v


def _check_str(path, field: str, v, pattern: "re.Pattern | None" = None, what: str = "") -> str:
    if not isinstance(v, str):
        raise _bad(path, field, f"must be a string, not {type(v).__name__}")
    if pattern is not None and not pattern.fullmatch(v):
        raise _bad(path, field, f"= {v[:80]!r} is not {what}")
    return v


def _check_preset(path, d) -> HardwarePreset:
    if not isinstance(d, dict):
        raise _bad(path, "preset", f"must be an object, not {type(d).__name__}")
    _check_str(path, "preset.name", d.get("name"))
    unknown = sorted(set(d) - {f.name for f in dataclasses.fields(HardwarePreset)})
    if unknown:
        raise _bad(path, "preset", f"has unknown keys {', '.join(repr(k[:40]) for k in unknown[:5])}")
    for k, v in d.items():
        if k == "precisions":
            if not isinstance(v, list) or not 1 <= len(v) <= 8:
                raise _bad(path, "preset.precisions", "must be a list of 1 to 8 integers")
            for i, q in enumerate(v):
                _check_int(path, f"preset.precisions[{i}]", q, 1, 8)
        elif k != "name":
            _check_int(path, f"preset.{k}", v)
    try:
        return HardwarePreset.from_dict(d)
    except PresetError as e:
        raise _bad(path, "preset", f"is not a valid hardware preset: {e}") from None


def check_manifest(m, path="bitstream manifest") -> dict:
    """Check a parsed manifest against its schema; raises DeviceError naming the field.

    Required: ``format`` (= "hybridcim-bitstream"), ``bitstream`` and ``hwh`` (bare file names
    in the manifest's folder), ``kernel_version`` ("MAJOR.MINOR", major = :data:`KERNEL_MAJOR`),
    ``preset`` (a HardwarePreset object), ``preset_fingerprint`` (8 lower-case hex digits, the
    preset's CRC-32), ``limits`` (every ``max_*`` capacity, integers 0..2^32-1). Optional, typed
    when present: ``board``, ``part``, ``tools``, ``built_utc`` (strings), ``ip_name`` (an
    identifier), ``driver_header`` (a bare file name or ""), ``clock_mhz`` (a number in
    (0, 1000]), ``bit_sha256`` (64 lower-case hex digits), ``m_axi_addr_bits`` (32 or 64).
    Unknown keys are ignored (a later minor version may add facts).
    """
    if not isinstance(m, dict):
        raise DeviceError(f"{path}: not a hybridcim bitstream manifest (a JSON {type(m).__name__}, not an object)")
    missing = [k for k in _REQUIRED if k not in m]
    if m.get("format") != FORMAT or missing:
        raise DeviceError(f"{path}: not a hybridcim bitstream manifest (field 'format' is "
                          f"{repr(m.get('format'))[:60]}, want {FORMAT!r}"
                          f"{'; missing ' + ', '.join(map(repr, missing)) if missing else ''})")
    for key in ("bitstream", "hwh"):
        _check_str(path, key, m[key], _FILE_NAME, "a bare file name in the manifest's folder")
    kv = _check_str(path, "kernel_version", m["kernel_version"], re.compile(r"[0-9]{1,4}\.[0-9]{1,4}"),
                    "a version MAJOR.MINOR")
    if int(kv.split(".")[0]) != KERNEL_MAJOR:
        raise DeviceError(f"{path}: bitstream kernel version {kv} is not supported by this "
                          f"package (kernel {KERNEL_MAJOR}.x): rebuild the overlay or install a matching hybridcim")
    preset = _check_preset(path, m["preset"])
    fp = _check_str(path, "preset_fingerprint", m["preset_fingerprint"], re.compile(r"[0-9a-f]{8}"),
                    "8 lower-case hex digits")
    if int(fp, 16) != preset.fingerprint:
        raise _bad(path, "preset_fingerprint", f"{fp} does not match its preset "
                   f"({preset.canonical()} -> {preset.fingerprint:08x})")
    limits = m["limits"]
    if not isinstance(limits, dict):
        raise _bad(path, "limits", f"must be an object, not {type(limits).__name__}")
    for k in LIMIT_FIELDS:
        if k not in limits:
            raise _bad(path, f"limits.{k}", "is missing")
        _check_int(path, f"limits.{k}", limits[k])
    for key in ("board", "part", "tools", "built_utc"):
        if key in m:
            _check_str(path, key, m[key])
    if "ip_name" in m:
        _check_str(path, "ip_name", m["ip_name"], re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}"), "an identifier")
    if m.get("driver_header", ""):
        _check_str(path, "driver_header", m["driver_header"], _FILE_NAME, "a bare file name in the manifest's folder")
    if "clock_mhz" in m:
        c = m["clock_mhz"]
        if type(c) not in (int, float) or not 0 < c <= 1000:
            raise _bad(path, "clock_mhz", f"must be a number in (0, 1000], not {c!r}"[:120])
    if "bit_sha256" in m:
        _check_str(path, "bit_sha256", m["bit_sha256"], re.compile(r"[0-9a-f]{64}"), "64 lower-case hex digits")
    if "m_axi_addr_bits" in m and (type(m["m_axi_addr_bits"]) is not int or m["m_axi_addr_bits"] not in (32, 64)):
        raise _bad(path, "m_axi_addr_bits", f"must be 32 or 64, not {repr(m['m_axi_addr_bits'])[:40]}")
    return m


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def load_manifest(board_dir: Path) -> dict:
    """Read and check ``board_dir/manifest.json`` (:func:`check_manifest`).

    Every defect raises DeviceError naming the file and the field: no manifest, not a regular
    file, over :data:`MANIFEST_MAX_BYTES`, not UTF-8, not JSON (NaN/Infinity and numbers of
    more than 4,300 digits included), nested too deep, a field of the wrong type or range, a
    missing ``.bit``/``.hwh``/driver header, or a ``.bit`` whose SHA-256 differs from ``bit_sha256``.
    """
    path = Path(board_dir) / "manifest.json"
    if not path.is_file():
        raise DeviceError(f"no bitstream manifest at {path}: build the overlay with overlay/build.sh (needs "
                          "Vivado/Vitis HLS) and copy the .bit, .hwh and manifest.json there")
    try:
        with open(path, "rb") as f:
            raw = f.read(MANIFEST_MAX_BYTES + 1)
    except OSError as e:
        raise DeviceError(f"{path}: cannot be read ({e.strerror or e})") from None
    if len(raw) > MANIFEST_MAX_BYTES:
        raise DeviceError(f"{path}: larger than {MANIFEST_MAX_BYTES} bytes, not a bitstream manifest")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DeviceError(f"{path}: not UTF-8 text (byte {e.start})") from None
    try:
        m = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise DeviceError(f"{path}: not valid JSON (nested too deep)") from None
    except ValueError as e:  # JSONDecodeError, NaN/Infinity, integers over sys.get_int_max_str_digits()
        why = "a number with too many digits" if "digits" in str(e) else str(e)[:200]
        raise DeviceError(f"{path}: not valid JSON: {why}") from None
    check_manifest(m, path)
    for key in ("bitstream", "hwh") + (("driver_header",) if m.get("driver_header") else ()):
        if not (path.parent / m[key]).is_file():
            raise _bad(path, key, f"names {m[key]!r}, which is missing beside the manifest")
    if "bit_sha256" in m:
        import hashlib
        h = hashlib.sha256()
        with open(path.parent / m["bitstream"], "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != m["bit_sha256"]:
            raise _bad(path, "bit_sha256", f"does not match {m['bitstream']} (sha256 {h.hexdigest()}): "
                       "a corrupt or replaced bitstream")
    return m


def manifest_kernel_info(m: dict) -> KernelInfo:
    """KernelInfo stated by a manifest (checked with :func:`check_manifest` first)."""
    check_manifest(m)
    p = HardwarePreset.from_dict(m["preset"])
    major, minor = (int(x) for x in m["kernel_version"].split("."))
    mask = sum(1 << (q - 1) for q in p.precisions)
    return KernelInfo(major, minor, p.fingerprint, p.rows, p.cols, p.rows_active, p.group_width, p.n_macros,
                      p.acc_bits, p.adc_bits, mask, **{k: m["limits"][k] for k in LIMIT_FIELDS})


def main(argv: list[str] | None = None) -> int:
    """``python -m hybridcim.runtime.bitstream --board B --preset P --part X --bit F --hwh F --out DIR``."""
    import argparse
    ap = argparse.ArgumentParser(description="write a bitstream manifest (used by overlay/build.sh)")
    ap.add_argument("--board", required=True)
    ap.add_argument("--preset", required=True)
    ap.add_argument("--part", required=True)
    ap.add_argument("--bit", required=True)
    ap.add_argument("--hwh", required=True)
    ap.add_argument("--ip-name", default="hybridcim_accel_0")
    ap.add_argument("--clock-mhz", type=float, default=100.0)
    ap.add_argument("--tools", default="", help="tool versions, e.g. 'Vivado v2023.2'")
    ap.add_argument("--driver-header", default="", help="xhybridcim_accel_hw.h copied beside the bitstream")
    ap.add_argument("--out", required=True, help="folder holding the .bit and .hwh")
    a = ap.parse_args(argv)
    import datetime
    import hashlib
    from ..program.codec import atomic_write_bytes
    out = Path(a.out)
    bit = out / Path(a.bit).name
    m = make_manifest(a.board, a.preset, a.part, bit.name, Path(a.hwh).name, a.ip_name, a.clock_mhz,
                      tools=a.tools, driver_header=a.driver_header, built_utc=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                      bit_sha256=hashlib.sha256(bit.read_bytes()).hexdigest())
    atomic_write_bytes(out / "manifest.json", (json.dumps(m, indent=2) + "\n").encode())
    print(out / "manifest.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
