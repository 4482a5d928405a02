"""The cost model: additive over layers and batches, pruning never raises energy, clear errors."""
import copy
import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hybridcim.cost import (EVENT_KINDS, MACRO_KINDS, CostError, activation_traffic, assume_input_ones, cost, layer_cost,
                            load_cost_preset, program_memory_bits, wordline_slots)
from hybridcim.emulator import FastEmulator, static_counters
from hybridcim.zoo import random_images, random_program, random_resnet20

PRESET = load_cost_preset("dcim-28nm")
HYP = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(program, images):
    return FastEmulator(program, backend="numpy").run(images).counters


@pytest.fixture(scope="module")
def resnet():
    """The zoo's random ResNet-20 (sun-mars-256) and its counters for two random images."""
    p = random_resnet20()
    return p, run(p, np.random.default_rng(1).integers(0, 256, (2, 3, 32, 32), dtype=np.uint8))


def close(a, b):
    return a == pytest.approx(b, rel=1e-9, abs=1e-9)


@HYP
@given(seed=st.integers(0, 10_000), n1=st.integers(1, 3), n2=st.integers(1, 3))
def test_additive_over_batches(seed, n1, n2):
    p = random_program(seed)
    imgs = random_images(p, n1 + n2, seed=seed)
    c1, c2 = run(p, imgs[:n1]), run(p, imgs[n1:])
    both = run(p, imgs)
    summed = [a + b for a, b in zip(c1, c2)]
    k1, k2, k12, ks = (cost(p, c, PRESET) for c in (c1, c2, both, summed))
    assert k12.images == n1 + n2
    for attr in ("energy_pj", "latency_ns", "cycles", "energy_macro_pj"):
        assert close(getattr(k12, attr), getattr(k1, attr) + getattr(k2, attr)), attr
        assert close(getattr(ks, attr), getattr(k12, attr)), attr
    for kind in EVENT_KINDS:
        assert close(k12.energy_by_kind[kind], k1.energy_by_kind[kind] + k2.energy_by_kind[kind]), kind
    assert close(k12.energy_uj_per_image * (n1 + n2), k1.energy_uj_per_image * n1 + k2.energy_uj_per_image * n2)


@HYP
@given(seed=st.integers(0, 10_000))
def test_additive_over_layers(seed):
    p = random_program(seed)
    cs = run(p, random_images(p, 2, seed=seed))
    total = cost(p, cs, PRESET)
    alone = [layer_cost(l, c, p, PRESET) for l, c in zip(p.layers, cs)]
    assert close(total.energy_pj, sum(l.energy_total_pj for l in alone))
    assert close(total.latency_ns, sum(l.latency_ns for l in alone))
    assert close(total.energy_pj, sum(total.energy_by_kind.values()))
    assert total.memory_bits == {k: sum(l.memory_bits[k] for l in alone) for k in total.memory_bits}


def prune_unit(program, li, g, b):
    """A copy of ``program`` whose layer ``li`` has unit (group g, row block b) removed from the skip index."""
    q = copy.deepcopy(program)
    layer = q.layers[li]
    idx = int(layer.present[:g].sum() + layer.present[g, :b].sum())  # units are stored in (g, b) order
    layer.present = layer.present.copy()
    layer.present[g, b] = False
    layer.words = np.delete(layer.words, idx, axis=0)
    return q


@HYP
@given(seed=st.integers(0, 10_000), pick=st.integers(0, 10**6))
def test_pruning_a_unit_never_raises_energy(seed, pick):
    p = random_program(seed)
    cands = [(li, g, b) for li, l in enumerate(p.layers) if l.op.is_cim for g, b in zip(*np.nonzero(l.present))]
    if not cands:
        return
    li, g, b = cands[pick % len(cands)]
    q = prune_unit(p, li, g, b)
    imgs = random_images(p, 2, seed=seed)
    cp, cq = run(p, imgs), run(q, imgs)
    # the pruned layer sees the same input: its own cost cannot rise, event by event
    lp, lq = layer_cost(p.layers[li], cp[li], p, PRESET), layer_cost(q.layers[li], cq[li], q, PRESET)
    for kind in EVENT_KINDS:
        assert lq.energy_pj[kind] <= lp.energy_pj[kind] + 1e-9, kind
    assert lq.latency_ns <= lp.latency_ns + 1e-9
    assert lq.memory_bits["weights"] < lp.memory_bits["weights"]
    # later layers see different activations (data-dependent input_ones); at a fixed 1-bit density the
    # whole program's energy cannot rise either
    fp, fq = assume_input_ones(p, cp, 0.5), assume_input_ones(q, cq, 0.5)
    assert cost(q, fq, PRESET).energy_pj <= cost(p, fp, PRESET).energy_pj + 1e-9


def test_input_ones_drive_data_dependent_energy(resnet):
    p, cs = resnet
    measured = cost(p, cs, PRESET)
    half = cost(p, assume_input_ones(p, cs, 0.5), PRESET)
    # ReLU activations are sparse in their bit planes: far fewer than ZigZag's assumed 50 % ones
    fr = [l.input_ones_fraction for l in measured.layers if l.input_ones_fraction is not None]
    assert all(0 <= f <= 1 for f in fr) and np.mean(fr) < 0.5
    assert measured.energy_by_kind["input_lines"] < half.energy_by_kind["input_lines"]
    for kind in set(EVENT_KINDS) - {"input_lines"}:
        assert close(measured.energy_by_kind[kind], half.energy_by_kind[kind]), kind
    full = assume_input_ones(p, cs, 1.0)
    for l, c in zip(p.layers, full):
        if l.op.is_cim:
            assert c.input_ones == wordline_slots(l, p) * c.pixels * c.images * p.tensors[l.in_tensor].bits


def test_weight_reloads_add_latency_and_macro_parallelism():
    p = random_resnet20(preset="tiny-64")
    cs = [static_counters(l, p, 1) for l in p.layers]
    c = cost(p, cs, PRESET)
    big = next(l for l, k in zip(p.layers, cs) if k.tiles > p.preset.n_macros)
    lc = next(x for x in c.layers if x.layer == big.name)
    k = next(x for x in cs if x.layer == big.name)
    assert lc.load_cycles == pytest.approx(k.weight_load_bits / (PRESET["macro_write_bits_per_cycle"] * p.preset.n_macros))
    assert lc.cycles == lc.compute_cycles + lc.load_cycles
    assert lc.latency_ns == pytest.approx(lc.cycles * 1e3 / PRESET["clock_mhz"] + lc.dram_ns)
    slower = cost(p, cs, PRESET.replace(macro_write_bits_per_cycle=PRESET["macro_write_bits_per_cycle"] / 2))
    assert slower.latency_ns > c.latency_ns


def _one_conv(packing: str, precision: int, pruned: int = 0):
    from hybridcim.program.builder import ProgramBuilder
    from hybridcim.spec.hardware import get_preset
    b = ProgramBuilder(get_preset("sun-mars-256"))
    x = b.input("x", 16, 8, 8, bits=4)
    f = 32
    prec = np.full(f, precision)
    prec[:pruned] = 0
    lim = 1 << (precision - 1)
    w = np.random.default_rng(0).integers(-lim, lim, size=(f, 16, 3, 3))
    w[:pruned] = 0
    b.conv("c", x, w, prec, np.zeros(f, dtype=np.int64), pad=1, packing=packing)
    return b.build()


def test_pairing_and_pruning_save_memory():
    naive, paired = program_memory_bits(_one_conv("naive", 4)), program_memory_bits(_one_conv("paired", 4))
    assert paired["weights"] * 2 == naive["weights"]  # two 4-bit filters share an 8-column group
    assert paired["index"] < naive["index"]
    pruned = program_memory_bits(_one_conv("paired", 4, pruned=8))
    assert pruned["weights"] * 4 == paired["weights"] * 3
    assert pruned["requant"] < paired["requant"]  # pruned filters keep no bias/shift


def test_area_and_per_image_figures(resnet):
    p, _ = resnet
    cs = [static_counters(l, p, 4) for l in p.layers]
    c = cost(p, assume_input_ones(p, cs, 0.5), "dcim-28nm")
    hw = p.preset
    assert c.area_mm2["macros"] == pytest.approx(hw.n_macros * hw.rows * hw.cols / 1024 * PRESET["macro_area_mm2_per_kb"])
    assert c.images == 4
    assert c.energy_uj_per_image == pytest.approx(c.energy_pj / 4 / 1e6)
    assert c.latency_us_per_image == pytest.approx(c.latency_ns / 4 / 1e3)
    assert c.tops_per_w == pytest.approx(c.ops / c.energy_pj)
    assert c.energy_macro_pj == pytest.approx(sum(c.energy_by_kind[k] for k in MACRO_KINDS))
    d = c.as_dict()
    assert d["latency_kind"] == "CIM chip latency" and d["cost_preset"] == "dcim-28nm"
    assert len(d["layers"]) == len(p.layers)
    assert "CIM chip latency" in c.summary()


def test_errors_name_the_problem():
    p = random_program(3)
    cs = run(p, random_images(p, 1))
    with pytest.raises(CostError, match="counter records"):
        cost(p, cs[:-1], PRESET)
    with pytest.raises(CostError, match="counters are for layer"):
        cost(p, list(reversed(cs)), PRESET) if len(cs) > 1 else layer_cost(p.layers[0], dataclasses.replace(cs[0], layer="x"), p, PRESET)
    ci = next(i for i, l in enumerate(p.layers) if l.op.is_cim)
    bad = list(cs)
    bad[ci] = dataclasses.replace(cs[ci], adc_conversions=5)
    with pytest.raises(CostError, match="adc_conversions=5.*adc_conversion_pj"):
        cost(p, bad, PRESET)
    # priced at 5 bits, scaled by 2^(adc_bits - 5) (tiny-64 has a 4-bit ADC)
    assert cost(p, bad, PRESET.replace(adc_conversion_pj=2.0)).energy_by_kind["adc_conversion"] == \
        10.0 * 2.0 ** (p.preset.adc_bits - 5)

    class Old:  # counters from an executor that predates the cost counters
        def __init__(self, c):
            self.__dict__.update({k: v for k, v in dataclasses.asdict(c).items() if k != "input_ones"})
    with pytest.raises(CostError, match="no 'input_ones'"):
        layer_cost(p.layers[ci], Old(cs[ci]), p, PRESET)


def test_sensitivity_rows(resnet):
    from hybridcim.cost import sensitivity, sensitivity_markdown
    p, cs = resnet
    rows = sensitivity(p, cs, PRESET)
    assert {r.param for r in rows} == {k for k, v in PRESET.values.items() if v}
    by = {r.param: r for r in rows}
    # the clock only moves time (and leakage energy); the macro area only area; a datapath constant
    # moves datapath energy and never latency
    assert by["clock_mhz"].area_up == 0 and by["clock_mhz"].latency_up < -0.3
    assert by["macro_area_mm2_per_kb"].energy_up == 0 and by["macro_area_mm2_per_kb"].area_up > 0
    assert by["adder_tree_pj_per_input"].latency_up == 0 and by["adder_tree_pj_per_input"].macro_up > 0
    assert by["dram_pj_per_byte"].macro_up == 0
    assert rows == sorted(rows, key=lambda r: -r.max_abs)
    table = sensitivity_markdown(rows)
    assert table.count("\n") == len(rows) + 2 and "`clock_mhz`" in table


# ---------------------------------------------------------------- activations on chip


def _fit_program(res: bool = False):
    """conv c1: 16×8×8 4-bit input -> 32 filters 3×3 pad 1 (4-bit, 8×8 output); with ``res`` a
    second conv c2 (32 -> 32) adds c1's output as its residual."""
    from hybridcim.program.builder import ProgramBuilder
    from hybridcim.spec.hardware import get_preset
    rng = np.random.default_rng(0)
    b = ProgramBuilder(get_preset("sun-mars-256"))
    x = b.input("x", 16, 8, 8, bits=4)
    y = b.conv("c1", x, rng.integers(-8, 8, size=(32, 16, 3, 3)), np.full(32, 4), np.zeros(32, dtype=np.int64), pad=1)
    if res:
        b.conv("c2", y, rng.integers(-8, 8, size=(32, 32, 3, 3)), np.full(32, 4), np.zeros(32, dtype=np.int64),
               pad=1, res=y, res_shift=np.zeros(32, dtype=np.int64))
    return b.build()


def test_activations_that_fit_stay_on_chip_hand_computed():
    p = _fit_program()
    cs = [static_counters(l, p, 3) for l in p.layers]
    dram_pj, buf_pj = PRESET["dram_pj_per_byte"], PRESET["act_buffer_pj_per_bit"]
    # per image: input 16·8·8·4 bits = 512 B, output 32·8·8·4 bits = 1024 B; one tile, one round: no partial sums
    act = 512 + 1024
    assert activation_traffic(p.layers[0], p) == (act, 8 * act)
    # tables 7·32 + 4·16 groups·8 columns + ⌈16·3 / 8⌉ = 742 B, weights 48 units × 8 × 64 bits = 3072 B
    weights = 742 + 3072
    assert cs[0].dram_bytes == 3 * (weights + act)
    fits = layer_cost(p.layers[0], cs[0], p, PRESET.replace(act_buffer_kib=act * 8 / 8192))  # exactly full
    assert fits.activations_on_chip and fits.act_working_set_bits == 8 * act
    assert fits.energy_pj["dram_activations"] == 0
    assert close(fits.energy_pj["act_onchip"], 3 * act * 8 * buf_pj)
    assert close(fits.energy_pj["dram_weights"], 3 * weights * dram_pj)
    assert fits.dram_bytes == 3 * weights
    assert close(fits.dram_ns, 3 * weights / PRESET["dram_gbytes_per_s"])
    spills = layer_cost(p.layers[0], cs[0], p, PRESET.replace(act_buffer_kib=act * 8 / 8192 - 0.01))
    assert not spills.activations_on_chip
    assert close(spills.energy_pj["dram_activations"], 3 * act * dram_pj)
    assert spills.energy_pj["act_onchip"] == 0
    assert close(spills.energy_pj["dram_weights"], 3 * weights * dram_pj)
    assert spills.dram_bytes == cs[0].dram_bytes
    assert spills.energy_total_pj > fits.energy_total_pj and spills.latency_ns > fits.latency_ns


def test_residual_and_partial_sums_join_the_working_set():
    p = _fit_program(res=True)
    # c2: input, residual and output 32·8·8·4 bits = 1024 B each
    assert activation_traffic(p.layers[1], p) == (3 * 1024, 8 * 3 * 1024)
    from hybridcim.program.builder import ProgramBuilder
    from hybridcim.spec.hardware import get_preset
    b = ProgramBuilder(get_preset("sun-mars-256"))
    x = b.input("x", 128, 3, 3, bits=4)
    b.conv("big", x, np.random.default_rng(1).integers(-8, 8, size=(32, 128, 3, 3)), np.full(32, 4),
           np.zeros(32, dtype=np.int64))
    q = b.build()
    c = static_counters(q.layers[0], q, 2)
    assert c.tiles == 5  # K = 1152 rows: 18 row blocks, 5 row tiles of 4 on 4 macros: 2 rounds
    # input 128·3·3·4 bits = 576 B, output 32·1·1·4 bits = 16 B; partial sums 1 pixel × 32 filters × 4 B = 128 B,
    # written after round 1 and read back in round 2; the working set holds one round's
    assert activation_traffic(q.layers[0], q) == (576 + 16 + 2 * 128, 8 * (576 + 16 + 128))
    lc = layer_cost(q.layers[0], c, q, PRESET.replace(act_buffer_kib=0))
    assert close(lc.energy_pj["dram_activations"], 2 * (576 + 16 + 256) * PRESET["dram_pj_per_byte"])


@HYP
@given(seed=st.integers(0, 10_000), a=st.floats(0, 64), b=st.floats(0, 64))
def test_a_larger_buffer_never_raises_energy_or_latency(seed, a, b):
    p = random_program(seed)
    cs = run(p, random_images(p, 2, seed=seed))
    small, big = (cost(p, cs, PRESET.replace(act_buffer_kib=v)) for v in sorted((a, b)))
    assert big.energy_pj <= small.energy_pj + 1e-9
    assert big.latency_ns <= small.latency_ns + 1e-9
    assert big.energy_by_kind["dram_activations"] <= small.energy_by_kind["dram_activations"] + 1e-9
    # weights and tables come from DRAM whatever the buffer; everything else on chip is unchanged
    for kind in set(EVENT_KINDS) - {"dram_activations", "act_onchip", "leakage"}:
        assert close(big.energy_by_kind[kind], small.energy_by_kind[kind]), kind


@HYP
@given(seed=st.integers(0, 10_000))
def test_no_buffer_is_the_counters_dram_and_a_large_one_keeps_every_activation(seed):
    p = random_program(seed)
    cs = run(p, random_images(p, 2, seed=seed))
    none = cost(p, cs, PRESET.replace(act_buffer_kib=0))
    assert close(none.energy_dram_pj, sum(c.dram_bytes for c in cs) * PRESET["dram_pj_per_byte"])
    assert none.energy_by_kind["act_onchip"] == 0 and not any(l.activations_on_chip for l in none.layers)
    huge = cost(p, cs, PRESET.replace(act_buffer_kib=1 << 20))
    assert huge.energy_by_kind["dram_activations"] == 0 and all(l.activations_on_chip for l in huge.layers)
    act = sum(activation_traffic(l, p)[0] * c.images for l, c in zip(p.layers, cs))
    assert close(huge.energy_by_kind["dram_weights"], (sum(c.dram_bytes for c in cs) - act) * PRESET["dram_pj_per_byte"])
    assert close(huge.energy_by_kind["act_onchip"], act * 8 * PRESET["act_buffer_pj_per_bit"])


def test_counters_with_too_few_dram_bytes_are_refused():
    p = _fit_program()
    c = static_counters(p.layers[0], p, 1)
    with pytest.raises(CostError, match="dram_bytes=100 is less than its activation traffic"):
        layer_cost(p.layers[0], dataclasses.replace(c, dram_bytes=100), p, PRESET)
