"""The g++ testbench (hls/tb/hybridcim_accel_tb.cpp) and the Makefile's library naming.

The testbench's main must return 0 only on exact equality: 1 on a mismatch (a deliberately
wrong expected file), 2 on a kernel refusal, 3 on unreadable files.
"""
import shutil
import subprocess

import numpy as np
import pytest

from hybridcim.emulator import FastEmulator
from hybridcim.runtime.csim_build import hls_dir, library_path
from hybridcim.runtime.tb_files import write_tb_files
from hybridcim.zoo import random_images, random_program

HLS = hls_dir()
pytestmark = pytest.mark.skipif(shutil.which("make") is None or shutil.which("g++") is None,
                                reason="needs make and g++")


@pytest.fixture(scope="module")
def tb(tmp_path_factory, csim_lib):
    csim_lib("tiny-64")  # skips when hls4ml (ap_int.h) is missing
    build = tmp_path_factory.mktemp("tb_build")
    proc = subprocess.run(["make", "-s", "-C", str(HLS), "tb", "PRESET=tiny-64", f"BUILD={build}"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return build / "hybridcim_accel_tb_tiny-64"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    prog = random_program(5, "tiny-64")
    images = random_images(prog, 4, seed=1)
    return prog, images, write_tb_files(prog, images, tmp_path_factory.mktemp("tb_data"))


def run_tb(tb, paths):
    return subprocess.run([str(tb), str(paths["program"]), str(paths["images"]), str(paths["expected"]),
                           str(paths["counters"])], capture_output=True, text=True)


def test_tb_passes_on_the_emulator_outputs(tb, files):
    proc = run_tb(tb, files[2])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "counters checked, 0 mismatches: PASS" in proc.stdout


def test_tb_fails_on_a_wrong_counter(tb, files, tmp_path):
    prog, images, _ = files
    from hybridcim.runtime.buffers import COUNTER_FIELDS, counters_to_words
    from hybridcim.runtime.buffers import COUNTERS_HEADER_WORDS
    for name in ("cycles", "input_ones", "dram_bytes"):
        cnt = counters_to_words(FastEmulator(prog).run(images).counters)
        cnt[COUNTERS_HEADER_WORDS + len(COUNTER_FIELDS) + COUNTER_FIELDS.index(name)] += 1  # layer 1
        proc = run_tb(tb, write_tb_files(prog, images, tmp_path, counters=cnt))
        assert proc.returncode == 1
        assert f"MISMATCH layer 1 counter {COUNTER_FIELDS.index(name)}:" in proc.stderr and "FAIL" in proc.stdout


def test_tb_checks_the_counters_header(tb, files, tmp_path):
    prog, images, _ = files
    from hybridcim.runtime.buffers import counters_to_words
    cnt = counters_to_words(FastEmulator(prog).run(images).counters)
    cnt[0] ^= np.uint64(1 << 32)  # layout version 0
    proc = run_tb(tb, write_tb_files(prog, images, tmp_path, counters=cnt))
    assert proc.returncode == 1 and "MISMATCH counters header" in proc.stderr
    proc = run_tb(tb, write_tb_files(prog, images, tmp_path, counters=cnt[:-1]))  # one word short
    assert proc.returncode == 3 and "counters file has" in proc.stderr


def test_tb_fails_on_a_wrong_expected_file(tb, files, tmp_path):
    prog, images, _ = files
    wrong = FastEmulator(prog).run(images).outputs.copy()
    wrong[2, 1] += 1
    paths = write_tb_files(prog, images, tmp_path, expected=wrong)
    proc = run_tb(tb, paths)
    assert proc.returncode == 1
    assert "MISMATCH image 2 output 1" in proc.stderr and "FAIL" in proc.stdout


def test_tb_reports_a_corrupt_program(tb, files, tmp_path):
    paths = dict(files[2])
    image = bytearray(paths["program"].read_bytes())
    image[-9] ^= 0x01
    bad = tmp_path / "bad.cim"
    bad.write_bytes(bytes(image))
    paths["program"] = bad
    proc = run_tb(tb, paths)
    assert proc.returncode == 2 and "kernel returned error 5" in proc.stderr


def test_tb_reports_missing_files(tb, tmp_path):
    proc = subprocess.run([str(tb), str(tmp_path / "nope.cim"), str(tmp_path / "x"), str(tmp_path / "y")],
                          capture_output=True, text=True)
    assert proc.returncode == 3


@pytest.mark.parametrize("preset", ["sun-mars-256", "tiny-64"])
def test_makefile_and_python_name_the_same_library(preset):
    proc = subprocess.run(["make", "-s", "-C", str(HLS), "print-lib", f"PRESET={preset}"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().rsplit("/", 1)[-1] == library_path(preset).name


def test_make_targets_take_absolute_build_and_data_folders(tmp_path):
    """`make tb-data TB_DATA=/abs` writes there (not under hls/), and `tb-run BUILD=/abs` runs the
    testbench built there (it ran `./$(TB)`, a path under hls/, before)."""
    data, build = tmp_path / "data", tmp_path / "build"
    proc = subprocess.run(["make", "-s", "-C", str(HLS), "tb-data", "PRESET=tiny-64", f"TB_DATA={data}"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in data.iterdir()) == ["counters.u64", "expected.i32", "images.u8", "program.cim"]
    dry = subprocess.run(["make", "-n", "-C", str(HLS), "tb-run", "PRESET=tiny-64", f"BUILD={build}",
                          f"TB_DATA={data}"], capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    run_line = [ln for ln in dry.stdout.splitlines() if ln.endswith("counters.u64")][-1]
    assert run_line.startswith(f"{build}/hybridcim_accel_tb_tiny-64 {data}/program.cim"), run_line


@pytest.mark.slow
def test_tb_checks_the_dual_path_on_a_dual_preset(tmp_path, csim_lib):
    """On a preset with the second macro type the default testbench data is a dual-path ResNet-20
    (tb_files.dual_resnet20), and the testbench built for that preset passes on it."""
    from hybridcim.program import read_program
    from hybridcim.runtime.tb_files import main
    csim_lib("tiny-64-dual")
    assert main(["--preset", "tiny-64-dual", "--out", str(tmp_path / "data"), "-n", "2"]) == 0
    prog = read_program(tmp_path / "data" / "program.cim")
    assert sum(l.dual is not None and l.dual.n_tern(l.n_filters) > 0 for l in prog.layers) >= 20
    proc = subprocess.run(["make", "-s", "-C", str(HLS), "tb", "PRESET=tiny-64-dual", f"BUILD={tmp_path}"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    d = tmp_path / "data"
    proc = subprocess.run([str(tmp_path / "hybridcim_accel_tb_tiny-64-dual"), str(d / "program.cim"),
                           str(d / "images.u8"), str(d / "expected.i32"), str(d / "counters.u64")],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "counters checked, 0 mismatches: PASS" in proc.stdout, proc.stdout + proc.stderr
