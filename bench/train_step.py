"""Training-step time of CIM-aware QAT (hybridcim.train) against plain float training, same run.

Model: the ResNet-20 of ``configs/resnet20_w4a4_p50.yaml`` (``build_model("resnet20",
act_bits=4)``: BN folded into power-of-two-quantized weights with batch statistics,
per-filter precision, masks, Brevitas activation quantizers, calibration finished before
timing), one SGD step (forward, cross-entropy, backward, update) on a batch of random
images, as the trainer runs it (channels-last input on the CPU). Precision is assigned to a
{2,4,8} mix first, as after the trainer's ``assign_epoch``.

Reference, timed in the same run and interleaved step by step: the float32 ``torch.nn``
ResNet-20 of ``hybridcim.train.float_models`` (the distillation teacher), channels-last,
same batch and optimizer. Last lines: ``qat_s_per_step=<x>`` and
``ratio_vs_float_step=<QAT s/step / float s/step>`` (how many times slower QAT is).

    python bench/train_step.py [--batch-size 128] [--steps 10] [--threads N]
"""
from __future__ import annotations

import argparse
import os
import platform
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per model (best counts)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F

    from hybridcim.train.float_models import FloatResNet
    from hybridcim.train.models import build_model
    from hybridcim.train.trainer import as_input

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randint(0, 256, (args.batch_size, 3, 32, 32), dtype=torch.uint8)
    y = torch.randint(0, 10, (args.batch_size,))
    qat = build_model("resnet20", act_bits=4, calib_steps=1)
    for _, layer in list(qat.cim_layers())[1:-1]:  # a {2,4,8} mix, as after precision assignment
        layer.precision.copy_(torch.tensor([2, 4, 4, 8], dtype=torch.int64).repeat(layer.cout // 4 + 1)[:layer.cout])
    flt = FloatResNet().to(memory_format=torch.channels_last)
    models = {"qat": qat, "float": flt}
    opts = {k: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, nesterov=True) for k, m in models.items()}

    def step(name):
        m, opt = models[name], opts[name]
        m.train()
        loss = F.cross_entropy(m(as_input(x)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for name in models:  # warm-up; for QAT this also finishes activation-scale calibration
        for _ in range(3):
            step(name)
    best = {k: float("inf") for k in models}
    for _ in range(args.steps):
        for name in models:
            t0 = time.perf_counter()
            step(name)
            best[name] = min(best[name], time.perf_counter() - t0)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"batch {args.batch_size}, best of {args.steps} steps: QAT {best['qat']:.3f} s/step, "
          f"float {best['float']:.3f} s/step")
    print(f"qat_s_per_step={best['qat']:.3f}")
    print(f"ratio_vs_float_step={best['qat'] / best['float']:.2f}")


if __name__ == "__main__":
    main()
