"""hybridcim.calibrate on a tiny program (reference emulator): budget respected, resumable, clear errors."""
import json

import numpy as np
import pytest

from hybridcim.calibrate import CalibrationError, Calibrator, Evaluator, hybrid_program
from hybridcim.cim.hybrid import DEPTH_ALL
from hybridcim.cli.main import main
from hybridcim.cost import load_cost_preset
from hybridcim.emulator import ReferenceEmulator
from hybridcim.program import read_program, write_program
from hybridcim.program.builder import ProgramBuilder, make_hybrid
from hybridcim.program.hybrid import HybridParams
from hybridcim.spec import get_preset


KW = dict(sens_images=20, emulator="reference")


def accuracy_loss_pp(program, hybrid, images, labels):
    a = (ReferenceEmulator(program).run(images).outputs.argmax(1) == labels).mean()
    b = (ReferenceEmulator(hybrid).run(images).outputs.argmax(1) == labels).mean()
    return 100 * (a - b)


@pytest.mark.parametrize("budget", [0.0, 5.0, 20.0])
def test_budget_is_respected_and_energy_not_above_digital(tiny, budget):
    p, imgs, labels = tiny
    res = Calibrator(p, imgs, labels, **KW).run(budget)
    assert res.loss_pp <= budget + 1e-9
    assert accuracy_loss_pp(p, res.program, imgs, labels) == pytest.approx(res.loss_pp)  # re-measured independently
    assert res.energy_pj <= res.energy_digital_pj and res.macro_pj <= res.macro_digital_pj
    if budget >= 5.0:
        assert res.assignment and res.macro_gain > 1.0  # something was worth skipping
        assert any(l.mode == 1 for l in res.program.layers)


def test_larger_budget_never_costs_more(tiny):
    p, imgs, labels = tiny
    cal = Calibrator(p, imgs, labels, **KW)
    energies = [cal.run(b).macro_pj for b in (0.0, 5.0, 20.0)]
    assert energies[0] >= energies[1] >= energies[2]


def test_dynamic_tables_use_measured_quantiles(tiny):
    p, imgs, labels = tiny
    cal = Calibrator(p, imgs, labels, **KW)
    cal.saliency_cdf()
    for layer in cal.layers:
        assert layer.cdf and all(0 <= f <= 1 for f in layer.cdf.values())
        t = cal.threshold(layer, 0.5)
        assert t is not None and 0 < layer.cdf[t] < 1
        chains = cal.chains(layer, skip=True, static=False)
        assert any(c[0][0] == (t,) for c in chains)  # a two-level chain split at t
        for chain in chains:
            for thr, d, e in chain:
                assert HybridParams(d, e, thr).problem(p.tensors[p.layers[layer.index].in_tensor].bits) is None


def test_static_mode_gives_one_level_tables(tiny):
    p, imgs, labels = tiny
    res = Calibrator(p, imgs, labels, **KW).run(20.0, static=True)
    assert res.assignment
    for t in res.assignment.values():
        assert t[0] == () and len(t[1]) == 1


def test_no_skip_with_a_dear_adc_stays_digital_and_cheap_adc_goes_analog(tiny):
    p, imgs, labels = tiny
    res = Calibrator(p, imgs, labels, **KW).run(20.0, skip=False)
    assert not res.assignment  # dcim-65nm: an analog read costs more than a digital one, so nothing is offered
    cheap = load_cost_preset("dcim-65nm").replace(adc_conversion_pj=0.001, analog_column_read_pj=0.001)
    res = Calibrator(p, imgs, labels, cheap, **KW).run(20.0, skip=False)
    assert res.assignment and res.macro_gain > 1.0
    assert all(e[-1] == DEPTH_ALL for _, _, e in res.assignment.values())  # nothing skipped


def test_resume_replays_cached_evaluations(tiny, tmp_path, monkeypatch):
    p, imgs, labels = tiny
    state = tmp_path / "state.json"
    full = Calibrator(p, imgs, labels, **KW).run(5.0)
    calls = {"n": 0}
    real = Evaluator.__call__

    def flaky(self, *a, **k):
        calls["n"] += 1
        if calls["n"] > 6:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(Evaluator, "__call__", flaky)
    with pytest.raises(KeyboardInterrupt):
        Calibrator(p, imgs, labels, state_path=state, **KW).run(5.0)
    saved = json.loads(state.read_text())
    assert len(saved["evals"]) == 6  # one atomic write per evaluation
    monkeypatch.setattr(Evaluator, "__call__", real)
    cal = Calibrator(p, imgs, labels, state_path=state, **KW)
    assert cal.state.loaded == 6
    res = cal.run(5.0)
    assert cal.n_cached >= 6 and res.assignment == full.assignment and res.loss_pp == full.loss_pp
    again = Calibrator(p, imgs, labels, state_path=state, **KW)
    assert again.run(5.0).assignment == full.assignment and again.n_evals == 0


def test_state_of_another_calibration_is_refused(tiny, tmp_path):
    p, imgs, labels = tiny
    state = tmp_path / "state.json"
    Calibrator(p, imgs, labels, state_path=state, **KW).run(0.0, static=True)
    with pytest.raises(CalibrationError, match="another calibration.*images"):
        Calibrator(p, imgs[:30], labels[:30], state_path=state, **KW)
    state.write_text("{not json")
    with pytest.raises(CalibrationError, match="not a valid JSON"):
        Calibrator(p, imgs, labels, state_path=state, **KW)


def test_bad_input(tiny):
    p, imgs, labels = tiny
    with pytest.raises(CalibrationError, match="dcim-28nm.*adc_conversion_pj"):
        Calibrator(p, imgs, labels, "dcim-28nm", **KW)
    with pytest.raises(CalibrationError, match="max-loss"):
        Calibrator(p, imgs, labels, **KW).run(-0.5)
    with pytest.raises(CalibrationError, match="max-loss"):
        Calibrator(p, imgs, labels, **KW).run(float("nan"))
    b = ProgramBuilder(get_preset("tiny-64"), name="all-pruned")
    x = b.input("x", channels=32, height=1, width=1, bits=4, exponent=0)
    b.fc("logits", x, np.zeros((4, 32), np.int64), precision=[0] * 4, shift=[0] * 4, logits=True)
    with pytest.raises(CalibrationError, match="no conv/fc layer that can run in hybrid mode"):
        Calibrator(b.build(), imgs, labels, **KW)


def test_a_hybrid_program_is_calibrated_from_its_digital_version(tiny):
    p, imgs, labels = tiny
    h = make_hybrid(p, HybridParams.static(0, 0))
    a = Calibrator(p, imgs, labels, **KW).run(5.0)
    b = Calibrator(h, imgs, labels, **KW).run(5.0)
    assert a.assignment == b.assignment and a.digital.correct == b.digital.correct


def test_cli(tiny, tmp_path, monkeypatch, capsys):
    p, imgs, labels = tiny
    src = tmp_path / "tiny.cim"
    write_program(p, src)
    monkeypatch.setattr("hybridcim.data.calibration_split", lambda root=None, limit=None: (imgs[:limit], labels[:limit]))
    out = tmp_path / "tiny-hybrid.cim"
    rc = main(["calibrate", str(src), "--max-loss", "5", "-o", str(out), "--sens-images", "20", "--emulator", "reference",
               "--report-json", str(tmp_path / "point.json")])
    text = capsys.readouterr().out
    assert rc == 0 and out.exists() and (tmp_path / "tiny-hybrid.cim.json").exists()
    assert "budget 5 pp" in text and "energy (dcim-65nm)" in text and "wrote" in text
    point = json.loads((tmp_path / "point.json").read_text())
    assert point["loss_pp"] <= 5 and point["mode"] == "dynamic" and point["skip"]
    q = read_program(out)
    assert {l.name for l in q.layers if l.mode == 1} == set(point["layers"])
    assert (tmp_path / "tiny-hybrid.cim.calib-state.json").exists()
    rc = main(["calibrate", str(src), "--max-loss", "5", "-o", str(out), "--sens-images", "20", "--emulator", "reference"])
    assert rc == 0 and "resuming from" in capsys.readouterr().out


@pytest.mark.parametrize("argv, msg", [
    (["--max-loss", "-1"], "must be a finite number >= 0"),
    (["--max-loss", "1", "--cost-preset", "dcim-28nm"], "no price for"),
    (["--max-loss", "1", "--images", "0"], "must be >= 1"),
])
def test_cli_errors(tiny, tmp_path, monkeypatch, capsys, argv, msg):
    p, imgs, labels = tiny
    src = tmp_path / "tiny.cim"
    write_program(p, src)
    monkeypatch.setattr("hybridcim.data.calibration_split", lambda root=None, limit=None: (imgs[:limit], labels[:limit]))
    with pytest.raises(SystemExit) if "must be" in msg else _nullcontext() as e:
        rc = main(["calibrate", str(src), "-o", str(tmp_path / "o.cim"), "--emulator", "reference"] + argv)
    err = capsys.readouterr().err
    assert msg in err and ("error" in err)
    assert not (tmp_path / "o.cim").exists()
    if "must be" not in msg:
        assert rc == 2


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_evaluator_matches_the_emulator(tiny):
    p, imgs, labels = tiny
    ev = Evaluator(p, imgs, labels, emulator="reference")
    a = {"hidden": ((), (3,), (3,))}
    got = ev(a)
    out = ReferenceEmulator(hybrid_program(p, a, 2)).run(imgs)
    assert got.correct == int((out.outputs.argmax(1) == labels).sum())
    assert [c.skipped_bitplanes for c in got.counters] == [c.skipped_bitplanes for c in out.counters]
    assert got.kl > 0 and ev.digital.kl == 0


def test_greedy_pass_never_breaks_the_budget_and_never_costs_energy(tiny):
    p, imgs, labels = tiny
    cal = Calibrator(p, imgs, labels, **KW)
    plain, greedy = cal.run(5.0, refine=0), cal.run(5.0, refine=8)
    assert greedy.loss_pp <= 5.0 and greedy.macro_pj <= plain.macro_pj
    assert all(isinstance(c["step"], int) for c in plain.checks)
    assert len([c for c in greedy.checks if str(c["step"]).startswith("greedy")]) <= 8
