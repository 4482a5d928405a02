"""Post-training quantization (ptq.py, ``init_from`` a float checkpoint): the float ResNet's weights
and BN state land in the CIM model's layers, a zero-learning-rate run only calibrates, and the
exported 8-bit integer model follows the float model."""
import dataclasses

import numpy as np
import pytest
import torch

from hybridcim.data import Cifar10
from hybridcim.train.checkpoint import read_checkpoint
from hybridcim.train.config import load_config
from hybridcim.train.float_models import build_float_model
from hybridcim.train.models import build_model
from hybridcim.train.ptq import cim_state_from_float, float_to_cim_names
from hybridcim.train import trainer as trainer_mod
from hybridcim.train.trainer import Trainer, as_input

CONFIGS = trainer_mod.Path(trainer_mod.__file__).parent / "configs"


def _cfg(root, epochs):
    """The smoke config on 256 training and 128 test images."""
    cfg = load_config(CONFIGS / "smoke.yaml")
    return dataclasses.replace(
        cfg, data=dataclasses.replace(cfg.data, root=str(root), train_limit=256, test_limit=128),
        optim=dataclasses.replace(cfg.optim, epochs=epochs, batch_size=32, lr=0.05),
        precision=dataclasses.replace(cfg.precision, assign_epoch=1),
        pruning=dataclasses.replace(cfg.pruning, start_epoch=2, end_epoch=3)).validate()


def test_every_cim_layer_gets_its_float_counterpart():
    torch.manual_seed(0)
    fm = build_float_model("float_resnet20")
    cm = build_model("resnet20", act_bits=8)
    part = cim_state_from_float(fm.state_dict(), cm)
    names = float_to_cim_names()
    assert names["blocks.3.short.0"] == "s2b1_short" and names["blocks.8.conv2"] == "s3b3_conv2"
    assert torch.equal(part["cim.s2b1_short.weight"], fm.blocks[3].short[0].weight)
    assert torch.equal(part["cim.s2b1_short.running_var"], fm.blocks[3].short[1].running_var)
    assert torch.equal(part["cim.s1b2_conv2.bn_weight"], fm.blocks[1].bn2.weight)
    assert torch.equal(part["cim.stem.running_mean"], fm.stem[1].running_mean)
    assert torch.equal(part["cim.fc.weight"].flatten(1), fm.fc.weight) and torch.equal(part["cim.fc.bias"], fm.fc.bias)
    weights = {k for k in part if k.endswith(".weight") and ".bn_" not in k}
    assert len(weights) == len(cm.cim_layers()) == 22  # 19 convs + 2 projection shortcuts + fc


def test_a_dual_path_model_starts_both_paths_from_the_float_filters():
    torch.manual_seed(0)
    fm = build_float_model("float_resnet20")
    cm = build_model("resnet20", act_bits=4, dual_layers="blocks")
    part = cim_state_from_float(fm.state_dict(), cm)
    conv = fm.blocks[4].conv2.weight
    assert torch.equal(part["cim.s2b2_conv2.weight"], conv) and torch.equal(part["cim.s2b2_conv2.tern.weight"], conv)
    assert torch.equal(part["cim.s2b2_conv2.tern.bn_bias"], fm.blocks[4].bn2.bias)
    assert "cim.s2b2_conv2.tern.running_var" not in part  # the binary input's statistics are the ternary path's own
    assert "cim.stem.tern.weight" not in part and "cim.s2b1_short.tern.weight" not in part
    assert sum(k.endswith(".tern.weight") for k in part) == 18


def test_a_float_model_of_another_shape_is_refused():
    small = build_float_model("float_resnet", blocks=(1, 1, 1), widths=(16, 32, 64))
    with pytest.raises(ValueError, match=r"blocks\.1\.conv1\.weight: shape \(32, 16, 3, 3\) does not fit "
                                         r"cim\.s1b2_conv1\.weight \(16, 16, 3, 3\)"):
        cim_state_from_float(small.state_dict(), build_model("resnet20", act_bits=8))
    state = build_float_model("float_resnet20").state_dict()
    del state["blocks.4.bn1.running_var"]
    with pytest.raises(ValueError, match=r"float checkpoint has no tensor 'blocks\.4\.bn1\.running_var'"):
        cim_state_from_float(state, build_model("resnet20", act_bits=8))
    wide = build_float_model("float_resnet", blocks=(1, 1, 1), widths=(8, 16, 32))
    with pytest.raises(ValueError, match=r"fc\.weight: shape \(10, 32\) does not fit cim\.fc\.weight \(10, 16, 1, 1\)"):
        cim_state_from_float(wide.state_dict(), build_model("resnet", act_bits=8, blocks=(1, 1, 1), widths=(8, 16, 16)))


def test_ptq_run_from_a_float_checkpoint(tmp_path, cifar10_root, monkeypatch):
    """A float teacher, then the W8A8 PTQ recipe (configs/resnet20_w8a8_ptq.yaml's settings on the smoke
    network): weights and BN statistics stay the teacher's, and the compiled program agrees with it."""
    import functools

    from hybridcim.train import export
    monkeypatch.setattr(export, "export_model", functools.partial(export.export_model, qonnx=False))  # speed
    base = _cfg(cifar10_root, epochs=2)
    tcfg = dataclasses.replace(base, model=dataclasses.replace(base.model, arch="float_resnet"),
                               pruning=dataclasses.replace(base.pruning, target=0.0)).validate()
    teacher = Trainer(tcfg, tmp_path / "t", progress=False)
    teacher.run()
    recipe = load_config(CONFIGS / "resnet20_w8a8_ptq.yaml")
    cfg = dataclasses.replace(
        recipe, init_from=str(tmp_path / "t"),
        model=dataclasses.replace(base.model, act_bits=8, calib_steps=3),
        data=dataclasses.replace(base.data, augment=False),
        optim=dataclasses.replace(recipe.optim, batch_size=32)).validate()
    assert cfg.optim.lr == 0 and cfg.optim.bn_freeze_epoch == 0 and cfg.precision.precisions == (8,)
    tr = Trainer(cfg, tmp_path / "q", progress=False)
    tr.run()
    fstate = {k[6:]: v for k, v in read_checkpoint(tmp_path / "t" / "checkpoint.safetensors")[0].items()
              if k.startswith("model/")}
    qstate = {k[6:]: v for k, v in read_checkpoint(tmp_path / "q" / "checkpoint.safetensors")[0].items()
              if k.startswith("model/")}
    for k, v in cim_state_from_float(fstate, tr.model, (1, 1, 1)).items():
        assert torch.equal(qstate[k], v), k  # nothing trained, BN statistics not re-estimated
    assert all(int(l.precision.min()) == 8 and bool(l.mask.all()) for _, l in tr.model.cim_layers())
    # the exported integer model, compiled, follows the float teacher
    from hybridcim.compiler import compile_model, load_integer_model
    from hybridcim.emulator import FastEmulator
    images, _ = Cifar10(cifar10_root, "test").read(0, 128)
    prog = compile_model(load_integer_model(tmp_path / "q" / "model"))
    assert all(int(l.precision.min()) == 8 for l in prog.layers if l.op.is_cim)
    ref = FastEmulator(prog, "numpy").run(images).outputs
    fm = teacher.model.eval()
    with torch.no_grad():
        want = fm(as_input(torch.from_numpy(images))).argmax(1).numpy()
    agree = float((np.asarray(ref).argmax(1) == want).mean())
    assert agree >= 0.9, agree
