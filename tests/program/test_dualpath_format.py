"""Format 1.2 (program-format.md "Dual section", architecture.md §10.5): round trip, versions, reader
and validator refusals naming the field."""
import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hybridcim.program.builder import ProgramBuilder, make_dual
from hybridcim.program.codec import decode, encode, format_minor
from hybridcim.program.dualpath import DUAL, DualPathParams, decode_ternary, encode_ternary
from hybridcim.program.errors import InvalidProgramError, PresetMismatchError, SectionError
from hybridcim.program.format import HEADER, LAYER, LAYER_OFF_DUAL
from hybridcim.program.validate import validate
from hybridcim.spec import get_preset
from hybridcim.zoo.fuzz import random_dualpath_program, random_program, reseal

DUAL_PRESET = get_preset("tiny-64-dual")


def _layer(preset=DUAL_PRESET, q=4, theta=8, f=8, c=5, k=3, seed=0, tern=None):
    rng = np.random.default_rng(seed)
    b = ProgramBuilder(preset, name="d")
    x = b.input("image", c, 5, 5, bits=4)
    dual = DualPathParams(q, theta)
    f_t = min(dual.n_tern(f), f)
    w = rng.integers(-8, 8, (f, c, k, k))
    w[f - f_t:] = rng.integers(-1, 2, (f_t, c, k, k)) if tern is None else tern
    prec = [4] * (f - f_t) + [0] * f_t
    b.conv("c", x, w, prec, [3] * f, bias=rng.integers(-20, 20, f), pad=1, dual=dual)
    return b.build()


def _dual_offset(image: bytes, layer: int = 0) -> int:
    loff = HEADER.unpack_from(image, 0)[18]
    return int.from_bytes(image[loff + LAYER.size * layer + LAYER_OFF_DUAL:][:4], "little")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), preset=st.sampled_from(["tiny-64-dual", "sun-mars-256-dual"]))
def test_round_trip_is_byte_exact(seed, preset):
    p = random_dualpath_program(seed, preset)
    image = encode(p)
    q = decode(image)
    assert encode(q) == image and q.preset == p.preset
    for a, b in zip(p.layers, q.layers):
        assert a.flags == b.flags and a.dual == b.dual
        if a.dual is not None:
            assert np.array_equal(a.tern_words, b.tern_words) and b.tern_words.dtype == np.uint64


@settings(max_examples=60, deadline=None)
@given(f_t=st.integers(0, 5), k=st.integers(1, 150), a=st.sampled_from([8, 16, 32, 64]), seed=st.integers(0, 999))
def test_ternary_words_round_trip(f_t, k, a, seed):
    t = np.random.default_rng(seed).integers(-1, 2, (f_t, k))
    words = encode_ternary(t, a)
    assert words.shape == (f_t, -(-k // a), 2) and not np.any(words[..., 0] & words[..., 1])
    assert np.array_equal(decode_ternary(words, k, a), t)


def test_format_versions():
    dual = _layer()
    assert format_minor(dual) == 2 and encode(dual)[10] == 2
    # a preset with the second macro type writes 1.2 even when no layer is dual-path (its header carries the geometry)
    plain_on_dual = random_program(3, "tiny-64-dual")
    image = encode(plain_on_dual)
    assert image[10] == 2 and image[61:64] != b"\0\0\0" and decode(image).preset == DUAL_PRESET
    # presets without it still write 1.0 / 1.1, header bytes 61..63 zero: shipped images keep their bits
    plain = random_program(3, "tiny-64")
    assert encode(plain)[10] == 0 and encode(plain)[61:64] == b"\0\0\0"


def test_ratio_semantics_last_filters_are_ternary():
    for q in range(9):
        assert DualPathParams(q).n_tern(16) == 2 * q and DualPathParams(q).first_tern(16) == 16 - 2 * q
    assert DualPathParams(3).n_tern(5) == 1  # floor(5 * 3 / 8)


# ---- refusals: builder / in-memory validator -------------------------------------------------------------

def test_builder_refuses_ratio_outside_the_allowed_set():
    with pytest.raises(ValueError, match="ratio_eighths 9 is outside the allowed set"):
        _layer(q=9)
    with pytest.raises(InvalidProgramError, match="ratio_eighths -1"):
        p = _layer()
        validate(dataclasses.replace(p, layers=[dataclasses.replace(p.layers[0], dual=DualPathParams(-1, 8))]))


def test_builder_refuses_dual_path_on_a_preset_without_the_second_macro_type():
    with pytest.raises(ValueError, match="no second macro type"):
        _layer(preset=get_preset("tiny-64"))
    p = _layer()
    with pytest.raises(InvalidProgramError, match="no second macro type"):
        validate(dataclasses.replace(p, preset=get_preset("tiny-64")))


def test_builder_refuses_a_ternary_weight_outside_minus_one_to_one():
    with pytest.raises(ValueError, match=r"ternary filter 4 has a weight outside \{-1, 0, 1\}"):
        _layer(tern=np.full((4, 5, 3, 3), 2))
    with pytest.raises(ValueError, match=r"outside \{-1, 0, 1\}"):
        p = random_program(1, "tiny-64-dual", max_convs=1)
        l = p.layer_by_name("conv0")
        make_dual(p, {"conv0": (DualPathParams(8), np.full((l.n_filters, l.k_rows), -2))})


def test_builder_refuses_precision_on_a_ternary_filter_and_bad_threshold():
    rng = np.random.default_rng(0)
    b = ProgramBuilder(DUAL_PRESET)
    x = b.input("image", 2, 3, 3, bits=4)
    with pytest.raises(ValueError, match="filter 1 is on the ternary path.*precision must be 0"):
        b.conv("c", x, rng.integers(-1, 2, (2, 2, 1, 1)), [2, 2], [0, 0], dual=DualPathParams(4))
    with pytest.raises(ValueError, match="bin_threshold 16 must lie in 1..15"):
        b.conv("c", x, rng.integers(-1, 2, (2, 2, 1, 1)), [2, 0], [0, 0], dual=DualPathParams(4, 16))


def test_validator_refuses_both_cells_set_and_padding_rows():
    p = _layer()
    l = p.layers[0]
    tw = l.tern_words.copy()
    tw[1, 0, 0] |= np.uint64(1)
    tw[1, 0, 1] |= np.uint64(1)
    with pytest.raises(InvalidProgramError, match=r"ternary filter 5: a weight has both cells set"):
        validate(dataclasses.replace(p, layers=[dataclasses.replace(l, tern_words=tw)]))
    tw = l.tern_words.copy()
    tw[0, -1, 0] |= np.uint64(1 << 15)  # K = 45 = 2 * 16 + 13: row 15 of the last block is padding
    with pytest.raises(InvalidProgramError, match="padding rows past K"):
        validate(dataclasses.replace(p, layers=[dataclasses.replace(l, tern_words=tw)]))


def test_ternary_accumulator_bound_uses_binary_inputs():
    """§10.5: a ternary filter's bound is Σ|T| (x_max = 1), not Σ|T| · (2^bits_in − 1)."""
    b = ProgramBuilder(DUAL_PRESET)
    x = b.input("image", 64, 1, 1, bits=8)
    w = np.ones((1, 64, 1, 1), dtype=np.int64)
    # Σ|T| = 64: bound 64 · 2^24 = 2^30 fits; with x_max = 255 it would be 255 · 2^30 > 2^31 - 1
    b.conv("c", x, w, [0], [-24], dual=DualPathParams(8, 1), out_bits=31, clamp=(0, 2**31 - 1))
    b.build()
    b2 = ProgramBuilder(DUAL_PRESET)
    x = b2.input("image", 64, 1, 1, bits=8)
    b2.conv("c", x, w, [0], [-25], dual=DualPathParams(8, 1), out_bits=31, clamp=(0, 2**31 - 1))
    with pytest.raises(InvalidProgramError, match="worst-case accumulator 2147483648"):
        b2.build()


# ---- refusals: the image reader (row 12(b), 12(f), rows 6-7) ---------------------------------------------

def _patch(image: bytes, off: int, data: bytes) -> bytes:
    buf = bytearray(image)
    buf[off:off + len(data)] = data
    return reseal(buf)


def test_reader_refuses_ratio_outside_the_allowed_set():
    image = encode(_layer())
    with pytest.raises(InvalidProgramError, match=r"layer 0 \('c'\): dual ratio_eighths 9 is outside the allowed set"):
        decode(_patch(image, _dual_offset(image), b"\x09"))


def test_reader_refuses_threshold_rowblocks_words_and_reserved():
    image = encode(_layer())
    od = _dual_offset(image)
    for off, data, msg in ((1, b"\x00", "bin_threshold 0"), (1, b"\x10", "bin_threshold 16"),
                           (2, b"\x02\x00", "n_tern_rowblocks 2 must be ceil"), (4, b"\x07\x00\x00\x00", "n_tern_words 7"),
                           (12, b"\x01", "reserved bytes 12..15")):
        with pytest.raises(InvalidProgramError, match=msg):
            decode(_patch(image, od + off, data))
    with pytest.raises(SectionError, match="ternary weights"):
        decode(_patch(image, od + 8, (len(image) - 8).to_bytes(4, "little")))
    with pytest.raises(SectionError, match="dual: section"):
        decode(_patch(image, HEADER.unpack_from(image, 0)[18] + LAYER_OFF_DUAL, (0).to_bytes(4, "little")))


def test_reader_refuses_a_ternary_weight_outside_minus_one_to_one():
    image = encode(_layer())
    od = _dual_offset(image)
    off_w = int.from_bytes(image[od + 8:od + 12], "little")
    pos = int.from_bytes(image[off_w:off_w + 8], "little")
    both = _patch(image, off_w + 8, (pos or 1).to_bytes(8, "little"))  # negative word of (u0, b0) = positive word
    if not pos:
        both = _patch(both, off_w, (1).to_bytes(8, "little"))
    with pytest.raises(InvalidProgramError, match=r"ternary filter 4: .*outside \{-1, 0, 1\}"):
        decode(both)
    with pytest.raises(InvalidProgramError, match="bits above tern_rows_active"):
        decode(_patch(image, off_w, (1 << 40).to_bytes(8, "little")))


def test_reader_refuses_dual_path_without_the_second_macro_type():
    """flags bit 0 in a 1.2 image of a preset without tern_* geometry: refused at 12(f), naming it."""
    p = random_program(5, "tiny-64", max_convs=1)
    image = bytearray(encode(p))
    image[10] = 2  # format 1.2, header bytes 61..63 zero: no second macro type
    loff = HEADER.unpack_from(image, 0)[18]
    image[loff + 6] = 1  # flags of layer 0
    with pytest.raises(InvalidProgramError, match="dual-path layer .* without the second macro type"):
        decode(reseal(image))
    image[10] = 1  # format 1.1: flags must be 0 (row 12(b))
    with pytest.raises(InvalidProgramError, match=r"flags 0x1 \(0, or 1 = dual-path on conv/fc in format >= 1.2\)"):
        decode(reseal(image))


def test_reader_refuses_other_flags_mode_one_and_ternary_precision():
    image = encode(_layer())
    loff = HEADER.unpack_from(image, 0)[18]
    with pytest.raises(InvalidProgramError, match="flags 0x3"):
        decode(_patch(image, loff + 6, b"\x03\x00"))
    with pytest.raises(InvalidProgramError, match="mode 1 with flags bit 0: spec 1.2 combines the dual path with digital"):
        decode(_patch(image, loff + 1, b"\x01"))
    off_prec = LAYER.unpack_from(image, loff)[17]
    with pytest.raises(InvalidProgramError, match="ternary-path filters 4..7 must have SRAM precision 0"):
        decode(_patch(image, off_prec + 7, b"\x04"))


def test_reader_header_bytes_of_the_second_macro_type():
    image = encode(_layer())
    with pytest.raises(InvalidProgramError, match="header bytes 61..63"):
        decode(_patch(image, 62, bytes((image[62] | 0x40,))))
    with pytest.raises(PresetMismatchError, match="fingerprint"):
        decode(_patch(image, 63, bytes((image[63] + 1,))))  # another refresh period: fingerprint differs
    with pytest.raises(PresetMismatchError, match="device is 'tiny-64'"):
        decode(image, get_preset("tiny-64"))
    # 1.2 image of a preset without the second macro type, bytes 61..63 set: the fingerprint names tiny-64, so
    # row 6 passes and row 7 refuses the bytes (kernel 1.2 reads them as reserved: the same verdict)
    plain = bytearray(encode(random_program(2, "tiny-64")))
    plain[10] = 2
    plain[61:64] = image[61:64]
    with pytest.raises(InvalidProgramError, match="header bytes 61..63 = 5605.. are not the second macro type"):
        decode(reseal(plain))
    old = bytearray(encode(random_program(2, "tiny-64")))
    old[61] = 1  # format 1.0: reserved, refused as before
    with pytest.raises(InvalidProgramError, match="header reserved bytes 61..63 must be 0"):
        decode(reseal(old))


def test_hybrid_layers_on_a_dual_preset_and_the_sidecar(tmp_path):
    """Format 1.2 carries 1.1's hybrid layers; the sidecar names each dual-path layer's parameters."""
    import json
    from hybridcim.emulator.reference import ReferenceEmulator
    from hybridcim.program.codec import write_program, read_program
    from hybridcim.zoo.fuzz import random_hybrid_program, random_images
    p = random_hybrid_program(7, "tiny-64-dual", noise=False)
    assert any(l.mode == 1 for l in p.layers)
    image = encode(p)
    assert image[10] == 2 and encode(decode(image)) == image
    ReferenceEmulator(decode(image)).run(random_images(p, 1))
    d = _layer(q=3)
    write_program(d, tmp_path / "d.cim")
    side = json.loads((tmp_path / "d.cim.json").read_text())
    assert side["format_version"] == "1.2" and side["preset"]["tern_n_macros"] == 2
    assert side["layers"][0]["dual"] == {"ratio_eighths": 3, "bin_threshold": 8, "n_tern": 3}
    assert read_program(tmp_path / "d.cim").layers[0].dual == DualPathParams(3, 8)
    assert "dual(ternary 3/8, x>=8)" in read_program(tmp_path / "d.cim").summary()


def test_shipped_images_keep_their_bits():
    from pathlib import Path
    models = Path(__file__).resolve().parents[2] / "host" / "hybridcim" / "models"
    images = sorted(models.rglob("model.cim"))
    assert images
    for f in images:  # format 1.0 (minor 0), or 1.2 (minor 2) for a model with dual-path layers
        raw = f.read_bytes()
        dual = any(l.dual is not None for l in decode(raw).layers)
        assert raw[10] == (2 if dual else 0) and encode(decode(raw)) == raw, f


_BASES = [encode(p) for p in (random_dualpath_program(s, "tiny-64-dual", max_convs=2, max_hw=5) for s in range(12))
          if any(l.dual is not None and l.dual.n_tern(l.n_filters) for l in p.layers)][:3]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_dual_images_get_a_typed_verdict(data):
    """Structure-aware mutation of header, records, sections, dual sections and ternary words: the reader
    refuses with a typed error naming the problem, or the image decodes, re-encodes and runs."""
    from hybridcim.emulator.reference import ReferenceEmulator
    from hybridcim.program.errors import ProgramError
    from hybridcim.zoo.fuzz import mutate_image, random_images
    assert len(_BASES) == 3
    base = data.draw(st.sampled_from(_BASES))
    if data.draw(st.booleans()):
        image, _ = mutate_image(base, lambda seq: data.draw(st.sampled_from(seq)), lambda lo, hi: data.draw(st.integers(lo, hi)))
    else:  # bytes of a dual section or of the ternary words after it
        layers = [i for i in range(HEADER.unpack_from(base, 0)[14]) if _dual_offset(base, i)]
        od = _dual_offset(base, data.draw(st.sampled_from(layers)))
        off_w = int.from_bytes(base[od + 8:od + 12], "little")
        spots = list(range(od, od + DUAL.size)) + list(range(off_w, od))
        buf = bytearray(base)
        for _ in range(data.draw(st.integers(1, 3))):
            buf[data.draw(st.sampled_from(spots))] = data.draw(st.integers(0, 255))
        image = reseal(buf)
    try:
        p = decode(image)
    except ProgramError as e:
        assert type(e) is not ProgramError and str(e)
        return
    assert encode(p) == image or decode(encode(p)) is not None
    ReferenceEmulator(p).run(random_images(p, 1))


def test_too_many_ternary_row_blocks_refused_before_encoding():
    import dataclasses as dc
    p = _layer()
    big = dc.replace(p.layers[0], k_rows=8 * 0x10000 + 8)
    with pytest.raises(InvalidProgramError, match="exceed the dual section's u16 n_tern_rowblocks"):
        validate(dc.replace(p, preset=dc.replace(DUAL_PRESET, tern_rows_active=8, tern_rows=64), layers=[big]))
