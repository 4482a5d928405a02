"""Bias correction of skipped work (hybridcim.calibrate.bias): hand-computed corrections, network
order, the error it removes, its place in the calibrator's state and output."""
import json

import numpy as np
import pytest

from hybridcim.calibrate import Calibrator, Evaluator, hybrid_program
from hybridcim.calibrate.bias import apply_bias_correction, measure_bias_correction, rne_div
from hybridcim.emulator import FastEmulator, ReferenceEmulator
from hybridcim.program.builder import ProgramBuilder
from hybridcim.program.hybrid import HybridParams
from hybridcim.spec import get_preset

KW = dict(sens_images=20, emulator="reference")


@pytest.mark.parametrize("s, n, q", [(10, 4, 2), (14, 4, 4), (-10, 4, -2), (-14, 4, -4), (9, 4, 2), (7, 4, 2),
                                     (11, 4, 3), (0, 7, 0), (-9, 4, -2), (48 + 16 + 32, 4, 24)])
def test_rne_div(s, n, q):
    assert rne_div(s, n) == q


def skip_program(bias=(0, 0)):
    """1x1 conv over 16 channels of 4-bit input, two 2-bit filters (+1 everywhere, −1 everywhere),
    one static level (D, E) = (3, 3): pairs of depth (1 − j) + (3 − i) >= 3 are skipped."""
    b = ProgramBuilder(get_preset("tiny-64"), name="skip-demo")
    x = b.input("x", channels=16, height=1, width=1, bits=4, exponent=0)
    w = np.stack([np.ones((16, 1, 1), np.int64), -np.ones((16, 1, 1), np.int64)])
    b.conv("c", x, w, precision=[2, 2], shift=[0, 0], bias=list(bias), out_bits=16, clamp=(-32768, 32767),
           out_signed=True, hybrid=HybridParams(digital_depth=(3,), keep_depth=(3,), thresholds=(), sal_planes=2))
    return b.build()


def test_correction_of_a_skip_level_is_the_hand_computed_mean_skipped_sum():
    # filter +1 = 01b: only plane j = 0 (depth 4 − i), skipped for input planes i <= 1: x & 3 per row.
    # filter −1 = 11b: plane j = 1 weighs −2 (depth 3 − i, skipped for i = 0), plane j = 0 as above:
    # skipped (x & 3) − 2·(x & 1) per row. 16 equal rows per image, images x = 3, 12, 5, 6:
    # +1: 16·(3 + 0 + 1 + 2) / 4 = 24;  −1: 16·((3 − 2) + 0 + (1 − 2) + (2 − 0)) / 4 = 8.
    p = skip_program()
    imgs = np.array([3, 12, 5, 6], np.uint8).repeat(16).reshape(4, 16, 1, 1)
    corr = measure_bias_correction(p, imgs)
    assert {k: v.tolist() for k, v in corr.items()} == {"c": [24, 8]}
    q, applied = apply_bias_correction(p, corr)
    assert q.layers[0].bias.tolist() == [24, 8] and applied["c"].tolist() == [24, 8]
    # the corrected program is the program built with those biases, and its mean accumulator error is 0
    assert q.layers[0].bias.tolist() == skip_program((24, 8)).layers[0].bias.tolist()
    hyb = ReferenceEmulator(q).run(imgs).outputs.reshape(4, 2)
    dig = imgs[:, 0, 0, 0].astype(np.int64)[:, None] * 16 * np.array([1, -1])
    assert (hyb - dig).sum(axis=0).tolist() == [0, 0]
    # a fifth image x = 1 adds 16 and 16·(1 − 2): 112 / 5 = 22.4 -> 22, 16 / 5 = 3.2 -> 3
    imgs5 = np.array([3, 12, 5, 6, 1], np.uint8).repeat(16).reshape(5, 16, 1, 1)
    assert measure_bias_correction(p, imgs5)["c"].tolist() == [22, 3]


def test_correction_is_measured_in_network_order(tiny):
    """The logits layer's correction is measured on the hidden layer's *corrected* outputs: it is
    the mean of (digital − hybrid logits accumulator) over the network whose hidden layer already
    has its corrected bias (logits: shift 0, no clamp, so the logits are accumulator + bias)."""
    p, imgs, _ = tiny
    a = {"hidden": ((), (3,), (3,)), "logits": ((), (4,), (4,))}
    corr = measure_bias_correction(hybrid_program(p, a, 2), imgs)
    assert corr["hidden"].any() and corr["logits"].any()
    fix_hidden = {"hidden": corr["hidden"]}
    first, _ = apply_bias_correction(hybrid_program(p, a, 2), fix_hidden)  # logits hybrid, uncorrected
    mixed, _ = apply_bias_correction(hybrid_program(p, {"hidden": a["hidden"]}, 2), fix_hidden)  # logits digital
    lost = (ReferenceEmulator(mixed).run(imgs).outputs - ReferenceEmulator(first).run(imgs).outputs).sum(axis=0)
    assert corr["logits"].tolist() == [rne_div(int(s), len(imgs)) for s in lost]
    plain = hybrid_program(p, {"hidden": a["hidden"]}, 2)  # the same with the hidden layer uncorrected
    lost0 = (ReferenceEmulator(plain).run(imgs).outputs
             - ReferenceEmulator(hybrid_program(p, a, 2)).run(imgs).outputs).sum(axis=0)
    assert corr["logits"].tolist() != [rne_div(int(s), len(imgs)) for s in lost0]


@pytest.mark.parametrize("seed", [11, 12])
def test_correction_reduces_the_mean_output_error_on_random_data(seed):
    """Two hybrid convs (skipping) on random weights and inputs: the corrected program's mean output
    error vs digital mode (overall and per filter) is far smaller, on the images the correction was
    measured on and on other images. (The mean *absolute* error need not fall: where ReLU clamps a
    digital output to 0, the uncorrected output was 0 too.)"""
    rng = np.random.default_rng(seed)
    b = ProgramBuilder(get_preset("tiny-64"), name="bias-random")
    x = b.input("x", channels=48, height=4, width=4, bits=4, exponent=0)
    h = b.conv("c1", x, rng.integers(-8, 8, (24, 48, 3, 3)), precision=[4] * 24, shift=[5] * 24,
               bias=rng.integers(0, 600, 24).tolist(), pad=1, out_bits=8)
    b.conv("c2", h, rng.integers(-8, 8, (16, 24, 1, 1)), precision=[4] * 16, shift=[4] * 16,
           bias=rng.integers(0, 1500, 16).tolist(), out_bits=8)
    p = b.build()
    imgs = (rng.random((60, 48, 4, 4)) ** 2 * 16).astype(np.uint8)
    prog = hybrid_program(p, {"c1": ((), (4,), (4,)), "c2": ((), (4,), (4,))}, 2)
    fixed, _ = apply_bias_correction(prog, measure_bias_correction(prog, imgs[:30]))
    dig = FastEmulator(p).run(imgs).outputs.astype(np.int64)
    err0 = FastEmulator(prog).run(imgs).outputs - dig
    err1 = FastEmulator(fixed).run(imgs).outputs - dig
    for e0, e1 in ((err0[:30], err1[:30]), (err0[30:], err1[30:])):  # images measured on, and other images
        assert abs(e1.mean()) < 0.25 * abs(e0.mean())
        per_filter0, per_filter1 = np.abs(e0.mean(axis=(0, 1, 2))), np.abs(e1.mean(axis=(0, 1, 2)))
        assert per_filter1.mean() < 0.5 * per_filter0.mean()


def test_calibrator_with_correction_state_keys_and_result(tiny, tmp_path):
    p, imgs, labels = tiny
    state = tmp_path / "s.json"
    res = Calibrator(p, imgs, labels, state_path=state, bias_correction=True, **KW).run(20.0)
    d = res.as_dict()
    assert d["bias_correction"] is True and res.assignment
    keys = json.loads(state.read_text())["evals"]
    assert any(":bc:" in k for k in keys)
    assert all(":bc:" in k for k in keys if k.startswith("full:"))
    # the result program carries the stored corrections, and measuring it again gives the stored run
    for name, corr in res.bias.items():
        layer = next(l for l in res.program.layers if l.name == name)
        base = next(l for l in p.layers if l.name == name)
        assert (layer.bias.astype(np.int64) - base.bias).tolist() == corr
    assert set(d["bias_delta"]) == set(res.bias)
    ev = Evaluator(p, imgs, labels, emulator="reference").run_program(res.program)
    assert (ev.correct, ev.agree) == (res.evaluation.correct, res.evaluation.agree)
    # an uncorrected calibration on the same state reuses none of the corrected full-network runs
    cal = Calibrator(p, imgs, labels, state_path=state, bias_correction=False, **KW)
    res0 = cal.run(20.0)
    assert res0.as_dict()["bias_correction"] is False and res0.bias == {}
    assert any(k.startswith("full:") and ":bc:" not in k for k in json.loads(state.read_text())["evals"])


def test_cli_bias_correction_flag(tiny, tmp_path, monkeypatch, capsys):
    from hybridcim.cli.main import main
    from hybridcim.program import read_program, write_program
    p, imgs, labels = tiny
    src = tmp_path / "tiny.cim"
    write_program(p, src)
    monkeypatch.setattr("hybridcim.data.calibration_split", lambda root=None, limit=None: (imgs[:limit], labels[:limit]))
    out = tmp_path / "bc.cim"
    rc = main(["calibrate", str(src), "--max-loss", "20", "-o", str(out), "--sens-images", "20", "--emulator",
               "reference", "--bias-correction", "--report-json", str(tmp_path / "bc.json")])
    text = capsys.readouterr().out
    point = json.loads((tmp_path / "bc.json").read_text())
    assert rc == 0 and "bias correction on" in text and point["bias_correction"] is True and point["bias_delta"]
    q = read_program(out)
    for name, corr in point["bias_delta"].items():
        got = next(l for l in q.layers if l.name == name).bias.astype(np.int64)
        assert (got - next(l for l in p.layers if l.name == name).bias).tolist() == corr
    rc = main(["calibrate", str(src), "--max-loss", "20", "-o", str(tmp_path / "plain.cim"), "--sens-images", "20",
               "--emulator", "reference", "--report-json", str(tmp_path / "plain.json")])
    assert rc == 0 and "bias correction off" in capsys.readouterr().out  # the default
    assert json.loads((tmp_path / "plain.json").read_text())["bias_correction"] is False
