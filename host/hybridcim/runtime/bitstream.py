"""Bitstream manifests: which preset and kernel a built overlay carries.

``bitstreams/<board>/manifest.json`` is written by ``overlay/build.sh`` next to the ``.bit``
and ``.hwh`` it copies there (never by hand, never without a real build)::

    {"format": "hybridcim-bitstream", "board": "pynq-z2", "part": "xc7z020clg400-1",
     "bitstream": "hybridcim.bit", "hwh": "hybridcim.hwh", "ip_name": "hybridcim_accel_0",
     "kernel_version": "1.1", "preset": {...}, "preset_fingerprint": "25da3f27",
     "limits": {"max_tensors": 128, ...}, "clock_mhz": 100, "driver_header": "xhybridcim_accel_hw.h",
     "tools": "...", "built_utc": "...", "bit_sha256": "..."}

:func:`kernel_info_from_headers` reads the same constants from ``hls/`` (the preset header and
hybridcim_accel.h), so the manifest always states what the IP was compiled with.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

from ..spec.hardware import HardwarePreset, get_preset
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


def load_manifest(board_dir: Path) -> dict:
    """Read and check ``board_dir/manifest.json``; raises DeviceError naming what is missing or wrong."""
    path = Path(board_dir) / "manifest.json"
    if not path.is_file():
        raise DeviceError(f"no bitstream manifest at {path}: build the overlay with overlay/build.sh (needs "
                          "Vivado/Vitis HLS) and copy the .bit, .hwh and manifest.json there")
    try:
        m = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DeviceError(f"{path}: not valid JSON: {e}") from None
    missing = [k for k in ("format", "bitstream", "hwh", "kernel_version", "preset", "preset_fingerprint", "limits")
               if k not in m]
    if m.get("format") != FORMAT or missing:
        raise DeviceError(f"{path}: not a hybridcim bitstream manifest (format {m.get('format')!r}, missing {missing})")
    major = int(str(m["kernel_version"]).split(".")[0])
    if major != KERNEL_MAJOR:
        raise DeviceError(f"{path}: bitstream kernel version {m['kernel_version']} is not supported by this "
                          f"package (kernel {KERNEL_MAJOR}.x): rebuild the overlay or install a matching hybridcim")
    for key in ("bitstream", "hwh"):
        if not (path.parent / m[key]).is_file():
            raise DeviceError(f"{path}: {key} file {m[key]!r} is missing beside the manifest")
    return m


def manifest_kernel_info(m: dict) -> KernelInfo:
    p = HardwarePreset.from_dict(m["preset"])
    fp = int(m["preset_fingerprint"], 16)
    if fp != p.fingerprint:
        raise DeviceError(f"bitstream manifest: preset_fingerprint {fp:08x} does not match its preset "
                          f"({p.canonical()} -> {p.fingerprint:08x})")
    major, minor = (int(x) for x in str(m["kernel_version"]).split(".")[:2])
    mask = sum(1 << (q - 1) for q in p.precisions)
    return KernelInfo(major, minor, fp, p.rows, p.cols, p.rows_active, p.group_width, p.n_macros, p.acc_bits,
                      p.adc_bits, mask, **{k: int(m["limits"][k]) for k in INFO_FIELDS if k.startswith("max_")})


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
