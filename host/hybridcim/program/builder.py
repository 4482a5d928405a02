"""Build programs from integer tensors (used by the compiler, the zoo and the tests).

>>> import numpy as np
>>> from hybridcim.spec import get_preset
>>> b = ProgramBuilder(get_preset("tiny-64"), name="doc")
>>> x = b.input("image", channels=3, height=4, width=4)
>>> w = np.ones((2, 3, 3, 3), dtype=np.int64)
>>> y = b.conv("c1", x, w, precision=[2, 2], shift=[4, 4], out_bits=4, pad=1)
>>> p = b.build(output=y)
>>> [l.name for l in p.layers], p.tensors[y].shape_hwc
(['c1'], (4, 4, 2))
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..spec.hardware import HardwarePreset
from ..spec.numformat import INT32
from .dualpath import DualPathParams, encode_ternary
from .format import FLAG_DUAL, MODE_DIGITAL, MODE_HYBRID, Op
from .hybrid import HybridParams
from .model import Layer, Program, TensorSpec
from .packing import column_map, pack_filters
from .validate import conv_out_hw, validate
from .weights import conv_weight_matrix, encode_words


class ProgramBuilder:
    """Appends tensors and layers; :meth:`build` validates and returns the Program."""

    def __init__(self, preset: HardwarePreset, name: str = "program", metadata: dict | None = None):
        self.preset = preset
        self.name = name
        self.metadata = dict(metadata or {})
        self.tensors: list[TensorSpec] = []
        self.layers: list[Layer] = []
        self._input: int | None = None

    def _tensor(self, spec: TensorSpec) -> int:
        if any(t.name == spec.name for t in self.tensors):
            raise ValueError(f"duplicate tensor name {spec.name!r}")
        self.tensors.append(spec)
        return len(self.tensors) - 1

    def input(self, name: str, channels: int, height: int, width: int, bits: int = 8, exponent: int = 8) -> int:
        """Declare the unsigned program input (raw pixels: uint8, exponent 8)."""
        if self._input is not None:
            raise ValueError("the program already has an input")
        self._input = self._tensor(TensorSpec(name, channels, height, width, bits, False, exponent))
        return self._input

    def conv(self, name: str, x: int, weights: np.ndarray, precision: Sequence[int], shift: Sequence[int],
             bias: Sequence[int] | None = None, stride: int = 1, pad: int = 0, out_bits: int = 4,
             out_exponent: int = 0, res: int | None = None, res_shift: Sequence[int] | None = None,
             packing: str = "paired", groups: list | None = None, op: Op = Op.CONV,
             clamp: tuple[int, int] | None = None, out_signed: bool = False,
             hybrid: HybridParams | None = None, dual: DualPathParams | None = None) -> int:
        """Conv layer from torch-layout integer weights (F, C, kh, kw); ReLU clamp [0, 2^out_bits-1].

        precision (F,): bits per filter, 0 = pruned (its weights must be 0). bias (F,) int32,
        shift (F,) in -31..31, res_shift (F,) in 0..31. ``groups`` overrides the packing.
        ``hybrid``: run the layer in hybrid mode 1 with this level table (architecture.md §9).
        ``dual``: a dual-path layer (architecture.md §10, a preset with the second macro type): its
        last ⌊F·q/8⌋ filters are ternary (weights in {-1, 0, 1}, precision 0) and run on the ternary
        macros with the binary input x >= dual.bin_threshold; the others on the SRAM path as usual.
        """
        t_in = self.tensors[x]
        w4 = np.asarray(weights, dtype=np.int64)
        if w4.ndim != 4 or w4.shape[1] != t_in.channels:
            raise ValueError(f"layer {name!r}: weights {w4.shape} must be (F, C={t_in.channels}, kh, kw)")
        f, _, kh, kw = w4.shape
        prec = np.asarray(precision, dtype=np.int64)
        if prec.shape != (f,):
            raise ValueError(f"layer {name!r}: precision must have shape ({f},), got {prec.shape}")
        w = conv_weight_matrix(w4)
        first_tern = f
        if dual is not None:
            if not isinstance(dual, DualPathParams):
                raise TypeError(f"layer {name!r}: dual must be a DualPathParams, got {type(dual).__name__}")
            problem = dual.problem(t_in.bits)
            if problem:
                raise ValueError(f"layer {name!r}: {problem}")
            if not self.preset.has_tern:
                raise ValueError(f"layer {name!r}: dual-path layer on preset {self.preset.name!r}, which has no "
                                 "second macro type (tern_* fields)")
            first_tern = dual.first_tern(f)
        for fi in range(first_tern, f):
            if prec[fi] != 0:
                raise ValueError(f"layer {name!r}: filter {fi} is on the ternary path (the last "
                                 f"{f - first_tern} of {f}): its precision must be 0, got {prec[fi]}")
            if w[fi].min(initial=0) < -1 or w[fi].max(initial=0) > 1:
                raise ValueError(f"layer {name!r}: ternary filter {fi} has a weight outside {{-1, 0, 1}} "
                                 f"([{w[fi].min()}, {w[fi].max()}])")
        for fi in range(first_tern):
            p = int(prec[fi])
            lo, hi = (-(1 << (p - 1)), (1 << (p - 1)) - 1) if p else (0, 0)
            if w[fi].min() < lo or w[fi].max() > hi:
                raise ValueError(f"layer {name!r}: filter {fi} weights [{w[fi].min()}, {w[fi].max()}] exceed int{p} [{lo}, {hi}]")
        ho, wo = conv_out_hw(t_in.height, t_in.width, kh, kw, stride, pad)
        if clamp is None:
            clamp = (0, (1 << out_bits) - 1) if not out_signed else (-(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1)
        y = self._tensor(TensorSpec(name, f, ho, wo, out_bits, out_signed, out_exponent))
        gw = self.preset.group_width
        groups = pack_filters(prec, gw, packing) if groups is None else groups
        col_filter, col_plane = column_map(groups, prec, gw)
        present, words = encode_words(w, prec, col_filter, col_plane, self.preset.rows_active)
        tern_words = None
        if dual is not None:
            tern_words = encode_ternary(w[first_tern:], self.preset.tern_rows_active)
        as_arr = lambda v, dt: np.asarray(v if v is not None else np.zeros(f), dtype=np.int64).astype(dt)
        self.layers.append(Layer(
            name=name, op=op, in_tensor=x, out_tensor=y, res_tensor=res, kh=kh, kw=kw, stride=stride,
            pad=pad, clamp_lo=int(clamp[0]), clamp_hi=int(clamp[1]), n_filters=f, k_rows=w.shape[1],
            precision=prec.astype(np.uint8), bias=as_arr(bias, np.int32), shift=as_arr(shift, np.int8),
            res_shift=as_arr(res_shift, np.int8), col_filter=col_filter, col_plane=col_plane,
            present=present, words=words, mode=MODE_HYBRID if hybrid is not None else MODE_DIGITAL, hybrid=hybrid,
            flags=FLAG_DUAL if dual is not None else 0, dual=dual, tern_words=tern_words))
        return y

    def fc(self, name: str, x: int, weights: np.ndarray, precision: Sequence[int], shift: Sequence[int],
           logits: bool = False, **kw) -> int:
        """Fully connected layer over the whole input; weights (F, C, H, W) or (F, C) for 1x1 inputs.

        ``logits=True`` makes a signed int32 output without ReLU (clamp to the int32 range).
        """
        t_in = self.tensors[x]
        w = np.asarray(weights)
        if w.ndim == 2:
            w = w.reshape(w.shape[0], w.shape[1], 1, 1)
        if w.shape[2:] != (t_in.height, t_in.width):
            raise ValueError(f"layer {name!r}: fc weights {w.shape} must cover the {t_in.height}x{t_in.width} input")
        if logits:
            kw.update(out_bits=32, out_signed=True, clamp=(INT32.min, INT32.max))
        return self.conv(name, x, w, precision, shift, op=Op.FC, **kw)

    def maxpool(self, name: str, x: int, k: int = 2, stride: int | None = None) -> int:
        """k x k max pool (no padding), same number format as the input."""
        t = self.tensors[x]
        s = stride or k
        ho, wo = conv_out_hw(t.height, t.width, k, k, s, 0)
        y = self._tensor(TensorSpec(name, t.channels, ho, wo, t.bits, t.signed, t.exponent))
        self.layers.append(Layer(name=name, op=Op.MAXPOOL, in_tensor=x, out_tensor=y, kh=k, kw=k, stride=s))
        return y

    def avgpool(self, name: str, x: int, shift: int | None = None, out_bits: int | None = None,
                out_exponent: int | None = None) -> int:
        """Global average pool: int32 sum over HxW, rshift_rne by ``shift`` (default log2(H*W)), clamp."""
        t = self.tensors[x]
        hw = t.height * t.width
        if shift is None:
            if hw & (hw - 1):
                raise ValueError(f"layer {name!r}: H*W={hw} is not a power of two; give shift explicitly")
            shift = hw.bit_length() - 1
        bits = out_bits or t.bits
        y = self._tensor(TensorSpec(name, t.channels, 1, 1, bits, False,
                                    t.exponent if out_exponent is None else out_exponent))
        self.layers.append(Layer(name=name, op=Op.AVGPOOL, in_tensor=x, out_tensor=y, kh=t.height,
                                 kw=t.width, clamp_lo=0, clamp_hi=(1 << bits) - 1, pool_shift=int(shift)))
        return y

    def build(self, output: int | None = None) -> Program:
        """Validate and return the program (output defaults to the last layer's tensor)."""
        if self._input is None or not self.layers:
            raise ValueError("a program needs an input and at least one layer")
        out = self.layers[-1].out_tensor if output is None else output
        return validate(Program(self.preset, list(self.tensors), list(self.layers), self._input, out,
                                self.name, dict(self.metadata)))


def make_hybrid(program: Program, params: "dict[str, HybridParams] | HybridParams") -> Program:
    """A copy of ``program`` whose conv/fc layers named in ``params`` (a dict name -> HybridParams;
    a single HybridParams: every conv/fc layer) run in hybrid mode 1; validated (architecture.md §9).
    A ``None`` value makes that layer digital again."""
    import dataclasses
    if isinstance(params, HybridParams):
        params = {l.name: params for l in program.layers if l.op.is_cim}
    names = {l.name for l in program.layers}
    unknown = sorted(set(params) - names)
    if unknown:
        raise KeyError(f"no layers named {unknown} in program {program.name!r}")
    layers = [dataclasses.replace(l, mode=MODE_DIGITAL if params[l.name] is None else MODE_HYBRID,
                                  hybrid=params[l.name]) if l.name in params else l for l in program.layers]
    return validate(dataclasses.replace(program, layers=layers))


def make_dual(program: Program, params: "dict[str, tuple[DualPathParams, np.ndarray] | None]",
              packing: str = "paired") -> Program:
    """A copy of ``program`` whose conv/fc layers named in ``params`` are dual-path layers (architecture.md
    §10; the program's preset must have the second macro type). ``params[name]`` = (DualPathParams,
    ternary weights int (F_t, K) in {-1, 0, 1}, K in the HWC reduction order of §3): the layer's last
    F_t = ⌊F·q/8⌋ filters move to the ternary path with these weights (their SRAM weights and precision
    are dropped and the remaining filters are packed again with ``packing``); ``None`` makes a dual-path
    layer plain digital again with its ternary filters pruned. Validated."""
    import dataclasses
    from .weights import decode_weight_matrix
    names = {l.name for l in program.layers}
    unknown = sorted(set(params) - names)
    if unknown:
        raise KeyError(f"no layers named {unknown} in program {program.name!r}")
    pr = program.preset
    layers = []
    for l in program.layers:
        if l.name not in params:
            layers.append(l)
            continue
        if not l.op.is_cim:
            raise ValueError(f"layer {l.name!r}: only conv/fc layers can be dual-path")
        spec = params[l.name]
        w = decode_weight_matrix(l.precision, l.col_filter, l.col_plane, l.present, l.words, l.k_rows, pr.rows_active)
        prec = l.precision.astype(np.int64).copy()
        dual, tern_words, flags = None, None, 0
        if spec is not None:
            dual, t = spec
            if not isinstance(dual, DualPathParams):
                raise TypeError(f"layer {l.name!r}: expected (DualPathParams, ternary weights), got {type(dual).__name__}")
            problem = dual.problem(program.tensors[l.in_tensor].bits)
            if problem:
                raise ValueError(f"layer {l.name!r}: {problem}")
            if not pr.has_tern:
                raise ValueError(f"layer {l.name!r}: dual-path layer on preset {pr.name!r}, which has no second "
                                 "macro type (tern_* fields)")
            f0 = dual.first_tern(l.n_filters)
            t = np.asarray(t, dtype=np.int64)
            if t.shape != (l.n_filters - f0, l.k_rows):
                raise ValueError(f"layer {l.name!r}: ternary weights must be ({l.n_filters - f0}, {l.k_rows}), got {t.shape}")
            if t.size and (t.min() < -1 or t.max() > 1):
                raise ValueError(f"layer {l.name!r}: ternary weight outside {{-1, 0, 1}} ([{t.min()}, {t.max()}])")
            w[f0:], prec[f0:] = 0, 0
            tern_words, flags = encode_ternary(t, pr.tern_rows_active), FLAG_DUAL
        groups = pack_filters(prec, pr.group_width, packing)
        col_filter, col_plane = column_map(groups, prec, pr.group_width)
        present, words = encode_words(w, prec, col_filter, col_plane, pr.rows_active)
        layers.append(dataclasses.replace(l, precision=prec.astype(np.uint8), col_filter=col_filter,
                                          col_plane=col_plane, present=present, words=words, flags=flags,
                                          dual=dual, tern_words=tern_words))
    return validate(dataclasses.replace(program, layers=layers))
