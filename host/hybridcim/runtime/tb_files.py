"""Write the HLS testbench's input files: program image, images, expected outputs and counters.

    python -m hybridcim.runtime.tb_files --preset sun-mars-256 --out hls/tb/data/sun-mars-256 [--program X.cim] [-n 8]

Files (read by hls/tb/hybridcim_accel_tb.cpp): ``program.cim`` (the image), ``images.u8``
(n uint8 NCHW images back to back), ``expected.i32`` (n x output-size little-endian int32
from the golden fast emulator) and ``counters.u64`` (the emulator's activity counters of the
n images as the kernel's counters buffer: the header word, then n_layers x 32 (layout 3) little-endian u64
in the kernel's order). Without ``--program`` the program is ``random_resnet20(preset)``, on a preset
with the second macro type (architecture.md §10) made dual-path (:func:`dual_resnet20`), so the
testbench (and Vitis HLS's C simulation of it) checks the ternary path too.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..emulator.fast import FastEmulator
from ..program.codec import atomic_write_bytes, encode
from ..program.model import Program


def write_tb_files(program: Program, images: np.ndarray, out_dir: "str | Path", expected: np.ndarray | None = None,
                   counters: np.ndarray | None = None) -> dict[str, Path]:
    """Write the four files; ``expected`` and ``counters`` (a counters buffer: header word + n_layers x
    len(COUNTER_FIELDS) u64, :func:`.buffers.counters_to_words`) default to the fast emulator's."""
    from .buffers import counters_to_words
    out = Path(out_dir)
    images = np.ascontiguousarray(images, dtype=np.uint8)
    res = FastEmulator(program).run(images) if expected is None or counters is None else None
    if expected is None:
        expected = res.outputs
    if counters is None:
        counters = counters_to_words(res.counters)
    exp = np.asarray(expected, dtype=np.int64)
    if exp.min(initial=0) < -2**31 or exp.max(initial=0) > 2**31 - 1:
        raise ValueError("expected outputs do not fit int32")
    paths = {"program": out / "program.cim", "images": out / "images.u8", "expected": out / "expected.i32",
             "counters": out / "counters.u64"}
    atomic_write_bytes(paths["program"], encode(program))
    atomic_write_bytes(paths["images"], images.tobytes())
    atomic_write_bytes(paths["expected"], exp.astype("<i4").tobytes())
    atomic_write_bytes(paths["counters"], np.asarray(counters, dtype="<u8").tobytes())
    return paths


def dual_resnet20(preset, seed: int = 0, ratio: int = 4) -> Program:
    """``random_resnet20(preset, seed)`` with every conv/fc layer dual-path (architecture.md §10) at
    ``ratio``/8, threshold 2^(X−1) (the MSB of its input) and ternary weights the signs of the integer
    weights of the filters that move to the ternary path (untrained: a test workload)."""
    from ..program.builder import make_dual
    from ..program.dualpath import DualPathParams
    from ..program.weights import decode_weight_matrix
    from ..zoo import random_resnet20
    prog = random_resnet20(preset, seed=seed)
    params = {}
    for l in prog.layers:
        if not l.op.is_cim:
            continue
        dual = DualPathParams(ratio, 1 << (prog.tensors[l.in_tensor].bits - 1))
        w = decode_weight_matrix(l.precision, l.col_filter, l.col_plane, l.present, l.words, l.k_rows,
                                 preset.rows_active)
        params[l.name] = (dual, np.sign(w[dual.first_tern(l.n_filters):]))
    return make_dual(prog, params)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hybridcim.runtime.tb_files", description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="sun-mars-256")
    ap.add_argument("--program", help="program image (.cim); default: random_resnet20(preset)")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("-n", "--images", type=int, default=8, help="number of random images (default 8)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    from ..program.codec import read_program
    from ..spec.hardware import get_preset
    from ..zoo import random_images, random_resnet20
    preset = get_preset(args.preset)
    if args.program:
        prog = read_program(args.program, preset)
    else:
        prog = dual_resnet20(preset, args.seed) if preset.has_tern else random_resnet20(preset, seed=args.seed)
    paths = write_tb_files(prog, random_images(prog, args.images, seed=args.seed), args.out)
    for p in paths.values():
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
