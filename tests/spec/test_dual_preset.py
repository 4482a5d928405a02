"""The second macro type of spec 1.2 (architecture.md §10.1): preset fields, fingerprint, header bytes."""
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from hybridcim.program.dualpath import tern_from_header, tern_header_bytes, tern_header_ok
from hybridcim.spec.hardware import (HOST_PRESETS, PRESETS, TERN_FIELDS, HardwarePreset, PresetError, get_preset,
                                     preset_by_fingerprint)


def test_presets_without_the_second_macro_type_keep_their_fingerprints_and_dicts():
    # the values of tests/spec/test_hardware.py, fixed before spec 1.2
    assert PRESETS["sun-mars-256"].fingerprint == 0x25DA3F27 and PRESETS["tiny-64"].fingerprint == 0xBC822145
    for p in PRESETS.values():
        assert not p.has_tern and "tern" not in p.canonical() and not set(TERN_FIELDS) & set(p.to_dict())


@pytest.mark.parametrize("name", sorted(HOST_PRESETS))
def test_dual_presets_fingerprint_is_crc_of_the_documented_string(name):
    p = get_preset(name)
    base = get_preset(name.removesuffix("-dual"))
    doc = (base.canonical() + f";tern_rows={p.tern_rows};tern_cols={p.tern_cols};tern_rows_active={p.tern_rows_active};"
           f"tern_n_macros={p.tern_n_macros};tern_refresh_cycles={p.tern_refresh_cycles}")
    assert p.has_tern and p.canonical() == doc and p.fingerprint == zlib.crc32(doc.encode())
    assert preset_by_fingerprint(p.fingerprint) is p and p.fingerprint != base.fingerprint
    assert HardwarePreset.from_dict(p.to_dict()) == p


def test_documented_dual_preset_values():
    p = get_preset("sun-mars-256-dual")
    assert (p.tern_rows, p.tern_cols, p.tern_rows_active, p.tern_n_macros, p.tern_refresh_cycles) == (256, 512, 64, 4, 16384)
    assert (p.tern_blocks_per_macro, p.tern_filters_per_macro) == (4, 256)
    t = get_preset("tiny-64-dual")
    assert (t.tern_rows, t.tern_cols, t.tern_rows_active, t.tern_n_macros, t.tern_refresh_cycles) == (64, 32, 16, 2, 256)


@pytest.mark.parametrize("kw, field", [
    (dict(tern_rows=256), "tern_cols"),                       # partly given
    (dict(tern_rows=96, tern_cols=64, tern_rows_active=32, tern_n_macros=1, tern_refresh_cycles=64), "tern_rows"),
    (dict(tern_rows=64, tern_cols=64, tern_rows_active=128, tern_n_macros=1, tern_refresh_cycles=64), "tern_rows_active"),
    (dict(tern_rows=64, tern_cols=1, tern_rows_active=16, tern_n_macros=1, tern_refresh_cycles=64), "tern_cols"),
    (dict(tern_rows=64, tern_cols=64, tern_rows_active=16, tern_n_macros=3, tern_refresh_cycles=64), "tern_n_macros"),
    (dict(tern_rows=64, tern_cols=64, tern_rows_active=16, tern_n_macros=2, tern_refresh_cycles=100), "tern_refresh_cycles"),
    (dict(tern_rows=16, tern_cols=64, tern_rows_active=32, tern_n_macros=2, tern_refresh_cycles=64), "tern_rows"),
])
def test_invalid_second_macro_fields_are_refused_naming_the_field(kw, field):
    with pytest.raises(PresetError, match=field):
        HardwarePreset("x", **kw)


def test_unknown_preset_names_both_registries():
    with pytest.raises(PresetError, match="tiny-64-dual"):
        get_preset("nope")


_pow2 = lambda lo, hi: st.integers(lo, hi).map(lambda e: 1 << e)


@settings(max_examples=200, deadline=None)
@given(rows_active=_pow2(3, 6), extra=st.integers(0, 9), cols=_pow2(1, 15), macros=_pow2(0, 10), period=_pow2(0, 31))
def test_header_bytes_round_trip(rows_active, extra, cols, macros, period):
    rows = min(rows_active << extra, 1 << 15)
    p = HardwarePreset("h", tern_rows=rows, tern_cols=cols, tern_rows_active=rows_active, tern_n_macros=macros,
                       tern_refresh_cycles=period)
    raw = tern_header_bytes(p)
    assert raw[2] & 0x80 and tern_header_ok(*raw)
    assert HardwarePreset("h", **tern_from_header(*raw)) == p


def test_header_bytes_hand_encoded():
    # sun-mars-256-dual: log2 256 = 8, log2 512 = 9 -> 0x98; (log2 64 - 3) = 3 | log2 4 << 2 = 8 -> 0x0b;
    # log2 16384 = 14 | 0x80 -> 0x8e
    assert tern_header_bytes(get_preset("sun-mars-256-dual")) == bytes((0x98, 0x0B, 0x8E))
    assert tern_header_bytes(get_preset("tiny-64")) == b"\0\0\0"
    assert not tern_header_ok(0, 0, 1) and not tern_header_ok(0x98, 0x4B, 0x8F) and not tern_header_ok(0x98, 0x0B, 0xAF)


@pytest.mark.parametrize("cost", ["dcim-28nm", "dcim-65nm"])
def test_refresh_period_is_inside_the_cost_presets_retention_time(cost):
    """§10.1: every named preset's refresh period, at the cost preset's clock, is within the cell's retention."""
    from hybridcim.cost import load_cost_preset
    c = load_cost_preset(cost)
    assert c["macro2_retention_us"] == 200 and c["macro2_area_mm2_per_kb"] < c["macro_area_mm2_per_kb"]
    for p in HOST_PRESETS.values():
        assert p.tern_refresh_cycles / c["clock_mhz"] <= c["macro2_retention_us"], (p.name, cost)
