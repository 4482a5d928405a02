"""``hybridcim run --backend csim``: the FPGA kernel cycle model's board estimate in the report.

The estimate is labelled "estimate, not checked by csynth", names its board and PL clock, and
gives kernel cycles per layer; --board and --pl-mhz choose them, bad values exit 2 with one line.
"""
import json

import pytest

from hybridcim.cli.main import main
from hybridcim.program import read_program, write_program
from hybridcim.runtime.kernel_cycles import LABEL
from hybridcim.zoo import random_resnet20


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_program(random_resnet20("sun-mars-256", seed=0), tmp_path_factory.mktemp("m") / "model.cim")


def run_json(args, capsys):
    rc = main(["run", "--backend", "csim", *args, "--limit", "8", "--batch-size", "8", "--json"])
    cap = capsys.readouterr()
    return rc, json.loads(cap.out.strip().splitlines()[-1]) if rc == 0 else cap.err


def test_json_reports_the_board_estimate(model, cifar10_root, csim_lib, capsys):
    csim_lib("sun-mars-256")
    rc, d = run_json(["--model", str(model), "--data", str(cifar10_root)], capsys)
    assert rc == 0 and d["agree"] == 8
    kc = d["kernel_cycles"]
    assert kc["label"] == LABEL == "estimate, not checked by csynth"
    assert kc["board"] == "pynq-z2" and kc["pl_mhz"] == 100.0 and kc["images"] == 8
    names = [l.name for l in read_program(model).layers]
    assert [l["name"] for l in kc["layers"]] == names
    assert sum(l["kernel_cycles"] for l in kc["layers"]) + kc["call_cycles"] == kc["kernel_cycles"] > 0
    assert d["est_board_images_per_s"] == pytest.approx(8 * 100e6 / kc["kernel_cycles"])
    # the CIM chip's latency stays a separate figure under its own name
    assert "latency_us_per_image" in d and "latency" not in kc


def test_board_and_clock_flags(model, cifar10_root, csim_lib, capsys):
    csim_lib("sun-mars-256")
    base = run_json(["--model", str(model), "--data", str(cifar10_root)], capsys)[1]
    fast = run_json(["--model", str(model), "--data", str(cifar10_root), "--pl-mhz", "200"], capsys)[1]
    kv = run_json(["--model", str(model), "--data", str(cifar10_root), "--board", "kv260"], capsys)[1]
    assert fast["kernel_cycles"]["pl_mhz"] == 200.0
    assert fast["est_board_images_per_s"] == pytest.approx(2 * base["est_board_images_per_s"])
    assert kv["kernel_cycles"]["board"] == "kv260" and kv["kernel_cycles"]["hp_port_bytes"] == 16


def test_text_output_labels_the_estimate(model, cifar10_root, csim_lib, capsys):
    csim_lib("sun-mars-256")
    rc = main(["run", "--backend", "csim", "--model", str(model), "--data", str(cifar10_root), "--limit", "4",
               "--board", "kv260", "--pl-mhz", "150"])
    out = capsys.readouterr().out
    assert rc == 0
    line = [l for l in out.splitlines() if "images/s on" in l]
    assert len(line) == 1 and LABEL in line[0] and "kv260" in line[0] and "150 MHz" in line[0]


def test_unknown_board_exits_2_before_work(model, cifar10_root, capsys):
    rc, err = run_json(["--model", str(model), "--data", str(cifar10_root), "--board", "zcu104"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "pynq-z2, kv260" in err


@pytest.mark.parametrize("mhz", ["0", "-100", "fast", "nan", "1e9"])
def test_bad_clock_exits_2(model, cifar10_root, capsys, mhz):
    with pytest.raises(SystemExit) as e:
        main(["run", "--backend", "csim", "--model", str(model), "--data", str(cifar10_root), "--pl-mhz", mhz])
    assert e.value.code == 2 and "--pl-mhz" in capsys.readouterr().err


def test_other_backends_report_no_board_estimate(model, cifar10_root, capsys):
    rc = main(["run", "--backend", "emulator", "--model", str(model), "--data", str(cifar10_root), "--limit", "4",
               "--reference", "none", "--json"])
    d = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and "est_board_images_per_s" not in d and "kernel_cycles" not in d
