"""C-simulation throughput of the HLS kernel (g++ build, one thread) on the random ResNet-20.

Program: ``hybridcim.zoo.random_resnet20(preset)`` (ResNet-20 shape, 4-bit weights and
activations, 50 % structured sparsity, random weights). The kernel is the one in hls/,
compiled by ``hybridcim.runtime.csim_build`` (g++ -O2), called through ctypes with the
board's buffer layout; it is single-threaded by construction. One warm-up batch, then
``--repeats`` timed passes over ``--images`` random uint8 images; the best pass counts. The
outputs of the first batch are checked against the fast emulator (exact).

The reference, measured in the same run and interleaved pass by pass: the fast emulator's
numpy backend (the board's ARM path) on one thread, as the kernel runs. Last lines:
``csim_images_per_s=<x>`` and ``ratio_vs_numpy_emulator=<csim / numpy images/s>``.

    python bench/csim_throughput.py [--images 512] [--batch-size 64] [--preset sun-mars-256]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads: the reference runs on one thread, as the kernel does

import argparse
import platform
import subprocess
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--preset", default="sun-mars-256")
    args = ap.parse_args()

    from hybridcim.emulator import FastEmulator
    from hybridcim.runtime.csim_device import CSimDevice
    from hybridcim.zoo import random_resnet20

    prog = random_resnet20(args.preset)
    dev = CSimDevice(args.preset, batch_size=args.batch_size)
    dev.load(prog)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.images, 3, 32, 32), dtype=np.uint8)
    batches = [images[i:i + args.batch_size] for i in range(0, args.images, args.batch_size)]
    first = dev.run(batches[0])  # warm-up + exactness check
    if not np.array_equal(first, FastEmulator(prog).run(batches[0]).outputs):
        raise SystemExit("csim outputs differ from the fast emulator: not benchmarking a wrong kernel")
    numpy_emu = FastEmulator(prog, backend="numpy")
    times = {"csim": float("inf"), "numpy": float("inf")}
    for _ in range(args.repeats):
        for name, executor in (("csim", dev), ("numpy", numpy_emu)):
            t0 = time.perf_counter()
            for b in batches:
                executor.run(b)
            times[name] = min(times[name], time.perf_counter() - t0)
    best = times["csim"]
    rate = args.images / best
    counters = FastEmulator(prog).counters(1)
    reads = sum(c.digital_column_reads for c in counters)
    gxx = subprocess.run(["g++", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {gxx}, one thread")
    print(f"library: {dev.lib.path.name}")
    print(f"program: {prog.name} ({args.preset}), {len(prog.layers)} layers, "
          f"{sum(c.macs for c in counters) / 1e6:.1f} M dense MACs/image, "
          f"{reads / 1e6:.2f} M column popcounts/image (present units only)")
    print(f"csim: {args.images} images in {best:.3f} s (best of {args.repeats}), batch {args.batch_size}: "
          f"{rate:.1f} images/s, {reads * rate / 1e9:.2f} G column popcounts/s")
    print(f"reference: numpy emulator (1 thread) {args.images / times['numpy']:.1f} images/s")
    print(f"csim_images_per_s={rate:.1f}")
    print(f"ratio_vs_numpy_emulator={times['numpy'] / times['csim']:.2f}")


if __name__ == "__main__":
    main()
