"""Training smoke run on a CIFAR-10 subset: loss falls, resume after a kill is exact, export is exact."""
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import hybridcim.train
from hybridcim.data import Cifar10
from hybridcim.train import trainer as trainer_mod
from hybridcim.train.checkpoint import read_checkpoint
from hybridcim.train.config import ConfigError, config_from_dict, load_config
from hybridcim.train.trainer import Trainer, augment

CONFIGS = Path(trainer_mod.__file__).parent / "configs"


def _cfg(root, **optim):
    cfg = load_config(CONFIGS / "smoke.yaml")
    o = dict(epochs=4, batch_size=32, lr=0.05)
    o.update(optim)
    return dataclasses.replace(
        cfg, data=dataclasses.replace(cfg.data, root=str(root), train_limit=256, test_limit=128),
        optim=dataclasses.replace(cfg.optim, **o),
        precision=dataclasses.replace(cfg.precision, assign_epoch=1),
        pruning=dataclasses.replace(cfg.pruning, start_epoch=2, end_epoch=3)).validate()


def _state(path):
    tensors, meta = read_checkpoint(path)
    hist = [{k: v for k, v in r.items() if k != "seconds"} for r in meta["history"]]
    return tensors, hist, meta["epoch"]


def _same_npz(a, b):
    with np.load(a, allow_pickle=False) as za, np.load(b, allow_pickle=False) as zb:
        assert sorted(za.files) == sorted(zb.files)
        for k in za.files:
            assert np.array_equal(za[k], zb[k]) and za[k].dtype == zb[k].dtype, k


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, cifar10_root):
    out = tmp_path_factory.mktemp("full")
    Trainer(_cfg(cifar10_root), out, progress=False).run()
    return out


def test_one_log_line_per_epoch_without_progress_bar(tmp_path, cifar10_root, capsys):
    Trainer(_cfg(cifar10_root, epochs=2), tmp_path, progress=False).run()
    lines = [l for l in capsys.readouterr().err.splitlines() if l.startswith("epoch ")]
    assert [l.split(":")[0] for l in lines] == ["epoch 1/2", "epoch 2/2"]
    assert "test " in lines[0] and "avg bits" in lines[0] and lines[-1].endswith("(about 0 s left)")
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the curve, updated each epoch
    assert not list(tmp_path.glob(".*tmp*"))


def test_loss_falls_and_files_written(full_run):
    _, hist, epoch = _state(full_run / "checkpoint.safetensors")
    assert epoch == 4
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert hist[-1]["avg_bits"] <= 4.0 + 1e-9 and hist[-1]["sparsity"] >= 0.5 - 1e-9
    lines = (full_run / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,lr,train_loss") and len(lines) == 5
    assert (full_run / "model" / "integer_model.json").exists() and (full_run / "model" / "model.onnx").exists()


def test_resume_after_kill_is_identical(full_run, tmp_path, cifar10_root, monkeypatch):
    cfg = _cfg(cifar10_root)
    calls = {"n": 0}
    real_eval = trainer_mod.evaluate

    def dying_eval(*a, **k):  # killed during epoch 3, after the epoch-2 checkpoint
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_eval(*a, **k)

    monkeypatch.setattr(trainer_mod, "evaluate", dying_eval)
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, tmp_path, progress=False).run()
    assert _state(tmp_path / "checkpoint.safetensors")[2] == 2
    monkeypatch.setattr(trainer_mod, "evaluate", real_eval)
    Trainer(cfg, tmp_path, resume=True, progress=False).run()
    a, ha, ea = _state(full_run / "checkpoint.safetensors")
    b, hb, eb = _state(tmp_path / "checkpoint.safetensors")
    assert ea == eb and ha == hb
    assert a.keys() == b.keys()
    for k in a:
        if k != "rng/torch":
            assert torch.equal(a[k], b[k]), k
    _same_npz(tmp_path / "model" / "integer_model.npz", full_run / "model" / "integer_model.npz")


def test_trained_model_is_exact(full_run, cifar10_root):
    from hybridcim.data import load_cifar10
    from hybridcim.train.export import model_from_checkpoint
    from hybridcim.train.verify import verify_exact
    x, _ = load_cifar10(cifar10_root, "test", 8)
    model, _ = model_from_checkpoint(full_run)
    verify_exact(full_run / "model", x, trained=model, qonnx_images=1)


def test_augment_is_crop_and_flip():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.int64).remainder(251).to(torch.uint8).reshape(2, 3, 8, 8) + 1
    g = torch.Generator().manual_seed(0)
    y = augment(x, g, pad=2)
    assert y.dtype == torch.uint8 and y.shape == x.shape
    xp = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        found = any(torch.equal(y[i], c) for oy in range(5) for ox in range(5)
                    for c in (xp[i, :, oy:oy + 8, ox:ox + 8], xp[i, :, oy:oy + 8, ox:ox + 8].flip(2)))
        assert found
    assert torch.equal(augment(x, torch.Generator().manual_seed(0), pad=2), y)


def test_config_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="weight_bitwidth"):
        config_from_dict({"model": {"weight_bitwidth": 4}})
    with pytest.raises(ConfigError, match="not in preset"):
        config_from_dict({"precision": {"precisions": [3, 4]}})


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_shipped_configs_build(name):
    from hybridcim.train.models import build_model
    cfg = load_config(CONFIGS / name)
    m = build_model(cfg.model.arch, **cfg.model.kwargs())
    if name == "resnet20_w4a4_p50.yaml":  # the targets
        assert cfg.precision.avg_bits <= 4 and cfg.pruning.target >= 0.5 and cfg.model.act_bits == 4
    if name == "resnet20_float_teacher.yaml":  # the student's architecture, in float
        convs = [c for n, c in m.named_modules() if isinstance(c, torch.nn.Conv2d) and "short" not in n]
        assert len(convs) == 19 and sum(c.weight.numel() for c in convs) > 260_000
    elif name.startswith("resnet20"):
        convs = [l for _, l in m.cim_layers()]
        assert len([n for n in m.nodes if n.op == "conv" and not n.name.endswith("short")]) == 19
        assert sum(l.weight.numel() for l in convs) > 270_000


def _cli_train(tmp_path, cifar10_root, epochs, test_limit):
    """argv for ``hybridcim train`` of the smoke config (256 training images) into tmp_path/run."""
    import yaml
    cfg = yaml.safe_load((CONFIGS / "smoke.yaml").read_text())
    cfg["optim"]["epochs"] = epochs
    cfg["data"]["train_limit"] = 256
    cfg["data"]["test_limit"] = test_limit
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    return ["train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run"), "--data", str(cifar10_root),
            "--no-progress"]


def test_cli_train_export_compile(tmp_path, cifar10_root):
    from hybridcim.cli.main import main
    run = tmp_path / "run"
    train = _cli_train(tmp_path, cifar10_root, epochs=2, test_limit=64)
    assert main(train + ["--stop-after", "1"]) == 0  # one epoch, then a resumable stop
    assert _state(run / "checkpoint.safetensors")[2] == 1 and not (run / "model").exists()
    assert main(train + ["--resume"]) == 0
    assert _state(run / "checkpoint.safetensors")[2] == 2
    assert main(["export", str(run), "--out", str(tmp_path / "exp"), "--no-qonnx"]) == 0
    _same_npz(tmp_path / "exp" / "integer_model.npz", run / "model" / "integer_model.npz")
    assert main(["compile", str(run / "checkpoint.safetensors"), "-o", str(tmp_path / "a.cim")]) == 0
    assert main(["compile", str(run), "-o", str(tmp_path / "b.cim"), "--plot", str(tmp_path / "b.png")]) == 0
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "a.cim").read_bytes() == (tmp_path / "b.cim").read_bytes()
    from hybridcim.data import load_cifar10
    from hybridcim.emulator import FastEmulator
    from hybridcim.program import read_program
    from hybridcim.train.reference import load_brevitas_reference
    x, _ = load_cifar10(cifar10_root, "test", 8)
    assert np.array_equal(FastEmulator(read_program(tmp_path / "a.cim")).run(x).outputs,
                          load_brevitas_reference(run / "model").run(x))
    with pytest.raises(SystemExit):
        main(["train"])


def test_cli_time_limit_stops_between_epochs_and_resume_finishes(tmp_path, cifar10_root, capsys):
    from hybridcim.cli.main import main
    run = tmp_path / "run"
    train = _cli_train(tmp_path, cifar10_root, epochs=3, test_limit=32)
    assert main(train + ["--time-limit", "0.001s"]) == 0  # always one epoch; the second would pass the limit
    assert _state(run / "checkpoint.safetensors")[2] == 1 and not (run / "model").exists()
    assert "stopping after epoch 1: epoch 2 (about" in capsys.readouterr().err
    assert main(train + ["--resume", "--time-limit", "1h"]) == 0  # ample: runs to the end and exports
    assert _state(run / "checkpoint.safetensors")[2] == 3 and (run / "model").is_dir()
    assert "stopping" not in capsys.readouterr().err
    assert main(train + ["--time-limit", "soon"]) == 2  # a clear error, nothing trained
    assert "not a duration" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["", "abc", "-5", "0", "1x", "30ms", "inf", "nan", "h"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        trainer_mod.parse_duration(text)


@pytest.mark.slow
def test_learns_on_a_subset(tmp_path, cifar10_root):
    """A small ResNet, 5000 images, 4 epochs with precision assignment and 50 % pruning: well above chance."""
    cfg = config_from_dict({
        "name": "learn", "model": {"arch": "resnet", "widths": [16, 32, 64], "blocks": [1, 1, 1], "calib_steps": 10},
        "precision": {"assign_epoch": 1, "sensitivity_batches": 2},
        "pruning": {"target": 0.5, "start_epoch": 2, "end_epoch": 3},
        "optim": {"epochs": 4, "batch_size": 64, "lr": 0.05, "warmup_epochs": 0},
        "data": {"root": str(cifar10_root), "train_limit": 5000, "test_limit": 1000}})
    final = Trainer(cfg, tmp_path, progress=False).run()
    # chance is 0.10; 4 epochs on 5,000 images reliably pass 0.25 (a broken gradient path stays near 0.10)
    assert final["test_acc"] > 0.25 and final["avg_bits"] <= 4.0 and final["sparsity"] >= 0.5


def test_resume_refuses_a_different_config(full_run, tmp_path, cifar10_root):
    import shutil
    shutil.copy(full_run / "checkpoint.safetensors", tmp_path / "checkpoint.safetensors")
    cfg = _cfg(cifar10_root, lr=0.01)
    with pytest.raises(ValueError, match="optim"):
        Trainer(cfg, tmp_path, resume=True, progress=False)


def _cim_buffers(tensors, name):
    return {k: v for k, v in tensors.items() if k.startswith("model/cim.") and k.endswith("." + name)}


def test_fine_tune_starts_from_the_source_model(full_run, tmp_path, cifar10_root, monkeypatch):
    """init_from: the source's weights, precision and masks; fresh schedule; precision never re-assigned."""
    src, _, _ = _state(full_run / "checkpoint.safetensors")
    cfg = dataclasses.replace(_cfg(cifar10_root, epochs=2, lr=0.005), init_from=str(full_run))
    called = []
    monkeypatch.setattr(trainer_mod, "assign_precision", lambda *a, **k: called.append(1))
    tr = Trainer(cfg, tmp_path, progress=False)
    assert tr.precision_from_init and tr.epoch == 0
    for k, v in tr.model.state_dict().items():  # the model before any step is the source's, bit for bit
        assert torch.equal(v.cpu(), src["model/" + k]), k
    final = tr.run()
    out, hist, epoch = _state(tmp_path / "checkpoint.safetensors")
    assert epoch == 2 and len(hist) == 2 and not called  # assign_epoch=1 fell inside the fine-tune: skipped
    assert hist[0]["lr"] <= 0.005
    for k, v in _cim_buffers(src, "precision").items():
        assert torch.equal(out[k], v), k
    for k, v in _cim_buffers(src, "mask").items():  # masks only grow
        assert not (out[k].bool() & ~v.bool()).any(), k
    assert final["sparsity"] >= 0.5 - 1e-9 and final["avg_bits"] <= 4.0 + 1e-9
    assert not any(torch.equal(out[k], v) for k, v in _cim_buffers(src, "weight").items())  # it trained
    # the source froze its BN (epoch 2 of 4); this fine-tune's own schedule freezes at its epoch 2, which it
    # never reaches: it trained with batch statistics (an inherited freeze at a fresh learning rate diverged)
    assert all(bool(v) for v in _cim_buffers(src, "bn_frozen").values())
    assert not any(bool(out[k]) for k in _cim_buffers(src, "bn_frozen"))


def test_fine_tune_refuses_a_different_model_or_a_missing_source(full_run, tmp_path, cifar10_root):
    cfg = _cfg(cifar10_root)
    other = dataclasses.replace(cfg, init_from=str(full_run / "checkpoint.safetensors"),
                                model=dataclasses.replace(cfg.model, widths=(8, 16, 32)))
    with pytest.raises(ValueError, match="init_from: .* model="):
        Trainer(other, tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="init_from: no checkpoint at"):
        Trainer(dataclasses.replace(cfg, init_from=str(tmp_path / "nothing")), tmp_path, progress=False)


def test_distill_loss_is_the_hinton_formula():
    from hybridcim.train.trainer import distill_loss
    g = torch.Generator().manual_seed(0)
    s, t, y = torch.randn(6, 10, generator=g), torch.randn(6, 10, generator=g), torch.arange(6)
    ce = torch.nn.functional.cross_entropy(s, y)
    assert torch.equal(distill_loss(s, t, y, 0.0, 4.0), ce)
    assert torch.allclose(distill_loss(s, s, y, 0.3, 4.0), 0.7 * ce)  # KL of a distribution with itself is 0
    p_t, log_p_s = torch.softmax(t / 2, 1), torch.log_softmax(s / 2, 1)
    kl = (p_t * (torch.log(p_t) - log_p_s)).sum(1).mean()
    assert torch.allclose(distill_loss(s, t, y, 1.0, 2.0), 4 * kl)


def test_distillation_from_a_trained_run(full_run, tmp_path, cifar10_root):
    """The teacher shapes the loss, and stays frozen."""
    base = _cfg(cifar10_root, epochs=1)
    plain = Trainer(base, tmp_path / "plain", progress=False).run()
    cfg = dataclasses.replace(base, distill=dataclasses.replace(base.distill, teacher=str(full_run), alpha=0.9))
    tr = Trainer(cfg, tmp_path / "kd", progress=False)
    before = {k: v.clone() for k, v in tr.teacher.state_dict().items()}
    kd = tr.run()
    assert not tr.teacher.training and all(torch.equal(v, before[k]) for k, v in tr.teacher.state_dict().items())
    assert kd["train_loss"] != plain["train_loss"]
    with pytest.raises(FileNotFoundError, match="distill.teacher: no checkpoint at"):
        Trainer(dataclasses.replace(cfg, distill=dataclasses.replace(cfg.distill, teacher=str(tmp_path / "no"))),
                tmp_path / "x", progress=False)
    with pytest.raises(ConfigError, match="distill.alpha"):
        config_from_dict({"distill": {"alpha": 1.5}})


def test_float_teacher_trains_and_distills(tmp_path, cifar10_root, capsys):
    """float_resnet20: trained by the same loop (no compression, no export), usable as distill.teacher,
    refused by export with a clear message."""
    from hybridcim.cli.main import main
    from hybridcim.train.float_models import FloatResNet
    base = _cfg(cifar10_root, epochs=2)
    tcfg = dataclasses.replace(base, model=dataclasses.replace(base.model, arch="float_resnet"),
                               pruning=dataclasses.replace(base.pruning, target=0.0)).validate()
    tr = Trainer(tcfg, tmp_path / "t", progress=False)
    assert isinstance(tr.model, FloatResNet) and len(tr.model.blocks) == 3  # the smoke config's blocks (1,1,1)
    final = tr.run()
    _, hist, _ = _state(tmp_path / "t" / "checkpoint.safetensors")
    assert final["avg_bits"] == 32.0 and final["sparsity"] == 0.0 and hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert not (tmp_path / "t" / "model").exists()
    assert main(["export", str(tmp_path / "t"), "--out", str(tmp_path / "e"), "--no-qonnx"]) == 2
    assert "float model (a distillation teacher)" in capsys.readouterr().err
    student = _cfg(cifar10_root, epochs=1)
    student = dataclasses.replace(student, distill=dataclasses.replace(student.distill, teacher=str(tmp_path / "t")))
    st = Trainer(student, tmp_path / "s", progress=False)
    assert isinstance(st.teacher, FloatResNet) and not st.teacher.training
    assert st.run()["epoch"] == 1
    with pytest.raises(ConfigError, match="float teacher: pruning.target must be 0"):
        config_from_dict({"model": {"arch": "float_resnet20"}, "pruning": {"target": 0.5}})


def test_resume_accepts_a_checkpoint_written_before_a_config_key_existed():
    from hybridcim.train.trainer import _check_same_config, _plain
    cfg = config_from_dict({})
    saved = _plain(cfg.to_dict())
    del saved["distill"], saved["optim"]["label_smoothing"]  # keys added later, at their defaults
    _check_same_config(cfg, saved)
    with pytest.raises(ValueError, match="distill"):
        _check_same_config(dataclasses.replace(cfg, distill=dataclasses.replace(cfg.distill, alpha=0.1)), saved)


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path, cifar10_root):
    """DDP (gloo on CPU): two ranks train on their shards, rank 0 writes checkpoint and export."""
    import os
    import shutil
    import subprocess
    import sys
    import yaml
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    if torchrun is None:
        pytest.skip("torchrun not installed")
    cfg = yaml.safe_load((CONFIGS / "smoke.yaml").read_text())
    cfg["optim"]["epochs"] = 2
    cfg["data"].update(train_limit=256, test_limit=64, root=str(cifar10_root))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    code = "import sys; from hybridcim.cli.main import main; sys.exit(main(sys.argv[1:]))"
    (tmp_path / "entry.py").write_text(code)
    subprocess.run([torchrun, "--nproc_per_node", "2", str(tmp_path / "entry.py"), "train", str(tmp_path / "c.yaml"),
                    "--out", str(tmp_path / "run"), "--no-progress"], check=True, env=env, capture_output=True,
                   timeout=600)
    _, hist, epoch = _state(tmp_path / "run" / "checkpoint.safetensors")
    assert epoch == 2 and (tmp_path / "run" / "model" / "integer_model.json").exists()


def test_ship_writes_a_complete_truthful_model_folder(full_run, tmp_path, cifar10_root):
    from hybridcim.compiler.report import program_compression
    from hybridcim.emulator import FastEmulator
    from hybridcim.cli.main import main
    from hybridcim.program import read_program
    config = Path(hybridcim.train.__file__).parent / "configs" / "smoke.yaml"
    models = tmp_path / "models"
    (models / "smoke-model" / "training").mkdir(parents=True)  # an earlier state of the run is replaced
    assert main(["ship", str(full_run), "--name", "smoke-model", "--config", str(config), "--data",
                 str(cifar10_root), "--models-dir", str(models), "--curve", str(tmp_path / "curve.png"),
                 "--verify"]) == 0
    dest = models / "smoke-model"
    assert sorted(p.name for p in models.iterdir()) == ["smoke-model"]  # no temporary or old folder left
    files = sorted(p.name for p in dest.iterdir())
    assert files == ["card.json", "config.yaml", "integer_model.json", "integer_model.npz", "metrics.csv",
                     "model.cim", "model.cim.json", "model.onnx"]
    card = json.loads((dest / "card.json").read_text())
    prog = read_program(dest / "model.cim")
    assert card["avg_bits"] == program_compression(prog)["avg_bits"]
    images, labels = next(Cifar10(cifar10_root, "test").batches(10000))
    correct = int((FastEmulator(prog).run(images).outputs.argmax(1) == labels).sum())
    assert card["cifar10_test"] == {"images": 10000, "correct": correct, "accuracy": correct / 10000}
    assert card["verified"] == {"emulator_vs_brevitas": {"images": 10000, "agree": 10000, "correct": correct},
                                "csim_vs_emulator": {"images": 10000, "agree": 10000, "counters_agree": True}}
    assert (tmp_path / "curve.png").stat().st_size > 1000


def test_verify_qonnx_checks_the_exported_onnx_and_needs_it(full_run, tmp_path, cifar10_root):
    """--verify-qonnx adds emulator == qonnx.execute_onnx (logits) to the executors checked; without a
    model.onnx it is an error, not a silent pass."""
    import shutil

    from hybridcim.compiler import compile_model, load_integer_model
    from hybridcim.compiler.integer_model import find_model_files
    from hybridcim.models.packaging import verify_executors
    from hybridcim.program import write_program
    pytest.importorskip("qonnx")
    folder = tmp_path / "m"
    folder.mkdir()
    src = find_model_files(full_run)
    write_program(compile_model(load_integer_model(src)), folder / "model.cim")
    for f in (src, src.with_suffix(".npz"), src.parent / "model.onnx"):
        shutil.copy2(f, folder / f.name)
    got = verify_executors(folder, cifar10_root, qonnx=True, limit=12)
    assert got["emulator_vs_qonnx"] == {"images": 12, "agree": 12}
    assert got["csim_vs_emulator"]["agree"] == got["emulator_vs_brevitas"]["agree"] == 12
    (folder / "model.onnx").unlink()
    with pytest.raises(ValueError, match="no model.onnx"):
        verify_executors(folder, cifar10_root, qonnx=True, limit=2)


def test_ship_a_model_trained_in_stages(full_run, tmp_path, cifar10_root):
    """--earlier-stage: one history over all epochs (renumbered, stage column), every config shipped;
    --keep-training: recipe inputs kept in training/, also when read from the folder being replaced."""
    import csv
    from hybridcim.cli.main import main
    configs = Path(hybridcim.train.__file__).parent / "configs"
    models = tmp_path / "models"
    dest = models / "staged"
    (dest / "training").mkdir(parents=True)
    start = dest / "training" / "stage1-start.safetensors"  # a stage's input, inside the folder shipping replaces
    start.write_bytes(b"stage one state")
    (dest / "training" / "checkpoint.safetensors").write_bytes(b"not kept")
    assert main(["ship", str(full_run), "--name", "staged", "--config", str(configs / "smoke.yaml"), "--data",
                 str(cifar10_root), "--models-dir", str(models), "--earlier-stage", str(configs / "cnv_w4a4_p50.yaml"),
                 str(full_run / "metrics.csv"), "--curve", str(tmp_path / "c.png"),
                 "--keep-training", str(start), "--keep-training", str(full_run / "checkpoint.safetensors")]) == 0
    assert sorted(p.name for p in (dest / "training").iterdir()) == ["checkpoint.safetensors",
                                                                      "stage1-start.safetensors"]
    assert (dest / "training" / "stage1-start.safetensors").read_bytes() == b"stage one state"
    assert (dest / "training" / "checkpoint.safetensors").read_bytes() == \
        (full_run / "checkpoint.safetensors").read_bytes()
    rows = list(csv.DictReader(open(dest / "metrics.csv")))
    one = list(csv.DictReader(open(full_run / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 2 * len(one) + 1))
    assert [r["stage"] for r in rows] == ["1"] * len(one) + ["2"] * len(one)
    assert [r["test_acc"] for r in rows] == [r["test_acc"] for r in one] * 2
    assert (dest / "config-stage1.yaml").read_bytes() == (configs / "cnv_w4a4_p50.yaml").read_bytes()
    card = json.loads((dest / "card.json").read_text())
    assert card["stages"] == [{"config": "config-stage1.yaml", "epochs": len(one)},
                              {"config": "config.yaml", "epochs": len(one)}]
    assert card["training_files"] == ["stage1-start.safetensors", "checkpoint.safetensors"]
    for bad_keep in ([str(tmp_path / "missing.safetensors")], [str(start), str(start)]):
        args = [a for f in bad_keep for a in ("--keep-training", f)]
        assert main(["ship", str(full_run), "--name", "bad", "--config", str(configs / "smoke.yaml"), "--data",
                     str(cifar10_root), "--models-dir", str(models)] + args) == 2
    (tmp_path / "bad.csv").write_text("epoch,lr\n2,0.1\n")
    assert main(["ship", str(full_run), "--name", "bad", "--config", str(configs / "smoke.yaml"), "--data",
                 str(cifar10_root), "--models-dir", str(models), "--earlier-stage", str(configs / "smoke.yaml"),
                 str(tmp_path / "bad.csv")]) == 2
    assert sorted(p.name for p in models.iterdir()) == ["staged"]  # nothing half-shipped


def test_ship_verify_refuses_a_model_that_disagrees(full_run, tmp_path, cifar10_root, monkeypatch):
    """Negative case: the Brevitas reference sees a different bias than the program -> nothing shipped."""
    import hybridcim.train.reference as reference
    from hybridcim.models.packaging import ShipVerificationError, ship
    real = reference.load_brevitas_reference

    def tampered(folder):
        ref = real(folder)
        first = ref.model.layers[0]["name"]
        ref.model.arrays[f"{first}/bias"] = ref.model.arrays[f"{first}/bias"] + 4096
        return reference.BrevitasReference(ref.model)
    monkeypatch.setattr(reference, "load_brevitas_reference", tampered)
    config = Path(hybridcim.train.__file__).parent / "configs" / "smoke.yaml"
    with pytest.raises(ShipVerificationError, match="not shipped: .*agree with brevitas"):
        ship(full_run, "bad", config, cifar10_root, models_dir=tmp_path, verify=True)
    assert list(tmp_path.iterdir()) == []
