"""Program image round trip and every bad-input class of docs/program-format.md."""
import json
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hybridcim.program import (BadMagicError, ChecksumError, InvalidProgramError, PresetMismatchError,
                               ProgramError, TruncatedError, VersionError, decode, encode, read_program,
                               write_program)
from hybridcim.program.codec import image_crc
from hybridcim.program.format import HEADER, LAYER
from hybridcim.spec import get_preset
from hybridcim.zoo import random_program


def same_program(a, b):
    assert a.preset == b.preset and a.tensors == b.tensors and a.name == b.name
    assert (a.input_tensor, a.output_tensor) == (b.input_tensor, b.output_tensor)
    for la, lb in zip(a.layers, b.layers, strict=True):
        for k, va in vars(la).items():
            vb = getattr(lb, k)
            if isinstance(va, np.ndarray):
                assert va.dtype == vb.dtype and np.array_equal(va, vb), (la.name, k)
            else:
                assert va == vb, (la.name, k)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10**6), st.sampled_from(["tiny-64", "sun-mars-256", "wide-512"]))
def test_round_trip(seed, preset):
    p = random_program(seed, preset)
    img = encode(p)
    assert len(img) % 8 == 0
    q = decode(img)
    same_program(p, q)
    assert encode(q) == img


def reseal(buf: bytearray) -> bytes:
    """Recompute the CRC so that only the semantic checks can catch a tamper."""
    struct.pack_into("<I", buf, 16, image_crc(buf))
    return bytes(buf)


@pytest.fixture(scope="module")
def image():
    return encode(random_program(7, "tiny-64"))


def test_bad_magic(image):
    with pytest.raises(BadMagicError, match="not a hybridcim program"):
        decode(b"PK\x03\x04" + image[4:])


def test_wrong_version(image):
    buf = bytearray(image)
    struct.pack_into("<H", buf, 8, 2)
    with pytest.raises(VersionError, match="format 2.0"):
        decode(bytes(buf))


@pytest.mark.parametrize("cut", [0, 10, 63, 64, 200, -8, -1])
def test_truncated(image, cut):
    with pytest.raises(TruncatedError):
        decode(image[:cut] if cut else b"")


def test_trailing_bytes(image):
    with pytest.raises(TruncatedError, match="trailing"):
        decode(image + b"\0" * 8)


def test_checksum(image):
    buf = bytearray(image)
    buf[len(buf) // 2] ^= 0x10
    with pytest.raises(ChecksumError, match="CRC-32 mismatch"):
        decode(bytes(buf))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_any_single_bit_flip_is_caught(image, data):
    i = data.draw(st.integers(0, len(image) * 8 - 1))
    buf = bytearray(image)
    buf[i // 8] ^= 1 << (i % 8)
    with pytest.raises(ProgramError):
        decode(bytes(buf))


def test_preset_mismatch(image):
    with pytest.raises(PresetMismatchError, match="compiled for preset 'tiny-64'"):
        decode(image, expected_preset=get_preset("sun-mars-256"))
    buf = bytearray(image)
    struct.pack_into("<H", buf, 24, 128)  # rows no longer match the fingerprint
    with pytest.raises(PresetMismatchError, match="fingerprint"):
        decode(reseal(buf))


def layer_field(image, layer, offset, fmt, value):
    h = HEADER.unpack_from(image, 0)
    layer_off = h[18]
    buf = bytearray(image)
    struct.pack_into(fmt, buf, layer_off + layer * LAYER.size + offset, value)
    return reseal(buf)


def test_unknown_op(image):
    with pytest.raises(ProgramError, match="unknown op code 9"):
        decode(layer_field(image, 0, 0, "<B", 9))


def test_section_out_of_bounds(image):
    with pytest.raises(TruncatedError, match="outside"):
        decode(layer_field(image, 0, 60, "<I", len(image) + 64))


def test_semantic_errors_name_the_layer(image):
    with pytest.raises(InvalidProgramError, match=r"layer 0 \('conv0'"):
        decode(layer_field(image, 0, 1, "<B", 1))  # reserved hybrid mode
    with pytest.raises(InvalidProgramError, match="clamp"):
        decode(layer_field(image, 0, 28, "<i", 1 << 20))  # clamp_hi beyond the output format


def test_overflow_rejected():
    from hybridcim.program import ProgramBuilder
    b = ProgramBuilder(get_preset("tiny-64"))
    x = b.input("x", 64, 3, 3)
    w = np.full((1, 64, 3, 3), -128)
    with pytest.raises(InvalidProgramError, match="worst-case accumulator"):
        b.conv("big", x, w, [8], [-10], out_bits=8)
        b.build()


def test_write_read_files_atomically(tmp_path):
    p = random_program(3, "tiny-64")
    path = write_program(p, tmp_path / "m.cim")
    man = json.loads((tmp_path / "m.cim.json").read_text())
    assert man["image_bytes"] == path.stat().st_size and man["preset"]["name"] == "tiny-64"
    assert [l["name"] for l in man["layers"]] == [l.name for l in p.layers]
    same_program(p, read_program(path))
    assert sorted(f.name for f in tmp_path.iterdir()) == ["m.cim", "m.cim.json"]  # no temp files left
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_program(tmp_path / "missing.cim")
    (tmp_path / "bad.cim").write_bytes(b"garbage")
    with pytest.raises(TruncatedError, match="bad.cim"):
        read_program(tmp_path / "bad.cim")


def _one_layer(kind):
    from hybridcim.program import Op, ProgramBuilder
    b = ProgramBuilder(get_preset("tiny-64"))
    x = b.input("x", 2, 4, 4)
    y = b.conv("c", x, np.ones((2, 2, 1, 1), dtype=np.int64), [2, 2], [0, 0], out_bits=4)
    z = b.maxpool("mp", y, 2) if kind == "maxpool" else b.avgpool("gap", y)
    return b, b.layers[-1]


@pytest.mark.parametrize("kind,attr,value,match", [
    ("maxpool", "pad", 1, "square with no padding"), ("maxpool", "kw", 1, "square"),
    ("avgpool", "stride", 2, "stride 1, pad 0"), ("avgpool", "clamp_lo", 1, "map 0 to 0"),
    ("maxpool", "flags", 1, "reserved")])
def test_pool_and_reserved_rules(kind, attr, value, match):
    b, layer = _one_layer(kind)
    setattr(layer, attr, value)
    with pytest.raises(InvalidProgramError, match=match):
        b.build()


def test_unsigned_32_bit_tensor_rejected():
    from hybridcim.program import ProgramBuilder
    b = ProgramBuilder(get_preset("tiny-64"))
    x = b.input("x", 1, 2, 2)
    b.conv("c", x, np.ones((1, 1, 1, 1), dtype=np.int64), [2], [0], out_bits=32)
    with pytest.raises(InvalidProgramError, match="1..31 unsigned"):
        b.build()


def test_manifest_must_be_an_object_and_size_a_multiple_of_8(image):
    h = HEADER.unpack_from(image, 0)
    meta_off, meta_len = h[19], h[20]
    buf = bytearray(image)
    buf[meta_off:meta_off + meta_len] = b"[1]" + b" " * (meta_len - 3)
    with pytest.raises(ProgramError, match="JSON object"):
        decode(reseal(buf))
