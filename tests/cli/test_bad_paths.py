"""Every subcommand, given each class of bad path, exits 2 with one line on stderr and no traceback.

Classes: missing, a folder where a file is wanted (and a file where a folder is), /dev/zero,
a FIFO (must never block), a symlink loop, a truncated or corrupt file, an output onto a folder,
an output under a regular file (and, for the .cim + .cim.json pair, the sidecar path taken by a
folder: neither file is written). In-process through ``main(argv)`` for speed, with an alarm so
a blocking open fails the test instead of hanging it; two cases through the real entry point.
"""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hybridcim.cli.main import main
from hybridcim.models import MODELS_DIR
from hybridcim.program import write_program
from hybridcim.zoo import random_resnet20

CONFIG = Path(__file__).resolve().parents[2] / "host" / "hybridcim" / "train" / "configs" / "smoke.yaml"
MODEL_DIR = MODELS_DIR / "resnet8-w4a4-p50-quick"


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    """A folder of good and bad paths: {name: str path}."""
    d = tmp_path_factory.mktemp("paths")
    good = write_program(random_resnet20("tiny-64"), d / "good.cim")
    (d / "dir").mkdir()
    (d / "empty_dir").mkdir()
    (d / "file").write_text("a regular file\n")
    os.mkfifo(d / "fifo")
    os.symlink(d / "loop_b", d / "loop_a")
    os.symlink(d / "loop_a", d / "loop_b")
    (d / "truncated.cim").write_bytes(good.read_bytes()[:200])
    corrupt = bytearray(good.read_bytes())
    corrupt[300] ^= 0xFF
    (d / "corrupt.cim").write_bytes(bytes(corrupt))
    (d / "corrupt.yaml").write_text("name: [unclosed\n  optim: {")
    (d / "integer_model.json").write_text('{"format": "hybridcim-integer-model", "layers": [')
    (d / "corrupt.safetensors").write_bytes(b"\xff" * 64)
    p = {k: str(d / k) for k in ("dir", "empty_dir", "file", "fifo", "loop_a", "truncated.cim", "corrupt.cim",
                                 "corrupt.yaml", "integer_model.json", "corrupt.safetensors")}
    p.update(good=str(good), missing=str(d / "missing"), zero="/dev/zero", under_file=str(d / "file" / "x"),
             out=str(d / "out" / "x.cim"), root=str(d))
    return p


# (command, argv with {slot} for the bad path, other paths good). Each bad-path class that
# applies to the slot's kind: file input, folder input, file-or-folder input, file output, folder output.
FILE_IN = ("missing", "dir", "zero", "fifo", "loop_a")
DIR_IN = ("missing", "file", "zero", "fifo", "loop_a")
ANY_IN = ("missing", "zero", "fifo", "loop_a")
FILE_OUT = ("dir", "under_file", "zero", "fifo", "loop_a")
DIR_OUT = ("file", "under_file", "zero", "fifo")

SLOTS = [
    ("info", ["info", "{slot}"], FILE_IN + ("truncated.cim", "corrupt.cim")),
    ("info --plot", ["info", "{good}", "--plot", "{slot}"], FILE_OUT),
    ("emulate", ["emulate", "{slot}", "--data", "{root}"], FILE_IN + ("truncated.cim", "corrupt.cim")),
    ("emulate --data", ["emulate", "{good}", "--data", "{slot}"], DIR_IN),
    ("run --model", ["run", "--model", "{slot}", "--data", "{root}", "--reference", "none"],
     ANY_IN + ("truncated.cim", "corrupt.cim", "empty_dir")),
    ("run --data", ["run", "--model", "{good}", "--data", "{slot}", "--reference", "none"], DIR_IN),
    ("zoo -o", ["zoo", "resnet20-random", "-o", "{slot}"], FILE_OUT),
    ("compile", ["compile", "{slot}", "-o", "{out}"], ANY_IN + ("empty_dir", "integer_model.json")),
    ("compile -o", ["compile", str(MODEL_DIR), "-o", "{slot}"], FILE_OUT),
    ("compile --report-json", ["compile", str(MODEL_DIR), "-o", "{out}", "--report-json", "{slot}"], FILE_OUT),
    ("compile --plot", ["compile", str(MODEL_DIR), "-o", "{out}", "--plot", "{slot}"], FILE_OUT),
    ("export", ["export", "{slot}", "--out", "{root}/exported"], ANY_IN + ("empty_dir", "corrupt.safetensors")),
    ("export --out", ["export", "{good}", "--out", "{slot}"], DIR_OUT),
    ("ship", ["ship", "{slot}", "--name", "m", "--config", str(CONFIG), "--data", "{root}",
              "--models-dir", "{root}/models"], DIR_IN),
    ("ship --config", ["ship", "{root}", "--name", "m", "--config", "{slot}", "--data", "{root}",
                       "--models-dir", "{root}/models"], FILE_IN),
    ("ship --data", ["ship", "{root}", "--name", "m", "--config", str(CONFIG), "--data", "{slot}",
                     "--models-dir", "{root}/models"], DIR_IN),
    ("ship --models-dir", ["ship", "{root}", "--name", "m", "--config", str(CONFIG), "--data", "{root}",
                           "--models-dir", "{slot}"], DIR_OUT),
    ("ship --keep-training", ["ship", "{root}", "--name", "m", "--config", str(CONFIG), "--data", "{root}",
                              "--models-dir", "{root}/models", "--keep-training", "{slot}"], FILE_IN),
    ("ship --earlier-stage", ["ship", "{root}", "--name", "m", "--config", str(CONFIG), "--data", "{root}",
                              "--models-dir", "{root}/models", "--earlier-stage", str(CONFIG), "{slot}"], FILE_IN),
    ("ship --curve", ["ship", "{root}", "--name", "m", "--config", str(CONFIG), "--data", "{root}",
                      "--models-dir", "{root}/models", "--curve", "{slot}"], FILE_OUT),
    ("report", ["report", "{slot}", "-o", "{root}/r.html", "--limit", "0"],
     ANY_IN + ("truncated.cim", "corrupt.cim", "empty_dir")),
    ("report -o", ["report", "{good}", "-o", "{slot}", "--limit", "0"], FILE_OUT),
    ("report --data", ["report", "{good}", "-o", "{root}/r.html", "--data", "{slot}"], DIR_IN),
    ("report --cost-preset", ["report", "{good}", "-o", "{root}/r.html", "--limit", "0", "--cost-preset", "{slot}"],
     FILE_IN + ("corrupt.yaml",)),
    ("train", ["train", "{slot}", "--out", "{root}/run"], FILE_IN + ("corrupt.yaml",)),
    ("train --out", ["train", str(CONFIG), "--out", "{slot}"], DIR_OUT),
    ("train --data", ["train", str(CONFIG), "--out", "{root}/run", "--data", "{slot}"], DIR_IN),
]
CASES = [pytest.param(argv, bad, id=f"{name}:{bad}") for name, argv, classes in SLOTS for bad in classes]


def run_main(argv: list[str], capsys) -> tuple[int, str]:
    """main(argv) under a 20 s alarm (a FIFO opened for reading would block forever)."""
    def timeout(signum, frame):
        raise TimeoutError(f"hybridcim {' '.join(argv)} blocked")
    old = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(20)
    try:
        rc = main(argv)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return rc, capsys.readouterr().err


def assert_one_line_error(rc: int, err: str, command: str) -> None:
    lines = err.strip("\n").splitlines()
    assert rc == 2 and len(lines) == 1, (rc, err)
    assert lines[0].startswith(f"hybridcim {command}: error: ") and "Traceback" not in err, err


@pytest.mark.parametrize("argv, bad", CASES)
def test_bad_path_is_one_line_exit_2(argv, bad, paths, capsys):
    if "safetensors" in bad:
        pytest.importorskip("torch")
    args = [a.format(slot=paths[bad], **paths) for a in argv]
    rc, err = run_main(args, capsys)
    assert_one_line_error(rc, err, argv[0])
    if bad in ("fifo", "zero", "loop_a", "missing"):
        assert os.path.basename(paths[bad]) in err or paths[bad] in err  # the message names the path


@pytest.mark.parametrize("argv", [["zoo", "resnet20-random", "-o", "{p}"], ["compile", str(MODEL_DIR), "-o", "{p}"]])
def test_program_and_sidecar_are_written_both_or_neither(argv, tmp_path, capsys):
    """X.cim.json taken by a folder: refused before anything is written (no X.cim without its sidecar)."""
    target = tmp_path / "x.cim"
    (tmp_path / "x.cim.json").mkdir()
    rc, err = run_main([a.format(p=target) for a in argv], capsys)
    assert_one_line_error(rc, err, argv[0])
    assert "x.cim.json" in err and not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.cim.json"]  # no temporary file left either


def test_a_failed_pair_write_restores_the_first_file(tmp_path, monkeypatch):
    """If the second rename fails after the first succeeded, the first file gets its old content back."""
    from hybridcim import fileio
    a, b = tmp_path / "a.cim", tmp_path / "a.cim.json"
    a.write_bytes(b"old image")
    real = os.replace
    calls = []

    def flaky(src, dst):
        calls.append(dst)
        if str(dst) == str(b):
            raise OSError(28, "No space left on device", str(dst))
        return real(src, dst)
    monkeypatch.setattr(fileio.os, "replace", flaky)
    with pytest.raises(fileio.FileError, match="No space left"):
        fileio.atomic_write_files([(a, b"new image"), (b, b"{}")])
    monkeypatch.setattr(fileio.os, "replace", real)
    assert a.read_bytes() == b"old image" and not b.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.cim"]


@pytest.mark.parametrize("bad", ["zero", "fifo"])
def test_real_entry_point(bad, paths):
    """Through ``python -m hybridcim.cli.main`` (the console script's code path): no hang, one line."""
    out = subprocess.run([sys.executable, "-m", "hybridcim.cli.main", "info", paths[bad]], capture_output=True,
                         text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stderr.startswith("hybridcim info: error: ") and "not a regular file" in out.stderr


@pytest.mark.parametrize("exc, says", [
    (PermissionError(13, "Permission denied", "/root/x.cim"), "Permission denied: '/root/x.cim'"),
    (MemoryError(), "out of memory"),
    (RecursionError("maximum recursion depth exceeded"), "nests too deeply"),
    (ValueError("first line\nsecond line"), "first line second line"),
])
def test_any_input_error_is_one_line(exc, says, monkeypatch, capsys):
    """Errors the commands do not name themselves still give one line and exit 2."""
    from hybridcim.cli import cmd_info

    def boom(args):
        raise exc
    monkeypatch.setattr(cmd_info, "run", boom)
    rc, err = run_main(["info", "x.cim"], capsys)
    assert_one_line_error(rc, err, "info")
    assert says in err


def test_info_plot_without_a_program(tmp_path, capsys):
    rc, err = run_main(["info", "--plot", str(tmp_path / "x.png")], capsys)
    assert_one_line_error(rc, err, "info")
    assert "give the program image" in err and not (tmp_path / "x.png").exists()
