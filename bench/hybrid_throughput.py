"""Fast-emulator throughput in hybrid mode (architecture.md §9) vs PyTorch float eval of the same
architecture (same machine, same run).

Program: the shipped ResNet-20 (``resnet20-w4a4-p50``, sun-mars-256: A = 64, 5-bit ADC) with every
conv/fc layer made hybrid by ``hybridcim.program.builder.make_hybrid`` with a 3-level table
(sal_planes 2): levels (D, E) = (1, 4), (2, 6), (4, 15) — level 0 keeps only the MSB×MSB pair
digital and skips deep pairs, level 2 keeps the top four diagonals digital and the rest analog —
and per-layer thresholds at the 1/3 and 2/3 quantiles of the layer's saliency on 16 images of the
bench (so the three levels are all used). A second line runs the same program with analog noise
on in every layer (noise_pairs 16, noise_shift 2: σ = 0.5 counts). Reference: the float32
``torch.nn`` ResNet-20 of ``hybridcim.train.float_models`` in eval mode under
``torch.inference_mode``, same batch size and threads. Passes are interleaved batch by batch
(``emulator_throughput.best_rates``); the best of ``--repeats`` counts. Last line:
``ratio_vs_torch=<hybrid emulator img/s (noise off) / torch img/s>``.

    python bench/hybrid_throughput.py [--images 500] [--batch-size 250] [--backend auto] [--engine auto]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from emulator_throughput import best_rates  # noqa: E402

LEVELS = ((1, 4), (2, 6), (4, 15))


def hybrid_resnet20(images: np.ndarray, noise: bool = False):
    """The shipped ResNet-20 with the bench's 3-level table in every conv/fc layer; thresholds at the
    saliency tertiles of ``images`` (digital-mode activations)."""
    from hybridcim.emulator import FastEmulator
    from hybridcim.emulator.hybrid_engine import HybridLayer
    from hybridcim.models import resolve_model
    from hybridcim.program.builder import make_hybrid
    from hybridcim.program.hybrid import HybridParams
    from hybridcim.zoo import load_program

    prog = load_program(str(resolve_model("resnet20-w4a4-p50")))
    tr = FastEmulator(prog, "numpy").run(images, trace=True).tensors
    params = {}
    for i, layer in enumerate(prog.layers):
        if not layer.op.is_cim:
            continue
        probe = make_hybrid(prog, {layer.name: HybridParams.static(15, sal_planes=2)})
        hl = HybridLayer(probe.layers[i], probe, i)
        xs = hl.windows(tr[prog.tensors[layer.in_tensor].name])
        per_block = (xs >> (hl.x_bits - 2)).reshape(xs.shape[0], hl.r, hl.a).sum(axis=2, dtype=np.int64)
        sal = (per_block @ hl.present_t)[:, hl.has_units]
        t1, t2 = (int(v) for v in np.quantile(sal, [1 / 3, 2 / 3]))
        t2 = max(t2, t1 + 1)
        params[layer.name] = HybridParams(tuple(d for d, _ in LEVELS), tuple(e for _, e in LEVELS), (t1, t2),
                                          sal_planes=2, noise_pairs=16 if noise else 0, noise_shift=2 if noise else 0,
                                          noise_seed=1)
    return make_hybrid(prog, params)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=250)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--engine", default="auto", choices=["auto", "int8", "float"])
    ap.add_argument("--no-noise", action="store_true", help="skip the noise-on line")
    args = ap.parse_args()
    import torch

    from hybridcim.emulator import FastEmulator
    from hybridcim.train.float_models import FloatResNet

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.images, 3, 32, 32), dtype=np.uint8)
    batches = [images[i:i + args.batch_size] for i in range(0, args.images, args.batch_size)]
    prog = hybrid_resnet20(images[:16])
    emu = FastEmulator(prog, args.backend, engine=args.engine)
    fns = [emu.run]
    if not args.no_noise:
        noisy = FastEmulator(hybrid_resnet20(images[:16], noise=True), args.backend, engine=args.engine)
        fns.append(lambda b: noisy.run(b, image_base=1000))
    model = FloatResNet().eval()

    def torch_eval(b):
        with torch.inference_mode():
            return model(torch.from_numpy(b).float().div_(255.0))

    rate_torch, rate_emu, *rate_noisy = best_rates([torch_eval, *fns], batches, args.repeats)
    res = emu.run(images[:args.batch_size])
    cim = [c for c in res.counters if c.macs]
    reads = {k: sum(getattr(c, k) for c in cim) for k in ("digital_column_reads", "analog_column_reads",
                                                            "skipped_bitplanes")}
    tot = sum(reads.values())
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch threads {torch.get_num_threads()}, "
          f"torch {torch.__version__}, numpy {np.__version__}, load average {os.getloadavg()[0]:.2f}")
    print(f"program: {prog.name} hybrid, levels (D, E) {LEVELS}; column reads "
          + ", ".join(f"{k.split('_')[0]} {v / tot:.1%}" for k, v in reads.items()))
    print(f"pytorch float eval : {rate_torch:8.1f} images/s (default NCHW: the reference of the ratio)")
    if rate_noisy:
        print(f"fast emulator ({emu.backend}), hybrid, noise on : {rate_noisy[0]:8.1f} images/s "
              f"(ratio {rate_noisy[0] / rate_torch:.3f})")
    print(f"fast emulator ({emu.backend}, engines {'/'.join(sorted(set(emu.engines.values())))}), hybrid, noise off: "
          f"{rate_emu:8.1f} images/s (bit-exact)")
    print(f"ratio_vs_torch={rate_emu / rate_torch:.3f}")


if __name__ == "__main__":
    main()
