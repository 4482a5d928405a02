"""Program format 1.1: hybrid layers (mode 1 + hybrid section) round trip; 1.0 images keep their
bits; the reader and the validator refuse bad hybrid fields naming them."""
import dataclasses
import struct
from pathlib import Path

import numpy as np
import pytest

from hybridcim.program.builder import make_hybrid
from hybridcim.program.codec import decode, encode, image_crc, read_program
from hybridcim.program.errors import InvalidProgramError, SectionError
from hybridcim.program.format import HEADER, LAYER, LAYER_OFF_HYBRID
from hybridcim.program.hybrid import HYBRID, HybridParams
from hybridcim.program.validate import validate
from hybridcim.zoo.fuzz import random_hybrid_program, random_program

MODELS = Path(__file__).resolve().parents[2] / "host" / "hybridcim" / "models"
PARAMS = HybridParams((1, 3, 15), (4, 6, 15), (10, 30), sal_planes=2, noise_pairs=12, noise_shift=3, noise_seed=0xDEADBEEF)


def _reseal(img: bytearray) -> bytes:
    img[16:20] = image_crc(img).to_bytes(4, "little")
    return bytes(img)


def _layer_base(img: bytes, i: int) -> int:
    return HEADER.unpack_from(img, 0)[18] + LAYER.size * i


def _first_cim(p):
    return next(i for i, l in enumerate(p.layers) if l.op.is_cim)


def test_hybrid_round_trip_and_minor_version():
    p = random_program(3)
    h = make_hybrid(p, PARAMS)
    img = encode(h)
    assert struct.unpack_from("<H", img, 10)[0] == 1
    q = decode(img)
    assert [l.hybrid for l in q.layers] == [l.hybrid for l in h.layers]
    assert [l.mode for l in q.layers] == [1 if l.op.is_cim else 0 for l in p.layers]
    assert encode(q) == img
    i = _first_cim(h)
    off = int.from_bytes(img[_layer_base(img, i) + LAYER_OFF_HYBRID:][:4], "little")
    assert img[off:off + HYBRID.size] == PARAMS.pack() and off % 8 == 0


@pytest.mark.parametrize("seed", range(6))
def test_random_hybrid_programs_round_trip(seed):
    h = random_hybrid_program(seed)
    assert encode(decode(encode(h))) == encode(h)


@pytest.mark.parametrize("model", sorted(m for m in MODELS.glob("*/model.cim") if m.read_bytes()[10] != 2),
                         ids=lambda m: m.parent.name)  # (format-1.2 dual-path images: test_dualpath_format.py)
def test_shipped_1_0_images_keep_their_bits(model):
    raw = model.read_bytes()
    assert struct.unpack_from("<H", raw, 10)[0] == 0
    assert encode(read_program(model)) == raw


def test_all_digital_program_writes_1_0():
    p = random_program(5)
    h = make_hybrid(p, PARAMS)
    back = make_hybrid(h, {l.name: None for l in h.layers if l.op.is_cim})
    assert encode(back) == encode(p) and struct.unpack_from("<H", encode(p), 10)[0] == 0


def test_reader_refuses_mode_1_in_a_1_0_image():
    p = random_program(3)
    img = bytearray(encode(p))
    i = _first_cim(p)
    img[_layer_base(img, i) + 1] = 1
    with pytest.raises(InvalidProgramError, match="mode 1"):
        decode(_reseal(img))


def test_reader_refuses_off_hybrid_in_a_digital_layer():
    h = make_hybrid(random_program(3), PARAMS)
    img = bytearray(encode(h))
    i = _first_cim(h)
    img[_layer_base(img, i) + 1] = 0  # mode 0 with an off_hybrid left in bytes 68..71
    with pytest.raises(InvalidProgramError, match="off_hybrid"):
        decode(_reseal(img))


def test_reader_refuses_a_misplaced_hybrid_section():
    h = make_hybrid(random_program(3), PARAMS)
    img = bytearray(encode(h))
    base = _layer_base(img, _first_cim(h)) + LAYER_OFF_HYBRID
    for bad in (0, 4, len(img) - 8):
        img[base:base + 4] = bad.to_bytes(4, "little")
        with pytest.raises(SectionError, match="hybrid"):
            decode(_reseal(img))


@pytest.mark.parametrize("offset,value,field", [
    (0, 0, "n_levels"), (0, 9, "n_levels"), (1, 0, "sal_planes"), (1, 9, "sal_planes"),
    (2, 65, "noise_pairs"), (3, 9, "noise_shift"), (9, 1, "reserved"), (61, 1, "reserved"),
    (44, 16, "digital_depth"), (44, 5, "digital_depth"),  # 16 > 15; D_0 = 5 > E_0 = 4
    (45, 0, "nondecreasing"), (47, 1, "past n_levels"), (16, 30, "strictly ascending"),
])
def test_reader_refuses_bad_hybrid_fields_naming_them(offset, value, field):
    h = make_hybrid(random_program(3), PARAMS)
    img = bytearray(encode(h))
    off = int.from_bytes(img[_layer_base(img, _first_cim(h)) + LAYER_OFF_HYBRID:][:4], "little")
    img[off + offset] = value
    with pytest.raises(InvalidProgramError, match=field):
        decode(_reseal(img))


@pytest.mark.parametrize("params,field", [
    (HybridParams((1, 2), (3, 4), (5,), sal_planes=0), "sal_planes"),
    (HybridParams((1, 2), (3, 4), (5, 6)), "thresholds"),
    (HybridParams((1, 2), (3, 4), (6,), noise_pairs=70), "noise_pairs"),
    (HybridParams((2, 1), (3, 4), (6,)), "nondecreasing"),
    (HybridParams((1, 2), (3, 16), (6,)), "keep_depth"),
    (HybridParams((1,) * 9, (3,) * 9, tuple(range(8))), "n_levels"),
    (HybridParams((1,), (3,), (), noise_seed=1 << 32), "noise_seed"),
])
def test_validator_refuses_bad_params_naming_the_field(params, field):
    with pytest.raises(InvalidProgramError, match=field):
        make_hybrid(random_program(3), params)


def test_validator_mode_rules():
    p = random_program(3)
    i = _first_cim(p)
    for layer, msg in ((dataclasses.replace(p.layers[i], mode=2), "mode 2 unknown"),
                       (dataclasses.replace(p.layers[i], mode=1), "needs its hybrid parameters"),
                       (dataclasses.replace(p.layers[i], hybrid=PARAMS), "digital")):
        with pytest.raises(InvalidProgramError, match=msg):
            validate(dataclasses.replace(p, layers=p.layers[:i] + [layer] + p.layers[i + 1:]))


def test_hybrid_accumulator_bound_counts_the_adc_range():
    """A layer whose exact digital bound fits can overflow once analog reads may exceed the rows:
    the hybrid bound uses max(real rows, (2^adc_bits - 1) * 2^s) per present row block."""
    from hybridcim.program.builder import ProgramBuilder
    from hybridcim.spec.hardware import HardwarePreset
    pr = HardwarePreset("adc8-8", 64, 64, 8, 8, 1, 32, 8, (2, 4, 8))  # 8 rows, 8-bit ADC: n̂ up to 255
    b = ProgramBuilder(pr)
    x = b.input("x", channels=8, height=1, width=1, bits=8, exponent=0)
    b.fc("f", x, np.full((1, 8), -128, np.int64), precision=[8], shift=[-12], logits=True)
    p = b.build()  # digital: 8 * 128 * 255 * 2^12 < 2^31
    with pytest.raises(InvalidProgramError, match="accumulator"):
        make_hybrid(p, HybridParams.static(0))  # 255 * 255 * 255 * 2^12 > 2^31
