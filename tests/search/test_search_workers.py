"""Resume and scale-out: concurrent workers on one journal file, SIGKILL of a worker mid-trial and the
rerun that re-queues its trial, dead-worker detection, corrupt/foreign storages, an RDB URL."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from search_support import cli, load_trials, popen, run_main, toy_config

from hybridcim.search.storage import WORKER_ATTR, worker_alive, worker_record


def _wait(pred, timeout=60.0, what="condition"):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_concurrent_workers_no_lost_or_duplicated_trials(tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    cfg = toy_config(tmp_path, trials=10, sleep_s=0.3, log_dir=str(log))
    out = tmp_path / "out"
    r = cli(cfg, "--out", out, "--workers", "2", check=True)
    trials = load_trials(out)
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert 10 <= len(done) <= 11  # two workers asking at once may finish one past the target
    assert all(t.state.name == "COMPLETE" for t in trials)  # nothing running, failed or waiting
    pids = {t.system_attrs[WORKER_ATTR]["pid"] for t in done}
    assert len(pids) == 2  # both workers evaluated
    finished = sorted(p.read_text() for p in log.glob("*.done"))
    assert len(finished) == len(done)  # every finished evaluation is a complete trial: none lost
    assert sorted(",".join(str(t.params[f"L{i}"]) for i in range(3)) for t in done) == finished
    assert any(t.user_attrs.get("baseline") == "all INT4" for t in done)  # the uniform baseline ran once
    assert sum(t.user_attrs.get("baseline") == "all INT4" for t in done) == 1
    assert "complete trials" in r.stdout and "Pareto front" in r.stdout


def test_sigkill_mid_trial_then_rerun_requeues_it(tmp_path, capsys):
    log = tmp_path / "log"
    log.mkdir()
    cfg = toy_config(tmp_path, trials=5, sleep_s=0.5, log_dir=str(log))
    out = tmp_path / "out"
    w = popen(cfg, "--out", out, "--worker-only")
    _wait(lambda: len(list(log.glob("*.done"))) >= 2 and len(list(log.glob("*.start"))) > len(list(log.glob("*.done"))),
          what="two finished trials and one running")
    os.kill(w.pid, signal.SIGKILL)
    w.wait()
    before = load_trials(out)
    running = [t for t in before if t.state.name == "RUNNING"]
    kept = {t.number: t.values for t in before if t.state.name == "COMPLETE"}
    assert len(running) == 1 and len(kept) >= 2
    dead = running[0]
    assert worker_alive(dead.system_attrs[WORKER_ATTR]) is False
    rc, _, err = run_main(capsys, cfg, "--out", out)
    assert rc == 0 and f"re-queued trials [{dead.number}]" in err
    after = {t.number: t for t in load_trials(out)}
    assert after[dead.number].state.name == "FAIL"
    assert after[dead.number].user_attrs["failed_because"] == "its worker died"
    again = [t for t in after.values() if t.user_attrs.get("requeued_from") == dead.number]
    assert len(again) == 1 and again[0].state.name == "COMPLETE" and again[0].params == dead.params
    for n, v in kept.items():  # finished evaluations survive the kill unchanged
        assert after[n].state.name == "COMPLETE" and after[n].values == v
    assert sum(t.state.name == "COMPLETE" for t in after.values()) == 5
    # a third run with the target reached evaluates nothing and rewrites the outputs
    n_logs = len(list(log.glob("*.start")))
    rc, out_text, _ = run_main(capsys, cfg, "--out", out)
    assert rc == 0 and len(list(log.glob("*.start"))) == n_logs and "5 complete trials (1 failed)" in out_text


def test_worker_alive():
    assert worker_alive(worker_record()) is True
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    rec = worker_record(p.pid)
    assert worker_alive(rec) is True
    p.kill()
    _wait(lambda: worker_alive(rec) is False, 10, "a zombie to read as dead")  # killed, not yet reaped
    p.wait()
    assert worker_alive(rec) is False  # reaped: no such pid
    assert worker_alive({**worker_record(), "start": worker_record()["start"] + 1}) is False  # pid reused
    assert worker_alive({**worker_record(), "boot": "another-boot"}) is False
    assert worker_alive({**worker_record(), "host": socket.gethostname() + "-elsewhere"}) is None


@pytest.mark.parametrize("content, words", [
    (b"this is not a journal\n", "corrupt or not an Optuna journal (line 1"),
    (b'{"op_code": 0, "worker_id": "w", "study_name": "x", "directions": [1]}\n\x00\xff garbage\n', "line 2"),
    (b'[1, 2, 3]\n', "no op_code"),
    (b"SQLite format 3\x00" + bytes(100), "SQLite database"),
])
def test_corrupt_storage_is_a_clear_error(tmp_path, capsys, content, words):
    out = tmp_path / "out"
    out.mkdir()
    (out / "search.journal").write_bytes(content)
    rc, _, err = run_main(capsys, toy_config(tmp_path), "--out", out)
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0]


def test_foreign_and_other_config_storage(tmp_path, capsys):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    out = tmp_path / "foreign"
    out.mkdir()
    st = JournalStorage(JournalFileBackend(str(out / "search.journal")))
    s = optuna.create_study(storage=st, study_name="someone-else")
    s.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    rc, _, err = run_main(capsys, toy_config(tmp_path), "--out", out)
    assert rc == 2 and "which hybridcim search did not create (a foreign storage)" in err
    out2 = tmp_path / "mine"
    assert run_main(capsys, toy_config(tmp_path, trials=3), "--out", out2)[0] == 0
    cfg = json.loads(toy_config(tmp_path).read_text())
    cfg["space"]["ratios"] = [0, 8]
    cfg["baselines"] = []
    (tmp_path / "changed.json").write_text(json.dumps(cfg))
    rc, _, err = run_main(capsys, tmp_path / "changed.json", "--out", out2)
    assert rc == 2 and "of another config" in err
    rc, out_text, _ = run_main(capsys, toy_config(tmp_path, trials=4), "--out", out2)  # more trials, same config
    assert rc == 0 and "4 complete trials" in out_text


def test_rdb_storage_url(tmp_path, capsys):
    """The database path (here SQLite; PostgreSQL is the same code with another URL, untested here)."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    rc, out_text, err = run_main(capsys, toy_config(tmp_path, trials=3), "--out", tmp_path / "o", "--storage", url)
    assert rc == 0 and "3 complete trials" in out_text, err
    assert not (tmp_path / "o" / "search.journal").exists()
    rc, _, err = run_main(capsys, toy_config(tmp_path), "--out", tmp_path / "o", "--storage", "postgres-without-scheme")
    assert rc == 2 and "not a database URL" in err


def test_failing_evaluator_stops_after_three(tmp_path, capsys):
    rc, _, err = run_main(capsys, toy_config(tmp_path, fail=True), "--out", tmp_path / "o")
    assert rc == 1 and "3 candidates in a row failed" in err and "toy evaluator told to fail" in err


def test_enqueued_trials_are_not_counted_as_running(tmp_path, capsys):
    """trials=1 with a baseline waiting in the queue: the worker takes it (it used to wait for it forever)."""
    rc, out_text, err = run_main(capsys, toy_config(tmp_path, trials=1), "--out", tmp_path / "o")
    assert rc == 0 and "1 complete trials" in out_text, err
    (t,) = load_trials(tmp_path / "o")
    assert t.user_attrs["baseline"] == "all INT4" and t.state.name == "COMPLETE"


def test_a_seeded_candidate_runs_once_even_added_to_a_finished_search(tmp_path, capsys):
    """A baseline with per-layer ``layers`` is enqueued as given; added to the config of a finished
    search, the rerun evaluates it (and only it) and keeps every earlier trial."""
    cfg_path = toy_config(tmp_path, trials=2)
    out = tmp_path / "o"
    assert run_main(capsys, cfg_path, "--out", out)[0] == 0
    before = {t.number: t.values for t in load_trials(out) if t.state.name == "COMPLETE"}
    cfg = json.loads(cfg_path.read_text())
    cfg["baselines"].append({"name": "last at 8/8", "ratio": 0, "layers": {"L2": 8}})
    cfg_path.write_text(json.dumps(cfg))
    for _ in range(2):  # the second rerun finds it done: not enqueued again
        rc, _, err = run_main(capsys, cfg_path, "--out", out, "--trials", "3")
        assert rc == 0, err
    done = [t for t in load_trials(out) if t.state.name == "COMPLETE"]
    assert len(done) == 3 and {t.number: t.values for t in done[:2]} == before
    assert done[2].user_attrs["baseline"] == "last at 8/8" and done[2].params == {"L0": 0, "L1": 0, "L2": 8}
    assert [t.state.name for t in load_trials(out)].count("WAITING") == 0


def test_journal_line_cut_by_a_kill_is_dropped(tmp_path, capsys):
    """A writer killed inside a write leaves a last line without its newline: the next run drops it
    (else every later record would follow it and the journal would no longer replay)."""
    cfg = toy_config(tmp_path, trials=3)
    out = tmp_path / "o"
    assert run_main(capsys, cfg, "--out", out)[0] == 0
    journal = out / "search.journal"
    whole = journal.read_bytes()
    journal.write_bytes(whole + b'{"op_code": 5, "worker_id": "w", "trial_id": 1, "stat')
    rc, out_text, err = run_main(capsys, toy_config(tmp_path, trials=5), "--out", out)
    assert rc == 0 and "5 complete trials" in out_text, err
    data = journal.read_bytes()
    assert data.startswith(whole) and b'"stat{' not in data and data.endswith(b"\n")
    assert run_main(capsys, toy_config(tmp_path, trials=5), "--out", out)[0] == 0  # and it replays again


def test_ctrl_c_puts_the_running_trial_back_in_the_queue(tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    cfg = toy_config(tmp_path, trials=5, sleep_s=2.0, log_dir=str(log))
    out = tmp_path / "out"
    w = popen(cfg, "--out", out, "--worker-only")
    _wait(lambda: len(list(log.glob("*.start"))) >= 1, what="a trial to start")
    os.kill(w.pid, signal.SIGINT)
    assert w.wait(timeout=60) == 130 and "interrupted" in w.stderr.read()
    ts = load_trials(out)
    (failed,) = [t for t in ts if t.state.name == "FAIL"]
    (queued,) = [t for t in ts if t.state.name == "WAITING"]
    assert queued.user_attrs["requeued_from"] == failed.number and not [t for t in ts if t.state.name == "RUNNING"]


def test_share_cores_splits_threads_between_workers_unless_the_user_chose(monkeypatch):
    """K workers on one machine get cpu_count // K threads each (environment the children inherit);
    a user's OMP_NUM_THREADS is kept; one worker changes nothing."""
    import os
    from hybridcim.cli.cmd_search import share_cores
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    torch = sys.modules.get("torch")
    if torch is not None:  # share_cores sets an imported torch's pool too: put this process's back afterwards
        monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    assert share_cores(1) is None and "OMP_NUM_THREADS" not in os.environ
    assert share_cores(3) == 2
    assert os.environ["OMP_NUM_THREADS"] == os.environ["OPENBLAS_NUM_THREADS"] == "2"
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert share_cores(2) is None and os.environ["OMP_NUM_THREADS"] == "5"
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert share_cores(16) == 1
