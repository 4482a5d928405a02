"""Fast-emulator throughput vs PyTorch float eval of the same architecture (same machine, same run).

The ratio's reference is PyTorch's default (NCHW) eval. The emulator's torch backend runs
channels-last, which is also faster for float PyTorch on CPUs: that figure is printed too.

Program: ``hybridcim.zoo.random_resnet20`` (ResNet-20 shape, 4-bit weights and activations,
50 % structured sparsity: 25 % of filters pruned whole, the rest in (row block x group)
units; random weights). Reference: the float32 ``torch.nn`` ResNet-20 of
``hybridcim.train.float_models`` (conv-BN-ReLU, 1x1 conv shortcuts) in eval mode under ``torch.inference_mode``, same batch size and threads.
Both run ``--repeats`` timed passes over ``--images`` random uint8 images after one warm-up
(which also runs the emulator's first-batch exactness check), interleaved batch by batch;
the best pass counts. The
emulator runs with ``--engine`` (torch backend: auto = int8 where exact, else float); with
``--compare-engines`` the float engine is timed in the same run too, for comparison. Last
line: ``ratio_vs_torch=<emulator img/s / torch img/s>``.

    python bench/emulator_throughput.py [--images 2000] [--batch-size 250] [--backend auto] [--engine auto]
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np


def best_rates(fns, batches, repeats):
    """Images/s of each fn: best of ``repeats`` passes over all batches. The fns are
    interleaved batch by batch (each batch runs through every fn in turn), so that load from
    other processes on a shared machine hits all of them alike."""
    for fn in fns:
        fn(batches[0])  # warm-up
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        spent = [0.0] * len(fns)
        for b in batches:
            for k, fn in enumerate(fns):
                t0 = time.perf_counter()
                fn(b)
                spent[k] += time.perf_counter() - t0
        best = [min(x, y) for x, y in zip(best, spent)]
    n = sum(len(b) for b in batches)
    return [n / t for t in best]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=250)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--engine", default="auto", choices=["auto", "int8", "float"])
    ap.add_argument("--compare-engines", action="store_true", help="also time the float engine (torch backend)")
    args = ap.parse_args()
    import torch

    from hybridcim.emulator import FastEmulator
    from hybridcim.train.float_models import FloatResNet
    from hybridcim.zoo import random_resnet20

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.images, 3, 32, 32), dtype=np.uint8)
    batches = [images[i:i + args.batch_size] for i in range(0, args.images, args.batch_size)]
    prog = random_resnet20()
    emu = FastEmulator(prog, args.backend, engine=args.engine)
    fns = [emu.run]
    if args.compare_engines and emu.backend == "torch":
        fns.append(FastEmulator(prog, "torch", engine="float").run)
    model = FloatResNet().eval()

    def torch_eval(b):
        with torch.inference_mode():
            return model(torch.from_numpy(b).float().div_(255.0))

    model_cl = FloatResNet().eval().to(memory_format=torch.channels_last)

    def torch_eval_cl(b):
        with torch.inference_mode():
            return model_cl(torch.from_numpy(b).float().div_(255.0).contiguous(memory_format=torch.channels_last))

    rate_torch, rate_torch_cl, rate_emu, *rate_float = best_rates([torch_eval, torch_eval_cl, *fns], batches,
                                                                  args.repeats)
    engines = sorted(set(emu.engines.values()))
    dense = sum(c.macs for c in emu.counters(1))
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch threads {torch.get_num_threads()}, "
          f"torch {torch.__version__}, numpy {np.__version__}")
    print(f"program: {prog.name}, {len(prog.layers)} layers, {dense / 1e6:.1f} M dense MACs/image")
    print(f"pytorch float eval : {rate_torch:8.1f} images/s (default NCHW: the reference of the ratio)")
    print(f"pytorch float eval, channels-last: {rate_torch_cl:8.1f} images/s (for comparison)")
    if rate_float:
        print(f"fast emulator (torch, float engine): {rate_float[0]:8.1f} images/s (bit-exact, for comparison)")
    print(f"fast emulator ({emu.backend}, engines {'/'.join(engines)}): {rate_emu:8.1f} images/s (bit-exact)")
    print(f"ratio_vs_torch={rate_emu / rate_torch:.3f}")


if __name__ == "__main__":
    main()
