"""``hybridcim compare`` (search/compare.py): the figures are a search candidate's (fast emulator ==
reference emulator, priced by the same cost model), changes are against the baseline row, and the
command checks its inputs before any work."""
import json

import numpy as np
import pytest

from hybridcim.cli.cmd_compare import parse_entry
from hybridcim.cli.main import main
from hybridcim.cost import load_cost_preset
from hybridcim.search.compare import DUALNET_PAPER, comparison, markdown_table, measure
from hybridcim.search.evaluators import program_objectives
from hybridcim.search.supernet import run_program
from hybridcim.zoo.fuzz import small_dual_program


def _program(ratio: int):
    """8-bit 3x8x8 image -> INT4 conv -> conv (dual at ``ratio``, threshold 8) -> avgpool -> fc (10 logits)."""
    return small_dual_program(ratio)


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (6, 3, 8, 8), dtype=np.uint8), rng.integers(0, 10, 6)


def test_figures_are_the_reference_emulators_priced_by_the_cost_model(batch):
    images, labels = batch
    preset = load_cost_preset("dcim-28nm")
    for ratio in (0, 4, 8):
        prog = _program(ratio)
        got = measure(f"q{ratio}", prog, images, labels, preset, backend="numpy")
        logits, counters, name = run_program(prog, images, "reference")
        want = program_objectives(prog, logits, counters, labels, preset)
        assert name == "reference" and got.images == 6 and got.dual_layers == (ratio > 0)
        assert (got.accuracy, got.energy_uj, got.memory_kib, got.latency_us) == \
            (want["accuracy"], want["energy_uj"], want["memory_kib"], want["latency_us"])


def test_changes_are_against_the_baseline_and_the_table_quotes_the_paper(batch):
    images, labels = batch
    preset = load_cost_preset("dcim-28nm")
    rows = [measure(f"q{q}", _program(q), images, labels, preset, backend="numpy") for q in (0, 8)]
    rec = comparison(rows, "q0")
    base, dual = rec["rows"]
    assert base["change"] == {"accuracy_pp": 0.0, "energy_uj": 0.0, "memory_kib": 0.0, "latency_us": 0.0}
    for k in ("energy_uj", "memory_kib", "latency_us"):
        assert dual["change"][k] == pytest.approx(dual[k] / base[k] - 1, abs=1e-12)
    assert dual["memory_kib"] < base["memory_kib"]  # 2 cells per ternary weight against 4-bit SRAM weights
    table = markdown_table(rec)
    assert "| q0 (baseline) |" in table and f"{100 * DUALNET_PAPER['memory_kib']:+.1f} %" in table
    assert table.count("\n") == 5  # header, rule, two rows, the paper
    with pytest.raises(ValueError, match="baseline 'int4' must name exactly one of"):
        comparison(rows, "int4")
    with pytest.raises(ValueError, match="same images"):
        comparison([rows[0], measure("few", _program(8), images[:2], labels[:2], preset, backend="numpy")], "q0")


def test_entries_take_a_label_or_name_themselves():
    assert parse_entry("int4=runs/int4/model/model.cim") == ("int4", "runs/int4/model/model.cim")
    assert parse_entry("models/resnet20-dualnet/model.cim") == ("resnet20-dualnet", "models/resnet20-dualnet/model.cim")
    assert parse_entry("resnet20-w4a4-p50") == ("resnet20-w4a4-p50", "resnet20-w4a4-p50")
    with pytest.raises(ValueError, match="expected LABEL=PROGRAM"):
        parse_entry("=x.cim")


def test_command_writes_the_record_and_refuses_bad_input(tmp_path, cifar10_root, capsys):
    out = tmp_path / "cmp.json"
    md = tmp_path / "cmp.md"
    assert main(["compare", "w4=resnet20-w4a4-p50", "resnet20-w8a8-ptq", "--data", str(cifar10_root),
                 "--limit", "8", "--backend", "numpy", "--json", str(out), "--markdown", str(md)]) == 0
    rec = json.loads(out.read_text())
    assert rec["baseline"] == "w4" and rec["images"] == 8 and [r["label"] for r in rec["rows"]] == \
        ["w4", "resnet20-w8a8-ptq"]
    assert rec["rows"][1]["change"]["memory_kib"] > 0  # 8-bit weights take more cells than 4-bit ones
    assert md.read_text() == capsys.readouterr().out
    for argv, msg in ((["a=resnet20-w4a4-p50", "a=resnet20-w8a8-ptq"], "row labels must differ"),
                      (["resnet20-w4a4-p50", "no-such-model"], "model 'no-such-model' not found"),
                      (["resnet20-w4a4-p50", "--cost-preset", "nope"], "nope")):
        assert main(["compare", *argv, "--data", str(cifar10_root), "--limit", "1"]) == 2
        assert msg in capsys.readouterr().err


def test_calibration_split_scores_the_images_the_search_scored(tmp_path, cifar10_root):
    """--split calibration runs the first N calibration images (training records 45,000…), the ones a
    dual-supernet search with images: N scores candidates on; the record says which split."""
    from hybridcim.data import calibration_split
    from hybridcim.models import resolve_model
    from hybridcim.program import read_program
    out = tmp_path / "cal.json"
    assert main(["compare", "resnet20-w4a4-p50", "--data", str(cifar10_root), "--split", "calibration",
                 "--limit", "6", "--backend", "numpy", "--json", str(out)]) == 0
    rec = json.loads(out.read_text())
    images, truth = calibration_split(cifar10_root, 6)
    want = measure("x", read_program(resolve_model("resnet20-w4a4-p50")), images, truth,
                   load_cost_preset("dcim-28nm"), "numpy")
    assert rec["split"] == "calibration" and rec["images"] == 6
    assert rec["rows"][0]["accuracy"] == want.accuracy and rec["rows"][0]["energy_uj"] == want.energy_uj
