"""A ResNet-20-shaped CIFAR-10 program with random integer weights, for benchmarks and tests.

Shapes follow He et al. (2016) for CIFAR: a 3x3 stem of 16 filters, three stages of three
basic blocks (16, 32, 64 filters; stride 2 at the start of stages 2 and 3 with a 1x1
strided conv shortcut that produces a signed int8 residual), global average pool, and a
10-way logits layer. Weights are uniform in the precision's range; sparsity is structured
(architecture.md §5): ``filter_sparsity`` of each conv's filters are pruned whole, then
(row block x column group) units are pruned until ``sparsity`` of all conv weights are 0.
Requant shifts are calibrated on random images so activations use their range.
"""
from __future__ import annotations

import numpy as np

from ..cim.requant import requantize
from ..emulator.ops import avgpool, im2col
from ..program.builder import ProgramBuilder
from ..program.model import Program
from ..program.packing import pack_filters
from ..spec.hardware import HardwarePreset, get_preset


class _Net:
    """Builds the program while running a numpy forward pass used to calibrate shifts."""

    def __init__(self, preset: HardwarePreset, rng: np.random.Generator, wbits: int, abits: int,
                 sparsity: float, filter_sparsity: float, calib: np.ndarray):
        self.b = ProgramBuilder(preset, name="resnet20-random")
        self.preset, self.rng, self.wbits, self.abits = preset, rng, wbits, abits
        self.sparsity, self.filter_sparsity = sparsity, filter_sparsity
        self.acts: dict[int, np.ndarray] = {}
        self.x = self.b.input("image", 3, 32, 32)
        self.acts[self.x] = calib.transpose(0, 2, 3, 1).astype(np.int64)

    def _weights(self, f: int, c: int, k: int) -> tuple[np.ndarray, np.ndarray, list]:
        lim = 1 << (self.wbits - 1)
        w = self.rng.integers(-lim, lim, size=(f, c, k, k))
        prec = np.full(f, self.wbits)
        dead = self.rng.choice(f, size=int(round(self.filter_sparsity * f)), replace=False)
        prec[dead] = 0
        w[dead] = 0
        groups = pack_filters(prec, self.preset.group_width)
        # prune (row block x group) units, HWC reduction order, until the weight sparsity target
        a = self.preset.rows_active
        kk = k * k * c
        r = -(-kk // a)
        units = [(g, blk) for g in range(len(groups)) for blk in range(r)]
        keep_frac = (1 - self.sparsity) / max(1e-9, 1 - self.filter_sparsity)
        n_prune = int(round((1 - keep_frac) * len(units)))
        wm = w.transpose(0, 2, 3, 1).reshape(f, kk)
        for idx in self.rng.choice(len(units), size=n_prune, replace=False):
            g, blk = units[idx]
            for fi, _ in groups[g]:
                wm[fi, blk * a:(blk + 1) * a] = 0
        w = wm.reshape(f, k, k, c).transpose(0, 3, 1, 2)
        return w, prec, groups

    def conv(self, name: str, x: int, f: int, k: int, stride: int, res: int | None = None,
             signed_out: bool = False) -> int:
        xin = self.acts[x]
        c = xin.shape[-1]
        w, prec, groups = self._weights(f, c, k)
        pad = k // 2
        cols = im2col(xin, k, k, stride, pad)
        acc = cols @ w.transpose(0, 2, 3, 1).reshape(f, -1).T
        out_bits = 8 if signed_out else self.abits
        qmax = (1 << (out_bits - 1)) - 1 if signed_out else (1 << out_bits) - 1
        res_shift = np.zeros(f, dtype=np.int64)
        v = acc.astype(np.float64)
        if res is not None:
            res_shift[:] = 3
            v = v + (self.acts[res] << 3)
        scale = np.percentile(np.abs(v), 99.0) if v.size else 1.0
        shift = int(max(0, np.ceil(np.log2(max(scale, 1.0) / qmax))))
        shifts = np.full(f, shift)
        lo = -(qmax + 1) if signed_out else 0
        y = self.b.conv(name, x, w, prec, shifts, stride=stride, pad=pad, out_bits=out_bits, groups=groups,
                        res=res, res_shift=res_shift if res is not None else None,
                        out_signed=signed_out, clamp=(lo, qmax))
        self.acts[y] = requantize(acc, np.zeros(f), shifts, lo, qmax, self.acts.get(res),
                                  res_shift if res is not None else None)
        return y


def random_resnet20(preset: "str | HardwarePreset" = "sun-mars-256", seed: int = 0, wbits: int = 4, abits: int = 4,
                    sparsity: float = 0.5, filter_sparsity: float = 0.25, n_calib: int = 16) -> Program:
    """ResNet-20-shaped program with random ``wbits`` weights, ``abits`` activations, structured sparsity."""
    preset = get_preset(preset)
    rng = np.random.default_rng(seed)
    calib = rng.integers(0, 256, size=(n_calib, 3, 32, 32), dtype=np.uint8)
    net = _Net(preset, rng, wbits, abits, sparsity, filter_sparsity, calib)
    x = net.conv("stem", net.x, 16, 3, 1)
    for stage, width in enumerate((16, 32, 64)):
        for blk in range(3):
            stride = 2 if stage > 0 and blk == 0 else 1
            name = f"s{stage + 1}b{blk + 1}"
            short = x
            if stride != 1:
                short = net.conv(f"{name}_short", x, width, 1, stride, signed_out=True)
            h = net.conv(f"{name}_conv1", x, width, 3, stride)
            x = net.conv(f"{name}_conv2", h, width, 3, 1, res=short)
    g = net.b.avgpool("gap", x)
    net.acts[g] = avgpool(net.acts[x], net.b.layers[-1])
    lim = 1 << (wbits - 1)
    w_fc = rng.integers(-lim, lim, size=(10, 64))
    net.b.fc("logits", g, w_fc, np.full(10, wbits), np.zeros(10, dtype=np.int64), logits=True)
    net.b.metadata["description"] = "random-weight ResNet-20 shape (benchmark; not trained)"
    return net.b.build()
