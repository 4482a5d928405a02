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
