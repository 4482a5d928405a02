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


def hybrid_section_fields(image: bytes) -> list[tuple[str, int, str]]:
    """Every field of every hybrid layer's 64-byte hybrid section as (name, byte offset, struct code)."""
    from hybridcim.program.format import HEADER, LAYER, LAYER_OFF_HYBRID
    h = HEADER.unpack_from(image, 0)
    out = []
    for i in range(h[14]):
        base = h[18] + LAYER.size * i
        if image[base + 1] != 1:
            continue
        off = int.from_bytes(image[base + LAYER_OFF_HYBRID:base + LAYER_OFF_HYBRID + 4], "little")
        if off + 64 > len(image):
            continue
        fields = [("n_levels", 0, "B"), ("sal_planes", 1, "B"), ("noise_pairs", 2, "B"), ("noise_shift", 3, "B"),
                  ("noise_seed", 4, "I")] + [(f"reserved{k}", 8 + k, "B") for k in range(8)] + \
            [(f"threshold{k}", 16 + 4 * k, "I") for k in range(7)] + \
            [(f"digital_depth{k}", 44 + k, "B") for k in range(8)] + [(f"keep_depth{k}", 52 + k, "B") for k in range(8)] + \
            [(f"reserved{8 + k}", 60 + k, "B") for k in range(4)]
        out += [(f"layer{i}.hybrid.{n}", off + o, c) for n, o, c in fields]
    return out


def mutate_hybrid_image(image: bytes, choose, integer) -> tuple[bytes, list[str]]:
    """1..3 hybrid-section fields (or, one time in four, the whole structure-aware mutation) changed, resealed."""
    import struct
    from hybridcim.zoo.fuzz import field_range, reseal, set_field
    if integer(0, 3) == 0:
        return mutate_image(image, choose, integer)
    fields, done = hybrid_section_fields(image), []
    for _ in range(integer(1, 3)):
        name, off, code = choose(fields)
        lo, hi = field_range(code)
        cur = struct.unpack_from("<" + code, image, off)[0]
        near = [lo, hi, 0, 1, cur - 1, cur + 1, 8, 9, 15, 16, 64, 65]
        value = integer(lo, hi) if integer(0, 2) == 0 else choose([v for v in near if lo <= v <= hi])
        image = set_field(image, off, code, value)
        done.append(f"{name}={value}")
    return reseal(image), done


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_hybrid_programs(devices, hybrid_base_images, data):
    """Hybrid sections mutated: host and kernel agree on the verdict (status HYBRID for a bad section);
    a still-valid image runs bit-exact on csim, the reference and the fast emulator."""
    base = data.draw(st.sampled_from(hybrid_base_images))
    image, what = mutate_hybrid_image(base, lambda seq: data.draw(st.sampled_from(seq)),
                                      lambda lo, hi: data.draw(st.integers(lo, hi)))
    check_image(image, devices["tiny-64"], what)


def _sanitized_run(driver, base_images, tmp_path, n, seed, mutate=mutate_image):
    r = random.Random(seed)
    paths = []
    for k in range(n):
        image, _ = mutate(base_images[k % len(base_images)], r.choice, r.randint)
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


def test_sanitized_kernel_on_mutated_hybrid_images(asan_driver, hybrid_base_images, tmp_path):
    ran = _sanitized_run(asan_driver, hybrid_base_images, tmp_path, 200, seed=3, mutate=mutate_hybrid_image)
    assert ran > len(hybrid_base_images)


@pytest.mark.slow
def test_sanitized_kernel_on_many_mutated_images(asan_driver, base_images, tmp_path):
    _sanitized_run(asan_driver, base_images, tmp_path, 3000, seed=2)
