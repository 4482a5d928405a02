"""Structure-aware fuzzing of the program image (program-format.md "Reader checks").

Valid images (zoo.fuzz random programs, the shipped ResNet-8) get 1..3 header, tensor-record,
layer-record or section fields set over each field's whole range, CRC resealed. Property:
the host refuses with a typed ProgramError subclass and a message, or accepts and the
reference emulator, the fast emulator and the csim kernel compute the same logits and the
same counters (every LayerCounters field). The kernel's verdict on the same bytes equals the
host's: both accept, or both refuse with the class of the kernel's status table, or the host
alone refuses with a rule the kernel leaves to it (``host_only``). A sanitized (ASan/UBSan)
build of the kernel runs 500 mutated images (3000 and the torch backend too under -m slow).
"""
import dataclasses
import random
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hybridcim.emulator import ReferenceEmulator
from hybridcim.emulator.fast import FastEmulator
from hybridcim.program import ProgramError, decode
from hybridcim.runtime import buffers
from hybridcim.runtime.csim_device import CSimDevice
from hybridcim.runtime.errors import STATUS, KernelError
from hybridcim.zoo import random_images
from hybridcim.zoo.fuzz import mutate_image

MODELS = Path(__file__).resolve().parents[2] / "host" / "hybridcim" / "models"


@pytest.fixture(scope="module")
def devices(csim_lib):
    csim_lib("tiny-64")
    csim_lib("sun-mars-256")
    return {"tiny-64": CSimDevice("tiny-64"), "sun-mars-256": CSimDevice("sun-mars-256")}


def check_image(image: bytes, dev: CSimDevice, what, backends=("numpy",)) -> str:
    """One mutated image through host, kernel and (if valid) all executors; returns the verdict."""
    try:
        prog = decode(image, dev.preset, limits=dev.info)
        host = None
    except ProgramError as e:
        host = e
        assert type(e) is not ProgramError and str(e), (what, repr(e))
    rc, _, _ = dev.lib.layout(buffers.program_words(image))
    if host is not None:
        if rc:
            want = STATUS[rc & 0xFFFF][2]
            assert isinstance(host, want) and not host.host_only, \
                (what, f"kernel status {STATUS[rc & 0xFFFF][0]}, host {type(host).__name__}: {host}")
        else:
            assert host.host_only, (what, f"kernel accepts, host refuses with a kernel-checked rule: {host!r}")
        return type(host).__name__ + ("(host)" if host.host_only else "")
    assert rc == 0, (what, f"host accepts, kernel says {STATUS[rc & 0xFFFF][0]}")
    if dev.preset.name != "tiny-64":
        return "valid"  # the shipped network: verdicts only (emulating it takes seconds)
    images = random_images(prog, 2, seed=len(image))
    ref = ReferenceEmulator(prog).run(images)
    dev.load_image(image, prog)
    out = dev.run(images)
    assert np.array_equal(ref.outputs, out), (what, "reference emulator != csim kernel")
    for r, c in zip(ref.counters, dev.counters, strict=True):
        assert dataclasses.asdict(r) == dataclasses.asdict(c), (what, "counters", r, c)
    for backend in backends:
        fast = FastEmulator(prog, backend=backend).run(images)
        assert np.array_equal(ref.outputs, fast.outputs), (what, f"reference != fast emulator ({backend})")
        for r, f in zip(ref.counters, fast.counters, strict=True):
            assert dataclasses.asdict(r) == dataclasses.asdict(f), (what, f"counters ({backend})", r, f)
    return "valid"


@st.composite
def mutated(draw, bases):
    base = draw(st.sampled_from(bases))
    image, what = mutate_image(base, lambda seq: draw(st.sampled_from(seq)),
                               lambda lo, hi: draw(st.integers(lo, hi)))
    return image, what


def _fuzz(devices, base_images, data, shipped: bool, backends=("numpy",)):
    bases = [(MODELS / "resnet8-w4a4-p50-quick" / "model.cim").read_bytes()] if shipped else base_images
    image, what = data.draw(mutated(bases))
    check_image(image, devices["sun-mars-256" if shipped else "tiny-64"], what, backends)


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_random_programs(devices, base_images, data):
    _fuzz(devices, base_images, data, shipped=False)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_shipped_program(devices, base_images, data):
    _fuzz(devices, base_images, data, shipped=True)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_random_programs_long(devices, base_images, data):
    from hybridcim.emulator.fast import available_backends
    _fuzz(devices, base_images, data, shipped=False, backends=tuple(available_backends()))


@pytest.mark.slow
@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_shipped_program_long(devices, base_images, data):
    _fuzz(devices, base_images, data, shipped=True)


def _sanitized_run(driver, base_images, tmp_path, n, seed):
    r = random.Random(seed)
    paths = []
    for k in range(n):
        image, _ = mutate_image(base_images[k % len(base_images)], r.choice, r.randint)
        paths.append(tmp_path / f"m{k:04d}.cim")
        paths[-1].write_bytes(image)
    for k, b in enumerate(base_images):  # the unmutated images run too
        paths.append(tmp_path / f"base{k}.cim")
        paths[-1].write_bytes(b)
    proc = subprocess.run([str(driver), *map(str, paths)], capture_output=True, text=True, timeout=600,
                          env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0", "UBSAN_OPTIONS": "print_stacktrace=1"})
    report = proc.stderr.strip()
    assert proc.returncode == 0 and "runtime error" not in report and "Sanitizer" not in report, report[-4000:]
    lines = proc.stdout.split("\n")
    assert not any(line.startswith("MISMATCH") for line in lines), proc.stdout
    verdicts = [line.split() for line in lines if line.strip()]
    assert len(verdicts) == len(paths)
    ran = sum(v[1] == "0" for v in verdicts)
    assert all(v[1] == "0" and v[2] == "0" for v in verdicts[n:])  # the valid bases run with status OK
    return ran


def test_sanitized_kernel_on_mutated_images(asan_driver, base_images, tmp_path):
    ran = _sanitized_run(asan_driver, base_images, tmp_path, 500, seed=1)
    assert ran > len(base_images)  # some mutated images were run too, not only refused


@pytest.mark.slow
def test_sanitized_kernel_on_many_mutated_images(asan_driver, base_images, tmp_path):
    _sanitized_run(asan_driver, base_images, tmp_path, 3000, seed=2)
