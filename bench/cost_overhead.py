"""What costing a run adds to its time: the whole CIFAR-10 test set through the fast emulator,
then ``hybridcim.cost.cost`` on the run's counters (target: < 5 % of the run time).

Costing reads the per-layer counters the run already accumulated (their size does not grow
with the number of images), so its time is that of one call; ``--per-batch`` also costs every
batch's counters separately (the worst case: a caller that reports a cost per batch). Program:
the shipped default model (``--model``), images from $CIFAR10_DIR (``--images`` limits them).
Last line: ``cost_overhead=<cost seconds / run seconds>``.

    CIFAR10_DIR=/path python bench/cost_overhead.py [--images 10000] [--batch-size 250] [--preset dcim-28nm]
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="shipped model name or .cim path (default: the default model)")
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--batch-size", type=int, default=250)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--preset", default="dcim-28nm", help="cost preset")
    ap.add_argument("--per-batch", action="store_true", help="also cost every batch's counters")
    args = ap.parse_args()

    from hybridcim.cost import cost, load_cost_preset
    from hybridcim.data.cifar10 import load_cifar10
    from hybridcim.emulator import FastEmulator
    from hybridcim.models import default_model, resolve_model
    from hybridcim.program import read_program

    path = resolve_model(args.model or default_model())
    prog = read_program(str(path))
    images, _ = load_cifar10(split="test", limit=args.images)
    emu = FastEmulator(prog, backend=args.backend)
    preset = load_cost_preset(args.preset)
    emu.run(images[:args.batch_size])  # warm-up (backend start, first-batch checks)

    t0 = time.perf_counter()
    total = None
    per_batch_s = 0.0
    for i in range(0, len(images), args.batch_size):
        counters = emu.run(images[i:i + args.batch_size]).counters
        if args.per_batch:
            t = time.perf_counter()
            cost(prog, counters, preset)
            per_batch_s += time.perf_counter() - t
        total = counters if total is None else [a + b for a, b in zip(total, counters)]
    run_s = time.perf_counter() - t0 - per_batch_s

    t = time.perf_counter()
    c = cost(prog, total, preset)
    cost_s = time.perf_counter() - t
    print(f"machine: {platform.machine()}, {platform.processor() or '?'}; numpy {np.__version__}")
    print(f"program {prog.name!r} ({path}), {len(images)} images, batch {args.batch_size}, backend {args.backend}")
    print(f"run (emulator + counters): {run_s:.2f} s ({len(images) / run_s:.0f} img/s)")
    print(f"cost once on the summed counters: {cost_s * 1e3:.1f} ms")
    if args.per_batch:
        print(f"cost per batch ({-(-len(images) // args.batch_size)} calls): {per_batch_s * 1e3:.1f} ms "
              f"= {per_batch_s / run_s:.3%} of the run")
    print(c.summary())
    print(f"cost_overhead={cost_s / run_s:.5f}")


if __name__ == "__main__":
    main()
