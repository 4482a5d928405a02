"""Energy of hybrid mode (architecture.md §9): analog reads, ADC conversions, skipped reads and the
saliency unit, priced in dcim-65nm; a digital preset refuses them; digital mode is unchanged."""
import dataclasses

import numpy as np
import pytest

from hybridcim.cost import CostError, cost, layer_cost, load_cost_preset, sensitivity
from hybridcim.emulator import ReferenceEmulator
from hybridcim.program.builder import ProgramBuilder, make_hybrid
from hybridcim.program.hybrid import HybridParams
from hybridcim.spec import get_preset

P65 = load_cost_preset("dcim-65nm")
HYBRID_PARAMS = ("analog_column_read_pj", "adc_conversion_pj", "skipped_bitplane_pj", "saliency_pj_per_row")


def one_conv(weights_rows=64):
    """A 1x1 conv over 64 channels of 4-bit input, 2 filters of 4 bits (sun-mars-256: one row block)."""
    b = ProgramBuilder(get_preset("sun-mars-256"), name="hyb-energy")
    x = b.input("x", channels=weights_rows, height=2, width=2, bits=4, exponent=0)
    w = np.random.default_rng(0).integers(-8, 8, (2, weights_rows, 1, 1))
    b.conv("c", x, w, precision=[4, 4], shift=[4, 4], out_bits=8)
    return b.build()


def counters_of(program, images):
    return ReferenceEmulator(program).run(images).counters


@pytest.fixture(scope="module")
def runs():
    p = one_conv()
    imgs = np.random.default_rng(1).integers(0, 16, (2, 64, 2, 2), dtype=np.uint8)
    table = {"digital": None, "static_digital": HybridParams.static(15, sal_planes=2),
             "all_digital_hybrid": HybridParams((15, 15), (15, 15), (40,), sal_planes=2),
             "all_analog": HybridParams.static(0, sal_planes=2), "all_skipped": HybridParams.static(0, 0, sal_planes=2)}
    out = {}
    for k, hp in table.items():
        q = p if hp is None else make_hybrid(p, hp)
        out[k] = (q, counters_of(q, imgs))
    return out


def test_digital_mode_has_no_hybrid_energy(runs):
    p, cs = runs["digital"]
    c = cost(p, cs, P65)
    for k in ("analog_column_read", "adc_conversion", "skipped_bitplane", "saliency"):
        assert c.energy_by_kind[k] == 0.0


def test_static_all_digital_costs_exactly_digital(runs):
    (p, d), (q, h) = runs["digital"], runs["static_digital"]
    assert sum(c.saliency_ops for c in h) > 0  # counted (§9.7) but a one-level table decides nothing: not priced
    assert cost(q, h, P65).energy_pj == pytest.approx(cost(p, d, P65).energy_pj)


def test_all_digital_hybrid_costs_digital_plus_saliency(runs):
    (p, d), (q, h) = runs["digital"], runs["all_digital_hybrid"]
    cd, ch = cost(p, d, P65), cost(q, h, P65)
    sal = sum(c.saliency_ops for c in h) * q.preset.rows_active * P65["saliency_pj_per_row"]
    assert sal > 0
    assert ch.energy_by_kind["saliency"] == pytest.approx(sal)
    assert ch.energy_pj == pytest.approx(cd.energy_pj + sal)


def test_analog_reads_skip_the_adder_tree_and_pay_the_adc(runs):
    (p, d), (q, a) = runs["digital"], runs["all_analog"]
    cd, ca = cost(p, d, P65), cost(q, a, P65)
    reads = sum(c.digital_column_reads for c in d)
    assert sum(c.analog_column_reads for c in a) == reads and sum(c.digital_column_reads for c in a) == 0
    assert ca.energy_by_kind["adder_tree"] == 0.0
    assert ca.energy_by_kind["shift_add"] == pytest.approx(cd.energy_by_kind["shift_add"])  # codes re-enter the shift-add
    assert ca.energy_by_kind["analog_column_read"] == pytest.approx(reads * P65["analog_column_read_pj"])
    assert ca.energy_by_kind["adc_conversion"] == pytest.approx(reads * P65["adc_conversion_pj"])  # 5-bit ADC: ×1
    for k in ("rowblock", "input_lines", "accumulate", "requant", "act_buffer", "dram_weights"):
        assert ca.energy_by_kind[k] == pytest.approx(cd.energy_by_kind[k]), k


def test_skipped_reads_pay_neither_tree_nor_shift_add_nor_adc(runs):
    (p, d), (q, s) = runs["digital"], runs["all_skipped"]
    cs = cost(q, s, P65)
    assert sum(c.skipped_bitplanes for c in s) == sum(c.digital_column_reads for c in d) > 0
    for k in ("adder_tree", "shift_add", "analog_column_read", "adc_conversion", "skipped_bitplane"):
        assert cs.energy_by_kind[k] == 0.0, k
    assert cs.energy_macro_pj < cost(p, d, P65).energy_macro_pj


def test_mixed_layer_prices_the_digital_share_of_the_adder_tree(runs):
    q, h = runs["all_digital_hybrid"]
    c = h[0]
    n = c.digital_column_reads
    mixed = dataclasses.replace(c, digital_column_reads=n // 4, analog_column_reads=n // 4, adc_conversions=n // 4,
                                skipped_bitplanes=n - n // 2)
    full, part = layer_cost(q.layers[0], c, q, P65), layer_cost(q.layers[0], mixed, q, P65)
    assert part.energy_pj["adder_tree"] == pytest.approx(full.energy_pj["adder_tree"] * (n // 4) / n)
    assert part.energy_pj["shift_add"] == pytest.approx(full.energy_pj["shift_add"] * (2 * (n // 4)) / n)


def test_adc_energy_scales_with_adc_bits(runs):
    q, a = runs["all_analog"]
    wide = dataclasses.replace(q, preset=dataclasses.replace(q.preset, adc_bits=6))
    c5 = layer_cost(q.layers[0], a[0], q, P65).energy_pj["adc_conversion"]
    c6 = layer_cost(wide.layers[0], a[0], wide, P65).energy_pj["adc_conversion"]
    assert c6 == pytest.approx(2 * c5)


def test_digital_preset_refuses_hybrid_events(runs):
    q, a = runs["all_analog"]
    with pytest.raises(CostError, match="analog_column_reads=.*analog_column_read_pj"):
        cost(q, a, "dcim-28nm")
    q, h = runs["all_digital_hybrid"]
    with pytest.raises(CostError, match="saliency_ops=.*saliency_pj_per_row"):
        cost(q, h, "dcim-28nm")


def test_preset_has_cited_hybrid_energies():
    for name in HYBRID_PARAMS:
        assert P65[name] is not None, name
        assert P65.info[name].source.strip() and P65.info[name].seed is None  # independent of OSA-HCIM
    assert "ISCAS 2022" in P65.info["adc_conversion_pj"].source
    assert P65["saliency_pj_per_row"] == P65["adder_tree_pj_per_input"]
    for name in HYBRID_PARAMS:
        assert load_cost_preset("dcim-28nm")[name] is None  # a digital chip: refused, never priced as 0


def test_sensitivity_covers_the_hybrid_energies(runs):
    q, a = runs["all_analog"]
    rows = {r.param: r for r in sensitivity(q, a, P65)}
    for name in ("analog_column_read_pj", "adc_conversion_pj"):
        assert rows[name].energy_up > 0 > rows[name].energy_down, name
    assert rows["saliency_pj_per_row"].energy_up == 0  # a static table: no saliency unit
    assert "skipped_bitplane_pj" not in rows  # 0 in this preset: nothing to scale
    q, h = runs["all_digital_hybrid"]
    row = next(r for r in sensitivity(q, h, P65) if r.param == "saliency_pj_per_row")
    assert row.energy_up > 0 > row.energy_down
