"""The cost of dual-path layers (architecture.md §10; docs/cost-model.md, "Dual-path layers"): hand-computed
costs from the reference emulator's counters, ratio 0 == the plain digital layer, monotonic behaviour in the
ratio, refusals, and the shipped programs' figures pinned."""
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hybridcim.cost import EVENT_KINDS, MACRO2_PARAMS, CostError, assume_input_ones, cost, load_cost_preset
from hybridcim.cost.dualpath import TERN_KINDS, path_cycles
from hybridcim.emulator.counters import static_counters
from hybridcim.emulator.reference import ReferenceEmulator
from hybridcim.models import MODELS_DIR
from hybridcim.program import read_program
from hybridcim.program.builder import ProgramBuilder
from hybridcim.program.dualpath import DualPathParams
from hybridcim.spec import get_preset
from hybridcim.spec.hardware import HardwarePreset

P28 = load_cost_preset("dcim-28nm")
DUAL = get_preset("tiny-64-dual")
REFRESH = HardwarePreset("refresh-test", rows=64, cols=64, rows_active=16, n_macros=2, adc_bits=4, tern_rows=64,
                         tern_cols=4, tern_rows_active=16, tern_n_macros=2, tern_refresh_cycles=2)


def _fc(preset, x_bits, w, prec, shift, bias, dual):
    b = ProgramBuilder(preset, name="hand")
    x = b.input("image", w.shape[1], 1, 1, bits=x_bits)
    b.fc("fc", x, w.reshape(w.shape[0], w.shape[1], 1, 1), prec, shift, bias=bias, out_bits=8, dual=dual)
    return b.build()


def _conv(q, w, preset=DUAL, dual=True):
    """A 3x3 conv of 4-bit filters whose last floor(F*q/8) filters are ternary (clipped to -1..1); with
    dual=False the same weights as a plain digital layer (those filters at 2 bits)."""
    f = len(w)
    f_t = f * q // 8
    w = w.copy()
    w[f - f_t:] = np.clip(w[f - f_t:], -1, 1)
    b = ProgramBuilder(preset, name=f"conv-q{q}")
    x = b.input("image", w.shape[1], 5, 5, bits=4)
    b.conv("c", x, w, [4] * (f - f_t) + [0 if dual else 2] * f_t, [3] * f, bias=np.arange(f) - 2, pad=1, stride=1,
           dual=DualPathParams(q, 8) if dual else None)
    return b.build()


def test_hand_computed_example_of_the_spec():
    """architecture.md §10.2's example: F = 2, q = 4, one INT4 and one ternary filter, K = 4."""
    w = np.array([[1, -2, 3, 7], [-1, 1, 1, 1]])
    p = _fc(DUAL, 4, w, [4, 0], [2, 0], [5, -1], DualPathParams(4, 8))
    k = ReferenceEmulator(p).run(np.array([3, 9, 0, 15], np.uint8).reshape(1, 4, 1, 1)).counters
    c = cost(p, k, P28)
    lc = c.layers[0]
    e = lc.energy_pj
    # ternary path: 2 cells x 4 rows = 8 bit ops, one accumulator update (1 filter x 1 block x 1 pixel),
    # 2 x 1 x 1 x 16 = 32 cells written, no refresh (1 busy cycle < 256)
    assert e["macro2"] == 8 * 0.0017875
    assert e["tern_accumulate"] == 1 * P28["accumulate_pj"]
    assert e["tern_weight_load"] == 32 * P28["weight_write_pj_per_bit"]
    assert e["edram_refresh"] == 0
    # paths in parallel: SRAM 4 planes x 1 block = 4 cycles + 128 cells / 128 bits per cycle = 5;
    # ternary 1 cycle + 32 / 128 = 1.25; the layer takes the SRAM path's 5 cycles
    assert (lc.sram_path_cycles, lc.tern_path_cycles, lc.critical_path) == (5.0, 1.25, "sram")
    assert (lc.compute_cycles, lc.load_cycles) == (4.0, 1.0)
    assert lc.latency_ns == pytest.approx(5 * 1e3 / 200 + lc.dram_bytes / 12.8, rel=1e-12)
    # leakage: 2 SRAM macros x 10 uW + 100 uW periphery + 2 ternary macros x 10 uW x (64x32)/(64x64) cells
    assert e["leakage"] == pytest.approx((2 * 10 + 100 + 2 * 10 * 0.5) * lc.latency_ns * 1e-3, rel=1e-12)
    # memory: one 8-column group x 16 rows of SRAM cells; 2 x 1 filter x 1 block x 16 rows ternary cells
    assert c.memory_bits["weights"] == 128 and c.memory_bits["tern_weights"] == 32
    assert c.memory_area_mm2 == {"weights": 128 / 1024 * P28["macro_area_mm2_per_kb"],
                                 "tern_weights": 32 / 1024 * P28["macro2_area_mm2_per_kb"]}
    assert c.area_mm2["tern_macros"] == 2 * 64 * 32 / 1024 * P28["macro2_area_mm2_per_kb"]
    assert (lc.dual_ratio, lc.n_tern_filters) == (4, 1)
    assert lc.sram_utilization == 4 * 4 / 128 and lc.tern_utilization == 8 / 32  # K = 4 of 16 rows used
    assert c.macro_utilization == {"sram": 16 / 128, "ternary": 8 / 32}
    # requant table: both filters (the ternary one has SRAM precision 0 but its own bias and shift)
    assert c.memory_bits["requant"] == 2 * (32 + 6) + 64


def test_hand_computed_refresh_and_the_ternary_path_as_the_longer_one():
    """3 ternary filters, K = 40 on 2-filter ternary macros refreshed every 2 cycles (test_dualpath_reference):
    2 tiles x 48 rows refreshed once per image."""
    rng = np.random.default_rng(1)
    w = rng.integers(-1, 2, (3, 40))
    p = _fc(REFRESH, 4, w, [0, 0, 0], [0, 0, 0], [0, 0, 0], DualPathParams(8, 1))
    k = ReferenceEmulator(p).run(rng.integers(0, 16, (2, 40, 1, 1)).astype(np.uint8)).counters
    assert k[0].refresh_events == 192
    lc = cost(p, k, P28).layers[0]
    e = lc.energy_pj
    assert e["edram_refresh"] == 192 * 4 * P28["macro2_refresh_pj_per_bit"]  # one refresh rewrites tern_cols cells
    assert e["macro2"] == 2 * 3 * 40 * 2 * P28["macro2_bit_op_pj"]
    assert e["tern_accumulate"] == 3 * 3 * 2 * P28["accumulate_pj"]  # F_t x R_t x pixels x images
    assert e["tern_weight_load"] == 576 * P28["weight_write_pj_per_bit"]
    assert all(e[k] == 0 for k in ("rowblock", "input_lines", "adder_tree", "shift_add", "accumulate", "weight_load"))
    # SRAM path empty; ternary: 3 blocks x 2 images on each macro + 576 bits / (128 x 2 macros)
    assert (lc.sram_path_cycles, lc.tern_path_cycles, lc.critical_path) == (0.0, 6 + 2.25, "ternary")
    assert (lc.compute_cycles, lc.load_cycles) == (6.0, 2.25)


def _pair_costs(seed, q=0):
    rng = np.random.default_rng(seed)
    w = rng.integers(-8, 8, (6, 3, 3, 3))
    x = rng.integers(0, 16, (2, 3, 5, 5)).astype(np.uint8)
    dual, plain = _conv(q, w), _conv(q, w, dual=False)
    return dual, plain, ReferenceEmulator(dual).run(x).counters, ReferenceEmulator(plain).run(x).counters


@pytest.mark.parametrize("preset", ["dcim-28nm", "dcim-65nm"])
def test_ratio_zero_costs_exactly_the_plain_digital_layer(preset):
    dual, plain, kd, kp = _pair_costs(2)
    cd, cp = cost(dual, kd, preset), cost(plain, kp, preset)
    # the counters differ only by the 16-byte dual section each image reads (architecture.md §10.4);
    # given that, the cost is the plain layer's, exactly
    assert kd[0].dram_bytes == kp[0].dram_bytes + 16 * 2
    kp16 = [dataclasses.replace(kp[0], dram_bytes=kp[0].dram_bytes + 16 * 2)]
    c16 = cost(plain, kp16, preset)
    assert cd.layers[0].as_dict() == c16.layers[0].as_dict() | {"dual_ratio": 0}
    assert (cd.energy_pj, cd.latency_ns, cd.memory_bits, cd.area_mm2) == (c16.energy_pj, c16.latency_ns,
                                                                       c16.memory_bits, c16.area_mm2)
    # and without it: every event but the DRAM and time-dependent ones is equal
    for kind in set(EVENT_KINDS) - {"dram_weights", "leakage"}:
        assert cd.layers[0].energy_pj[kind] == cp.layers[0].energy_pj[kind], kind
    p = load_cost_preset(preset)
    assert cd.layers[0].energy_pj["dram_weights"] - cp.layers[0].energy_pj["dram_weights"] == \
        pytest.approx(32 * p["dram_pj_per_byte"], rel=1e-12)
    assert all(cd.layers[0].energy_pj[k] == 0 for k in TERN_KINDS) and cd.memory_bits["tern_weights"] == 0


SRAM_PATH = ("rowblock", "input_lines", "adder_tree", "shift_add", "accumulate", "weight_load")


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), f=st.integers(3, 20))
def test_monotonic_in_the_ratio(seed, f):
    """Moving filters to the ternary path never lowers a ternary-path energy, compute time or cell count, nor raises
    an SRAM-path one. (A path's weight-load time is not monotonic: one more tile spreads the writes over one more
    macro, so the path's total may drop by a fraction of a cycle per bit written.)"""
    rng = np.random.default_rng(seed)
    w = rng.integers(-8, 8, (f, 2, 3, 3))
    x = rng.integers(0, 16, (1, 2, 5, 5)).astype(np.uint8)
    prev = None
    for q in range(9):
        p = _conv(q, w)
        k = ReferenceEmulator(p).run(x).counters
        c = cost(p, k, P28)
        lc = c.layers[0]
        paths = path_cycles(p.layers[0], k[0], p, P28)
        assert (paths.sram, paths.tern) == (lc.sram_path_cycles, lc.tern_path_cycles)
        now = {"tern": {k: lc.energy_pj[k] for k in TERN_KINDS}, "sram": {k: lc.energy_pj[k] for k in SRAM_PATH},
               "tern_cycles": paths.tern_compute, "sram_cycles": paths.sram_compute,
               "tern_bits": c.memory_bits["tern_weights"], "sram_bits": c.memory_bits["weights"]}
        if prev is not None:
            assert all(now["tern"][k] >= prev["tern"][k] for k in TERN_KINDS), (q, now, prev)
            assert all(now["sram"][k] <= prev["sram"][k] for k in SRAM_PATH), (q, now, prev)
            assert now["tern_cycles"] >= prev["tern_cycles"] and now["sram_cycles"] <= prev["sram_cycles"]
            assert now["tern_bits"] >= prev["tern_bits"] and now["sram_bits"] <= prev["sram_bits"]
            assert lc.cycles == max(lc.sram_path_cycles, lc.tern_path_cycles)
        prev = now


def test_additive_over_images():
    dual, _, kd, _ = _pair_costs(5, q=4)
    rng = np.random.default_rng(5)
    x = rng.integers(0, 16, (3, 3, 5, 5)).astype(np.uint8)
    emu = ReferenceEmulator(dual)
    a, b, both = emu.run(x[:1]).counters, emu.run(x[1:]).counters, emu.run(x).counters
    ca, cb, cab = cost(dual, a, P28), cost(dual, b, P28), cost(dual, both, P28)
    for kind in EVENT_KINDS:
        assert ca.energy_by_kind[kind] + cb.energy_by_kind[kind] == pytest.approx(cab.energy_by_kind[kind], rel=1e-12)
    assert ca.latency_ns + cb.latency_ns == pytest.approx(cab.latency_ns, rel=1e-12)


@pytest.mark.parametrize("missing", MACRO2_PARAMS)
def test_a_cost_preset_without_the_second_macro_type_refuses_a_dual_program(missing):
    dual, _, kd, _ = _pair_costs(3)  # ratio 0: refused all the same, the chip has the ternary macros
    with pytest.raises(CostError, match=f"{missing}.*second macro type"):
        cost(dual, kd, P28.replace(**{missing: None}))


def test_a_refresh_period_beyond_the_retention_time_is_refused():
    slow = dataclasses.replace(DUAL, name="slow-refresh", tern_refresh_cycles=1 << 16)  # 328 us at 200 MHz
    p = _fc(slow, 4, np.array([[1, 1, 1, 1]]), [0], [0], [0], DualPathParams(8, 1))
    k = ReferenceEmulator(p).run(np.zeros((1, 4, 1, 1), np.uint8)).counters
    with pytest.raises(CostError, match="tern_refresh_cycles=65536.*macro2_retention_us=200"):
        cost(p, k, P28)


def test_counters_that_do_not_match_the_two_paths_are_refused():
    dual, _, kd, _ = _pair_costs(4, q=8)
    bad = [dataclasses.replace(kd[0], cycles=kd[0].cycles + 1)]
    with pytest.raises(CostError, match="not max"):
        cost(dual, bad, P28)


SHIPPED_FIGURES = Path(__file__).parent / "fixtures" / "shipped_cost_figures.json"


def test_shipped_programs_cost_what_they_cost_before_dual_path_pricing():
    """Energy, latency, memory and area of every shipped program (static counters, 50 % ones) as recorded
    before the ternary path was priced: pricing it must not move a program without dual-path layers."""
    want = json.loads(SHIPPED_FIGURES.read_text())
    assert {"resnet20-w4a4-p50/model.cim:dcim-28nm", "resnet20-w4a4-p50/model.cim:dcim-65nm"} <= set(want)
    for key, fig in want.items():
        path, preset = key.split(":")
        prog = read_program(MODELS_DIR / path)
        counters = assume_input_ones(prog, [static_counters(l, prog, 1) for l in prog.layers], 0.5)
        if isinstance(fig, str):  # a refusal (no hybrid prices in dcim-28nm) stays a refusal
            with pytest.raises(CostError):
                cost(prog, counters, preset)
            continue
        c = cost(prog, counters, preset)
        got = {"energy_pj": c.energy_pj, "latency_ns": c.latency_ns, "memory_bits": c.memory_total_bits,
               "area_mm2": c.area_total_mm2, "by_kind": {k: v for k, v in c.energy_by_kind.items() if v}}
        assert got["memory_bits"] == fig["memory_bits"], key
        assert set(got["by_kind"]) == set(fig["by_kind"]), key
        for k in ("energy_pj", "latency_ns", "area_mm2"):
            assert got[k] == pytest.approx(fig[k], rel=1e-12), (key, k)
        for k, v in fig["by_kind"].items():
            assert got["by_kind"][k] == pytest.approx(v, rel=1e-12), (key, k)


SMALL_TERN = HardwarePreset("tiles-test", rows=64, cols=64, rows_active=16, n_macros=2, adc_bits=4, tern_rows=32,
                            tern_cols=4, tern_rows_active=8, tern_n_macros=1, tern_refresh_cycles=8)


@pytest.mark.parametrize("seed", range(4))
def test_dram_split_by_path_leaves_exactly_the_tables_and_weights(seed):
    """Small ternary macros give both paths several rounds: after the activation traffic (tensors and each path's
    partial sums) is split off, what crosses DRAM in a layer whose activations stay on chip is exactly its tables,
    SRAM weights, dual section and ternary weights (architecture.md §10.4)."""
    from hybridcim.emulator.counters import table_bytes
    from hybridcim.zoo.fuzz import random_dualpath_program, random_images
    p = random_dualpath_program(seed, SMALL_TERN, max_hw=6, max_channels=9)
    k = ReferenceEmulator(p).run(random_images(p, 2, seed)).counters
    c = cost(p, k, P28)
    checked = 0
    for l, lc, kc in zip(p.layers, c.layers, k):
        if not l.op.is_cim or not lc.activations_on_chip:
            continue
        want = table_bytes(l, p) * 2 + kc.weight_load_bits // 8 + kc.tern_weight_load_bits // 8
        want += 16 * 2 if l.dual is not None else 0
        assert lc.dram_bytes == want, l.name
        checked += l.dual is not None and l.dual.n_tern(l.n_filters) > 0
    assert checked or seed  # seed 0 has a dual layer with a ternary path
