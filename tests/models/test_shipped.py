"""Every shipped model: its card tells the truth, and every executor agrees exactly on it.

Default run: a sample of real CIFAR-10 test images (emulator == Brevitas reference,
csim == emulator). Slow run: the whole test set, and the card's accuracy re-measured.
"""
import json

import numpy as np
import pytest

from hybridcim.compiler.report import program_compression
from hybridcim.data import Cifar10
from hybridcim.emulator import FastEmulator
from hybridcim.models import MODELS_DIR, available_models
from hybridcim.program import read_program

MODELS = available_models()
SAMPLE = 200


def load(name):
    folder = MODELS_DIR / name
    return folder, read_program(folder / "model.cim"), json.loads((folder / "card.json").read_text())


def test_at_least_one_model_is_shipped():
    assert MODELS, f"no shipped model under {MODELS_DIR}"


def compression_from_integer_model(folder, prog):
    """(avg bits, structural sparsity) counted from the integer model's own weights, not the program's
    tables: a unit (row block x column group) is pruned when all its integer weights are zero; the
    program supplies only which filters share a group. A dual-path layer's ternary filters (the rows
    of ``tern_weight``, precision 0) are stored by the ternary macros: not pruned, not in avg bits."""
    from hybridcim.compiler import load_integer_model
    im = load_integer_model(folder)
    a = prog.preset.rows_active
    bits = stored = total = pruned = 0
    for layer in prog.layers:
        if not layer.op.is_cim:
            continue
        w = im.array(layer.name, "weight").astype(np.int64)
        prec = im.array(layer.name, "precision").astype(np.int64)
        wm = w.transpose(0, 2, 3, 1).reshape(len(w), -1)  # (F, K) rows in (kh, kw, C) order
        k = wm.shape[1]
        bits, stored, total = bits + int(prec.sum()) * k, stored + int((prec > 0).sum()) * k, total + wm.size
        n_tern = len(im.array(layer.name, "tern_weight")) if layer.dual is not None else 0
        pruned += (int((prec == 0).sum()) - n_tern) * k
        for row in layer.col_filter:
            fs = sorted(set(int(f) for f in row if f >= 0 and prec[f] > 0))
            for b in range(0, k, a):
                if fs and not wm[fs, b:b + a].any():
                    pruned += len(fs) * min(a, k - b)
    return bits / stored, pruned / total


def budget_bits(prog, cfg) -> float:
    """Average bits over the filters the precision budget governs: every stored SRAM filter, but not the
    first and last CIM layers' when the config fixes them (``fixed_first_last``: 8-bit stem and fc)."""
    cim = [l for l in prog.layers if l.op.is_cim]
    if cfg.precision.fixed_first_last:
        cim = cim[1:-1]
    bits = sum(int(l.precision.astype(np.int64).sum()) * l.k_rows for l in cim)
    stored = sum(int((l.precision > 0).sum()) * l.k_rows for l in cim)
    return bits / stored


@pytest.mark.parametrize("name", MODELS)
def test_card_matches_program(name):
    from hybridcim.train.config import load_config
    folder, prog, card = load(name)
    comp = program_compression(prog)
    cfg = load_config(folder / "config.yaml")  # the model's own budget: <= avg_bits, >= pruning target
    assert card["avg_bits"] == comp["avg_bits"] and budget_bits(prog, cfg) <= cfg.precision.avg_bits
    assert card["structural_sparsity"] == comp["structural_sparsity"] >= cfg.pruning.target
    bits, sparsity = compression_from_integer_model(folder, prog)
    assert bits == pytest.approx(card["avg_bits"], rel=1e-12)  # same count, different summation order
    assert sparsity == pytest.approx(card["structural_sparsity"], rel=1e-12)
    assert prog.preset.name == card["preset"]
    assert card.get("dual_layers", {}) == {l.name: {"ratio_eighths": l.dual.ratio_eighths,
                                                    "bin_threshold": l.dual.bin_threshold}
                                           for l in prog.layers if l.dual is not None}
    for f in ("integer_model.json", "integer_model.npz", "model.onnx", "config.yaml", "model.cim.json"):
        assert (folder / f).is_file(), f


def sample(root, n):
    return next(Cifar10(root, "test").batches(n, limit=n))


@pytest.mark.parametrize("name", MODELS)
def test_emulator_equals_brevitas_on_sample(name, cifar10_root):
    pytest.importorskip("brevitas")
    from hybridcim.train.reference import load_brevitas_reference
    folder, prog, _ = load(name)
    images, _ = sample(cifar10_root, SAMPLE)
    want = load_brevitas_reference(folder).run(images)
    got = FastEmulator(prog).run(images).outputs
    assert np.array_equal(got, want), f"{int((got != want).any(axis=1).sum())} of {SAMPLE} images differ"


@pytest.mark.parametrize("name", MODELS)
def test_qonnx_equals_emulator_on_sample(name, cifar10_root):
    pytest.importorskip("qonnx")
    from hybridcim.train.qonnx_export import run_qonnx
    folder, prog, _ = load(name)
    images, _ = sample(cifar10_root, 20)
    got = run_qonnx(folder / "model.onnx", images, prog.metadata["logit_exponent"])
    assert np.array_equal(got, FastEmulator(prog).run(images).outputs)


@pytest.mark.parametrize("name", MODELS)
def test_csim_equals_emulator_on_sample(name, cifar10_root, csim_lib):
    from hybridcim.runtime import CSimDevice, EmulatorDevice, Session
    folder, prog, _ = load(name)
    csim_lib(prog.preset.name)
    with CSimDevice(prog.preset) as dev, EmulatorDevice() as ref:
        dev.load(prog)
        ref.load(prog)
        rep = Session(dev, ref, show_progress=False).run_cifar10(cifar10_root, limit=SAMPLE)
    assert rep.images == SAMPLE and rep.agree == SAMPLE, rep.summary()


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_whole_test_set_all_executors(name, cifar10_root, csim_lib):
    pytest.importorskip("brevitas")
    from hybridcim.runtime import CSimDevice, EmulatorDevice, Session
    from hybridcim.train.reference import load_brevitas_reference
    folder, prog, card = load(name)
    with CSimDevice(prog.preset) as dev, EmulatorDevice() as emu:
        dev.load(prog)
        emu.load(prog)
        rep = Session(emu, load_brevitas_reference(folder), "brevitas", show_progress=False).run_cifar10(cifar10_root)
        assert rep.agree == rep.images == 10000, rep.summary()
        assert rep.correct == card["cifar10_test"]["correct"]
        rep = Session(dev, emu, show_progress=False).run_cifar10(cifar10_root)
        assert rep.agree == rep.images == 10000, rep.summary()


@pytest.mark.parametrize("name", MODELS)
def test_a_tampered_layer_is_named_against_brevitas(name, cifar10_root):
    """Negative case: one bias changed in the program -> the session names that layer as the first mismatch."""
    pytest.importorskip("brevitas")
    from hybridcim.runtime import EmulatorDevice, Session
    from hybridcim.train.reference import load_brevitas_reference
    folder, prog, _ = load(name)
    victim = next(l for l in prog.layers[1:] if l.op.is_cim and l.res_tensor is None)
    victim.bias = victim.bias + 1000
    with EmulatorDevice() as dev:
        dev.load(prog)
        rep = Session(dev, load_brevitas_reference(folder), "brevitas", show_progress=False).run_cifar10(
            cifar10_root, limit=20)
    assert rep.agree < rep.images and rep.first_mismatch is not None
    assert rep.first_mismatch.layer == victim.name
