"""Progress on stderr when it is not a terminal: a line at least every interval, and a final one."""
import ast
import io
import threading
from pathlib import Path

import hybridcim
from hybridcim import progress as progress_mod
from hybridcim.cli.main import main
from hybridcim.progress import LineProgress, progress


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_lines_follow_the_interval_on_a_fake_clock():
    out, clock = io.StringIO(), FakeClock()
    bar = LineProgress(100, "emulate m", "img", out, interval_s=10.0, clock=clock, heartbeat=False)
    bar.update(10)
    assert out.getvalue() == ""  # no time has passed
    clock.t = 9.9
    bar.update(10)
    assert out.getvalue() == ""
    clock.t = 10.0
    bar.set_postfix_str("acc 50.00%")
    bar.update(10)
    assert out.getvalue() == "emulate m: 30/100 img (30%) in 10 s, 3.0 img/s, acc 50.00%\n"
    clock.t = 15.0
    bar.update(70)
    bar.close()
    bar.close()  # a second close writes nothing more
    assert out.getvalue().splitlines() == ["emulate m: 30/100 img (30%) in 10 s, 3.0 img/s, acc 50.00%",
                                           "emulate m: 100/100 img (100%) in 15 s, 6.7 img/s, acc 50.00% done"]


def test_a_resumed_job_counts_from_initial_but_rates_only_new_work():
    out, clock = io.StringIO(), FakeClock()
    bar = LineProgress(204, "search s", "trial", out, interval_s=10.0, clock=clock, heartbeat=False, initial=200)
    clock.t = 20.0
    bar.update(2)
    bar.close()
    assert out.getvalue().splitlines() == ["search s: 202/204 trial (99%) in 20 s, 0.1 trial/s"] * 2
    assert progress(5, "x", disable=True, initial=3).n == 3


def test_heartbeat_writes_while_a_step_is_stuck():
    """No update for longer than the interval (one slow batch): the heartbeat thread still writes."""
    lines = threading.Event()

    class Stream(io.StringIO):
        def write(self, s):
            n = super().write(s)
            if s.strip():
                lines.set()
            return n

    out = Stream()
    bar = LineProgress(None, "csim", "img", out, interval_s=0.05)
    assert lines.wait(5.0)
    bar.close()
    first = out.getvalue().splitlines()[0]
    assert first.startswith("csim: 0 s")


def test_terminal_gets_a_live_bar_and_disable_writes_nothing():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert not isinstance(progress(5, "x", stream=Tty()), LineProgress)
    assert isinstance(progress(5, "x", stream=io.StringIO()), LineProgress)
    quiet = io.StringIO()
    with progress(5, "x", stream=quiet, disable=True) as bar:
        bar.update(5)
    assert quiet.getvalue() == ""


def test_run_without_a_terminal_prints_progress_lines(cifar10_root, capsys, monkeypatch):
    """``hybridcim run`` with stderr captured (not a tty): progress lines on stderr, JSON on stdout."""
    monkeypatch.setattr(progress_mod, "INTERVAL_S", 1e-6)  # every update is due
    rc = main(["run", "--model", "zoo:resnet20-random", "--data", str(cifar10_root), "--limit", "6",
               "--batch-size", "2", "--reference", "none", "--json"])
    cap = capsys.readouterr()
    assert rc == 0
    lines = [l for l in cap.err.splitlines() if l.startswith("emulator: ")]
    assert len(lines) >= 3 and lines[-1].endswith(" done") and "6/6 img" in lines[-1], cap.err
    assert cap.out.strip().splitlines()[-1].startswith("{")


def test_nothing_below_the_cli_imports_it():
    """The CLI sits on top: no module outside hybridcim.cli imports from it."""
    root = Path(hybridcim.__file__).parent
    bad = []
    for py in root.rglob("*.py"):
        if "cli" in py.relative_to(root).parts[:1]:
            continue
        for node in ast.walk(ast.parse(py.read_text())):
            if isinstance(node, ast.ImportFrom):
                mod = ("." * node.level) + (node.module or "")
                if mod.startswith("hybridcim.cli") or (node.level and (node.module or "").split(".")[0] == "cli"):
                    bad.append(f"{py.relative_to(root)}: {mod}")
            elif isinstance(node, ast.Import):
                bad += [f"{py.relative_to(root)}: {a.name}" for a in node.names if a.name.startswith("hybridcim.cli")]
    assert not bad


def test_activity_writes_at_once_and_says_done_only_on_success():
    from hybridcim.progress import activity
    out = io.StringIO()
    with activity("building the csim kernel", stream=out, interval_s=3600):
        pass
    assert out.getvalue().splitlines() == ["building the csim kernel: 0 s", "building the csim kernel: 0 s done"]
    out = io.StringIO()
    try:
        with activity("building", stream=out, interval_s=3600):
            raise RuntimeError("g++ failed")
    except RuntimeError:
        pass
    assert out.getvalue().splitlines() == ["building: 0 s", "building: 0 s"]


def test_a_bar_closed_early_does_not_say_done():
    out, clock = io.StringIO(), FakeClock()
    bar = LineProgress(100, "csim", "img", out, interval_s=10.0, clock=clock, heartbeat=False)
    bar.update(30)
    bar.close()
    assert out.getvalue() == "csim: 30/100 img (30%) in 0 s\n"
