"""Where the fast emulator's time goes, per layer: the int8 convolutions' share (torch backend).

Times every CIM layer of ``hybridcim.zoo.random_resnet20`` (the program of
bench/emulator_throughput.py) over ``--repeats`` passes of one ``--batch-size`` batch after
a warm-up: the layer's whole step, and inside it the oneDNN int8 convolution calls (the
requant is fused into them where the table says ``int8``). The rest of a step is input
conversion and, for ``int8+requant``/``float`` layers, the float requant. The last rows are
what the run spends outside CIM steps (pools, the ``input_ones`` counter, conversions).

    python bench/emulator_profile.py [--batch-size 250] [--repeats 5] [--engine auto]
"""
from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=250)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--engine", default="auto", choices=["auto", "int8", "float"])
    args = ap.parse_args()
    import torch

    from hybridcim.emulator import FastEmulator, torch_backend
    from hybridcim.zoo import random_resnet20

    prog = random_resnet20()
    images = np.random.default_rng(0).integers(0, 256, size=(args.batch_size, 3, 32, 32), dtype=np.uint8)
    emu = FastEmulator(prog, "torch", engine=args.engine)
    emu.run(images)  # warm-up and first-batch check
    step_t, conv_t = defaultdict(float), defaultdict(float)
    current = []
    real_cim, real_conv = torch_backend.TorchPlan._cim, torch_backend.int8_conv

    def timed_cim(self, i, layer, x, env):
        current.append(layer.name)
        t0 = time.perf_counter()
        y = real_cim(self, i, layer, x, env)
        step_t[layer.name] += time.perf_counter() - t0
        current.pop()
        return y

    def timed_conv(*a, **k):
        t0 = time.perf_counter()
        y = real_conv(*a, **k)
        conv_t[current[-1]] += time.perf_counter() - t0
        return y

    torch_backend.TorchPlan._cim, torch_backend.int8_conv = timed_cim, timed_conv
    try:
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            emu.run(images)
        total = time.perf_counter() - t0
    finally:
        torch_backend.TorchPlan._cim, torch_backend.int8_conv = real_cim, real_conv
    per = 1e3 / args.repeats
    engines = emu.engines
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, "
          f"{args.repeats} passes; ms per batch")
    print(f"{'layer':<12} {'engine':<13} {'step':>8} {'int8 conv':>10} {'share':>6}")
    for name in engines:
        s, c = step_t[name] * per, conv_t[name] * per
        print(f"{name:<12} {engines[name]:<13} {s:8.2f} {c:10.2f} {c / s if s else 0:6.0%}")
    steps, convs = sum(step_t.values()) * per, sum(conv_t.values()) * per
    print(f"{'CIM steps':<26} {steps:8.2f} {convs:10.2f} {convs / steps:6.0%}")
    print(f"{'outside CIM steps':<26} {total * per - steps:8.2f}")
    print(f"{'whole run':<26} {total * per:8.2f} {convs:10.2f} {convs / (total * per):6.0%}")


if __name__ == "__main__":
    main()
