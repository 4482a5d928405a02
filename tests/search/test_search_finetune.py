"""The fine-tune step end to end on a toy: a 'dual-supernet' search of the tiny supernet, its candidates
fine-tuned for one epoch at their fixed ratios, evaluated on the same calibration images, Kendall tau
reported; a rerun reuses every finished candidate."""
import json

import pytest

from hybridcim.search.finetune import FinetuneError, select_candidates

pytest.importorskip("torch")


def _search(tmp_path, run, cifar10_root, capsys):
    from search_support import run_main
    cfg = {"name": "ft", "evaluator": {"kind": "dual-supernet",
                                       "options": {"run": str(run), "images": 16, "bn_images": 32, "bn_batch": 32}},
           "space": {"ratios": [0, 8], "fixed": {"s1b1_conv1": 0, "s1b1_conv2": 0, "s2b1_conv1": 0, "s2b1_conv2": 0}},
           "objectives": ["accuracy", "energy_uj"], "sampler": {"population_size": 2, "seed": 0}, "trials": 3,
           "baselines": [{"name": "all INT4", "ratio": 0}, {"name": "all ternary", "ratio": 8}]}
    path = tmp_path / "search.json"
    path.write_text(json.dumps(cfg))
    rc, _, err = run_main(capsys, path, "--out", tmp_path / "s", "--data", cifar10_root)
    assert rc == 0, err
    return path


def test_finetune_and_kendall_end_to_end(tiny_supernet, cifar10_root, tmp_path, capsys):
    from hybridcim.cli.main import main
    from hybridcim.search.kendall import kendall_tau_b
    path = _search(tmp_path, tiny_supernet, cifar10_root, capsys)
    rows = select_candidates(tmp_path / "s", "all", top=2)
    assert len(rows) == 2 and rows[0]["accuracy"] >= rows[1]["accuracy"]
    args = ["finetune", str(path), "--search", str(tmp_path / "s"), "--out", str(tmp_path / "ft"), "--epochs", "1",
            "--candidates", "all", "--top", "2", "--data", str(cifar10_root), "--no-progress"]
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr()
    assert "fine-tuned 2 candidate(s)" in out.out and "Kendall tau_b" in out.out
    summary = json.loads((tmp_path / "ft" / "kendall.json").read_text())
    pairs = summary["pairs"]
    assert [p["trial"] for p in pairs] == [r["trial"] for r in rows] and summary["n"] == 2
    assert [p["supernet_accuracy"] for p in pairs] == [r["accuracy"] for r in rows]
    tau = kendall_tau_b([p["supernet_accuracy"] for p in pairs], [p["finetuned_accuracy"] for p in pairs])
    assert summary["tau_b"] == (None if tau != tau else tau)
    for r in rows:  # each candidate was trained at its own fixed ratios, from the supernet
        from hybridcim.train.checkpoint import read_checkpoint
        _, meta = read_checkpoint(tmp_path / "ft" / f"trial-{r['trial']:04d}" / "checkpoint.safetensors")
        c = meta["config"]
        assert c["dual"]["mode"] == "fixed" and c["optim"]["epochs"] == 1 and c["init_from"] == str(tiny_supernet)
        assert c["dual"]["layer_ratios"] == [r[f"q_{l}"] for l in ("s1b1_conv1", "s1b1_conv2", "s2b1_conv1",
                                                                   "s2b1_conv2", "s3b1_conv1", "s3b1_conv2")]
        from hybridcim.train.config import load_config
        shipped = load_config(tmp_path / "ft" / f"trial-{r['trial']:04d}" / "config.yaml").to_dict()
        assert json.loads(json.dumps(shipped)) == c  # the config it trained with, as a file to rerun or ship it with
    csv_text = (tmp_path / "ft" / "finetune.csv").read_text()
    assert csv_text.splitlines()[0].startswith("trial,baseline,supernet_accuracy,finetuned_accuracy,energy_uj")
    ck = tmp_path / "ft" / f"trial-{rows[0]['trial']:04d}" / "checkpoint.safetensors"
    before = ck.stat().st_mtime_ns
    assert main(args) == 0  # a rerun: nothing trained again, the same figures
    err = capsys.readouterr().err
    assert err.count("result reused") == 2 and ck.stat().st_mtime_ns == before
    assert json.loads((tmp_path / "ft" / "kendall.json").read_text()) == summary
    longer = [a if a != "1" else "2" for a in args]  # another schedule into the same folder: refused, nothing trained
    assert main(longer) == 2
    assert "fine-tune of 1 epochs, this one asks for 2" in capsys.readouterr().err and ck.stat().st_mtime_ns == before
    # choosing against a baseline program: nothing trained again; the baseline measured on the same images
    assert main(args + ["--choose-against", "resnet8-w4a4-p50-quick", "--max-loss-pp", "100"]) == 0
    out = capsys.readouterr()
    assert "chosen: trial" in out.out and ck.stat().st_mtime_ns == before
    chosen = json.loads((tmp_path / "ft" / "chosen.json").read_text())
    from hybridcim.search.finetune import baseline_on_calibration, choose
    results = [json.loads((tmp_path / "ft" / f"trial-{r['trial']:04d}" / "result.json").read_text()) for r in rows]
    want = choose(results, chosen["baseline"]["accuracy"], 100.0)
    assert chosen["chosen"]["trial"] == want["trial"] and chosen["chosen"]["run"].endswith(f"trial-{want['trial']:04d}")
    b = baseline_on_calibration("resnet8-w4a4-p50-quick", 16, "dcim-28nm", str(cifar10_root))
    assert chosen["baseline"]["accuracy"] == b.accuracy and chosen["baseline"]["images"] == 16
    assert (tmp_path / "ft" / "finetune.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(args + ["--choose-against", "no-such-model"]) == 2  # before any work
    assert "no-such-model" in capsys.readouterr().err


def _result(trial, acc, energy, memory=1.0, latency=1.0):
    return {"trial": trial, "finetuned": {"accuracy": acc, "energy_uj": energy, "memory_kib": memory,
                                          "latency_us": latency}}


def test_choose_takes_the_cheapest_within_the_loss():
    from hybridcim.search.finetune import choose
    rs = [_result(1, 0.905, 10.0), _result(2, 0.899, 7.0), _result(3, 0.898, 5.0), _result(4, 0.80, 1.0)]
    assert choose(rs, 0.909, 1.0)["trial"] == 2  # floor 0.899: trial 3 (0.898) is out, 2 is the cheapest in
    assert choose(rs, 0.909, 1.1)["trial"] == 3
    assert choose(rs, 0.95, 1.0) is None
    assert choose(rs, 0.90, 100.0)["trial"] == 4
    assert choose(rs, 0.9, 1.0, minimize="memory_kib")["trial"] == 3  # floor 0.89; memory ties: energy decides
    tie = [_result(5, 0.90, 3.0), _result(6, 0.91, 3.0), _result(7, 0.91, 3.0)]
    assert choose(tie, 0.9, 1.0)["trial"] == 6  # same costs: the more accurate, then the lower trial
    with pytest.raises(FinetuneError, match="minimize"):
        choose(rs, 0.9, 1.0, minimize="accuracy")


def test_spread_covers_the_front_from_most_to_least_accurate(tmp_path):
    from hybridcim.search.pareto import front_csv
    rows = [{"trial": t, "accuracy": 0.9 - 0.01 * t, "energy_uj": float(t),
             "ratios": {"a": t % 9, "b": t // 9}}
            for t in range(10)]
    (tmp_path / "pareto.csv").write_text(front_csv(rows, ["accuracy", "energy_uj"], ["a", "b"]))
    assert [r["trial"] for r in select_candidates(tmp_path, top=4)] == [0, 1, 2, 3]
    assert [r["trial"] for r in select_candidates(tmp_path, top=4, spread=True)] == [0, 3, 6, 9]
    assert [r["trial"] for r in select_candidates(tmp_path, top=1, spread=True)] == [0]
    assert len(select_candidates(tmp_path, top=20, spread=True)) == 10
    assert [r["trial"] for r in select_candidates(tmp_path, top=3, spread=True, within_pp=4)] == [0, 2, 4]
    assert [r["trial"] for r in select_candidates(tmp_path, within_pp=0)] == [0]
    with pytest.raises(FinetuneError, match="within_pp"):
        select_candidates(tmp_path, within_pp=-1)


def test_trials_names_the_candidates_exactly(tmp_path):
    from hybridcim.search.pareto import front_csv
    rows = [{"trial": t, "accuracy": 0.9 - 0.01 * t, "energy_uj": float(t), "ratios": {"a": t, "b": 0}}
            for t in range(6)]
    (tmp_path / "pareto.csv").write_text(front_csv(rows, ["accuracy", "energy_uj"], ["a", "b"]))
    assert [r["trial"] for r in select_candidates(tmp_path, trials=[4, 1])] == [1, 4]  # most accurate first
    with pytest.raises(FinetuneError, match=r"trial\(s\) \[7\] not in .*--candidates all"):
        select_candidates(tmp_path, trials=[1, 7])
    with pytest.raises(FinetuneError, match="distinct"):
        select_candidates(tmp_path, trials=[1, 1])
    with pytest.raises(FinetuneError, match="no top, spread or within_pp"):
        select_candidates(tmp_path, trials=[1], top=2)


def test_refusals(tmp_path):
    with pytest.raises(FileNotFoundError, match="no pareto.csv"):
        select_candidates(tmp_path)
    with pytest.raises(FinetuneError, match="'pareto' or 'all'"):
        select_candidates(tmp_path, "best")
    from hybridcim.search.finetune import finetune_candidates
    cfg = tmp_path / "t.json"
    cfg.write_text(json.dumps({"name": "t", "evaluator": {"kind": "dual-ternarized"}, "space": {"ratios": [0, 8]}}))
    with pytest.raises(FinetuneError, match="needs a 'dual-supernet' search"):
        finetune_candidates(cfg, tmp_path, tmp_path / "ft")
