"""``run`` / ``emulate`` / ``info --json`` name a program with dual-path layers (architecture.md §10)
"dual-path", not "digital": the mode line, the JSON ``mode`` and its ``dual_layers``."""
import json

import numpy as np
import pytest

from hybridcim.cli._hybrid import histogram_text, hybrid_summary, program_mode
from hybridcim.cli.main import main
from hybridcim.program import read_program, write_program
from hybridcim.program.builder import ProgramBuilder
from hybridcim.program.dualpath import DualPathParams
from hybridcim.spec import get_preset


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def dual_cifar(tmp_path_factory):
    """32x32x3 in, 10 logits out on tiny-64-dual: maxpool 4x4 -> dual-path conv (q = 3: 3 of 8 filters
    ternary, threshold 128) -> global avgpool -> fc (digital)."""
    rng = np.random.default_rng(1)
    b = ProgramBuilder(get_preset("tiny-64-dual"), name="small-dual")
    x = b.input("x", channels=3, height=32, width=32)
    p = b.maxpool("pool0", x, k=4)
    w = rng.integers(-8, 8, size=(8, 3, 3, 3))
    w[5:] = np.clip(w[5:], -1, 1)
    c = b.conv("conv", p, w, precision=[4] * 5 + [0] * 3, shift=[8] * 5 + [2] * 3, pad=1, out_bits=4,
               dual=DualPathParams(3, 128))
    a = b.avgpool("gap", c)
    b.fc("fc", a, rng.integers(-8, 8, size=(10, 8)), precision=[4] * 10, shift=[0] * 10, logits=True)
    return write_program(b.build(), tmp_path_factory.mktemp("d") / "model.cim")


def test_the_mode_of_a_dual_program_is_dual_path(dual_demo_program):
    prog = read_program(dual_demo_program)
    assert program_mode(prog) == "dual-path"
    assert histogram_text(prog, None) == "mode: dual-path (1 of 2 CIM layers)"
    s = hybrid_summary(prog, None)
    assert s["mode"] == "dual-path" and s["dual_layers"] == ["c1"] and s["boundary_histogram"] is None


def test_info_json_says_dual_path(dual_demo_program, capsys):
    assert main(["info", str(dual_demo_program), "--json"]) == 0
    assert last_json(capsys.readouterr().out)["mode"] == "dual-path"


def test_run_and_emulate_say_dual_path(dual_cifar, cifar10_root, capsys):
    args = ["--data", str(cifar10_root), "--limit", "2"]
    assert main(["run", "--backend", "emulator", "--model", str(dual_cifar), "--reference", "emulator", *args]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "mode: dual-path (1 of 2 CIM layers)" in out and not any(l.startswith("mode: digital") for l in out)
    assert main(["run", "--backend", "emulator", "--model", str(dual_cifar), "--reference", "emulator", *args,
                 "--json"]) == 0
    d = last_json(capsys.readouterr().out)
    assert d["mode"] == "dual-path" and d["dual_layers"] == ["conv"] and d["hybrid_layers"] == []
    assert main(["emulate", str(dual_cifar), *args, "--json"]) == 0
    d = last_json(capsys.readouterr().out)
    assert d["mode"] == "dual-path" and d["dual_layers"] == ["conv"]
