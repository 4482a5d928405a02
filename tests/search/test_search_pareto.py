"""Pareto front: dominance, the front of a hand-made set, and the CSV/plot a toy search writes."""
import csv

from search_support import run_main, toy_config

from hybridcim.search.pareto import dominates, pareto_front, read_front_csv

MAXMIN = ["maximize", "minimize"]


def test_dominates():
    assert dominates([0.9, 1.0], [0.8, 2.0], MAXMIN)
    assert dominates([0.9, 1.0], [0.9, 2.0], MAXMIN)
    assert not dominates([0.9, 1.0], [0.9, 1.0], MAXMIN)  # equal: neither dominates
    assert not dominates([0.9, 3.0], [0.8, 2.0], MAXMIN)  # a trade-off
    assert dominates([1.0, 1.0], [2.0, 2.0], ["minimize", "minimize"])


def test_front_of_a_hand_set():
    rows = [{"trial": i, "accuracy": a, "energy_uj": e} for i, (a, e) in
            enumerate([(0.9, 5.0), (0.8, 3.0), (0.85, 6.0), (0.7, 3.0), (0.9, 5.0), (0.5, 1.0)])]
    front = pareto_front(rows, ["accuracy", "energy_uj"], MAXMIN)
    assert [r["trial"] for r in front] == [0, 4, 1, 5]  # 2 is dominated by 0, 3 by 1; ties both kept


def _toy_energy(q):  # the toy evaluator's formulas (tests/search/toy_evaluator.py), 3 layers
    return 10.0 - sum(w * x for w, x in zip((1, 2, 3), q)) / 8.0


def _toy_accuracy(q):
    return 1.0 - sum(w * x * x for w, x in zip((1, 2, 3), q)) / (64.0 * 6)


def test_front_csv_content(tmp_path, capsys):
    out = tmp_path / "out"
    rc, text, err = run_main(capsys, toy_config(tmp_path, trials=12), "--out", out)
    assert rc == 0, err
    with open(out / "pareto.csv") as f:
        header = next(csv.reader(f))
    assert header == ["trial", "baseline", "accuracy", "energy_uj", "memory_kib", "q_L0", "q_L1", "q_L2"]
    front, trials = read_front_csv(out / "pareto.csv"), read_front_csv(out / "trials.csv")
    assert len(trials) == 12 and front
    for r in trials:  # every figure is the evaluator's for the ratios in its row
        q = [r["q_L0"], r["q_L1"], r["q_L2"]]
        assert all(x in (0, 4, 8) for x in q)
        assert r["accuracy"] == _toy_accuracy(q) and r["energy_uj"] == _toy_energy(q)
    key = lambda r: (r["trial"], r["accuracy"], r["energy_uj"])
    assert {key(r) for r in front} <= {key(r) for r in trials}
    vec = lambda r: [r["accuracy"], r["energy_uj"]]
    for f in front:  # nothing dominates a front row ...
        assert not any(dominates(vec(t), vec(f), MAXMIN) for t in trials)
    for t in trials:  # ... and every other trial is dominated by one
        if key(t) not in {key(f) for f in front}:
            assert any(dominates(vec(f), vec(t), MAXMIN) for f in front)
    base = [r for r in trials if r["baseline"] == "all INT4"]
    assert len(base) == 1 and [base[0][f"q_L{i}"] for i in range(3)] == [0, 0, 0] and base[0]["accuracy"] == 1.0
    assert base[0] in front  # the most accurate point is always on the front
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {p.name for p in out.iterdir()} <= {"pareto.csv", "pareto.png", "trials.csv", "search.journal",
                                              "search.journal.lock", "search.lock"}  # no temporaries left
    assert f"{len(front)} on the Pareto front" in text and "12 complete trials (0 failed)" in text
