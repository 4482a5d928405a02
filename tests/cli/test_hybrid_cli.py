"""``info`` / ``emulate`` / ``run`` on hybrid programs (architecture.md §9): each layer's mode, the
level tables, the boundary histogram (text and JSON), the reference a hybrid run is checked
against, and the global image index (``--offset``) given to every executor."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from hybridcim.cli._runs import ReferenceEmulatorDevice, index_runs
from hybridcim.cli.main import main
from hybridcim.data import Cifar10
from hybridcim.emulator import ReferenceEmulator

sys.path.insert(0, str(Path(__file__).parent))
from hybrid_programs import hybrid_program, small_program, write  # noqa: E402


@pytest.fixture(scope="module")
def hyb(tmp_path_factory):
    return write(hybrid_program(), tmp_path_factory.mktemp("h"))


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    return write(hybrid_program(noise=True), tmp_path_factory.mktemp("n"))


@pytest.fixture(scope="module")
def digital(tmp_path_factory):
    return write(small_program(), tmp_path_factory.mktemp("d"))


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def expected_histograms(path, root, start, n):
    """(per-layer decisions at each level, outputs) of the reference emulator on test images [start, start+n)."""
    from hybridcim.program import read_program
    prog = read_program(path)
    images, _ = Cifar10(root, "test").read(start, start + n)
    r = ReferenceEmulator(prog).run(images, image_base=start)
    hist = {l.name: c.boundary_histogram[:l.hybrid.n_levels] for l, c in zip(prog.layers, r.counters) if l.mode}
    return hist, r.outputs


# ------------------------------------------------------------------------------------------ info
def test_info_shows_modes_and_level_tables(hyb, capsys):
    assert main(["info", str(hyb)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].endswith("4 layers, 2 in hybrid mode")
    header = lines[1].split()
    assert header[:5] == ["#", "layer", "op", "mode", "output"]
    rows = {l.split()[1]: l.split() for l in lines[2:6]}
    assert rows["conv"][3] == "hybrid" and rows["fc"][3] == "hybrid" and rows["pool0"][3] == "8x8x3"
    assert "  layer 1 'conv': hybrid, 3 levels, saliency of the top 2 of 8 input planes, noise off" in lines
    assert "  layer 3 'fc': hybrid, 1 level, saliency of the top 1 of 4 input planes, noise off" in lines
    table = lines[lines.index("  layer 1 'conv': hybrid, 3 levels, saliency of the top 2 of 8 input planes, "
                              "noise off") + 1:][:4]
    # level 0 = (D, E) = (2, 6) over 8 input planes: a 2-bit filter's 16 pairs have depths 0..8, so 3 are
    # digital (d < 2), 8 analog (2 <= d < 6) and 5 skipped; an 8-bit filter's 64 pairs: 3 / 18 / 43
    assert table[1].split() == ["0", "0..39", "2", "6", "2b", "3/8/5", "4b", "3/15/14", "8b", "3/18/43"]
    assert table[2].split()[:4] == ["1", "40..119", "4", "15"]
    assert table[3].split()[:4] == ["2", ">=", "120", "15"]


def test_info_noise_line_states_sigma(noisy, capsys):
    assert main(["info", str(noisy)]) == 0
    # sigma = sqrt(16 / 2) * 2^3 / 16 counts (architecture.md §9.6)
    assert "noise pairs 16, shift 3, seed 5 (sigma 1.41 counts)" in capsys.readouterr().out


def test_info_json_modes_levels_and_null_data_counters(hyb, capsys):
    assert main(["info", str(hyb), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["mode"] == "hybrid"
    assert [l["mode"] for l in m["layers"]] == ["digital", "hybrid", "digital", "hybrid"]
    h = m["layers"][1]["hybrid"]
    assert h["n_levels"] == 3 and h["thresholds"] == [40, 120] and h["sal_planes"] == 2 and h["noise_pairs"] == 0
    assert [(r["digital_depth"], r["keep_depth"]) for r in h["levels"]] == [(2, 6), (4, 15), (15, 15)]
    assert (h["levels"][0]["saliency_min"], h["levels"][0]["saliency_max"]) == (0, 39)
    assert h["levels"][2]["saliency_max"] is None
    assert h["levels"][0]["pairs"]["8"] == {"digital": 3, "analog": 18, "skipped": 43}
    c = m["counters_per_image"][1]
    assert c["decisions_level0"] is None and c["analog_column_reads"] is None and c["saliency_ops"] > 0
    assert m["counters_per_image"][0]["decisions_level0"] == 0  # a pool decides nothing


def test_info_digital_program(digital, capsys):
    assert main(["info", str(digital)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("4 layers, all digital")
    assert [l.split()[3] for l in lines[2:6] if l.split()[2] in ("conv", "fc")] == ["digital", "digital"]
    assert not any("level" in l for l in lines)
    assert main(["info", str(digital), "--json"]) == 0


# --------------------------------------------------------------------------------------- emulate
def test_emulate_reference_histogram_json_and_text(hyb, cifar10_root, capsys):
    rc = main(["emulate", str(hyb), "--data", str(cifar10_root), "--limit", "6", "--batch-size", "4",
               "--emulator", "reference", "--json"])
    d = last_json(capsys.readouterr().out)
    hist, _ = expected_histograms(hyb, cifar10_root, 0, 6)
    assert rc == 0 and d["mode"] == "hybrid" and d["hybrid_layers"] == ["conv", "fc"] and d["emulator"] == "reference"
    assert d["boundary_histogram"]["layers"] == hist
    assert sum(hist["conv"]) == 6 * 64 * 5  # images x output pixels x column groups with a present unit
    assert d["boundary_histogram"]["total"] == [sum(h[k] for h in hist.values() if k < len(h)) for k in range(8)]
    assert d["cost_preset"] == "dcim-65nm" and d["energy_uj_per_image"] > 0  # the preset that prices the ADC
    rc = main(["emulate", str(hyb), "--data", str(cifar10_root), "--limit", "6", "--emulator", "reference"])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0 and out[1].startswith("mode: hybrid (2 of 2 CIM layers); boundary histogram")
    total = next(l for l in out if l.strip().startswith("total")).split()
    h = d["boundary_histogram"]["total"]
    assert total[1] == str(h[0]) and total[-1] == str(sum(h))


def test_emulate_fast_equals_reference_on_hybrid(hyb, cifar10_root, capsys):
    """The fast emulator runs hybrid layers: same histogram and accuracy as the reference emulator."""
    args = ["emulate", str(hyb), "--data", str(cifar10_root), "--limit", "6", "--json", "--backend", "numpy"]
    assert main(args) == 0
    fast = last_json(capsys.readouterr().out)
    assert main(args[:-2] + ["--emulator", "reference"]) == 0
    ref = last_json(capsys.readouterr().out)
    assert fast["emulator"] == "fast" and fast["boundary_histogram"] == ref["boundary_histogram"]
    assert fast["accuracy"] == ref["accuracy"] and fast["energy_uj_per_image"] == ref["energy_uj_per_image"]


def test_emulate_offset_passes_the_global_image_index(noisy, cifar10_root, capsys, monkeypatch):
    seen = []
    real = ReferenceEmulator.run

    def spy(self, images, trace=False, image_base=0):
        seen.append((len(images), image_base))
        return real(self, images, trace=trace, image_base=image_base)

    monkeypatch.setattr(ReferenceEmulator, "run", spy)
    rc = main(["emulate", str(noisy), "--data", str(cifar10_root), "--offset", "7", "--limit", "5",
               "--batch-size", "2", "--emulator", "reference", "--json"])
    d = last_json(capsys.readouterr().out)
    assert rc == 0 and d["offset"] == 7 and d["images"] == 5
    assert seen == [(2, 7), (2, 9), (1, 11)]


def test_emulate_digital_program_says_digital(digital, cifar10_root, capsys):
    assert main(["emulate", str(digital), "--data", str(cifar10_root), "--limit", "2", "--json"]) == 0
    d = last_json(capsys.readouterr().out)
    assert d["mode"] == "digital" and d["boundary_histogram"] is None and d["cost_preset"] == "dcim-28nm"


def test_emulate_hybrid_under_a_preset_without_adc_prices_fails_first(hyb, cifar10_root, capsys, monkeypatch):
    monkeypatch.setattr(ReferenceEmulator, "run", lambda *a, **k: pytest.fail("ran before the check"))
    rc = main(["emulate", str(hyb), "--data", str(cifar10_root), "--limit", "2", "--emulator", "reference",
               "--cost-preset", "dcim-28nm"])
    err = capsys.readouterr().err
    assert rc == 2 and "analog_column_read_pj" in err and "--cost-preset dcim-65nm" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("offset", ["-1", "x"])
def test_offset_must_be_a_non_negative_integer(hyb, offset, capsys):
    with pytest.raises(SystemExit) as e:
        main(["emulate", str(hyb), "--offset", offset])
    assert e.value.code == 2 and "--offset" in capsys.readouterr().err


def test_offset_past_the_split_is_refused(hyb, cifar10_root, capsys):
    rc = main(["emulate", str(hyb), "--data", str(cifar10_root), "--offset", "10001", "--emulator", "reference"])
    assert rc == 2 and "--offset 10001 is past the 10000 images" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- run
def test_run_hybrid_refuses_brevitas_and_qonnx(hyb, cifar10_root, capsys):
    for ref in ("brevitas", "qonnx"):
        rc = main(["run", "--model", str(hyb), "--data", str(cifar10_root), "--limit", "2", "--reference", ref])
        err = capsys.readouterr().err
        assert rc == 2 and "hybrid program" in err and "no ADC" in err and "--reference reference-emulator" in err


@pytest.fixture()
def emulator_device(monkeypatch):
    """The device under test: the fast emulator's Device when it loads hybrid programs, else (until it
    does) a reference-emulator Device, so the run path is exercised either way. Records image_base."""
    from hybridcim.runtime.emulator_device import EmulatorDevice
    import hybridcim.runtime as rt
    calls = []
    try:
        EmulatorDevice().load(hybrid_program())
        cls = EmulatorDevice
    except Exception:  # noqa: BLE001  (UnsupportedModeError until the device runs hybrid mode)
        cls = ReferenceEmulatorDevice

    class Recording(cls):
        def run(self, images, image_base=0):
            calls.append((len(images), image_base))
            return super().run(images, image_base=image_base)

    monkeypatch.setattr(rt, "open_device", lambda backend, preset, **kw: Recording())
    return calls


def test_run_hybrid_checks_against_the_reference_emulator(hyb, cifar10_root, capsys, emulator_device):
    rc = main(["run", "--model", str(hyb), "--data", str(cifar10_root), "--limit", "5", "--offset", "20",
               "--batch-size", "2", "--json"])
    d = last_json(capsys.readouterr().out)
    hist, _ = expected_histograms(hyb, cifar10_root, 20, 5)
    assert rc == 0 and d["reference"] == "reference-emulator" and d["agree"] == 5 and d["counters_agree"] is True
    assert d["mode"] == "hybrid" and d["boundary_histogram"]["layers"] == hist and d["offset"] == 20
    assert emulator_device == [(2, 20), (2, 22), (1, 24)]
    rc = main(["run", "--model", str(hyb), "--data", str(cifar10_root), "--limit", "3"])
    out = capsys.readouterr().out
    assert rc == 0 and "3/3 agree with reference-emulator" in out and "counters agree" in out
    assert "reference: the reference emulator (literal per-pair datapath" in out and "Brevitas has no ADC" in out
    assert "mode: hybrid (2 of 2 CIM layers); boundary histogram" in out


def test_run_hybrid_reference_emulator_is_capped_without_limit(hyb, cifar10_root, capsys, emulator_device):
    rc = main(["run", "--model", str(hyb), "--data", str(cifar10_root), "--offset", "9990", "--json"])
    cap = capsys.readouterr()
    assert rc == 0 and last_json(cap.out)["images"] == 8
    assert "checking test images 9990..9997 only; --limit N checks N" in cap.err


def test_run_hybrid_noisy_slice_equals_whole_run(noisy, cifar10_root, capsys, emulator_device):
    """With noise on, the device under test and the reference agree on a slice run in odd batches, and
    the device's outputs are the reference emulator's for those images at their global indices."""
    rc = main(["run", "--model", str(noisy), "--data", str(cifar10_root), "--limit", "5", "--offset", "3",
               "--batch-size", "3", "--json"])
    d = last_json(capsys.readouterr().out)
    assert rc == 0 and d["agree"] == 5 and d["counters_agree"] is True
    _, want = expected_histograms(noisy, cifar10_root, 3, 5)
    _, labels = Cifar10(cifar10_root, "test").read(3, 8)
    assert d["accuracy"] == float((want.argmax(1) == labels).mean())
    assert emulator_device == [(3, 3), (2, 6)]


def test_run_hybrid_without_hybrid_device_is_one_line(hyb, cifar10_root, capsys):
    """csim before the kernel runs hybrid mode, or any device that refuses it: one line, exit 2; a device
    that runs it agrees with the fast emulator."""
    from hybridcim.runtime.emulator_device import EmulatorDevice
    try:
        EmulatorDevice().load(hybrid_program())
    except Exception as e:  # noqa: BLE001
        rc = main(["run", "--model", str(hyb), "--data", str(cifar10_root), "--limit", "2"])
        err = capsys.readouterr().err
        assert rc == 2 and len(err.strip().splitlines()) <= 2 and "hybrid mode" in err, (e, err)
        assert err.strip().splitlines()[-1].startswith("hybridcim run: error: layer 1 ('conv')")
    else:
        rc = main(["run", "--model", str(hyb), "--data", str(cifar10_root), "--limit", "2", "--json"])
        assert rc == 0 and last_json(capsys.readouterr().out)["agree"] == 2


def test_index_runs_gives_each_batch_its_global_index(cifar10_root):
    prog = hybrid_program(noise=True)
    images, _ = Cifar10(cifar10_root, "test").read(40, 47)
    whole = ReferenceEmulator(prog).run(images, image_base=40).outputs
    dev = ReferenceEmulatorDevice()
    dev.load(prog)
    index_runs(dev, 40)
    parts = [dev.run(images[:3]), dev.run(images[3:4]), dev.run(images[4:])]
    assert np.array_equal(np.concatenate(parts), whole)
    assert not np.array_equal(ReferenceEmulator(prog).run(images, image_base=0).outputs, whole)  # noise keyed
    tensors = dev.trace(images[5:6])  # one image of the last batch: traced at its own index (45)
    assert np.array_equal(tensors[prog.tensors[prog.layers[-1].out_tensor].name].reshape(1, -1), whole[5:6])
    # a caller that counts the run's images itself (a Session) gives positions in the run: offset added
    dev2 = index_runs(ReferenceEmulatorDevice(), 40)
    dev2.load(prog)
    parts = [dev2.run(images[:2], image_base=0), dev2.run(images[2:], image_base=2)]
    assert np.array_equal(np.concatenate(parts), whole)
    out = dev2.trace(images[6:7], image_base=6)
    assert np.array_equal(out[prog.tensors[prog.layers[-1].out_tensor].name].reshape(1, -1), whole[6:7])
