"""The calibrated hybrid programs shipped beside resnet20-w4a4-p50 and resnet20-w8a8-ptq: each loads, is its
model's weights with hybrid level tables, and its hybrid.json tells the truth (tables, energy, a test sample)."""
import json

import numpy as np
import pytest

from hybridcim.calibrate import digital_version
from hybridcim.cost import cost
from hybridcim.data import Cifar10
from hybridcim.emulator import FastEmulator
from hybridcim.models import MODELS_DIR
from hybridcim.program import read_program
from hybridcim.program.codec import encode

SAMPLE = 20


@pytest.fixture(scope="module", params=["resnet20-w4a4-p50", "resnet20-w8a8-ptq"])
def shipped(request):
    folder = MODELS_DIR / request.param
    facts = json.loads((folder / "hybrid.json").read_text())
    return read_program(folder / facts["program"]), read_program(folder / "model.cim"), facts, folder


def test_files_ship_with_the_package(shipped):
    _, _, facts, folder = shipped
    assert facts["program"] == "model-hybrid.cim" and "hybrid" in facts["program"]
    assert (folder / "model-hybrid.cim").is_file() and (folder / "model-hybrid.cim.json").is_file()
    assert facts["from"] == "model.cim"


def test_same_weights_hybrid_tables_as_recorded(shipped):
    hyb, base, facts, _ = shipped
    assert encode(digital_version(hyb)) == encode(base)  # only the layer modes and hybrid sections differ
    got = {l.name: {"thresholds": list(l.hybrid.thresholds), "digital_depth": list(l.hybrid.digital_depth),
                    "keep_depth": list(l.hybrid.keep_depth)} for l in hyb.layers if l.mode == 1}
    assert got == facts["calibration"]["layers"] and got
    assert all(l.hybrid.noise_pairs == 0 for l in hyb.layers if l.mode == 1)  # noise off as shipped
    assert hyb.preset.name == base.preset.name


def test_test_sample_and_energy(shipped, cifar10_root):
    hyb, base, facts, _ = shipped
    x, y = Cifar10(cifar10_root, "test").read(0, SAMPLE)
    r = FastEmulator(hyb).run(x, image_base=0)
    top = r.outputs.argmax(axis=1)
    assert top.tolist() == facts["test_sample"]["top1"]
    assert int((top == y).sum()) == facts["test_sample"]["correct"]
    d = FastEmulator(base).run(x)
    gain = cost(base, d.counters, facts["cost_preset"]).energy_macro_pj / \
        cost(hyb, r.counters, facts["cost_preset"]).energy_macro_pj
    assert gain == pytest.approx(facts["test_sample"]["macro_gain"], rel=1e-9)
    assert gain > 1.0 and np.mean(top == d.outputs.argmax(axis=1)) >= 0.9
