"""Full-size ResNet-20 and CNV (sun-mars-256): trained a few steps, compressed, exact on every executor."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hybridcim.spec import get_preset
from hybridcim.train.export import export_model
from hybridcim.train.models import build_model
from hybridcim.train.precision import assign_precision, fisher_diag, sensitivity
from hybridcim.train.pruning import prune_model
from hybridcim.train.verify import verify_exact


@pytest.mark.parametrize("arch", ["resnet20", "cnv"])
def test_full_size_exact(tmp_path, arch, cifar10_root):
    from hybridcim.data import load_cifar10
    pr = get_preset("sun-mars-256")
    x, y = load_cifar10(cifar10_root, "train", 256)
    xb, yb = torch.from_numpy(x).float() / 256, torch.from_numpy(y).long()
    torch.manual_seed(0)
    m = build_model(arch, calib_steps=2)
    opt = torch.optim.SGD(m.parameters(), lr=0.02, momentum=0.9)
    for i in range(4):
        sl = slice(64 * i, 64 * (i + 1))
        loss = F.cross_entropy(m(xb[sl]), yb[sl])
        opt.zero_grad()
        loss.backward()
        opt.step()
    names = [n for n, _ in m.cim_layers()]
    fixed = {names[0], names[-1]}
    omega = sensitivity(m, fisher_diag(m, [(xb[:64], yb[:64])]), pr.precisions)
    assign_precision(m, omega, pr.precisions, 4.0, pr.group_width, fixed)
    prune_model(m, 0.5, pr.rows_active, pr.group_width, fixed)
    export_model(m, tmp_path, preset="sun-mars-256", qonnx=True)
    xt, _ = load_cifar10(cifar10_root, "test", 64)
    verify_exact(tmp_path, xt, trained=m, qonnx_images=2)
