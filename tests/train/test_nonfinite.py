"""Divergence guards: the ternary path's BN fold stays bounded when a batch sets no binary input bit
(the cause of the supernet's NaN in its first epoch), and the trainer stops on a non-finite loss or
gradient, naming epoch and step, without writing a checkpoint of non-finite weights."""
import dataclasses
import math
from pathlib import Path

import pytest
import torch

from hybridcim.train import trainer as trainer_mod
from hybridcim.train.checkpoint import read_checkpoint
from hybridcim.train.config import load_config
from hybridcim.train.dualpath import DualConv2d, ternarize
from hybridcim.train.trainer import NonFiniteTrainingError, Trainer, check_finite_step

CONFIGS = Path(trainer_mod.__file__).parent / "configs"
S_IN = 0.25  # input scale 2^-2: codes x / S_IN; theta = 8 (the 4-bit MSB)


def _ternary_layer():
    torch.manual_seed(0)
    layer = DualConv2d(16, 16, 3, pad=1, in_bits=4)
    layer.ratio.fill_(8)  # every channel on the ternary path
    return layer.train()


@pytest.mark.parametrize("set_bits", [0, 1])
def test_ternary_scale_is_bounded_when_the_batch_sets_almost_no_binary_input(set_bits):
    # All input codes below theta (b = 0 everywhere) except `set_bits` pixels: the batch variance of the
    # ternary path's conv is 0 (or ~0), and the BN fold used to scale the weights by gamma/sqrt(eps) ~ 316,
    # so that one set bit moved an output by ~8-10 gamma and a straight-through gradient to the input
    # grew by as much per layer (18 layers: float overflow, NaN). The ternary path passes no gradient
    # to its input now; its own parameters' gradients must stay finite.
    layer = _ternary_layer()
    x = torch.full((4, 16, 16, 16), 1 * S_IN)
    x[0, :set_bits, 8, 8] = 9 * S_IN
    x.requires_grad_(True)
    y = layer(x, torch.tensor(S_IN))
    e = layer.last["exponent"].to(torch.float64)
    step = S_IN * torch.pow(2.0, -e)  # the output change of one set input bit with T = +-1 (gamma = 1)
    assert float(step.max()) <= 4.0, step.tolist()
    y.square().mean().backward()
    assert x.grad is None  # every channel is ternary: nothing reaches the input
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters() if p.grad is not None)


def test_check_finite_step_names_the_loss_or_the_gradient():
    w = torch.nn.Parameter(torch.ones(2))
    check_finite_step(torch.tensor(1.5), [("w", w)], 1, 3, 10, 0.1)  # no grad yet: fine
    with pytest.raises(NonFiniteTrainingError, match=r"epoch 2, step 3/10 .*training loss became non-finite \(nan\)"):
        check_finite_step(torch.tensor(math.nan), [("w", w)], 2, 3, 10, 0.1)
    w.grad = torch.tensor([0.0, math.inf])
    with pytest.raises(NonFiniteTrainingError, match=r"epoch 1, step 4/10 .*gradient of cim.x.weight became non-finite"):
        check_finite_step(torch.tensor(1.5), [("cim.x.weight", w)], 1, 4, 10, 0.1)


def test_trainer_stops_on_a_nan_loss_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    cfg = load_config(CONFIGS / "smoke.yaml")
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, calib_steps=1),
                              optim=dataclasses.replace(cfg.optim, epochs=2, batch_size=8))
    g = torch.Generator().manual_seed(0)
    data = (torch.randint(0, 256, (24, 3, 32, 32), generator=g, dtype=torch.uint8),
            torch.randint(0, 10, (24,), generator=g), torch.zeros(0, 3, 32, 32, dtype=torch.uint8),
            torch.zeros(0, dtype=torch.int64))
    real_ce, real_lr = trainer_mod.F.cross_entropy, trainer_mod.lr_at
    now = {"step": -1}

    def lr_at(cfg, step, steps_per_epoch):  # called once per training step: step = epoch * 3 + s
        now["step"] = step
        return real_lr(cfg, step, steps_per_epoch)

    def nan_on_epoch2_step2(*a, **k):
        loss = real_ce(*a, **k)
        return loss * math.nan if now["step"] == 4 else loss
    monkeypatch.setattr(trainer_mod, "lr_at", lr_at)
    monkeypatch.setattr(trainer_mod.F, "cross_entropy", nan_on_epoch2_step2)
    tr = Trainer(cfg, tmp_path, progress=False, data=data)
    with pytest.raises(NonFiniteTrainingError, match=r"epoch 2, step 2/3 .*training loss became non-finite \(nan\)"):
        tr.run()
    state, meta = read_checkpoint(tmp_path / "checkpoint.safetensors")
    assert meta["epoch"] == 1  # the epoch-1 checkpoint stays; epoch 2 wrote none
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert all(torch.isfinite(p).all() for p in tr.model.parameters())  # no optimizer step took the NaN


def test_ternarize_forward_is_exactly_code_times_scale():
    # the sigmoid surrogate only carries delta's gradient: (hard + soft) - soft missed 1 by an ulp for some
    # weights, so a training model's pre-activation could land 2^-24 below a rounding tie (trained != export)
    torch.manual_seed(0)
    wf = torch.randn(32, 16, 3, 3, requires_grad=True)
    wq, codes, e = ternarize(wf, torch.tensor(0.7, requires_grad=True))
    assert set(codes.unique().tolist()) == {-1.0, 0.0, 1.0}
    assert torch.equal(wq.detach(), codes * torch.pow(2.0, -e.to(torch.float32)).view(-1, 1, 1, 1))
