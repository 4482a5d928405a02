"""Scale-out through PostgreSQL, against a throw-away server this test starts (slow; needs the PostgreSQL
server binaries initdb/pg_ctl on PATH and the driver: pip install "psycopg[binary]")."""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from search_support import popen, run_main, toy_config

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory):
    pytest.importorskip("psycopg")
    if not (shutil.which("initdb") and shutil.which("pg_ctl")):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not on PATH")
    import tempfile
    d = Path(tempfile.mkdtemp(prefix="hybridcim-pg-"))  # pytest's tmp folders are private to this user
    as_user = []
    if os.geteuid() == 0:  # postgres refuses to run as root: run it as the 'postgres' account
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' account to run the server")
        os.chown(d, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run([*as_user, "initdb", "-D", str(d / "data"), "-A", "trust", "-U", "postgres"], check=True,
                   capture_output=True)
    subprocess.run([*as_user, "pg_ctl", "-D", str(d / "data"), "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {d}",
                    "-l", str(d / "log"), "-w", "start"], check=True, capture_output=True)
    try:
        subprocess.run([*as_user, "psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c",
                        "create database search"], check=True, capture_output=True)
        yield f"postgresql://postgres@127.0.0.1:{port}/search"
    finally:
        subprocess.run([*as_user, "pg_ctl", "-D", str(d / "data"), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


def _trials(url, name="toy"):
    import optuna
    return optuna.load_study(study_name=name, storage=url).get_trials()


def test_two_workers_on_postgresql(tmp_path, capsys, pg_url):
    rc, out_text, err = run_main(capsys, toy_config(tmp_path, name="pg2", trials=8, sleep_s=0.2), "--out",
                                 tmp_path / "o", "--storage", pg_url, "--workers", "2")
    assert rc == 0 and "complete trials" in out_text, err
    ts = _trials(pg_url, "pg2")
    done = [t for t in ts if t.state.name == "COMPLETE"]
    assert 8 <= len(done) <= 9 and len({t.number for t in ts}) == len(ts)
    assert len({t.system_attrs["hybridcim_worker"]["pid"] for t in done}) == 2


def test_killed_worker_on_postgresql_is_retried_by_heartbeat(tmp_path, capsys, pg_url):
    log = tmp_path / "log"
    log.mkdir()
    cfg = toy_config(tmp_path, name="pgkill", trials=4, sleep_s=1.0, log_dir=str(log))
    w = popen(cfg, "--out", tmp_path / "o", "--storage", pg_url, "--heartbeat", "1", "--worker-only")
    t0 = time.monotonic()
    while not (len(list(log.glob("*.done"))) >= 1 and len(list(log.glob("*.start"))) > len(list(log.glob("*.done")))):
        assert time.monotonic() - t0 < 90, "no trial running"
        time.sleep(0.1)
    os.kill(w.pid, signal.SIGKILL)
    w.wait()
    (dead,) = [t for t in _trials(pg_url, "pgkill") if t.state.name == "RUNNING"]
    time.sleep(4)  # past the grace period (3 heartbeats)
    rc, out_text, err = run_main(capsys, cfg, "--out", tmp_path / "o", "--storage", pg_url, "--heartbeat", "1")
    assert rc == 0, err
    ts = {t.number: t for t in _trials(pg_url, "pgkill")}
    assert ts[dead.number].state.name == "FAIL"
    again = [t for t in ts.values() if t.number > dead.number and t.params == dead.params
             and t.state.name == "COMPLETE"]
    assert again  # re-queued (by the pid check on this host or by the heartbeat's retry) and evaluated
    assert sum(t.state.name == "COMPLETE" for t in ts.values()) == 4
