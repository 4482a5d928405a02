"""The working evaluator (dual-path programs ternarized from a shipped model) on real calibration images."""
import json

import numpy as np
import pytest

from hybridcim.search.evaluators import EvaluatorError, TernarizedDualEvaluator, ternarize


def test_ternarize_hand_example():
    w = np.array([[4, -3, 1, 0], [0, 0, 0, 0], [-8, 2, 2, 7]])
    t, alpha = ternarize(w)
    # filter 0: delta = 0.7 * 2 = 1.4 -> (1, -1, 0, 0), alpha = (4 + 3) / 2; filter 1: all zero, alpha 1
    # filter 2: delta = 0.7 * 4.75 = 3.325 -> (-1, 0, 0, 1), alpha = (8 + 7) / 2
    assert t.tolist() == [[1, -1, 0, 0], [0, 0, 0, 0], [-1, 0, 0, 1]]
    assert alpha.tolist() == [3.5, 1.0, 7.5]


@pytest.fixture(scope="module")
def ev(cifar10_root):
    return TernarizedDualEvaluator({"images": 4, "layers": ["s3b1_conv2", "fc"]}, str(cifar10_root))


def test_ratio_zero_is_the_shipped_program(ev):
    from hybridcim.cost import cost
    from hybridcim.emulator import FastEmulator
    r = ev.evaluate({"s3b1_conv2": 0, "fc": 0})
    base = FastEmulator(ev.base, "numpy").run(ev.images)
    assert r["accuracy"] == float((base.outputs.argmax(1) == ev.labels).mean())
    c = cost(ev.base, base.counters, ev.cost_preset)
    assert r["energy_uj"] == pytest.approx(c.energy_uj_per_image, rel=1e-12)
    assert r["latency_us"] == pytest.approx(c.latency_us_per_image, rel=1e-12)
    assert r["memory_kib"] == c.memory_total_bits / 8192


def test_dual_layer_program_and_objectives(ev):
    from hybridcim.program.dualpath import decode_ternary
    from hybridcim.program.weights import decode_weight_matrix
    p = ev.program({"s3b1_conv2": 4, "fc": 0})
    l = p.layer_by_name("s3b1_conv2")
    b = ev.base.layer_by_name("s3b1_conv2")
    assert l.flags == 1 and l.dual.ratio_eighths == 4 and p.layer_by_name("fc").flags == 0
    f0 = l.dual.first_tern(l.n_filters)
    assert f0 == l.n_filters // 2 and (l.precision[f0:] == 0).all() and (l.precision[:f0] == b.precision[:f0]).all()
    w = decode_weight_matrix(b.precision, b.col_filter, b.col_plane, b.present, b.words, b.k_rows, p.preset.rows_active)
    t = decode_ternary(l.tern_words, l.k_rows, p.preset.tern_rows_active)
    assert (t == ternarize(w)[0][f0:]).all()  # the ternary path holds the ternarized weights of its filters
    assert (l.bias[:f0] == b.bias[:f0]).all() and (l.shift[:f0] == b.shift[:f0]).all()  # INT4 path untouched
    r0 = ev.evaluate({"s3b1_conv2": 0, "fc": 0})
    r = ev.evaluate({"s3b1_conv2": 4, "fc": 0})
    assert set(r) == {"accuracy", "energy_uj", "memory_kib", "latency_us"} and 0.0 <= r["accuracy"] <= 1.0
    assert r["memory_kib"] != r0["memory_kib"] and r["latency_us"] < r0["latency_us"]


def test_bad_options(cifar10_root):
    with pytest.raises(EvaluatorError, match="unknown option 'imgs'"):
        TernarizedDualEvaluator({"imgs": 4}, str(cifar10_root))
    with pytest.raises(EvaluatorError, match="'sun-mars-256' has no second macro type"):
        TernarizedDualEvaluator({"preset": "sun-mars-256"}, str(cifar10_root))
    with pytest.raises(EvaluatorError, match="'nope' is not a conv/fc layer"):
        TernarizedDualEvaluator({"layers": ["nope"], "images": 1}, str(cifar10_root))
    with pytest.raises(EvaluatorError, match="'images' must be an integer 1..5000"):
        TernarizedDualEvaluator({"images": 0}, str(cifar10_root))


@pytest.mark.slow
def test_cli_search_with_the_working_evaluator(tmp_path, cifar10_root, capsys):
    from search_support import run_main
    from hybridcim.search.pareto import read_front_csv
    cfg = {"name": "dual", "evaluator": {"kind": "dual-ternarized", "options": {"images": 8}},
           "space": {"ratios": [0, 4, 8], "fixed": {"stem": 0, "fc": 0}}, "trials": 4,
           "sampler": {"population_size": 4, "seed": 0}, "baselines": [{"name": "all INT4", "ratio": 0}]}
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    rc, out, err = run_main(capsys, tmp_path / "c.json", "--out", tmp_path / "o", "--data", cifar10_root)
    assert rc == 0, err
    rows = read_front_csv(tmp_path / "o" / "trials.csv")
    assert len(rows) == 4 and "untrained" in err
    assert set(rows[0]) >= {"accuracy", "energy_uj", "memory_kib", "latency_us", "q_s3b1_conv2"}
