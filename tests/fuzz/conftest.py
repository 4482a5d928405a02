"""Fixtures of the structure-aware fuzz tests: base images, the csim device, the sanitized driver."""
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hybridcim.program import encode
from hybridcim.zoo import random_program

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "hcim_fuzz_driver.cpp"
SANITIZE = ("-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer", "-g", "-O1")


@pytest.fixture(scope="session")
def base_images():
    """Valid tiny-64 images to mutate: small random programs of zoo.fuzz (every layer kind, residuals)."""
    return [encode(random_program(seed, "tiny-64", max_convs=2, max_hw=6, max_channels=8)) for seed in range(8)]


def build_sanitized_driver(preset: str) -> Path:
    """The kernel sources + the driver as one ASan/UBSan executable, cached by content hash.

    Compiler flags come from hybridcim.runtime.csim_build (the csim library's own flags, minus
    -shared/-fPIC, plus the sanitizer flags), so the sanitized kernel is the csim kernel.
    """
    from hybridcim.runtime import csim_build
    from hybridcim.runtime.errors import DeviceNotAvailableError
    from hybridcim.spec import get_preset
    pr = get_preset(preset)
    try:
        src, ap = csim_build.hls_dir(), csim_build.ap_types_dir()
    except DeviceNotAvailableError as e:
        pytest.skip(f"sanitized kernel driver unavailable: {e}")
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        pytest.skip(f"{cxx} not found")
    flags = [f for f in csim_build.flags(pr) if f not in ("-shared", "-fPIC", "-O2")] + list(SANITIZE)
    h = hashlib.sha256((csim_build.source_hash(pr) + " ".join(flags)).encode() + DRIVER.read_bytes())
    exe = csim_build.cache_dir() / f"hcim_fuzz_asan_{pr.name}_{h.hexdigest()[:16]}"
    if exe.is_file():
        return exe
    exe.parent.mkdir(parents=True, exist_ok=True)
    tmp = exe.with_name(exe.name + f".{os.getpid()}.tmp")
    sources = [str(src / s) for s in csim_build.CXX_SOURCES]
    cmd = [cxx, *flags, "-I", str(ap), "-I", str(src), *sources, str(DRIVER), "-o", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=csim_build.COMPILE_TIMEOUT_S)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
        if not ci and ("asan" in proc.stderr or "ubsan" in proc.stderr):  # no sanitizer runtime here
            pytest.skip(f"g++ cannot link the sanitizer runtimes here: {proc.stderr.strip()[-300:]}")
        raise RuntimeError(f"building the sanitized driver failed:\n$ {' '.join(cmd)}\n{proc.stderr}")
    os.replace(tmp, exe)
    return exe


@pytest.fixture(scope="session")
def asan_driver():
    return build_sanitized_driver("tiny-64")


@pytest.fixture(scope="session")
def hybrid_base_images():
    """Valid tiny-64 images with hybrid (mode 1) layers: random level tables, saliency and noise."""
    from hybridcim.zoo.fuzz import random_hybrid_program
    out = []
    for seed in range(40):
        prog = random_hybrid_program(seed, "tiny-64", max_convs=2, max_hw=6, max_channels=8)
        if any(l.mode == 1 for l in prog.layers):
            out.append(encode(prog))
        if len(out) == 6:
            break
    return out
