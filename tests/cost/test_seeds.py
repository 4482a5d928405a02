"""The seeds' comparison baselines (naive packing, dense 8-bit counterpart) and the seeds table."""
import numpy as np
import pytest

from hybridcim.cost.seeds import dense_counterpart, repack
from hybridcim.emulator import FastEmulator
from hybridcim.emulator.counters import static_counters
from hybridcim.models import MODELS_DIR
from hybridcim.program import read_program
from hybridcim.zoo import random_images, random_program

QUICK = MODELS_DIR / "resnet8-w4a4-p50-quick" / "model.cim"


@pytest.fixture(scope="module")
def quick():
    return read_program(QUICK)


def _outputs(program, images):
    return FastEmulator(program, "numpy").run(images).outputs


def test_naive_repack_same_outputs_one_filter_per_group(quick):
    naive = repack(quick, "naive")
    imgs = random_images(quick, 3, seed=1)
    assert np.array_equal(_outputs(naive, imgs), _outputs(quick, imgs))
    for l, ln in zip(quick.layers, naive.layers):
        if l.op.is_cim:
            assert ln.n_groups == int((l.precision > 0).sum())
            assert np.array_equal(ln.precision, l.precision)
            # one filter per group: a group's used columns all belong to one filter
            for row in ln.col_filter:
                assert len(set(int(f) for f in row if f >= 0)) == 1
    paired_util = sum(static_counters(l, quick, 1).weight_bits for l in quick.layers)
    naive_util = sum(static_counters(l, naive, 1).weight_bits for l in naive.layers)
    assert paired_util == naive_util  # the same weight bits, only spread over more groups


def test_dense_counterpart_same_logits_all_8bit_all_units(quick):
    dense = dense_counterpart(quick)
    imgs = random_images(quick, 3, seed=2)
    assert np.array_equal(_outputs(dense, imgs), _outputs(quick, imgs))
    for l in dense.layers:
        if l.op.is_cim:
            assert (l.precision == 8).all() and l.present.all()
            c = static_counters(l, dense, 1)
            assert c.units_present == c.units_total
    cyc = lambda p: sum(static_counters(l, p, 1).cycles for l in p.layers)
    assert cyc(dense) >= cyc(quick)


def test_dense_counterpart_of_random_programs_is_exact():
    for seed in range(6):
        p = random_program(seed)
        imgs = random_images(p, 2, seed=seed)
        assert np.array_equal(_outputs(dense_counterpart(p), imgs), _outputs(p, imgs)), seed


def test_dense_counterpart_refuses_a_precision_outside_the_preset(quick):
    with pytest.raises(ValueError, match="not a precision"):
        dense_counterpart(quick, bits=6)


# ---------------------------------------------------------------- the seeds table

from hybridcim.cost import load_cost_preset, parse_cost_preset  # noqa: E402
from hybridcim.cost.seeds import (MARS_SOURCE, SUN_SOURCE, SeedRow, format_seeds, network_utilization,  # noqa: E402
                                  seed_comparisons)


@pytest.fixture(scope="module")
def table(quick):
    return seed_comparisons(quick, "dcim-28nm")


def _row(report, seed, start):
    return next(r for r in report.rows if r.seed == seed and r.quantity.startswith(start))


def test_rows_cover_the_seed_headlines(table):
    got = {(r.seed, r.paper_text) for r in table.rows}
    assert ("SUN", "792.2 GOPS") in got and ("SUN", "428.2 TOPS/mm2") in got
    assert ("MARS", "> 700 FPS") in got and any(s == "MARS" and "88.2" in t for s, t in got)
    for r in table.rows:
        assert np.isfinite(r.hybridcim) and r.hybridcim > 0, r
        assert (r.ratio is None) == (r.paper is None)
        assert r.assumptions and r.source
        if r.within_goal is False:
            assert r.explanation, f"a missed row must say why: {r.quantity}"
    assert "50%" in table.workload  # no images: the assumption is stated


def test_paired_beats_naive_and_compression_saves(table, quick):
    util = _row(table, "SUN", "macro utilization")
    assert util.hybridcim == pytest.approx(network_utilization(quick) / network_utilization(repack(quick, "naive")))
    assert util.hybridcim > 1 and not util.depends_on  # a pure mapping figure
    assert _row(table, "SUN", "speed-up").hybridcim >= 1
    assert _row(table, "SUN", "energy gain").hybridcim > 1


def test_a_constant_from_the_same_paper_makes_a_row_not_independent(quick):
    d = load_cost_preset("dcim-28nm").as_dict()
    d["params"]["clock_mhz"]["seed"] = "SUN"
    rep = seed_comparisons(quick, parse_cost_preset(d))
    gops = _row(rep, "SUN", "throughput")
    assert gops.from_seed == ("clock_mhz",) and not gops.independent
    assert gops.verdict.startswith("not independent (clock_mhz from SUN)")
    assert _row(rep, "MARS", "images/s").independent  # a SUN constant does not taint a MARS figure
    assert _row(rep, "SUN", "macro utilization").independent


def test_measured_counters_on_the_same_images(quick, cifar10_root):
    from hybridcim.data import Cifar10
    imgs = Cifar10(cifar10_root, "test").images(0, 3)
    rep = seed_comparisons(quick, "dcim-28nm", imgs)
    assert "measured by the fast emulator on 3" in rep.workload
    assert all("assumed" not in n for n in rep.notes[:1])


def test_lower_bound_and_tolerance():
    r = SeedRow("MARS", "images/s", "images/s", 700.0, "> 700 FPS", MARS_SOURCE, 1400.0, "a",
                paper_is_lower_bound=True)
    assert r.ratio == 2.0 and r.within_goal and r.verdict == "above the paper's lower bound (independent)"
    r2 = SeedRow("SUN", "GOPS", "GOPS", 792.2, "792.2 GOPS", SUN_SOURCE, 792.2 * 1.11, "a")
    assert r2.within_goal is False and r2.verdict == "missed (independent)"
    assert SeedRow("SUN", "x", "x", None, "n/a", "s", 2.0, "a").verdict == "no paper figure"
    r3 = SeedRow("SUN", "GOPS", "GOPS", 792.2, "792.2 GOPS", SUN_SOURCE, 792.2 * 0.95, "a")
    assert r3.within_goal and r3.verdict == "reproduced (independent)"


def test_markdown_table_names_the_sources(table):
    md = format_seeds(table)
    assert md.count(" | SUN | ") == 5 and md.count(" | MARS | ") == 2
    assert md.count("*Why it differs:*") == sum(r.within_goal is False for r in table.rows)
    assert "10.1109/TCAD.2021.3082107" in md and "000_2698e5a253e1fe85.txt" in md


def test_docs_seeds_table_is_current(cifar10_root):
    """docs/cost-model.md's seeds table is what `hybridcim report --seeds --limit 64` prints now."""
    from pathlib import Path

    from hybridcim.data import Cifar10
    docs = Path(__file__).resolve().parents[2] / "docs" / "cost-model.md"
    text = docs.read_text(encoding="utf-8")
    begin = "<!-- seeds-table: generated by `hybridcim report --seeds --limit 64`"
    assert begin in text and "<!-- seeds-table: end -->" in text
    block = text.split(begin, 1)[1].split("-->", 1)[1].split("<!-- seeds-table: end -->", 1)[0].strip()
    prog = read_program(MODELS_DIR / "resnet20-w4a4-p50" / "model.cim")
    want = format_seeds(seed_comparisons(prog, "dcim-28nm", Cifar10(cifar10_root, "test").images(0, 64))).strip()
    assert block == want, "docs/cost-model.md: the seeds table is stale; paste `hybridcim report --seeds --limit 64`"
