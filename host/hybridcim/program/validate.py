"""Semantic validation of a decoded or built program (architecture.md §3–§6).

Every rule raises InvalidProgramError naming the layer (index and name) and the values.
"""
from __future__ import annotations

import numpy as np

from ..spec.numformat import INT32
from .errors import InvalidProgramError
from .format import Op
from .model import Layer, Program
from .weights import decode_weight_matrix


def _fail(i: int, layer: Layer, msg: str) -> None:
    raise InvalidProgramError(f"layer {i} ({layer.name!r}, {layer.op.name.lower()}): {msg}")


def conv_out_hw(h: int, w: int, kh: int, kw: int, stride: int, pad: int) -> tuple[int, int]:
    """Output height and width of a conv/pool window (architecture.md §3)."""
    return (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1


def accumulator_bound(layer: Layer, program: Program, w: np.ndarray) -> int:
    """Worst-case |bias + acc + res<<res_shift| before the shift, over all filters (§4)."""
    xmax = program.tensors[layer.in_tensor].fmt.max
    bound = np.abs(w).sum(axis=1) * xmax + np.abs(layer.bias.astype(np.int64))
    if layer.res_tensor is not None:
        rf = program.tensors[layer.res_tensor].fmt
        bound = bound + (max(abs(rf.min), abs(rf.max)) << layer.res_shift.astype(np.int64))
    left = np.maximum(-layer.shift.astype(np.int64), 0)
    return int((bound << left).max()) if len(bound) else 0


def _check_cim(i: int, layer: Layer, program: Program) -> None:
    preset = program.preset
    t_in, t_out = program.tensors[layer.in_tensor], program.tensors[layer.out_tensor]
    if t_in.signed or t_in.bits > 8:
        _fail(i, layer, f"input {t_in.name!r} must be unsigned with <= 8 bits (bit-serial input), got {'i' if t_in.signed else 'u'}{t_in.bits}")
    if layer.op == Op.FC and (layer.kh, layer.kw, layer.stride, layer.pad) != (t_in.height, t_in.width, 1, 0):
        _fail(i, layer, f"fc kernel must cover the input ({t_in.height}x{t_in.width}, stride 1, pad 0), got {layer.kh}x{layer.kw}/s{layer.stride}/p{layer.pad}")
    f = layer.n_filters
    if f != t_out.channels:
        _fail(i, layer, f"n_filters {f} != output channels {t_out.channels}")
    if layer.k_rows != layer.kh * layer.kw * t_in.channels:
        _fail(i, layer, f"K={layer.k_rows} != kh*kw*C = {layer.kh * layer.kw * t_in.channels}")
    for name, arr, dt in (("precision", layer.precision, np.uint8), ("bias", layer.bias, np.int32),
                          ("shift", layer.shift, np.int8), ("res_shift", layer.res_shift, np.int8)):
        if arr is None or arr.shape != (f,):
            _fail(i, layer, f"{name} must have shape ({f},), got {None if arr is None else arr.shape}")
    bad = sorted(set(layer.precision.tolist()) - set(preset.precisions) - {0})
    if bad:
        _fail(i, layer, f"precisions {bad} not in preset {preset.name!r} set {preset.precisions} (or 0 = pruned)")
    if layer.shift.min(initial=0) < -31 or layer.shift.max(initial=0) > 31:
        _fail(i, layer, "shift outside -31..31")
    if layer.res_shift.min(initial=0) < 0 or layer.res_shift.max(initial=0) > 31:
        _fail(i, layer, "res_shift outside 0..31")
    if layer.res_tensor is not None:
        t_res = program.tensors[layer.res_tensor]
        if t_res.shape_hwc != t_out.shape_hwc or t_res.bits > 16:
            _fail(i, layer, f"residual {t_res.name!r} {t_res.shape_hwc} u/i{t_res.bits} must have <= 16 bits and the output's shape {t_out.shape_hwc}")
    gw, a = preset.group_width, preset.rows_active
    r_blocks = -(-layer.k_rows // a)
    cf, cp = layer.col_filter, layer.col_plane
    if cf is None or cf.ndim != 2 or cf.shape[1] != gw or cp.shape != cf.shape:
        _fail(i, layer, f"column map must be (groups, {gw})")
    if layer.present.shape != (cf.shape[0], r_blocks):
        _fail(i, layer, f"skip index shape {layer.present.shape} != (groups {cf.shape[0]}, row blocks {r_blocks})")
    if layer.words.shape != (int(layer.present.sum()), gw):
        _fail(i, layer, f"{layer.words.shape[0]} weight units stored, skip index marks {int(layer.present.sum())} present")
    seen = np.zeros(f, dtype=np.int64)
    for g in range(cf.shape[0]):
        c = 0
        while c < gw:
            fi = int(cf[g, c])
            if fi < 0:
                c += 1
                continue
            if fi >= f:
                _fail(i, layer, f"group {g} column {c}: filter {fi} out of range")
            p = int(layer.precision[fi])
            planes = cp[g, c:c + p].tolist()
            if p == 0 or seen[fi] or c + p > gw or cf[g, c:c + p].tolist() != [fi] * p or planes != list(range(p)):
                _fail(i, layer, f"group {g} column {c}: filter {fi} (precision {p}) must occupy {p} adjacent columns with planes 0..{p - 1} exactly once")
            seen[fi] = 1
            c += p
    missing = [fi for fi in range(f) if layer.precision[fi] > 0 and not seen[fi]]
    if missing:
        _fail(i, layer, f"filters {missing[:8]} have precision > 0 but no columns")
    w = decode_weight_matrix(layer.precision, cf, cp, layer.present, layer.words, r_blocks * a, a)
    if np.any(w[:, layer.k_rows:]):
        _fail(i, layer, "padding rows past K hold non-zero weight bits")
    bound = accumulator_bound(layer, program, w[:, :layer.k_rows])
    if bound > INT32.max:
        _fail(i, layer, f"worst-case accumulator {bound} exceeds the {preset.acc_bits}-bit datapath (2^31-1)")


def _check_shapes(i: int, layer: Layer, program: Program) -> None:
    t_in, t_out = program.tensors[layer.in_tensor], program.tensors[layer.out_tensor]
    if min(layer.kh, layer.kw, layer.stride) < 1 or layer.pad < 0:
        _fail(i, layer, f"kernel {layer.kh}x{layer.kw}, stride {layer.stride}, pad {layer.pad} invalid")
    if not layer.op.is_cim and (t_in.signed or t_out.signed):
        _fail(i, layer, "pools take and give unsigned tensors")
    if layer.op == Op.AVGPOOL:
        want = (1, 1, t_in.channels)
        if (layer.kh, layer.kw, layer.stride, layer.pad) != (t_in.height, t_in.width, 1, 0):
            _fail(i, layer, f"global avgpool window must be {t_in.height}x{t_in.width}, stride 1, pad 0")
        if not layer.clamp_lo <= 0 <= layer.clamp_hi:
            _fail(i, layer, f"avgpool clamp [{layer.clamp_lo}, {layer.clamp_hi}] must map 0 to 0 (contain 0)")
    else:
        if layer.op == Op.MAXPOOL and (layer.kh != layer.kw or layer.pad != 0):
            _fail(i, layer, f"maxpool window must be square with no padding, got {layer.kh}x{layer.kw} pad {layer.pad}")
        ho, wo = conv_out_hw(t_in.height, t_in.width, layer.kh, layer.kw, layer.stride, layer.pad)
        want = (ho, wo, t_out.channels if layer.op.is_cim else t_in.channels)
    if t_out.shape_hwc != want:
        _fail(i, layer, f"output {t_out.name!r} shape {t_out.shape_hwc} != computed {want}")
    if layer.op == Op.MAXPOOL and (t_out.bits, t_out.signed) != (t_in.bits, t_in.signed):
        _fail(i, layer, "maxpool output format must equal its input format")
    if layer.op != Op.MAXPOOL:
        fmt = t_out.fmt
        if not fmt.min <= layer.clamp_lo <= layer.clamp_hi <= fmt.max:
            _fail(i, layer, f"clamp [{layer.clamp_lo}, {layer.clamp_hi}] outside output format [{fmt.min}, {fmt.max}]")
    if layer.op == Op.AVGPOOL:
        if not -31 <= layer.pool_shift <= 31:
            _fail(i, layer, f"pool_shift {layer.pool_shift} outside -31..31")
        if t_in.height * t_in.width * max(abs(t_in.fmt.min), t_in.fmt.max) << max(-layer.pool_shift, 0) > INT32.max:
            _fail(i, layer, "global sum exceeds int32")


def validate(program: Program) -> Program:
    """Check every spec rule; returns the program unchanged or raises InvalidProgramError."""
    nt = len(program.tensors)
    for t in program.tensors:
        if min(t.channels, t.height, t.width) < 1 or not 1 <= t.bits <= (32 if t.signed else 31):
            raise InvalidProgramError(f"tensor {t.name!r}: bad shape {t.shape_hwc} or bits {t.bits} "
                                      f"(1..32 signed, 1..31 unsigned: values must fit the int32 datapath)")
    if not 0 <= program.input_tensor < nt or not 0 <= program.output_tensor < nt:
        raise InvalidProgramError(f"input/output tensor index out of range ({program.input_tensor}, {program.output_tensor}; {nt} tensors)")
    t_in = program.input
    if t_in.signed or t_in.bits > 8:
        raise InvalidProgramError(f"program input {t_in.name!r} must be unsigned with <= 8 bits")
    produced = {program.input_tensor}
    for i, layer in enumerate(program.layers):
        if layer.flags != 0:
            _fail(i, layer, f"flags {layer.flags:#x} are reserved (macro type of a later format): spec 1.0 needs 0")
        if layer.mode != 0:
            _fail(i, layer, f"mode {layer.mode} is reserved (spec 1.0 supports digital mode 0 only)")
        for role, t in (("input", layer.in_tensor), ("residual", layer.res_tensor)):
            if t is not None and (not 0 <= t < nt or t not in produced):
                _fail(i, layer, f"{role} tensor {t} is not the program input or an earlier layer's output")
        if not 0 <= layer.out_tensor < nt or layer.out_tensor in produced:
            _fail(i, layer, f"output tensor {layer.out_tensor} is out of range or written twice")
        _check_shapes(i, layer, program)
        if layer.op.is_cim:
            _check_cim(i, layer, program)
        elif layer.res_tensor is not None:
            _fail(i, layer, "pools take no residual")
        produced.add(layer.out_tensor)
    if program.output_tensor not in produced or program.output_tensor == program.input_tensor:
        raise InvalidProgramError(f"output tensor {program.output_tensor} is never produced")
    return program
