"""Bias correction of a hybrid program's lost work (docs/hybrid.md, "Bias correction").

A skipped pair always removes a non-negative count times its weight, so skipping is a *biased*
error: per filter, the hybrid accumulator misses on average E[acc_digital − acc_hybrid] (the ADC
of an analog pair adds its own, smaller bias). That mean is measured on calibration images and
added to the filter's requant ``bias`` (architecture.md §6: v = acc + bias (+ res), so adding it to
the bias is exactly adding it to every accumulator of the filter). It is an approximation: the
level, and with it the work skipped, is chosen per (pixel, column group), and the correction is
one constant per filter.

:func:`measure_bias_correction` measures every hybrid layer **in network order**: layer k's
inputs come from the network whose earlier hybrid layers are already corrected. One pass over
the images does it: the pass runs the program layer by layer on all images at once, and each
hybrid layer's correction is computed from its accumulators before the next layer runs.
The correction per filter is the mean over the images and output pixels of (digital − hybrid
accumulator), rounded half to even to an integer. :func:`apply_bias_correction` folds it into
the program's int32 biases within the validator's bounds (§4/§9.5). Numpy only.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..program.errors import InvalidProgramError
from ..program.model import Program

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def rne_div(s: int, n: int) -> int:
    """s / n rounded half to even (exact, Python ints; n > 0)."""
    q, r = divmod(int(s), int(n))
    if 2 * r > n or (2 * r == n and q % 2):
        q += 1
    return q


class _Chunking:
    """Stands in for a hybrid layer's engine in the numpy backend's loop so that the layer's
    accumulators are asked for all images at once (the correction needs them all first)."""

    chunk_pixels = 1 << 62


def measure_bias_correction(program: Program, images: np.ndarray, image_base: int = 0) -> dict[str, np.ndarray]:
    """Per hybrid layer name: the int64 correction (F,) = round-half-even of the mean over
    ``images`` and output pixels of (digital-mode accumulator − hybrid accumulator), measured in
    network order with earlier hybrid layers corrected. ``program``: a hybrid program without
    correction; ``images`` uint8 NCHW, image i with global index ``image_base + i`` (§9.6)."""
    from ..emulator.counters import LayerCounters
    from ..emulator.numpy_backend import run_numpy
    from ..emulator.ops import im2col
    from ..emulator.plan import ExecPlan, dense_weights
    from ..emulator.result import check_images
    plan = ExecPlan(program)
    engines = dict(plan.hybrid)
    if not engines:
        return {}
    for i in engines:
        plan.hybrid[i] = _Chunking()
    x0 = check_images(program, images)
    out: dict[str, np.ndarray] = {}

    def accumulate(i: int, x: np.ndarray, first: int) -> np.ndarray:
        layer, eng = program.layers[i], engines[i]
        n = x.shape[0]
        w = dense_weights(layer, program)[0].astype(np.float64)  # (F, K), exact integers
        diff = np.zeros(layer.n_filters, np.int64)
        acc = np.empty((n,) + (program.tensors[layer.out_tensor].height, program.tensors[layer.out_tensor].width,
                               layer.n_filters), np.int64)
        pix = acc.shape[1] * acc.shape[2]
        step = max(1, eng.chunk_pixels // max(pix, 1))
        for a in range(0, n, step):
            xa = x[a:a + step]
            acc_h = eng.run_numpy(xa, image_base + first + a, LayerCounters(layer.name))
            cols = im2col(xa.astype(np.float64), layer.kh, layer.kw, layer.stride, layer.pad)
            acc_d = np.rint(cols.reshape(-1, cols.shape[-1]) @ w.T).astype(np.int64)  # exact: |acc| < 2^53
            diff += (acc_d - acc_h.reshape(-1, layer.n_filters)).sum(axis=0)
            acc[a:a + step] = acc_h
        count = n * pix
        corr = np.array([rne_div(int(s), count) for s in diff.tolist()], np.int64)
        corr[layer.precision == 0] = 0
        out[layer.name] = corr
        return acc + corr

    run_numpy(plan, x0, keep_all=False, hybrid=accumulate)
    return out


def apply_bias_correction(program: Program, corrections: dict) -> tuple[Program, dict[str, np.ndarray]]:
    """``program`` with ``corrections[name]`` (int per filter) added to each named layer's bias, and
    the corrections actually applied. A filter's bias stays in int32; a layer whose corrected
    biases break its accumulator bound (§4, §9.5) gets its corrections halved (toward 0) until the
    program is valid. Deterministic."""
    from ..program.validate import validate
    layers = list(program.layers)
    applied = {}
    index = {l.name: k for k, l in enumerate(layers)}
    for name, corr in sorted(corrections.items()):
        if name not in index:
            raise KeyError(f"bias correction for a layer {name!r} that program {program.name!r} does not have")
        k = index[name]
        layer = layers[k]
        c = np.asarray(corr, np.int64).reshape(-1)
        if c.shape != (layer.n_filters,):
            raise ValueError(f"bias correction of layer {name!r}: {c.size} values for {layer.n_filters} filters")
        base = layer.bias.astype(np.int64)
        while True:
            b = np.clip(base + c, INT32_MIN, INT32_MAX)
            cand = list(layers)
            cand[k] = dataclasses.replace(layer, bias=b.astype(np.int32))
            try:
                validate(dataclasses.replace(program, layers=cand))
            except InvalidProgramError:
                if not c.any():
                    raise
                c = np.trunc(c / 2).astype(np.int64)
                continue
            layers = cand
            applied[name] = b - base
            break
    return validate(dataclasses.replace(program, layers=layers)), applied
