"""The run-status line of a training run folder, read from metrics.csv and the checkpoint's JSON header only."""
import json
import struct

from hybridcim.search.runstatus import checkpoint_meta, format_status, main, run_status


def _header(meta: dict) -> bytes:
    h = json.dumps({"__metadata__": {"hybridcim": json.dumps(meta)}}).encode()
    return struct.pack("<Q", len(h)) + h + b"\0" * 8


def test_status_of_a_run(tmp_path, capsys):
    (tmp_path / "metrics.csv").write_text(
        "epoch,lr,train_loss,train_acc,test_acc,avg_bits,sparsity,seconds\n"
        "1,0.1,2.0,0.3,0.40,4.0,0.0,100.0\n2,0.1,1.5,0.5,0.55,4.0,0.0,140.0\n")
    ck = tmp_path / "checkpoint.safetensors"
    ck.write_bytes(_header({"epoch": 2, "config": {"optim": {"epochs": 60}}}))
    s = run_status(tmp_path, now=ck.stat().st_mtime + 30)
    assert s == {"epoch": 2, "epochs": 60, "test_acc": 0.55, "train_loss": 1.5, "pace_s": 120.0,
                 "left_s": 58 * 120.0, "checkpoint_age_s": 30.0}
    assert format_status("r", s) == ("r: epoch 2 of 60, test 55.00 %, loss 1.5000, 120 s per epoch (last 5), "
                                     "about 1.9 h left at that pace, checkpoint written 30 s ago")
    assert main([str(tmp_path)]) == 0 and "epoch 2 of 60" in capsys.readouterr().out
    assert "loss nan (the training diverged)" in format_status("r", {**s, "train_loss": float("nan")})


def test_a_run_that_has_not_finished_an_epoch_and_bad_headers(tmp_path, capsys):
    s = run_status(tmp_path)
    assert s["epoch"] == 0 and s["epochs"] is None and s["checkpoint_age_s"] is None
    assert format_status("r", s) == "r: epoch 0 of ?, no checkpoint yet"
    bad = tmp_path / "x"
    for raw in (b"", b"\xff" * 8, struct.pack("<Q", 4) + b"{}}}", _header({"epoch": 1})[:12]):
        bad.write_bytes(raw)
        assert checkpoint_meta(bad) is None
    assert main([str(tmp_path / "missing")]) == 2 and "no run folder" in capsys.readouterr().err
    assert main([]) == 2
