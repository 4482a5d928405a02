"""Hardware presets: validation, closed configuration, fingerprint."""
import zlib

import pytest

from hybridcim.spec.hardware import PRESETS, HardwarePreset, PresetError, get_preset, preset_by_fingerprint
from hybridcim.spec.numformat import IntFormat


@pytest.mark.parametrize("name, fingerprint", [("sun-mars-256", 0x25DA3F27), ("tiny-64", 0xBC822145),
                                               ("wide-512", 0xB59C4C37)])
def test_presets_fingerprint_is_crc_of_the_documented_string(name, fingerprint):
    """architecture.md §1: CRC-32 of 'rows=R;cols=C;...;precisions=p1,p2,...', built here from the fields;
    the literal values are the ones the HLS preset headers were generated with."""
    p = get_preset(name)
    doc = (f"rows={p.rows};cols={p.cols};rows_active={p.rows_active};group_width={p.group_width};"
           f"n_macros={p.n_macros};acc_bits={p.acc_bits};adc_bits={p.adc_bits};"
           f"precisions={','.join(str(q) for q in p.precisions)}")
    assert p.fingerprint == zlib.crc32(doc.encode()) == fingerprint
    assert preset_by_fingerprint(p.fingerprint) is p
    assert HardwarePreset.from_dict(p.to_dict()) == p


def test_fingerprints_distinct():
    assert len({p.fingerprint for p in PRESETS.values()}) == len(PRESETS)


@pytest.mark.parametrize("kw", [dict(rows_active=48), dict(rows=100), dict(group_width=0), dict(cols=100),
                                dict(n_macros=0), dict(acc_bits=16), dict(precisions=(4, 2)),
                                dict(precisions=(2, 16)), dict(adc_bits=0)])
def test_invalid_presets_rejected(kw):
    with pytest.raises(PresetError):
        HardwarePreset("bad", **kw)


def test_unknown_keys_and_names_rejected():
    with pytest.raises(PresetError, match="unknown preset keys"):
        HardwarePreset.from_dict({"name": "x", "row": 256})
    with pytest.raises(PresetError, match="unknown preset"):
        get_preset("nope")


def test_intformat_ranges():
    assert (IntFormat(2, True).min, IntFormat(2, True).max) == (-2, 1)
    assert (IntFormat(8, False).min, IntFormat(8, False).max) == (0, 255)
    assert IntFormat(32, True).numpy_dtype.name == "int32"
