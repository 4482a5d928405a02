"""Random valid programs for cross-checking executors (tests, fuzzing a new backend).

``random_program(seed, preset)`` draws a small network: an input of 1..8 channels, a chain
of conv layers (kernel 1..3, stride 1..2, padding 0..k-1) with random mixed precisions from
the preset set, pruned filters, pruned (row block x group) units, random bias/shift, an
occasional residual (unsigned activation or a signed 1x1 shortcut), maxpool, and a global
average pool + logits layer at the end. Every draw is a program the validator accepts.
"""
from __future__ import annotations

import numpy as np

from ..program.builder import ProgramBuilder
from ..program.model import Program
from ..program.packing import pack_filters
from ..spec.hardware import HardwarePreset, get_preset


def _weights(rng: np.random.Generator, preset: HardwarePreset, f: int, c: int, k: int, packing: str,
             p_filter: float, p_unit: float):
    prec = rng.choice(preset.precisions, size=f)
    prec[rng.random(f) < p_filter] = 0
    lo = -(1 << (prec - 1).clip(0))
    w = np.zeros((f, c, k, k), dtype=np.int64)
    for fi in range(f):
        if prec[fi]:
            w[fi] = rng.integers(lo[fi], -lo[fi], size=(c, k, k))
    groups = pack_filters(prec, preset.group_width, packing)
    a = preset.rows_active
    kk = k * k * c
    wm = w.transpose(0, 2, 3, 1).reshape(f, kk)
    for g, members in enumerate(groups):
        for b in range(-(-kk // a)):
            if rng.random() < p_unit:
                for fi, _ in members:
                    wm[fi, b * a:(b + 1) * a] = 0
    return wm.reshape(f, k, k, c).transpose(0, 3, 1, 2), prec, groups


def random_program(seed: int | np.random.Generator = 0, preset: "str | HardwarePreset" = "tiny-64",
                   max_convs: int = 3, max_hw: int = 9, max_channels: int = 12) -> Program:
    """A random valid program (see module docstring); deterministic in ``seed``."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    preset = get_preset(preset)
    b = ProgramBuilder(preset, name="fuzz")
    c = int(rng.integers(1, 9))
    h, w = int(rng.integers(2, max_hw + 1)), int(rng.integers(2, max_hw + 1))
    x = b.input("image", c, h, w, bits=int(rng.choice([4, 8])))
    packing = str(rng.choice(["paired", "naive"]))
    p_filter, p_unit = float(rng.choice([0, 0.2, 0.5])), float(rng.choice([0, 0.3, 0.6]))
    abits = int(rng.integers(1, 9))
    for i in range(int(rng.integers(1, max_convs + 1))):
        t = b.tensors[x]
        k = int(rng.integers(1, min(3, t.height, t.width) + 1))
        stride = int(rng.integers(1, 3))
        pad = int(rng.integers(0, k))
        f = int(rng.integers(1, max_channels + 1))
        use_res = rng.random() < 0.5
        res = res_shift = None
        if use_res:
            # a residual must have the output's shape: make one with a 1x1 conv of the same stride
            ho = (t.height + 2 * pad - k) // stride + 1
            wo = (t.width + 2 * pad - k) // stride + 1
            if rng.random() < 0.5 and (t.height - 1) // stride + 1 == ho and (t.width - 1) // stride + 1 == wo:
                ws, ps, gs = _weights(rng, preset, f, t.channels, 1, packing, p_filter, p_unit)
                res = b.conv(f"short{i}", x, ws, ps, rng.integers(0, 6, size=f), bias=rng.integers(-50, 50, size=f),
                             stride=stride, out_bits=8, out_signed=True, groups=gs)
                res_shift = rng.integers(0, 4, size=f)
            elif (ho, wo, f) == t.shape_hwc and not t.signed:
                res, res_shift = x, rng.integers(0, 4, size=f)
        wt, prec, groups = _weights(rng, preset, f, t.channels, k, packing, p_filter, p_unit)
        shift = rng.integers(-1, 9, size=f)
        bias = rng.integers(-200, 200, size=f)
        bias[(prec == 0) & (rng.random(f) < 0.7)] = 0  # mostly dead pruned filters, as training makes them
        x = b.conv(f"conv{i}", x, wt, prec, shift, bias=bias, stride=stride, pad=pad,
                   out_bits=abits, res=res, res_shift=res_shift, groups=groups)
        t = b.tensors[x]
        if rng.random() < 0.3 and t.height >= 2 and t.width >= 2:
            x = b.maxpool(f"pool{i}", x, k=2, stride=int(rng.integers(1, 3)))
    t = b.tensors[x]
    x = b.avgpool("gap", x, shift=int(rng.integers(0, 7)), out_bits=int(rng.integers(1, 9)))
    n_cls = int(rng.integers(2, 11))
    wt, prec, groups = _weights(rng, preset, n_cls, t.channels, 1, packing, 0.0, 0.0)
    b.fc("logits", x, wt, prec, rng.integers(-3, 1, size=n_cls), bias=rng.integers(-1000, 1000, size=n_cls),
         logits=True, groups=groups)
    return b.build()


def random_images(program: Program, n: int, seed: int = 0) -> np.ndarray:
    """Random images in the program input's range, uint8 NCHW."""
    t = program.input
    return np.random.default_rng(seed).integers(0, t.fmt.max + 1, size=(n, t.channels, t.height, t.width)).astype(np.uint8)


# ---- image-level mutation helpers (structure-aware fuzzing of readers and executors) ----

def reseal(image: "bytes | bytearray") -> bytes:
    """The image with its header CRC-32 recomputed, so only the structural/semantic checks can refuse it."""
    from ..program.codec import image_crc
    buf = bytearray(image)
    buf[16:20] = image_crc(buf).to_bytes(4, "little")
    return bytes(buf)


def image_fields(image: bytes) -> list[tuple[str, int, str]]:
    """Every numeric field of an image's header, tensor and layer records as (name, byte offset, struct code).

    Names: ``header.<field>``, ``tensor<i>.<field>``, ``layer<i>.<field>``; the reserved bytes are
    listed one by one (``...reserved<k>``, code ``B``). Offsets are absolute; codes are ``struct``
    little-endian item codes (B/b/H/h/I/i). The field's whole legal range is that of its code.
    """
    from ..program.format import HEADER, LAYER, TENSOR
    header = [("magic", 0, "Q"), ("version_major", 8, "H"), ("version_minor", 10, "H"), ("image_bytes", 12, "I"),
              ("preset_fingerprint", 20, "I"), ("rows", 24, "H"), ("cols", 26, "H"), ("rows_active", 28, "H"),
              ("group_width", 30, "H"), ("n_macros", 32, "H"), ("acc_bits", 34, "B"), ("adc_bits", 35, "B"),
              ("n_tensors", 36, "H"), ("n_layers", 38, "H"), ("input_tensor", 40, "H"), ("output_tensor", 42, "H"),
              ("tensor_table_offset", 44, "I"), ("layer_table_offset", 48, "I"), ("manifest_offset", 52, "I"),
              ("manifest_bytes", 56, "I"), ("precision_mask", 60, "B")] + [(f"reserved{k}", 61 + k, "B") for k in range(3)]
    tensor = [("channels", 0, "H"), ("height", 2, "H"), ("width", 4, "H"), ("bits", 6, "B"), ("signed", 7, "B"),
              ("exponent", 8, "b")] + [(f"reserved{k}", 9 + k, "B") for k in range(7)]
    layer = [("op", 0, "B"), ("mode", 1, "B"), ("kh", 2, "B"), ("kw", 3, "B"), ("stride", 4, "B"), ("pad", 5, "B"),
             ("flags", 6, "H"), ("in_tensor", 8, "H"), ("out_tensor", 10, "H"), ("res_tensor", 12, "H"),
             ("n_filters", 14, "H"), ("k_rows", 16, "I"), ("n_groups", 20, "H"), ("n_rowblocks", 22, "H"),
             ("clamp_lo", 24, "i"), ("clamp_hi", 28, "i"), ("pool_shift", 32, "b"), ("off_precision", 36, "I"),
             ("off_bias", 40, "I"), ("off_shift", 44, "I"), ("off_res_shift", 48, "I"), ("off_colmap", 52, "I"),
             ("off_skip", 56, "I"), ("off_weights", 60, "I"), ("n_weight_words", 64, "I")] + \
        [(f"reserved{k}", o, "B") for k, o in enumerate(list(range(33, 36)) + list(range(68, 96)))]
    h = HEADER.unpack_from(image, 0)
    n_t, n_l, toff, loff = h[13], h[14], h[17], h[18]
    out = [(f"header.{n}", o, c) for n, o, c in header]
    if toff + TENSOR.size * n_t <= len(image):
        out += [(f"tensor{i}.{n}", toff + TENSOR.size * i + o, c) for i in range(n_t) for n, o, c in tensor]
    if loff + LAYER.size * n_l <= len(image):
        out += [(f"layer{i}.{n}", loff + LAYER.size * i + o, c) for i in range(n_l) for n, o, c in layer]
    return out


def set_field(image: bytes, offset: int, code: str, value: int) -> bytes:
    """The image with one little-endian field (struct code) overwritten; the CRC is not touched."""
    import struct
    buf = bytearray(image)
    struct.pack_into("<" + code, buf, offset, value)
    return bytes(buf)


def field_range(code: str) -> tuple[int, int]:
    """Whole range of a struct item code: B 0..255, b -128..127, H, h, I, i, Q likewise."""
    bits = {"B": 8, "b": 8, "H": 16, "h": 16, "I": 32, "i": 32, "Q": 64}[code]
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if code.islower() else (0, (1 << bits) - 1)


def with_manifest(image: bytes, manifest: bytes) -> bytes:
    """The image with its embedded manifest (the last section) replaced by ``manifest``, resealed."""
    from ..program.format import HEADER, align
    h = HEADER.unpack_from(image, 0)
    off = h[19]
    body = bytearray(image[:off]) + manifest + b"\0" * (align(len(manifest)) - len(manifest))
    body[12:16] = len(body).to_bytes(4, "little")
    body[56:60] = len(manifest).to_bytes(4, "little")
    return reseal(body)


def section_fields(image: bytes) -> list[tuple[str, int, str]]:
    """Every element of every conv/fc layer's sections as (name, byte offset, struct code).

    ``layer<i>.precision[f]`` (B), ``.bias[f]`` (i), ``.shift[f]`` / ``.res_shift[f]`` (b),
    ``.colmap[e]`` (I), ``.skip[byte]`` (B), ``.weights[w]`` (Q). Read from the records of a
    structurally valid image (sections inside the image).
    """
    from ..program.format import HEADER, LAYER
    h = HEADER.unpack_from(image, 0)
    gw, n_l, loff = h[9], h[14], h[18]
    out = []
    for i in range(n_l):
        (op, *_, f, _k, ng, nrb, _lo, _hi, _ps, o_p, o_b, o_s, o_r, o_c, o_k, o_w, n_w) = LAYER.unpack_from(
            image, loff + LAYER.size * i)
        if op not in (1, 2):
            continue
        for name, off, n, size, code in (("precision", o_p, f, 1, "B"), ("bias", o_b, f, 4, "i"),
                                         ("shift", o_s, f, 1, "b"), ("res_shift", o_r, f, 1, "b"),
                                         ("colmap", o_c, ng * gw, 4, "I"), ("skip", o_k, (ng * nrb + 7) // 8, 1, "B"),
                                         ("weights", o_w, n_w, 8, "Q")):
            if off + n * size <= len(image):
                out += [(f"layer{i}.{name}[{e}]", off + e * size, code) for e in range(n)]
    return out


def mutate_image(image: bytes, choose, integer, max_mutations: int = 3) -> tuple[bytes, list[str]]:
    """Structure-aware mutation: 1..max_mutations fields of the header, a tensor or layer record
    or a section set to a value over the field's whole range (or a nearby edge value), resealed.

    ``choose(seq)`` picks an element and ``integer(lo, hi)`` an integer (inclusive): a
    hypothesis ``data.draw`` adapter or a numpy Generator adapter. Returns (image, what changed).
    """
    import struct
    cats = {"header": [], "tensor": [], "layer": []}
    for f in image_fields(image):
        cats[f[0].split(".")[0].rstrip("0123456789")].append(f)
    cats["section"] = section_fields(image)
    done = []
    for _ in range(integer(1, max_mutations)):
        fields = cats[choose([c for c in ("header", "tensor", "layer", "layer", "section", "section", "section")
                              if cats[c]])]
        name, off, code = choose(fields)
        lo, hi = field_range(code)
        cur = struct.unpack_from("<" + code, image, off)[0]
        bits = struct.calcsize(code) * 8
        near = [lo, hi, 0, 1, cur - 1, cur + 1, cur ^ (1 << integer(0, bits - 1))]
        value = integer(lo, hi) if integer(0, 1) else choose([v for v in near if lo <= v <= hi] or [0])
        if code.islower() and value > hi:
            value -= 1 << bits
        image = set_field(image, off, code, value)
        done.append(f"{name}={value}")
    return reseal(image), done


def random_hybrid_params(rng: np.random.Generator, bits_in: int, max_sal: int = 64, noise: bool = True):
    """Random valid hybrid parameters (architecture.md §9): 1..4 levels with monotone depths,
    strictly ascending thresholds in 0..max_sal, saliency planes 1..bits_in, noise off or on."""
    from ..program.hybrid import HybridParams
    n = int(rng.integers(1, 5))
    d = np.sort(rng.integers(0, 16, size=n))
    e = np.maximum(np.sort(rng.integers(0, 16, size=n)), d)
    e = np.maximum.accumulate(e)
    t = np.sort(rng.choice(np.arange(max_sal + n), size=n - 1, replace=False)) if n > 1 else []
    pairs = int(rng.integers(0, 65)) if noise and rng.random() < 0.5 else 0
    return HybridParams(tuple(int(v) for v in d), tuple(int(v) for v in e), tuple(int(v) for v in t),
                        int(rng.integers(1, bits_in + 1)), pairs, int(rng.integers(0, 9)) if pairs else 0,
                        int(rng.integers(0, 1 << 32)))


def random_hybrid_program(seed: int | np.random.Generator = 0, preset: "str | HardwarePreset" = "tiny-64",
                          noise: bool = True, **kw) -> Program:
    """:func:`random_program` with a random subset of its conv/fc layers in hybrid mode 1 (random
    level tables, saliency planes and noise); a layer whose hybrid accumulator bound (§9.5) would
    not fit stays digital. Deterministic in ``seed``."""
    from ..program.builder import make_hybrid
    from ..program.errors import InvalidProgramError
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    program = random_program(rng, preset, **kw)
    for layer in program.layers:
        if layer.op.is_cim and rng.random() < 0.7:
            params = random_hybrid_params(rng, program.tensors[layer.in_tensor].bits, noise=noise)
            try:
                program = make_hybrid(program, {layer.name: params})
            except InvalidProgramError:
                pass
    return program


def random_dualpath_program(seed: int | np.random.Generator = 0, preset: "str | HardwarePreset" = "tiny-64-dual",
                            *, share: float = 0.7, ratio: int | None = None, theta_frac: float | None = None,
                            densities: tuple = (0.33, 0.5, 0.67), **kw) -> Program:
    """:func:`random_program` on a preset with the second macro type, a random ``share`` of its conv/fc
    layers made dual-path (architecture.md §10): ratio q = ``ratio`` or random in 0..8, binary-input
    threshold ⌈theta_frac · (2^X − 1)⌉ (at least 1; X: the layer's input bits) or random in
    1..2^X − 1, random ternary weights with a non-zero share drawn from ``densities``. Deterministic
    in ``seed``; ``kw`` goes to :func:`random_program`."""
    from ..program.builder import make_dual
    from ..program.dualpath import DualPathParams
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    program = random_program(rng, preset, **kw)
    params = {}
    for layer in program.layers:
        if layer.op.is_cim and rng.random() < share:
            top = (1 << program.tensors[layer.in_tensor].bits) - 1
            q = int(rng.integers(0, 9)) if ratio is None else ratio
            theta = int(rng.integers(1, top + 1)) if theta_frac is None else max(1, int(np.ceil(theta_frac * top)))
            dual = DualPathParams(q, theta)
            f_t = dual.n_tern(layer.n_filters)
            keep = rng.random((f_t, layer.k_rows)) < rng.choice(densities)
            params[layer.name] = (dual, np.where(keep, rng.choice([-1, 1], size=(f_t, layer.k_rows)), 0))
    return make_dual(program, params)


def small_dual_program(ratio: int, theta: int = 8, seed: int = 7, outer_bits: int = 4) -> Program:
    """A small dense dual-path network on ``sun-mars-256-dual``, deterministic in ``seed``: an 8-bit
    3x8x8 image → conv c1 (16 filters of ``outer_bits``) → conv c2 (16 INT4 filters, dual-path at ratio
    q = ``ratio`` with binary-input threshold ``theta``; at q = 0 a plain conv) → global avgpool → fc
    (10 logits of ``outer_bits``). For tests and examples of the cost model and reports."""
    from ..program.builder import ProgramBuilder, make_dual
    from ..program.dualpath import DualPathParams
    rng = np.random.default_rng(seed)
    b = ProgramBuilder(get_preset("sun-mars-256-dual"), name=f"q{ratio}")
    x = b.input("image", 3, 8, 8, bits=8)
    c1 = b.conv("c1", x, rng.integers(-8, 8, (16, 3, 3, 3)), [outer_bits] * 16, [7] * 16,
                bias=rng.integers(-30, 30, 16), pad=1, out_bits=4)
    c2 = b.conv("c2", c1, rng.integers(-8, 8, (16, 16, 3, 3)), [4] * 16, [5] * 16, bias=rng.integers(-30, 30, 16),
                pad=1, out_bits=4)
    g = b.avgpool("gap", c2)
    b.fc("fc", g, rng.integers(-8, 8, (10, 16, 1, 1)), [outer_bits] * 10, [0] * 10, out_bits=16, out_signed=True)
    p = b.build()
    if ratio == 0:
        return p
    layer = next(l for l in p.layers if l.name == "c2")
    f_t = DualPathParams(ratio, theta).n_tern(layer.n_filters)
    return make_dual(p, {"c2": (DualPathParams(ratio, theta), rng.integers(-1, 2, (f_t, layer.k_rows)))})
