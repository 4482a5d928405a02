"""Semantic validation of a decoded or built program (architecture.md §3–§6).

Every rule raises InvalidProgramError naming the layer (index and name) and the values.
"""
from __future__ import annotations

import json

import numpy as np

from ..spec.numformat import INT32
from .errors import InvalidProgramError, ManifestError
from .dualpath import DualPathParams, decode_ternary
from .format import FLAG_DUAL, MANIFEST_MAX_DEPTH, MANIFEST_MAX_NAME, MODE_DIGITAL, MODE_HYBRID, Op
from .hybrid import HybridParams
from ..cim.hybrid import adc_max_count
from .model import Layer, Program
from ..cim.bitplanes import unpack_rows


_CIM_FIELDS = ("precision", "bias", "shift", "res_shift", "col_filter", "col_plane", "present", "words")


def _fail(i: int, layer: Layer, msg: str) -> None:
    raise InvalidProgramError(f"layer {i} ({layer.name!r}, {layer.op.name.lower()}): {msg}")


def conv_out_hw(h: int, w: int, kh: int, kw: int, stride: int, pad: int) -> tuple[int, int]:
    """Output height and width of a conv/pool window (architecture.md §3)."""
    return (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1


def filter_abs_sums(layer: Layer, rows_active: int, chunk_units: int = 2048) -> np.ndarray:
    """Σ_k |W[f, k]| of every filter (int64, (F,)), straight from the stored units.

    Works unit by unit (chunks of ``chunk_units``), never building the dense F×K matrix, so
    memory stays proportional to the stored weight words. Needs a valid column map (each
    filter in adjacent columns with planes 0..P-1): the start column of a filter is c - plane.
    """
    f = layer.n_filters
    sums = np.zeros(f, dtype=np.int64)
    cf, cp = layer.col_filter.astype(np.int64), layer.col_plane.astype(np.int64)
    gw = cf.shape[1]
    gs, _ = np.nonzero(layer.present)
    prec = layer.precision.astype(np.int64)
    start = np.where(cf >= 0, np.arange(gw)[None, :] - cp, -1)
    for lo in range(0, len(gs), chunk_units):
        g = gs[lo:lo + chunk_units]
        n = len(g)
        bits = unpack_rows(layer.words[lo:lo + chunk_units], rows_active).astype(np.int64)  # (n, G, A)
        wblk = np.zeros((n, gw, rows_active), dtype=np.int64)  # row values, indexed by start column
        for c in range(gw):
            fc = cf[g, c]
            used = np.nonzero(fc >= 0)[0]
            if not len(used):
                continue
            j = cp[g[used], c]
            sign = np.where(j == prec[fc[used]] - 1, -1, 1) << j
            wblk[used, start[g[used], c]] += sign[:, None] * bits[used, c, :]
        per_start = np.abs(wblk).sum(axis=2)  # (n, G)
        for s in range(gw):
            owner = np.where(cp[g, s] == 0, cf[g, s], -1)
            ok = owner >= 0
            np.add.at(sums, owner[ok], per_start[ok, s])
    return sums


def accumulator_bound(layer: Layer, program: Program, w: np.ndarray | None = None) -> int:
    """Exact worst case of |v| of §4 over all filters, as a Python int (never wraps).

    Per filter: (Σ_k |W[f,k]|·xmax + |bias[f]| + [residual layer] rmax·2^res_shift[f])
    · 2^max(0, −shift[f]); a pruned filter counts through its bias (and residual). ``w``:
    the dense (F, K) weight matrix if the caller has it, else the sums come from the units.
    """
    xmax = program.tensors[layer.in_tensor].fmt.max
    sabs = (np.abs(w).sum(axis=1) if w is not None else filter_abs_sums(layer, program.preset.rows_active)).tolist()
    acc_max = [int(s) * xmax for s in sabs]
    if layer.flags & FLAG_DUAL:  # §10.5: a ternary filter's |acc| <= Σ_k |T[f,k]| (binary input, x_max = 1)
        first = layer.dual.first_tern(layer.n_filters)
        tabs = np.abs(decode_ternary(layer.tern_words, layer.k_rows, program.preset.tern_rows_active)).sum(axis=1)
        for u, t in enumerate(tabs.tolist()):
            acc_max[first + u] = int(t)
    return _bound_over_filters(layer, program, acc_max)


def _bound_over_filters(layer: Layer, program: Program, acc_max: list[int]) -> int:
    """max over filters f of (acc_max[f] + |bias[f]| + [residual layer] rmax·2^res_shift[f])
    · 2^max(0, −shift[f]), as a Python int: the part of the accumulator bound shared by the
    digital and hybrid modes (``acc_max``: the worst-case |acc[f]| of the mode)."""
    rmax = 0
    if layer.res_tensor is not None:
        rf = program.tensors[layer.res_tensor].fmt
        rmax = max(abs(rf.min), abs(rf.max))
    best = 0
    for a, b, sh, rs in zip(acc_max, layer.bias.tolist(), layer.shift.tolist(), layer.res_shift.tolist()):
        v = a + abs(int(b)) + (rmax << int(rs) if rmax else 0)
        best = max(best, v << max(0, -int(sh)))
    return best


def _check_mode(i: int, layer: Layer, program: Program) -> None:
    """mode 0 (digital) or 1 (hybrid, conv/fc, with valid HybridParams); architecture.md §9.5."""
    if layer.mode not in (MODE_DIGITAL, MODE_HYBRID):
        _fail(i, layer, f"mode {layer.mode} unknown (0 = digital, 1 = hybrid)")
    if layer.mode == MODE_DIGITAL:
        if layer.hybrid is not None:
            _fail(i, layer, "hybrid parameters given for a digital (mode 0) layer")
        return
    if not layer.op.is_cim:
        _fail(i, layer, "mode 1 (hybrid) applies to conv/fc layers only")
    if not isinstance(layer.hybrid, HybridParams):
        _fail(i, layer, "mode 1 (hybrid) needs its hybrid parameters (level table)")
    _check_params(i, layer, program, layer.hybrid)


def _check_params(i: int, layer: Layer, program: Program, params) -> None:
    """A layer section's own field rules (HybridParams / DualPathParams ``problem(bits_in)``),
    against the layer input's bit width (8 when the input tensor index is itself invalid)."""
    bits_in = program.tensors[layer.in_tensor].bits if 0 <= layer.in_tensor < len(program.tensors) else 8
    problem = params.problem(bits_in)
    if problem:
        _fail(i, layer, problem)


def _check_dual(i: int, layer: Layer, program: Program) -> None:
    """flags bit 0 (dual-path): the preset's second macro type, conv/fc in mode 0, valid
    DualPathParams and ternary weights (architecture.md §10.5)."""
    pr = program.preset
    if layer.flags != FLAG_DUAL or not layer.op.is_cim:
        _fail(i, layer, f"flags {layer.flags:#x} are reserved: only bit 0 (dual-path, format 1.2) on a conv/fc "
                        "layer is defined")
    if not pr.has_tern:
        _fail(i, layer, f"dual-path layer on preset {pr.name!r}, which has no second macro type (tern_* fields): "
                        "the ternary path has no macro to run on")
    if layer.mode != MODE_DIGITAL:
        _fail(i, layer, f"dual-path layer in mode {layer.mode}: spec 1.2 combines the dual path with digital mode 0 only")
    if not isinstance(layer.dual, DualPathParams):
        _fail(i, layer, "a dual-path layer needs its DualPathParams (ratio_eighths, bin_threshold)")
    _check_params(i, layer, program, layer.dual)
    f, a = layer.n_filters, pr.tern_rows_active
    f_t, r_t = layer.dual.n_tern(f), -(-layer.k_rows // a)
    if r_t > 0xFFFF:
        _fail(i, layer, f"{r_t} ternary row blocks (K = {layer.k_rows} / tern_rows_active {a}) exceed the dual "
                        "section's u16 n_tern_rowblocks")
    tw = layer.tern_words
    if not isinstance(tw, np.ndarray) or tw.dtype != np.uint64 or tw.shape != (f_t, r_t, 2):
        _fail(i, layer, f"ternary weights must be uint64 ({f_t}, {r_t}, 2) (ternary filters, row blocks, "
                        f"positive/negative cells), got {None if tw is None else (getattr(tw, 'dtype', None), getattr(tw, 'shape', None))}")
    if a < 64 and np.any(tw >> np.uint64(a)):
        _fail(i, layer, f"ternary weight words hold bits above tern_rows_active ({a}): bits {a}..63 must be 0")
    both = tw[..., 0] & tw[..., 1]
    if np.any(both):
        u = int(np.nonzero(both)[0][0])
        _fail(i, layer, f"ternary filter {f - f_t + u}: a weight has both cells set (outside {{-1, 0, 1}})")
    tail = layer.k_rows - (r_t - 1) * a
    if f_t and tail < a and np.any(tw[:, -1, :] & np.uint64(((1 << a) - 1) & ~((1 << tail) - 1))):
        _fail(i, layer, "ternary padding rows past K hold non-zero cells")
    if f_t and layer.precision is not None and np.any(layer.precision[f - f_t:]):
        _fail(i, layer, f"ternary-path filters {f - f_t}..{f - 1} must have SRAM precision 0 (their weights are "
                        "on the ternary macros)")


def hybrid_accumulator_bound(layer: Layer, program: Program) -> int:
    """Exact worst case of |v| of a hybrid layer (architecture.md §9.5), as a Python int.

    Per filter f of group g: (Σ over g's present row blocks b of max(real_rows_b, n̂_max))
    · (2^X − 1) · (2^P_f − 1) + |bias[f]| + [residual] rmax·2^res_shift[f], × 2^max(0, −shift[f]);
    n̂_max = (2^adc_bits − 1) · 2^s the largest reconstructed ADC count. Pruned filters: 0 + bias (+ res).
    """
    pr = program.preset
    a = pr.rows_active
    x_bits = program.tensors[layer.in_tensor].bits
    nmax = adc_max_count(a, pr.adc_bits)
    rows = np.minimum(a, layer.k_rows - np.arange(layer.n_rowblocks) * a)
    per_group = (layer.present * np.maximum(rows, nmax)[None, :]).sum(axis=1).tolist()
    group_of = {}
    for g in range(layer.n_groups):
        for fi in layer.col_filter[g].tolist():
            if fi >= 0:
                group_of[fi] = g
    acc_max = [int(per_group[group_of[f]]) * ((1 << x_bits) - 1) * ((1 << int(p)) - 1) if p and f in group_of else 0
               for f, p in enumerate(layer.precision.tolist())]
    return _bound_over_filters(layer, program, acc_max)


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
    if a < 64 and np.any(layer.words >> np.uint64(a)):
        _fail(i, layer, f"weight words hold bits above rows_active ({a}): bits {a}..63 must be 0")
    tail = layer.k_rows - (r_blocks - 1) * a  # real rows of the last row block
    if tail < a and layer.present[:, -1].any():
        pad_mask = np.uint64(((1 << a) - 1) & ~((1 << tail) - 1))
        unit_of = np.cumsum(layer.present.reshape(-1)).reshape(layer.present.shape) - 1
        last = unit_of[layer.present[:, -1], -1]
        used = cf[layer.present[:, -1]] >= 0
        if np.any(((layer.words[last] & pad_mask) != 0) & used):
            _fail(i, layer, "padding rows past K hold non-zero weight bits")
    bound = hybrid_accumulator_bound(layer, program) if layer.mode == MODE_HYBRID else accumulator_bound(layer, program)
    if bound > INT32.max:
        _fail(i, layer, f"worst-case accumulator {bound} exceeds the {preset.acc_bits}-bit datapath (2^31-1)")


def _check_shapes(i: int, layer: Layer, program: Program) -> None:
    t_in, t_out = program.tensors[layer.in_tensor], program.tensors[layer.out_tensor]
    if min(layer.kh, layer.kw, layer.stride) < 1 or layer.pad < 0:
        _fail(i, layer, f"kernel {layer.kh}x{layer.kw}, stride {layer.stride}, pad {layer.pad} invalid")
    if not layer.op.is_cim and (t_in.signed or t_out.signed):
        _fail(i, layer, "pools take and give unsigned tensors")
    if not layer.op.is_cim:
        if layer.n_filters or layer.k_rows or any(getattr(layer, n) is not None for n in _CIM_FIELDS):
            _fail(i, layer, "pool records hold n_filters = k_rows = n_groups = n_rowblocks = n_weight_words = 0 "
                            "and all section offsets 0")
        if layer.op == Op.MAXPOOL and (layer.clamp_lo, layer.clamp_hi, layer.pool_shift) != (0, 0, 0):
            _fail(i, layer, f"maxpool clamp [{layer.clamp_lo}, {layer.clamp_hi}] and pool_shift {layer.pool_shift} "
                            "must be 0 (a maxpool does not requantize)")
    elif layer.pool_shift != 0:
        _fail(i, layer, f"pool_shift {layer.pool_shift} must be 0 outside avgpool")
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
        worst = t_in.height * t_in.width * t_in.fmt.max << max(-layer.pool_shift, 0)
        if worst > INT32.max:
            _fail(i, layer, f"worst-case global sum H*W*xmax*2^max(0,-pool_shift) = {worst} exceeds int32 (2^31-1)")


def validate(program: Program) -> Program:
    """Check every spec rule; returns the program unchanged or raises InvalidProgramError."""
    nt = len(program.tensors)
    for t in program.tensors:
        if not isinstance(t.signed, (bool, np.bool_)):
            raise InvalidProgramError(f"tensor {t.name!r}: signed must be a bool (byte 0 or 1), got {t.signed!r}")
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
            _check_dual(i, layer, program)
        elif layer.dual is not None or layer.tern_words is not None:
            _fail(i, layer, "dual-path parameters or ternary weights given for a layer without flags bit 0")
        _check_mode(i, layer, program)
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
    check_manifest(manifest_of(program))
    return program


def manifest_of(program: Program) -> dict:
    """The embedded manifest object of ``program`` (program-format.md "Embedded manifest")."""
    return {"name": program.name, "tensors": [t.name for t in program.tensors],
            "layers": [l.name for l in program.layers], "metadata": program.metadata}


def _depth(obj, limit: int) -> int:
    """Nesting depth of lists/dicts (a scalar is 0), stopping past ``limit`` (no deep recursion)."""
    depth, level = 0, [obj]
    while level:
        nxt = []
        for o in level:
            if isinstance(o, dict):
                nxt.extend(o.values())
            elif isinstance(o, (list, tuple)):
                nxt.extend(o)
        if not any(isinstance(o, (dict, list, tuple)) for o in level):
            break
        depth += 1
        if depth > limit:
            break
        level = nxt
    return depth


def check_manifest(meta, n_tensors: int | None = None, n_layers: int | None = None) -> None:
    """Schema of the embedded manifest; raises ManifestError naming the field.

    ``{"name": str, "tensors": [str] * n_tensors, "layers": [str] * n_layers, "metadata": object}``,
    names of 1..MANIFEST_MAX_NAME characters, nesting depth <= MANIFEST_MAX_DEPTH, no other keys.
    """
    if not isinstance(meta, dict):
        raise ManifestError(f"embedded manifest must be a JSON object, got {type(meta).__name__}")
    if set(meta) != {"name", "tensors", "layers", "metadata"}:
        raise ManifestError(f"embedded manifest keys must be name, tensors, layers, metadata; got {sorted(map(str, meta))}")
    if _depth(meta, MANIFEST_MAX_DEPTH) > MANIFEST_MAX_DEPTH:
        raise ManifestError(f"embedded manifest nests deeper than {MANIFEST_MAX_DEPTH} levels")
    if not isinstance(meta["metadata"], dict):
        raise ManifestError(f"manifest 'metadata' must be an object, got {type(meta['metadata']).__name__}")
    for key, want in (("tensors", n_tensors), ("layers", n_layers)):
        names = meta[key]
        if not isinstance(names, list):
            raise ManifestError(f"manifest {key!r} must be a list of names, got {type(names).__name__}")
        if want is not None and len(names) != want:
            raise ManifestError(f"manifest {key!r} has {len(names)} names, the image has {want} {key}")
    for what, name in [("program name", meta["name"])] + [(f"{k[:-1]} {i} name", n) for k in ("tensors", "layers")
                                                          for i, n in enumerate(meta[k])]:
        if not isinstance(name, str) or not 1 <= len(name) <= MANIFEST_MAX_NAME:
            raise ManifestError(f"manifest {what} must be a string of 1..{MANIFEST_MAX_NAME} characters, "
                                f"got {type(name).__name__} {str(name)[:40]!r}")
    try:
        json.dumps(meta["metadata"], allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ManifestError(f"manifest 'metadata' is not plain JSON: {e}") from None
