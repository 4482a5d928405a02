"""Fast-emulator throughput on dual-path layers (architecture.md §10) vs the reference emulator
(same machine, same run), with a bit-exactness check of the fast results against the reference's.

Program: the shipped ResNet-20 (``resnet20-w4a4-p50``) on ``sun-mars-256-dual`` with every conv/fc
layer dual-path at ratio ``--ratio``/8 (default 4: half the filters ternary), built by the search's
``dual-ternarized`` evaluator (ternary weights from the integer ones, θ = the MSB of each input;
untrained: a speed workload, not an accuracy figure) on ``--calib`` calibration images (needs
CIFAR10_DIR). The reference emulator runs ``--ref-images`` test images once (it is slow); each fast
executor runs ``--images`` images in batches of ``--batch-size``, best of ``--repeats``; the first
``--ref-images`` of its outputs and counters must equal the reference's; it also runs the same model
without dual-path layers (ratio 0: the plain INT4 program) for the cost of the ternary path. Threads:
set ``OMP_NUM_THREADS`` (a loaded machine: 1). Last line:
``ratio_fast_vs_reference=<best fast img/s / reference img/s>``.

    CIFAR10_DIR=... python bench/dual_throughput.py [--images 250] [--ref-images 2] [--ratio 4]
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import time

import numpy as np


def dual_resnet20(ratio: int, calib: int):
    from hybridcim.search.evaluators import TernarizedDualEvaluator
    ev = TernarizedDualEvaluator({"model": "resnet20-w4a4-p50", "images": calib}, os.environ.get("CIFAR10_DIR"))
    return ev.program({name: ratio for name in ev.layers()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=250)
    ap.add_argument("--batch-size", type=int, default=250)
    ap.add_argument("--ref-images", type=int, default=2)
    ap.add_argument("--ratio", type=int, default=4)
    ap.add_argument("--calib", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    from hybridcim.data import Cifar10
    from hybridcim.emulator import FastEmulator, ReferenceEmulator, available_backends
    prog = dual_resnet20(a.ratio, a.calib)
    plain = dual_resnet20(0, a.calib)
    n_dual = sum(1 for l in prog.layers if l.dual is not None)
    images, _ = Cifar10(os.environ.get("CIFAR10_DIR"), "test").read(0, max(a.images, a.ref_images))
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"load {os.getloadavg()[0]:.2f}; {prog.name}: {n_dual} dual-path layers at "
          f"ratio {a.ratio}/8 on {prog.preset.name}")
    t0 = time.perf_counter()
    ref = ReferenceEmulator(prog).run(images[:a.ref_images])
    ref_rate = a.ref_images / (time.perf_counter() - t0)
    print(f"reference: {ref_rate:.4f} images/s ({a.ref_images} images)")
    runs = [("numpy", "auto")] + ([("torch", "int8"), ("torch", "float")] if "torch" in available_backends() else [])
    best = 0.0
    for backend, engine in runs:
        try:
            emu = FastEmulator(prog, backend, engine)
        except ValueError as e:  # int8 engine unavailable on this machine
            print(f"fast {backend}/{engine}: unavailable ({e})")
            continue
        got = emu.run(images[:a.ref_images])
        assert np.array_equal(got.outputs, ref.outputs), f"{backend}/{engine}: outputs differ from the reference"
        assert [c.as_dict() for c in got.counters] == [c.as_dict() for c in ref.counters], \
            f"{backend}/{engine}: counters differ from the reference"
        emu_plain = FastEmulator(plain, backend, engine)
        emu_plain.run(images[:a.ref_images])
        rate = rate_plain = 0.0
        for _ in range(a.repeats):  # interleaved: the load changes alike for both
            for e, r in ((emu, "dual"), (emu_plain, "plain")):
                t0 = time.perf_counter()
                for i in range(0, a.images, a.batch_size):
                    e.run(images[i:i + a.batch_size])
                v = a.images / (time.perf_counter() - t0)
                rate, rate_plain = (max(rate, v), rate_plain) if r == "dual" else (rate, max(rate_plain, v))
        best = max(best, rate)
        print(f"fast {backend}/{engine}: {rate:.1f} images/s ({a.images} images, batch {a.batch_size}; "
              f"bit-exact with the reference on {a.ref_images}); the plain INT4 program {rate_plain:.1f} images/s")
    print(f"ratio_fast_vs_reference={best / ref_rate:.0f}")


if __name__ == "__main__":
    main()
