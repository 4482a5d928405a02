"""Build the HLS kernel with g++ into a ctypes-loadable csim library, named by a content hash.

The library ``libhcim_csim_<preset>_<hash>.so`` is compiled from the same sources as the IP
(``hls/*.cpp``, ``hls/*.h``, ``hls/presets/<preset>.h``) with

    g++ -std=c++17 -O2 -Wno-unknown-pragmas -fPIC -shared -I <ap_types> -I <hls> -DHCIM_PRESET_HEADER=...

where ``<ap_types>`` is the Xilinx ``ap_int.h`` copy bundled by hls4ml (``pip install
hls4ml==1.3.0``, the ``csim`` extra). ``<hash>`` is the first 16 hex digits of the SHA-256 of
the sources (fixed order) and the flags, so an edited source or another preset never reuses
a stale library. It is built to a temporary name in the cache folder and renamed (atomic);
concurrent builders at worst both compile. ``make -C hls csim-lib`` computes the same name.

Where the sources are found: ``$HYBRIDCIM_HLS_DIR``, else ``hybridcim/hls`` inside the
installed package (non-editable installs need it copied there as package data), else the
repository's ``hls/`` (editable installs). Cache: ``$HYBRIDCIM_CACHE/csim``, else
``~/.cache/hybridcim/csim``.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..spec.hardware import HardwarePreset, get_preset
from .errors import CSimBuildError, DeviceNotAvailableError

HEADERS = ("hybridcim_accel.h", "hcim_internal.h", "hcim_loops.h")
CXX_SOURCES = ("hybridcim_accel.cpp", "hcim_program.cpp", "hcim_layers.cpp", "csim_api.cpp")
BASE_FLAGS = ("-std=c++17", "-O2", "-Wno-unknown-pragmas", "-fPIC", "-shared", "-DHCIM_CYCLE_COUNT")
"""HCIM_CYCLE_COUNT: the csim library counts loop iterations and DDR bursts (hls/hcim_loops.h)."""


def hls_dir() -> Path:
    """The folder holding hybridcim_accel.h and presets/ (see the module docstring)."""
    here = Path(__file__).resolve()
    candidates = [Path(os.environ["HYBRIDCIM_HLS_DIR"])] if os.environ.get("HYBRIDCIM_HLS_DIR") else []
    candidates += [here.parents[1] / "hls", here.parents[3] / "hls"]
    for c in candidates:
        if (c / "hybridcim_accel.h").is_file():
            return c
    raise DeviceNotAvailableError(
        "HLS kernel sources not found (looked in " + ", ".join(str(c) for c in candidates) + "). Use an "
        "editable install of the repository (pip install -e .) or set HYBRIDCIM_HLS_DIR to the repo's hls/ folder")


def ap_types_dir() -> Path:
    """Xilinx arbitrary-precision headers: $HYBRIDCIM_AP_TYPES, else hls4ml's bundled copy."""
    env = os.environ.get("HYBRIDCIM_AP_TYPES")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        raise DeviceNotAvailableError("the csim backend needs the Xilinx ap_int.h headers bundled with hls4ml: "
                                      "pip install hls4ml==1.3.0 (or pip install -e '.[csim]'), "
                                      "or set HYBRIDCIM_AP_TYPES to a folder holding ap_int.h")
    d = Path(list(spec.submodule_search_locations)[0]) / "templates" / "vivado" / "ap_types"
    if not (d / "ap_int.h").is_file():
        raise DeviceNotAvailableError(f"hls4ml is installed but {d}/ap_int.h is missing; reinstall hls4ml==1.3.0")
    return d


def cache_dir() -> Path:
    base = os.environ.get("HYBRIDCIM_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "hybridcim") / "csim"


def preset_header(preset: HardwarePreset, src: Path | None = None) -> Path:
    src = src or hls_dir()
    h = src / "presets" / f"{preset.name}.h"
    if not h.is_file():
        known = sorted(p.stem for p in (src / "presets").glob("*.h"))
        raise DeviceNotAvailableError(f"no HLS preset header for preset {preset.name!r} ({h}); "
                                      f"presets with a kernel build: {known}")
    return h


def flags(preset: HardwarePreset, extra: tuple[str, ...] = ()) -> list[str]:
    """Compiler flags that enter the hash (paths excluded). -mpopcnt on x86-64 only.

    ``extra``: additional flags, e.g. ``("-DHCIM_HW_DATAPATH",)`` for the synthesized datapath variant.
    """
    f = list(BASE_FLAGS)
    if platform.machine().lower() in ("x86_64", "amd64"):
        f.append("-mpopcnt")
    f.append(f'-DHCIM_PRESET_HEADER="presets/{preset.name}.h"')
    return f + list(extra)


def source_hash(preset: HardwarePreset, src: Path | None = None, extra: tuple[str, ...] = ()) -> str:
    """First 16 hex digits of SHA-256(sources in fixed order + preset header + flags)."""
    src = src or hls_dir()
    h = hashlib.sha256()
    for name in HEADERS + CXX_SOURCES:
        h.update((src / name).read_bytes())
    h.update(preset_header(preset, src).read_bytes())
    h.update(" ".join(flags(preset, extra)).encode())
    return h.hexdigest()[:16]


COMPILE_TIMEOUT_S = 600


def library_path(preset: "str | HardwarePreset", cache: Path | None = None, extra: tuple[str, ...] = ()) -> Path:
    preset = get_preset(preset)
    return (cache or cache_dir()) / f"libhcim_csim_{preset.name}_{source_hash(preset, extra=extra)}.so"


def build(preset: "str | HardwarePreset" = "sun-mars-256", cache: Path | None = None, force: bool = False,
          extra: tuple[str, ...] = ()) -> Path:
    """Compile (if needed) and return the csim library of ``preset``; raises CSimBuildError with g++'s stderr."""
    preset = get_preset(preset)
    src = hls_dir()
    out = library_path(preset, cache, extra)
    if out.is_file() and not force:
        return out
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        raise DeviceNotAvailableError(f"C++ compiler {cxx!r} not found (the csim backend compiles the HLS kernel "
                                      "with g++; install g++ or set CXX)")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    cmd = [cxx, *flags(preset, extra), "-I", str(ap_types_dir()), "-I", str(src), *(str(src / s) for s in CXX_SOURCES),
           "-o", tmp]
    try:
        from ..progress import activity
        try:
            with activity(f"building the csim kernel for preset {preset.name} with {cxx} (cached afterwards)"):
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise CSimBuildError(f"building the csim library for preset {preset.name!r} took longer than "
                                 f"{COMPILE_TIMEOUT_S} s:\n$ {' '.join(cmd)}") from None
        if proc.returncode != 0:
            raise CSimBuildError(f"building the csim library for preset {preset.name!r} failed "
                                 f"(exit {proc.returncode}):\n$ {' '.join(cmd)}\n{proc.stderr.strip()}")
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out
