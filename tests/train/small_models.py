"""Small CIM-aware models trained for a few steps (non-degenerate activations), shared by tests."""
import functools

import torch
import torch.nn.functional as F

SMALL = {
    "resnet": dict(blocks=(1, 1, 1), widths=(8, 16, 16)),
    "cnv": dict(widths=(8, 16, 16), fc_width=16),
}


@functools.lru_cache(maxsize=None)
def trained_small(arch: str, preset_name: str, seed: int = 0, avg_bits: float = 4.0, target: float = 0.4):
    """A small model: 6 QAT steps, Fisher precision assignment, one pruning step, 3 more steps."""
    from hybridcim.spec import get_preset
    from hybridcim.train.models import build_model
    from hybridcim.train.precision import assign_precision, fisher_diag, sensitivity
    from hybridcim.train.pruning import prune_model
    preset = get_preset(preset_name)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    m = build_model(arch, calib_steps=3, **SMALL[arch])
    opt = torch.optim.SGD(m.parameters(), lr=0.02, momentum=0.9)

    def batch():
        x = torch.randint(0, 256, (32, 3, 32, 32), generator=g).float() / 256
        return x, torch.randint(0, 10, (32,), generator=g)

    def steps(n):
        m.train()
        for _ in range(n):
            x, y = batch()
            loss = F.cross_entropy(m(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

    steps(6)
    names = [n for n, _ in m.cim_layers()]
    fixed = {names[0], names[-1]}
    omega = sensitivity(m, fisher_diag(m, [batch()]), preset.precisions)
    assign_precision(m, omega, preset.precisions, avg_bits, preset.group_width, fixed)
    prune_model(m, target, preset.rows_active, preset.group_width, fixed)
    steps(3)
    m.eval()
    return m
