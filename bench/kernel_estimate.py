"""The FPGA kernel cycle model on a model: csim on CIFAR-10 images, then the board estimate.

Runs ``--images`` test images through the csim kernel in one call (batch = images: the weights
of a layer are loaded once per call), checks every output against the fast emulator, then
prints the board estimate (hybridcim.runtime.kernel_cycles: an estimate, not checked by
csynth), its per-layer table, the cycles per loop over the whole network and the resource
estimate (hybridcim.runtime.kernel_resources) as Markdown. Last line:
``est_board_images_per_s=<value>``.

    CIFAR10_DIR=/path python bench/kernel_estimate.py [--model resnet20-w4a4-p50] [--images 16]
                                                     [--board pynq-z2] [--pl-mhz 100]
"""
from __future__ import annotations

import argparse
import platform
import subprocess
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet20-w4a4-p50", help="shipped model name or .cim path")
    ap.add_argument("--images", type=int, default=16, help="CIFAR-10 test images, all in one kernel call")
    ap.add_argument("--board", default="pynq-z2")
    ap.add_argument("--pl-mhz", type=float, default=None)
    args = ap.parse_args()

    import numpy as np

    from hybridcim.data.cifar10 import load_cifar10
    from hybridcim.models import resolve_model
    from hybridcim.program import read_program
    from hybridcim.runtime import EmulatorDevice
    from hybridcim.runtime.csim_device import CSimDevice
    from hybridcim.runtime.kernel_cycles import estimate_device
    from hybridcim.runtime.kernel_resources import estimate_resources

    path = resolve_model(args.model)
    prog = read_program(str(path))
    images, _ = load_cifar10(split="test", limit=args.images)
    dev = CSimDevice(prog.preset, batch_size=len(images))
    dev.load(prog)
    t0 = time.perf_counter()
    out = dev.run(images)
    secs = time.perf_counter() - t0
    emu = EmulatorDevice(prog.preset)
    emu.load(prog)
    ref = emu.run(images)
    agree = int((np.asarray(ref).reshape(len(images), -1) == np.asarray(out).reshape(len(images), -1)).all(1).sum())
    est = estimate_device(dev, args.board, args.pl_mhz)
    root = Path(__file__).resolve().parents[1]
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=root).stdout.strip() or "?"
    if subprocess.run(["git", "status", "--porcelain", "hls"], capture_output=True, text=True, cwd=root).stdout.strip():
        rev += " + uncommitted changes in hls/"
    print(f"model {path}, {len(images)} CIFAR-10 test images in one csim call ({secs:.1f} s), "
          f"csim == emulator on {agree}/{len(images)}; commit {rev}; {platform.machine()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(est.summary())
    print()
    print(est.table())
    print()
    tot = est.loop_totals()
    print("| loop | kernel cycles / image | share |\n|---|---:|---:|")
    for k, v in sorted(tot.items(), key=lambda kv: -kv[1]):
        if v:
            print(f"| {k} | {v / est.images:,.0f} | {100 * v / est.kernel_cycles:.1f} % |")
    print()
    # what each of the largest terms costs: the estimate without it, and the term alone as a ceiling
    hz = est.pl_mhz * 1e6
    for k, v in sorted(tot.items(), key=lambda kv: -kv[1])[:4]:
        if v:
            print(f"- {k}: without it {est.images * hz / (est.kernel_cycles - v):,.0f} images/s; "
                  f"alone {est.images * hz / v:,.0f} images/s")
    print()
    res = estimate_resources(prog.preset, args.board)
    print(res.table())
    print()
    print(res.memory_table())
    print(f"est_board_images_per_s={est.est_board_images_per_s:.1f}")


if __name__ == "__main__":
    main()
