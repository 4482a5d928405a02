"""The kernel refuses bad images and bad buffers with a status code, never a crash.

Negative cases of the csim executor: flipped bits anywhere in the image (checksum or header
verdicts), malformed records under a valid CRC, a program of another preset, programs over
the kernel's capacity, undersized buffers, out-of-range pixels. Raw kernel calls go through
CSimLibrary with buffers sized by the caller, exactly as the board's driver does.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hybridcim.program import (BadMagicError, ChecksumError, InvalidProgramError, PresetMismatchError,
                               ProgramBuilder, TruncatedError, VersionError, encode)
from hybridcim.program.codec import image_crc
from hybridcim.runtime import buffers
from hybridcim.runtime.csim_device import CSimDevice
from hybridcim.runtime.errors import CapacityError, KernelError
from hybridcim.spec import get_preset
from hybridcim.zoo import random_images, random_program


def resign(image: bytearray) -> bytes:
    image[16:20] = image_crc(image).to_bytes(4, "little")
    return bytes(image)


@pytest.fixture(scope="module")
def dev(csim_lib):
    csim_lib("tiny-64")
    return CSimDevice("tiny-64")


@pytest.fixture(scope="module")
def prog():
    return random_program(7, "tiny-64")


def test_valid_image_loads(dev, prog):
    dev.load_image(encode(prog), prog)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.data())
def test_flipped_bit_is_reported_by_the_kernel(dev, prog, data):
    image = bytearray(encode(prog))
    bit = data.draw(st.integers(0, len(image) * 8 - 1))
    image[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(KernelError) as ei:
        dev.load_image(bytes(image))
    byte = bit // 8
    expected = {range(0, 8): BadMagicError, range(8, 10): VersionError, range(12, 16): TruncatedError}
    want = next((cls for r, cls in expected.items() if byte in r), ChecksumError)
    assert isinstance(ei.value, want), f"bit {bit}: {ei.value}"
    assert "status" in str(ei.value)


def test_flipped_body_bit_is_a_checksum_error(dev, prog):
    image = bytearray(encode(prog))
    image[len(image) // 2] ^= 0x10
    with pytest.raises(ChecksumError, match="CHECKSUM"):
        dev.load_image(bytes(image))
    with pytest.raises(ChecksumError):  # the host's own decode catches it too
        dev.load(bytes(image))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(data=st.data())
def test_corrupt_tables_under_a_valid_crc_never_crash(dev, prog, data):
    """Random bytes of the tensor/layer tables and sections, CRC re-signed: an error or a safe run."""
    image = bytearray(encode(prog))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(64, len(image) - 1))
        image[pos] = data.draw(st.integers(0, 255))
    image = resign(image)
    words = buffers.program_words(image)
    rc, per_image, out_words = dev.lib.layout(words)
    if rc:
        assert rc & 0xFFFF in (7, 8, 11), f"status {rc & 0xFFFF}"
        return
    n = 2
    images = np.zeros((n, 1 << 12), dtype=np.uint64)  # generous: the kernel checks against its size
    out = np.zeros(n * out_words, dtype=np.int32)
    scratch = np.zeros(n * per_image, dtype=np.int32)
    rc = dev.lib.run(words, images.reshape(-1), n, out, scratch, buffers.FLAG_TRACE)
    assert rc in (0, 10) or rc & 0xFFFF == 1


def test_malformed_layer_names_the_layer(dev, prog):
    image = bytearray(encode(prog))
    layer_table = int.from_bytes(image[48:52], "little")
    i = len(prog.layers) - 1
    image[layer_table + 96 * i] = 9  # unknown op code
    with pytest.raises(InvalidProgramError, match=rf"LAYER.*layer {i} \('{prog.layers[i].name}'\)"):
        dev.load_image(resign(image), prog)


def test_section_outside_the_image_is_refused(dev, prog):
    image = bytearray(encode(prog))
    layer_table = int.from_bytes(image[48:52], "little")
    i = next(k for k, l in enumerate(prog.layers) if l.op.is_cim)
    image[layer_table + 96 * i + 60:layer_table + 96 * i + 64] = (len(image) - 8).to_bytes(4, "little")
    with pytest.raises(KernelError, match="LAYER"):
        dev.load_image(resign(image), prog)


def test_wrong_preset_is_refused(csim_lib, dev):
    csim_lib("sun-mars-256")
    other = random_program(3, "sun-mars-256")
    with pytest.raises(PresetMismatchError):  # host check names both presets
        dev.load(other)
    with pytest.raises(PresetMismatchError, match="PRESET"):  # and the kernel's own check
        dev.load_image(encode(other))
    with pytest.raises(PresetMismatchError):
        CSimDevice("sun-mars-256").load_image(encode(random_program(3, "tiny-64")))


def _too_wide_program():
    b = ProgramBuilder(get_preset("tiny-64"), name="wide")
    x = b.input("image", 3, 64, 64)  # 64*64 pixels * 8 bits * 1 word = 32768 > 16384 packed words
    w = np.ones((2, 3, 1, 1), dtype=np.int64)
    y = b.conv("c1", x, w, [2, 2], [8, 8])
    g = b.avgpool("gap", y)
    b.fc("logits", g, np.ones((2, 2), dtype=np.int64), [2, 2], [0, 0], logits=True)
    return b.build()


def test_capacity_is_checked_on_the_host_and_in_the_kernel(dev):
    prog = _too_wide_program()
    with pytest.raises(CapacityError, match=r"layer 0 \('c1'\).*packed input words"):
        dev.load(prog)
    with pytest.raises(CapacityError, match=r"LIMIT.*layer 0 \('c1'\)"):
        dev.load_image(encode(prog), prog)


def test_buffer_sizes_are_checked(dev, prog):
    dev.load(prog)
    words = buffers.program_words(encode(prog))
    rc, per_image, out_words = dev.lib.layout(words)
    assert rc == 0
    images = buffers.pack_images(random_images(prog, 2)).reshape(-1)
    out = np.zeros(2 * out_words, np.int32)
    ok = dev.lib.run(words, images, 2, out, np.zeros(per_image, np.int32), 0)
    assert ok == 0
    assert dev.lib.run(words, images, 2, out, np.zeros(per_image - 1, np.int32), 0) == 9  # SCRATCH
    assert dev.lib.run(words, images, 2, out, np.zeros(per_image, np.int32), buffers.FLAG_TRACE) == 9
    assert dev.lib.run(words, images, 2, out[:-1].copy(), np.zeros(per_image, np.int32), 0) == 1  # ARGS (out)
    assert dev.lib.run(words, images[:-1].copy(), 2, out, np.zeros(per_image, np.int32), 0) == 1  # ARGS (images)
    assert dev.lib.run(words[:-1].copy(), images, 2, out, np.zeros(per_image, np.int32), 0) == 4  # SIZE
    n_cnt = buffers.counters_words(prog)
    cnt = np.full(n_cnt + 1, 7, np.uint64)
    assert dev.lib.run(words, images, 2, out, np.zeros(per_image, np.int32), buffers.FLAG_COUNTERS, cnt) == 0
    assert cnt[-1] == 7  # the counters block is written, nothing past it
    assert buffers.counters_from_buffer(prog, cnt[:-1])[0].images == 2  # layer 0 saw 2 images
    short = np.full(n_cnt - 1, 7, np.uint64)
    assert dev.lib.run(words, images, 2, out, np.zeros(per_image, np.int32), buffers.FLAG_COUNTERS, short) == 1
    assert (short == 7).all()  # ARGS (counters): refused before anything is written
    assert dev.lib.run(words, images, 2, out, np.zeros(per_image, np.int32), buffers.FLAG_COUNTERS) == 1  # null
    untouched = np.full(n_cnt, 7, np.uint64)
    assert dev.lib.run(words, images, 2, out, np.zeros(per_image, np.int32), 0, untouched) == 0
    assert (untouched == 7).all()  # without the flag the counters buffer is not written


def test_out_of_range_pixel_is_an_input_error(dev):
    prog = next(p for p in (random_program(s, "tiny-64") for s in range(50)) if p.input.bits < 8)
    words = buffers.program_words(encode(prog))
    rc, per_image, out_words = dev.lib.layout(words)
    images = random_images(prog, 2)
    images[1, 0, 0, 0] = 255
    rc = dev.lib.run(words, buffers.pack_images(images).reshape(-1), 2, np.zeros(2 * out_words, np.int32),
                     np.zeros(per_image, np.int32), 0)
    assert rc == 10 | (1 << 16)  # INPUT, image 1


def _field_tampers(prog, image):
    """(what, tampered image) pairs that break one record rule each (program-format.md reader checks)."""
    import struct
    from hybridcim.program.codec import decode
    from hybridcim.zoo.fuzz import image_fields, set_field
    fields = {n: (o, c) for n, o, c in image_fields(image)}
    cim = next(k for k, l in enumerate(prog.layers) if l.op.is_cim and l.words.size)
    pool = next(k for k, l in enumerate(prog.layers) if not l.op.is_cim)
    out = [(f, v) for f, v in (("tensor0.signed", 2), ("tensor0.signed", 255), ("tensor1.bits", 32),
                               ("tensor1.reserved6", 1), ("header.reserved2", 9), (f"layer{cim}.reserved0", 1),
                               (f"layer{cim}.reserved27", 1), (f"layer{cim}.pool_shift", -1),
                               (f"layer{pool}.n_filters", 1), (f"layer{pool}.n_groups", 1),
                               (f"layer{pool}.off_skip", 64), (f"layer{pool}.n_weight_words", 8))]
    tampered = [(f"{f}={v}", resign(bytearray(set_field(image, *fields[f], v)))) for f, v in out]
    colmap = struct.unpack_from("<I", image, fields[f"layer{cim}.off_colmap"][0])[0]
    words = struct.unpack_from("<I", image, fields[f"layer{cim}.off_weights"][0])[0]
    e = struct.unpack_from("<I", image, colmap)[0]
    tampered.append(("colmap bit 25", resign(bytearray(set_field(image, colmap, "I", e | 1 << 25)))))
    w = struct.unpack_from("<Q", image, words)[0]
    tampered.append(("weight bit 16", resign(bytearray(set_field(image, words, "Q", w | 1 << 16)))))
    assert decode(image)
    return tampered


def test_host_and_kernel_refuse_the_same_record_fields(dev, prog):
    """Same bytes, same verdict: each tamper is refused by the host and by the kernel with one class."""
    from hybridcim.program import decode
    from hybridcim.runtime.errors import STATUS
    image = encode(prog)
    for what, bad in _field_tampers(prog, image):
        with pytest.raises(KernelError) as kernel:
            dev.load_image(bad)
        with pytest.raises(InvalidProgramError) as host:
            decode(bad, limits=dev.info)
        assert not host.value.host_only, what
        assert isinstance(host.value, STATUS[kernel.value.code][2]), (what, kernel.value, host.value)
