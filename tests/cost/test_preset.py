"""Cost presets: shipped files load, every constant has a source, bad files are refused naming the field."""
import copy
import json

import pytest
from hypothesis import given, settings, strategies as st

from hybridcim.cost import PARAMS, CostPresetError, list_cost_presets, load_cost_preset, parse_cost_preset

REQUIRED = [p.name for p in PARAMS if not p.reserved]
ALL = [p.name for p in PARAMS]


def base() -> dict:
    return load_cost_preset("dcim-28nm").as_dict()


def test_shipped_presets_load_with_sources():
    names = list_cost_presets()
    assert {"dcim-28nm", "dcim-65nm"} <= set(names)
    for n in names:
        p = load_cost_preset(n)
        assert p.name == n and p.version == 1
        for row in p.sources():
            assert row["source"].strip(), (n, row["name"])
            assert row["basis"] in ("published", "derived", "assumption")
        # the seed papers' figures are what the seeds table compares against: no constant may come from them
        assert p.seed_dependencies() == {}, n


def test_round_trip_and_path(tmp_path):
    d = base()
    assert parse_cost_preset(copy.deepcopy(d)).values == load_cost_preset("dcim-28nm").values
    f = tmp_path / "mine.json"
    f.write_text(json.dumps(d))
    assert load_cost_preset(str(f)).values == load_cost_preset("dcim-28nm").values


def test_unknown_preset_and_missing_file(tmp_path):
    with pytest.raises(CostPresetError, match="unknown cost preset 'nope'.*dcim-28nm"):
        load_cost_preset("nope")
    with pytest.raises(CostPresetError, match="does not exist"):
        load_cost_preset(str(tmp_path / "x.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(CostPresetError, match="not valid JSON"):
        load_cost_preset(str(bad))


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(REQUIRED),
       kind=st.sampled_from(["missing", "negative", "string", "bool", "null", "nan", "no_source", "bad_unit"]))
def test_bad_parameter_refused_naming_it(name, kind):
    d = base()
    e = d["params"][name]
    if kind == "missing":
        del d["params"][name]
    elif kind == "negative":
        e["value"] = -abs(e["value"]) - 1.0
    elif kind == "string":
        e["value"] = "12"
    elif kind == "bool":
        e["value"] = True
    elif kind == "null":
        e["value"] = None
    elif kind == "nan":
        e["value"] = float("nan")
    elif kind == "no_source":
        e["source"] = " "
    else:
        e["unit"] = "furlongs"
    with pytest.raises(CostPresetError, match=f"params\\.{name}\\b"):
        parse_cost_preset(d)


@pytest.mark.parametrize("field", ["format", "version", "name", "description", "technology_nm", "params"])
def test_missing_top_field(field):
    d = base()
    del d[field]
    with pytest.raises(CostPresetError, match=f"missing field '{field}'"):
        parse_cost_preset(d)


def test_unknown_fields_and_version():
    d = base()
    d["colour"] = "red"
    with pytest.raises(CostPresetError, match="unknown field 'colour'"):
        parse_cost_preset(d)
    d = base()
    d["params"]["flux_capacitor_pj"] = {"value": 1, "unit": "pJ", "basis": "assumption", "source": "x"}
    with pytest.raises(CostPresetError, match="params.flux_capacitor_pj"):
        parse_cost_preset(d)
    d = base()
    d["params"]["clock_mhz"]["colour"] = 1
    with pytest.raises(CostPresetError, match="params.clock_mhz.colour"):
        parse_cost_preset(d)
    d = base()
    d["version"] = 2
    with pytest.raises(CostPresetError, match="version 2 is not supported"):
        parse_cost_preset(d)
    d = base()
    d["params"]["clock_mhz"]["seed"] = "AlexNet"
    with pytest.raises(CostPresetError, match="params.clock_mhz.seed"):
        parse_cost_preset(d)


def test_zero_divisor_refused_and_reserved_null_allowed():
    d = base()
    d["params"]["clock_mhz"]["value"] = 0
    with pytest.raises(CostPresetError, match="params.clock_mhz.value must be > 0"):
        parse_cost_preset(d)
    p = parse_cost_preset(base())
    assert p["adc_conversion_pj"] is None
    assert p.replace(adc_conversion_pj=0.5)["adc_conversion_pj"] == 0.5
    with pytest.raises(CostPresetError, match="params.shift_add_pj.value must be >= 0"):
        p.replace(shift_add_pj=-1)
