"""``hybridcim run``: JSON report, exit status, clear errors for missing pieces."""
import json

import numpy as np
import pytest

from hybridcim.cli.main import main
from hybridcim.program import write_program
from hybridcim.zoo import random_resnet20


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_program(random_resnet20("sun-mars-256", seed=0), tmp_path_factory.mktemp("m") / "model.cim")


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_csim_backend_json(model, cifar10_root, csim_lib, capsys):
    csim_lib("sun-mars-256")
    rc = main(["run", "--backend", "csim", "--model", str(model), "--data", str(cifar10_root), "--limit", "40",
               "--batch-size", "16", "--json"])
    d = last_json(capsys.readouterr().out)
    assert rc == 0
    assert d["images"] == 40 and d["agree"] == 40 and d["backend"] == "csim" and d["model"] == str(model)
    assert 0 <= d["accuracy"] <= 1 and d["images_per_s"] > 0 and d["reference"] == "emulator"


def test_emulator_backend_without_reference(model, cifar10_root, capsys):
    rc = main(["run", "--backend", "emulator", "--model", str(model), "--data", str(cifar10_root), "--limit", "8",
               "--reference", "none", "--json"])
    d = last_json(capsys.readouterr().out)
    assert rc == 0 and d["agree"] is None and d["images"] == 8


def test_emulator_backend_default_reference_is_brevitas(model, cifar10_root, capsys):
    # a random program has no exported Brevitas model: a clear error, no silent fallback
    rc = main(["run", "--backend", "emulator", "--model", str(model), "--data", str(cifar10_root), "--limit", "8"])
    err = capsys.readouterr().err
    assert rc == 2 and "brevitas" in err.lower() and "--reference none" in err


def test_disagreement_exits_non_zero(model, cifar10_root, capsys, monkeypatch):
    from hybridcim.cli import cmd_run
    real = cmd_run._reference

    class OffByOne:  # a reference that disagrees on the second image
        def __init__(self, ref):
            self.ref = ref

        def run(self, x):
            return self.ref.run(x) + (np.arange(len(x))[:, None] == 1)

    monkeypatch.setattr(cmd_run, "_reference", lambda *a: OffByOne(real(*a)))
    rc = main(["run", "--backend", "emulator", "--model", str(model), "--data", str(cifar10_root), "--limit", "4",
               "--reference", "emulator", "--json"])
    d = last_json(capsys.readouterr().out)
    assert rc == 1 and d["agree"] == 3 and d["mismatched_images"] == [1]


def test_pynq_backend_off_board(model, cifar10_root, capsys):
    rc = main(["run", "--backend", "pynq", "--model", str(model), "--data", str(cifar10_root), "--limit", "4"])
    err = capsys.readouterr().err
    assert rc == 2 and "error: no bitstream for board 'pynq-z2'" in err and "HYBRIDCIM_BITSTREAMS" in err
    assert len(err.strip().splitlines()) == 1


def test_missing_model_is_named(cifar10_root, capsys):
    rc = main(["run", "--backend", "emulator", "--model", "no-such-model", "--data", str(cifar10_root)])
    assert rc == 2 and "no-such-model" in capsys.readouterr().err


def test_zoo_model_runs_against_the_emulator(cifar10_root, capsys):
    rc = main(["run", "--backend", "emulator", "--model", "zoo:resnet20-random", "--data", str(cifar10_root),
               "--limit", "8", "--json"])
    d = last_json(capsys.readouterr().out)
    assert rc == 0 and d["reference"] == "emulator" and d["agree"] == 8 and d["model"] == "zoo:resnet20-random"


@pytest.mark.parametrize("argv, says", [
    (["--model", "zoo:no-such-net"], "unknown zoo program 'no-such-net'"),
    (["--model", "zoo:resnet20-random", "--reference", "brevitas"], "has no Brevitas model"),
    (["--model", "zoo:resnet20-random", "--reference", "qonnx"], "has no QONNX model"),
])
def test_zoo_model_refusals(cifar10_root, capsys, argv, says):
    rc = main(["run", "--backend", "emulator", "--data", str(cifar10_root), "--limit", "2", *argv])
    assert rc == 2 and says in capsys.readouterr().err


def test_qonnx_reference_needs_an_exported_model(model, cifar10_root, capsys):
    rc = main(["run", "--backend", "emulator", "--model", str(model), "--data", str(cifar10_root), "--limit", "2",
               "--reference", "qonnx"])
    assert rc == 2 and "no exported QONNX model beside" in capsys.readouterr().err


def test_qonnx_reference_on_a_shipped_model(cifar10_root, capsys):
    pytest.importorskip("qonnx")
    from hybridcim.models import PREFERENCE, available_models
    name = next(n for n in reversed(PREFERENCE) if n in available_models())  # the smallest shipped model
    rc = main(["run", "--backend", "emulator", "--model", name, "--data", str(cifar10_root), "--limit", "3",
               "--reference", "qonnx", "--json"])
    d = last_json(capsys.readouterr().out)
    assert rc == 0 and d["reference"] == "qonnx" and d["images"] == d["agree"] == 3
