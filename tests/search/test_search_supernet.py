"""The 'dual-supernet' evaluator on a tiny supernet trained here (tests/search/conftest.py): it runs, is
deterministic, ratio 0 everywhere is exactly the plain INT4 model, bad options and ratios are refused, and
a search with it resumes (and refuses a checkpoint that changed under it)."""
import json
import re
import shutil

import pytest

from hybridcim.search.evaluators import EvaluatorError, make_evaluator

pytest.importorskip("torch")

MIXED = [0, 2, 4, 6, 8, 8]  # the six dual layers of the tiny supernet, in network order


def _options(run, **kw):
    return {"run": str(run), "images": 16, "bn_images": 32, "bn_batch": 32, **kw}


@pytest.fixture(scope="module")
def ev(tiny_supernet, cifar10_root):
    return make_evaluator("dual-supernet", _options(tiny_supernet), str(cifar10_root))


@pytest.fixture(scope="module")
def figures(ev):
    """The evaluator's figures of the mixed candidate, then of ratio 0 everywhere (each evaluated once)."""
    return {"mixed": ev.evaluate(dict(zip(ev.layers(), MIXED))), "zero": ev.evaluate({l: 0 for l in ev.layers()})}


def test_evaluates_candidates_deterministically(ev, figures):
    layers = ev.layers()
    assert layers == ["s1b1_conv1", "s1b1_conv2", "s2b1_conv1", "s2b1_conv2", "s3b1_conv1", "s3b1_conv2"]
    mixed = dict(zip(layers, MIXED))
    a, zero = figures["mixed"], figures["zero"]
    assert set(a) == {"accuracy", "energy_uj", "memory_kib", "latency_us"} and 0 <= a["accuracy"] <= 1
    assert a == ev.evaluate(mixed)  # same candidate, same figures, after another candidate in between
    # (a fresh load reproduces a stored trial: test_search_resumes_and_refuses_a_changed_checkpoint)
    assert a["memory_kib"] != zero["memory_kib"] and a["latency_us"] != zero["latency_us"]
    prog = ev.program(mixed)
    assert {l.name: (l.dual.ratio_eighths if l.flags else 0) for l in prog.layers if l.name in mixed} == mixed
    assert [l.name for l in prog.layers if l.flags] == layers[1:]  # q = 0 is a plain INT4 layer: no dual section


def test_ratio_zero_everywhere_is_the_plain_int4_model(ev, figures):
    """The all-INT4 candidate == a plain (non-dual) model holding the supernet's INT4-path weights, with BN
    recalibrated on the same images: the same program image, the same accuracy, the same costs."""
    import torch

    from hybridcim.program import encode
    from hybridcim.search.evaluators import program_objectives
    from hybridcim.search.supernet import compile_dual, run_program
    from hybridcim.train.dualpath import recalibrate_bn
    from hybridcim.train.models import build_model
    from hybridcim.train.trainer import as_input
    zero = {l: 0 for l in ev.layers()}
    got = figures["zero"]
    cfg = ev.train_cfg
    plain = build_model(cfg.model.arch, **cfg.model.kwargs())  # no dual section: plain CIMConv2d layers
    dual_only = (".ratio", ".allowed", ".sample_step", ".sample_seed", ".sample_salt")
    plain.load_state_dict({k: v for k, v in ev._state.items() if ".tern." not in k and not k.endswith(dual_only)},
                          strict=True)
    recalibrate_bn(plain, ev.bn_batches)
    plain.eval()
    prog = compile_dual(plain, cfg.preset, cfg.name)
    assert not any(l.flags for l in prog.layers)
    assert encode(prog) == encode(ev.program(zero))
    logits, counters, _ = run_program(prog, ev.images)
    assert program_objectives(prog, logits, counters, ev.labels, ev.cost_preset) == got
    with torch.no_grad():  # and the trained model itself (float logits on the exact integer grid) agrees
        torch_logits = plain(as_input(torch.from_numpy(ev.images))).numpy()
    assert got["accuracy"] == float((torch_logits.argmax(1) == ev.labels).mean())


def test_refusals(ev, tiny_supernet, cifar10_root, tmp_path):
    layers = ev.layers()
    with pytest.raises(EvaluatorError, match="ratio 3 is outside the ratios the supernet was trained on"):
        ev.evaluate({**{l: 0 for l in layers}, layers[2]: 3})
    with pytest.raises(EvaluatorError, match="no dual-path layer 'stem'"):
        ev.evaluate({**{l: 0 for l in layers}, "stem": 0})
    with pytest.raises(EvaluatorError, match="no ratio for layer 's3b1_conv2'"):
        ev.evaluate({l: 0 for l in layers[:-1]})
    data = str(cifar10_root)
    with pytest.raises(EvaluatorError, match="unknown option 'bn_imgs'"):
        make_evaluator("dual-supernet", {"run": str(tiny_supernet), "bn_imgs": 4}, data)
    with pytest.raises(EvaluatorError, match="option 'run' is required"):
        make_evaluator("dual-supernet", {"images": 4}, data)
    with pytest.raises(EvaluatorError, match="'images' must be an integer 1..5000"):
        make_evaluator("dual-supernet", _options(tiny_supernet, images=0), data)
    with pytest.raises(EvaluatorError, match="'bn_images' \\(40\\) must be a multiple of 'bn_batch' \\(32\\)"):
        make_evaluator("dual-supernet", _options(tiny_supernet, bn_images=40), data)
    with pytest.raises(EvaluatorError, match="'executor' must be"):
        make_evaluator("dual-supernet", _options(tiny_supernet, executor="board"), data)
    with pytest.raises(EvaluatorError, match="no checkpoint at"):
        make_evaluator("dual-supernet", _options(tmp_path), data)
    import torch

    from hybridcim.train.checkpoint import save_checkpoint
    from hybridcim.train.export import model_from_checkpoint
    m, meta = model_from_checkpoint(tiny_supernet)
    with torch.no_grad():
        m.cim["s2b1_conv1"].tern.running_var[3] = float("nan")  # a diverged run
    (tmp_path / "nan").mkdir()
    save_checkpoint(tmp_path / "nan" / "checkpoint.safetensors", m, None, dict(meta))
    with pytest.raises(EvaluatorError, match="'cim.s2b1_conv1.tern.running_var' holds NaN .* the training diverged"):
        make_evaluator("dual-supernet", _options(tmp_path / "nan"), data)
    bad = tmp_path / "checkpoint.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(EvaluatorError, match=re.escape(str(bad)) + ": header of 16 bytes .* truncated"):
        make_evaluator("dual-supernet", _options(tmp_path), data)


def test_search_resumes_and_refuses_a_changed_checkpoint(tiny_supernet, cifar10_root, tmp_path, capsys):
    from search_support import load_trials, run_main

    from hybridcim.train.checkpoint import read_checkpoint, save_checkpoint
    run = tmp_path / "run"
    shutil.copytree(tiny_supernet, run)
    cfg = {"name": "sn", "evaluator": {"kind": "dual-supernet", "options": _options(run)},
           "space": {"ratios": [0, 4, 8], "fixed": {"s1b1_conv1": 0, "s1b1_conv2": 0, "s2b1_conv1": 0,
                                                    "s2b1_conv2": 0}},
           "objectives": ["accuracy", "energy_uj"], "sampler": {"population_size": 2, "seed": 1}, "trials": 3,
           "baselines": [{"name": "all INT4", "ratio": 0}]}
    path = tmp_path / "sn.json"
    path.write_text(json.dumps(cfg))
    out = tmp_path / "out"
    rc, _, err = run_main(capsys, path, "--out", out, "--data", cifar10_root, "--trials", "2")
    assert rc == 0, err
    first = [(t.params, t.values) for t in load_trials(out, "sn") if t.state.name == "COMPLETE"]
    assert len(first) == 2 and first[0][0] == {"s3b1_conv1": 0, "s3b1_conv2": 0}  # the baseline first
    rc, stdout, err = run_main(capsys, path, "--out", out, "--data", cifar10_root)
    assert rc == 0, err
    done = [(t.params, t.values) for t in load_trials(out, "sn") if t.state.name == "COMPLETE"]
    assert len(done) == 3 and done[:2] == first and "3 complete trials" in stdout
    ev = make_evaluator("dual-supernet", _options(run), str(cifar10_root))
    params, values = done[-1]  # the stored figures are what a fresh evaluator gives
    r = ev.evaluate({**cfg["space"]["fixed"], **params})
    assert [r["accuracy"], r["energy_uj"]] == values
    # the run's checkpoint replaced by another one (the same weights, another epoch record): refused
    tensors, meta = read_checkpoint(run / "checkpoint.safetensors")
    from hybridcim.train.models import build_model
    from hybridcim.train.config import config_from_dict
    from hybridcim.train.checkpoint import load_model_state
    c = config_from_dict(meta["config"])
    m = build_model(c.model.arch, **c.model_kwargs())
    load_model_state(m, tensors)
    save_checkpoint(run / "checkpoint.safetensors", m, None, {**meta, "epoch": meta["epoch"] + 1})
    rc, _, err = run_main(capsys, path, "--out", out, "--data", cifar10_root, "--trials", "4")
    assert rc == 2 and "checkpoint sha256" in err and "search a fixed copy of the checkpoint" in err


def test_numpy_only_import_does_not_load_torch():
    import subprocess
    import sys
    code = ("import sys; sys.modules['torch'] = None\n"
            "from hybridcim.search import evaluators\n"
            "import hybridcim.search.kendall, hybridcim.search.finetune\n"
            "try:\n    evaluators.make_evaluator('dual-supernet', {'run': 'x'})\n"
            "except evaluators.EvaluatorNotAvailableError as e:\n    print('refused:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and "needs torch" in out.stdout, out.stderr[-2000:]


def test_the_executors_behind_run_program_agree(ev):
    """run_program's choice does not change a figure: the fast emulator (when it runs dual-path layers) and
    the reference emulator give the same logits and counters, bit for bit, on a mixed candidate."""
    import numpy as np

    from hybridcim.search.supernet import run_program
    prog = ev.program(dict(zip(ev.layers(), MIXED)))
    ref_logits, ref_counters, name = run_program(prog, ev.images, "reference")
    assert name == "reference"
    logits, counters, _ = run_program(prog, ev.images, "auto")
    assert np.array_equal(logits, ref_logits) and logits.dtype.kind == "i"
    assert [c.as_dict() for c in counters] == [c.as_dict() for c in ref_counters]
