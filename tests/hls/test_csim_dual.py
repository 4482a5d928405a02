"""Dual-path layers (architecture.md §10) in the HLS kernel (1.4): csim == fast emulator == reference
emulator, bit for bit.

Property tests (hypothesis, derandomized) over random dual-path programs on both kernel presets with
the second macro type (sun-mars-256-dual, tiny-64-dual): random shapes, ratios 0..8 (or one per layer),
binary-input thresholds from 1 to 2^X − 1, input bit widths 1..8, sparsity and packing; the outputs,
every traced tensor (DDR mode) and every counter (the seven of counter layout 3 included) of csim
equal the fast and the reference emulator's, on chip (the pixel stream) and in trace mode. Plus: the
§10.2 hand example, ternary rounds / row tiles / refresh events, batch splitting, the synthesized
datapath (-DHCIM_HW_DATAPATH), the dual preset headers, and the kernel's refusal of corrupt dual
sections, ternary weights and format-1.2 records (status LAYER / PRESET: the host's verdict class).
"""
import numpy as np
import pytest
from hypothesis import event, given, settings, strategies as st

from hybridcim.emulator import FastEmulator, ReferenceEmulator
from hybridcim.program import InvalidProgramError, PresetMismatchError, decode, encode
from hybridcim.program.builder import ProgramBuilder
from hybridcim.program.dualpath import DualPathParams, tern_header_bytes
from hybridcim.program.format import HEADER
from hybridcim.runtime.bitstream import header_defines, kernel_info_from_headers
from hybridcim.runtime.csim_build import hls_dir
from hybridcim.runtime.csim_device import CSimDevice

from csim_compare import assert_tensors_equal
from hybridcim.runtime.errors import STATUS, KernelError
from hybridcim.spec import HOST_PRESETS, get_preset
from hybridcim.zoo.fuzz import random_dualpath_program, random_images, random_program, reseal

DUAL_PRESETS = ["tiny-64-dual", "sun-mars-256-dual"]


def dual_program(seed, preset, ratio, theta_frac, share, **kw):
    """A random program with a ``share`` of its conv/fc layers dual-path at ``ratio`` (None: random per
    layer), threshold ⌈theta_frac · (2^X − 1)⌉, random ternary weights of 0–100 % non-zero."""
    return random_dualpath_program(seed, preset, share=share, ratio=ratio, theta_frac=theta_frac,
                                   densities=(0.0, 0.33, 0.67, 1.0), **kw)


def counter_diff(want, got):
    return {k: (w, got.as_dict()[k]) for k, w in want.as_dict().items() if w != got.as_dict()[k]}


def assert_csim_equals_emulators(prog, dev, images):
    """csim (trace: DDR mode; run: on chip) == fast emulator == reference emulator: outputs, every
    tensor, every counter."""
    ref = ReferenceEmulator(prog).run(images, trace=True)
    fast = FastEmulator(prog).run(images, trace=True)
    assert np.array_equal(fast.outputs, ref.outputs)
    assert [c.as_dict() for c in fast.counters] == [c.as_dict() for c in ref.counters]
    dev.load(prog)
    dev.reset_counters()
    assert_tensors_equal(prog, ref.tensors, dev.trace(images))
    for w, g in zip(ref.counters, dev.counters, strict=True):
        assert not counter_diff(w, g), f"trace, layer {w.layer!r}: counters (expected, got) {counter_diff(w, g)}"
    dev.reset_counters()
    assert np.array_equal(dev.run(images), ref.outputs)
    for w, g in zip(ref.counters, dev.counters, strict=True):
        assert not counter_diff(w, g), f"run, layer {w.layer!r}: counters (expected, got) {counter_diff(w, g)}"
    return ref


@settings(max_examples=12, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), preset=st.sampled_from(DUAL_PRESETS), ratio=st.one_of(st.none(), st.integers(0, 8)),
       theta=st.sampled_from([0.0, 0.3, 0.5, 0.8, 1.0]), share=st.sampled_from([0.5, 1.0]), n=st.integers(1, 2))
def test_csim_equals_emulators_on_random_dual_programs(csim_lib, seed, preset, ratio, theta, share, n):
    csim_lib(preset)
    prog = dual_program(seed, preset, ratio, theta, share, max_hw=6, max_channels=10)
    assert_csim_equals_emulators(prog, CSimDevice(preset), random_images(prog, n, seed))


@pytest.mark.slow
@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), preset=st.sampled_from(DUAL_PRESETS), ratio=st.one_of(st.none(), st.integers(0, 8)),
       theta=st.sampled_from([0.0, 0.3, 0.5, 0.8, 1.0]), share=st.sampled_from([0.5, 1.0]), n=st.integers(1, 3))
def test_csim_equals_emulators_on_larger_random_dual_programs(csim_lib, seed, preset, ratio, theta, share, n):
    """Larger shapes: several ternary filter and row tiles, ternary rounds, refresh events, DDR partial sums."""
    csim_lib(preset)
    prog = dual_program(seed, preset, ratio, theta, share, max_hw=12, max_channels=48)
    assert_csim_equals_emulators(prog, CSimDevice(preset), random_images(prog, n, seed))


def test_ternary_rounds_row_tiles_and_refresh(csim_lib):
    """A fuzzer program whose dual-path layers need several ternary rounds (more tiles than the two
    ternary macros), several row tiles per filter and refresh events: csim == the emulators."""
    csim_lib("tiny-64-dual")
    prog = random_dualpath_program(10, "tiny-64-dual", max_hw=12, max_channels=48)
    ref = assert_csim_equals_emulators(prog, CSimDevice("tiny-64-dual"), random_images(prog, 2, 10))
    dual = [c for c, l in zip(ref.counters, prog.layers) if l.dual is not None]
    pr = prog.preset
    assert max(c.tern_tiles for c in dual) > pr.tern_n_macros  # rounds
    assert any(c.refresh_events > 0 for c in dual)
    assert any(-(-l.k_rows // pr.tern_rows_active) > pr.tern_blocks_per_macro  # row tiles
               for l in prog.layers if l.dual is not None and l.dual.n_tern(l.n_filters))


def test_hand_example_of_the_spec(csim_lib):
    """architecture.md §10.2: x = (3, 9, 0, 15), θ = 8 -> z = (0, 1, 0, 1); INT4 filter (1, −2, 3, 7),
    bias 5, shift 2 -> 24; ternary filter (−1, 1, 1, 1), bias −1 -> 1."""
    csim_lib("tiny-64-dual")
    b = ProgramBuilder(get_preset("tiny-64-dual"), name="hand")
    x = b.input("image", 4, 1, 1, bits=4)
    w = np.array([[1, -2, 3, 7], [-1, 1, 1, 1]]).reshape(2, 4, 1, 1)
    b.fc("fc", x, w, [4, 0], [2, 0], bias=[5, -1], out_bits=8, dual=DualPathParams(4, 8))
    prog = b.build()
    dev = CSimDevice("tiny-64-dual")
    dev.load(prog)
    assert dev.run(np.array([3, 9, 0, 15], np.uint8).reshape(1, 4, 1, 1)).reshape(-1).tolist() == [24, 1]
    c = dev.counters[0]
    assert (c.tern_tiles, c.tern_rowblock_activations, c.tern_cycles, c.tern_column_reads, c.tern_bit_ops) == (1, 1, 1, 2, 8)
    assert (c.tern_weight_load_bits, c.tern_input_ones, c.refresh_events, c.cycles) == (32, 2, 0, 4)


@pytest.mark.parametrize("preset", DUAL_PRESETS)
def test_batch_split_and_plain_programs(csim_lib, preset):
    """Counters of one call == the sum over two calls; a program without dual-path layers on the dual
    preset (format 1.2 image, every flags 0) runs too, its ternary counters 0."""
    csim_lib(preset)
    prog = random_dualpath_program(3, preset, max_hw=6, max_channels=9)
    imgs = random_images(prog, 3, 3)
    dev = CSimDevice(preset, batch_size=2)
    dev.load(prog)
    split = dev.run(imgs)
    one = CSimDevice(preset, batch_size=8)
    one.load(prog)
    assert np.array_equal(split, one.run(imgs))
    assert [c.as_dict() for c in dev.counters] == [c.as_dict() for c in one.counters]
    plain = random_program(3, preset, max_hw=6, max_channels=9)
    assert encode(plain)[10] == 2  # the preset with the second macro type: format 1.2
    assert_csim_equals_emulators(plain, dev, random_images(plain, 2, 4))
    assert all(c.tern_cycles == c.refresh_events == c.tern_input_ones == 0 for c in dev.counters)


def test_synthesized_datapath_runs_dual_programs(csim_lib):
    """The csim library compiled with -DHCIM_HW_DATAPATH (adder-tree popcounts, the 8-plane unit and
    the ternary unit as synthesized) == the reference emulator on a dual-path program."""
    from hybridcim.runtime.csim_build import build
    csim_lib("tiny-64-dual")
    lib = build("tiny-64-dual", extra=("-DHCIM_HW_DATAPATH",))
    prog = random_dualpath_program(4, "tiny-64-dual", max_hw=6, max_channels=9)
    assert any(l.dual is not None and l.dual.n_tern(l.n_filters) for l in prog.layers)
    assert_csim_equals_emulators(prog, CSimDevice("tiny-64-dual", library=lib), random_images(prog, 2, 4))


# ---- the preset headers ----

@pytest.mark.parametrize("name", sorted(HOST_PRESETS))
def test_dual_preset_headers(name):
    """hls/presets/<dual>.h == hybridcim.spec.hardware.HOST_PRESETS: geometry, fingerprint, the second
    macro type's five fields and its header bytes 61..63."""
    p = get_preset(name)
    info = kernel_info_from_headers(p)
    d = header_defines(hls_dir() / "presets" / f"{name}.h")
    assert info.fingerprint == p.fingerprint and d["HCIM_PRESET_NAME"] == f'"{name}"'
    assert (info.rows, info.cols, info.rows_active, info.group_width, info.n_macros, info.acc_bits, info.adc_bits) == \
        (p.rows, p.cols, p.rows_active, p.group_width, p.n_macros, p.acc_bits, p.adc_bits)
    assert info.precision_mask == sum(1 << (q - 1) for q in p.precisions)
    val = lambda k: int(d[k].rstrip("uU"), 0)
    assert (val("HCIM_TERN_ROWS"), val("HCIM_TERN_COLS"), val("HCIM_TERN_ROWS_ACTIVE"), val("HCIM_TERN_N_MACROS"),
            val("HCIM_TERN_REFRESH_CYCLES")) == (p.tern_rows, p.tern_cols, p.tern_rows_active, p.tern_n_macros,
                                                 p.tern_refresh_cycles)
    assert val("HCIM_TERN_HEADER") == int.from_bytes(tern_header_bytes(p), "little")
    base = kernel_info_from_headers(name.removesuffix("-dual"))  # the same capacity as the SRAM preset's kernel
    assert (info.max_filters, info.max_groups, info.max_rowblocks, info.max_pack_words) == \
        (base.max_filters, base.max_groups, base.max_rowblocks, base.max_pack_words)


def test_kernel_reads_a_counter_layout_2_block():
    """A kernel 1.3 block (layout 2, 25 counters) is still read; the dual-path counters read 0."""
    from hybridcim.runtime.buffers import COUNTER_FIELDS, counters_from_buffer, counters_header, counters_to_words
    prog = random_dualpath_program(1, "tiny-64-dual", max_hw=5, max_channels=6)
    counters = FastEmulator(prog).run(random_images(prog, 1, 1)).counters
    rows = counters_to_words(counters)[1:].reshape(len(prog.layers), len(COUNTER_FIELDS))
    old = np.concatenate([[np.uint64(counters_header(len(prog.layers), 25, layout=2))], rows[:, :25].ravel()])
    got = counters_from_buffer(prog, old)
    assert all(c.tern_cycles == c.refresh_events == 0 for c in got)
    assert [c.macs for c in got] == [c.macs for c in counters]


# ---- corrupt images: the kernel's verdict (status, detail) and the host's class ----

def _image(preset="tiny-64-dual"):
    """A dual-path program with a ternary filter in layer i, its image (bytearray) and i."""
    prog = random_dualpath_program(4, preset, max_hw=5, max_channels=9)
    i = next(k for k, l in enumerate(prog.layers) if l.dual is not None and l.dual.n_tern(l.n_filters))
    return prog, bytearray(encode(prog)), i


def _record(image, i):
    return HEADER.unpack_from(image, 0)[18] + 96 * i


def _u32(image, off):
    return int.from_bytes(image[off:off + 4], "little")


def _set(image, off, value, n=1):
    image[off:off + n] = int(value).to_bytes(n, "little")


def _dual_cases(prog, image, i):
    """(what, corrupted image) of the dual section and ternary weights of layer i."""
    rec = _record(image, i)
    od = _u32(image, rec + 72)
    ow = _u32(image, od + 8)
    layer = prog.layers[i]
    bits = prog.tensors[layer.in_tensor].bits
    f_t = layer.dual.n_tern(layer.n_filters)
    cases = {"ratio 9": (od + 0, 9, 1), "threshold 0": (od + 1, 0, 1), "threshold 2^X": (od + 1, 1 << bits, 2),
             "n_tern_rowblocks + 1": (od + 2, (_u32(image, od + 2) & 0xFFFF) + 1, 2),
             "n_tern_words + 2": (od + 4, _u32(image, od + 4) + 2, 4), "reserved byte 12": (od + 12, 1, 1),
             "reserved byte 15": (od + 15, 1, 1), "weights off the image": (od + 8, len(image), 4),
             "weights misaligned": (od + 8, ow + 4, 4), "dual section off the image": (rec + 72, len(image) - 8, 4),
             "dual section in the header": (rec + 72, 56, 4),
             "cell pair (1, 1)": (ow + 8, _u32(image, ow) | 1, 4),   # the negative word = the positive one | 1
             "bit above tern_rows_active": (ow, 1 << prog.preset.tern_rows_active, 4),
             "ternary filter with a precision": (_u32(image, rec + 36) + layer.n_filters - 1, 4, 1),
             "flags 2": (rec + 6, 2, 2), "flags 3": (rec + 6, 3, 2), "mode 1 with flags 1": (rec + 1, 1, 1)}
    if bits == 8:
        del cases["threshold 2^X"]  # a u8 field cannot hold 256
    out = []
    for what, (off, value, n) in cases.items():
        bad = bytearray(image)
        if what == "cell pair (1, 1)":
            bad[ow + 8:ow + 16] = bytes(8)
            _set(bad, ow, 1, 8)
            _set(bad, ow + 8, 1, 8)  # filter 0, block 0: row 0 both +1 and −1
        else:
            _set(bad, off, value, n)
        out.append((what, reseal(bad)))
    assert f_t >= 1
    return out


def test_corrupt_dual_sections_are_refused_with_status_layer(csim_lib):
    """Every rule of reader check 12(f) (and the 12(b) flags rules) refused by the kernel with status LAYER
    naming the layer, and by the host with InvalidProgramError (the class LAYER maps to)."""
    csim_lib("tiny-64-dual")
    prog, image, i = _image()
    dev = CSimDevice("tiny-64-dual")
    dev.load_image(bytes(image))  # the intact image passes
    for what, bad in _dual_cases(prog, image, i):
        with pytest.raises(KernelError) as kernel:
            dev.load_image(bad)
        assert (kernel.value.code, kernel.value.detail) == (8, i), (what, kernel.value)
        assert isinstance(kernel.value, STATUS[8][2]) and f"layer {i}" in str(kernel.value), what
        with pytest.raises(InvalidProgramError):
            decode(bad, limits=dev.info)


def test_format_1_2_header_and_records_follow_the_reader(csim_lib):
    """Header bytes 61..63 of the dual preset (rows 6, 7), off_dual in a plain layer, flags on a pool, and a
    dual-path layer on a kernel without the second macro type: the kernel's status is the host's class."""
    csim_lib("tiny-64-dual")
    csim_lib("tiny-64")
    prog, image, i = _image()
    dev = CSimDevice("tiny-64-dual")
    cases = []
    b = bytearray(image)
    b[62] |= 0x40  # a bit the encoding leaves 0 (row 7)
    cases.append(("byte 62 bit 6", b, 8, 0xFFFF, InvalidProgramError))
    b = bytearray(image)
    b[63] ^= 0x01  # another refresh period: another preset (row 6)
    cases.append(("refresh period", b, 6, 0, PresetMismatchError))
    b = bytearray(image)
    b[63] &= 0x7F  # no second macro type named: the fingerprint is not the geometry's (row 6)
    cases.append(("presence bit 0", b, 6, 0, PresetMismatchError))
    b = bytearray(image)
    _set(b, 10, 1, 2)  # format 1.1 cannot name the dual preset (row 6)
    cases.append(("format 1.1", b, 6, 0, PresetMismatchError))
    plain = next((k for k, l in enumerate(prog.layers) if l.op.is_cim and l.dual is None), None)
    if plain is not None:
        b = bytearray(image)
        _set(b, _record(image, plain) + 72, _u32(image, _record(image, i) + 72), 4)
        cases.append(("off_dual in a plain layer", b, 8, plain, InvalidProgramError))
    pool = next((k for k, l in enumerate(prog.layers) if not l.op.is_cim), None)
    if pool is not None:
        b = bytearray(image)
        _set(b, _record(image, pool) + 6, 1, 2)
        cases.append(("flags 1 on a pool", b, 8, pool, InvalidProgramError))
    for what, bad, code, detail, host in cases:
        bad = reseal(bad)
        with pytest.raises(KernelError) as kernel:
            dev.load_image(bad)
        assert (kernel.value.code, kernel.value.detail) == (code, detail), (what, kernel.value)
        with pytest.raises(host):
            decode(bad, limits=dev.info)
    # a dual-path layer in an image of a preset without the second macro type (format 1.2, bytes 61..63 = 0)
    sram = random_program(4, "tiny-64", max_hw=5, max_channels=9)
    j = next(k for k, l in enumerate(sram.layers) if l.op.is_cim)
    img = bytearray(encode(sram))
    _set(img, 10, 2, 2)
    _set(img, _record(img, j) + 6, 1, 2)
    _set(img, _record(img, j) + 72, 64, 4)
    bad = reseal(img)
    with pytest.raises(KernelError) as kernel:
        CSimDevice("tiny-64").load_image(bad)
    assert (kernel.value.code, kernel.value.detail) == (8, j)
    with pytest.raises(InvalidProgramError, match="second macro type"):
        decode(bad)
    # and a dual program on the SRAM preset's kernel: another preset
    with pytest.raises(KernelError) as kernel:
        CSimDevice("tiny-64").load_image(bytes(image))
    assert kernel.value.code == 6 and isinstance(kernel.value, PresetMismatchError)


# ---- the two paths in parallel in the kernel's pipeline (the cycle model's input) ----

def _stream_layer(q):
    """One 3x3 conv on tiny-64-dual, 4x4x16 input (K = 144: 9 SRAM and 9 ternary row blocks), 32 filters,
    q/8 of them ternary."""
    rng = np.random.default_rng(q)
    b = ProgramBuilder(get_preset("tiny-64-dual"), name=f"stream{q}")
    x = b.input("image", 16, 4, 4, bits=4)
    f_t = DualPathParams(q, 8).n_tern(32)
    w = np.concatenate([rng.integers(-8, 8, (32 - f_t, 16, 3, 3)), rng.integers(-1, 2, (f_t, 16, 3, 3))])
    b.conv("c", x, w, [4] * (32 - f_t) + [0] * f_t, [4] * 32, pad=1, dual=DualPathParams(q, 8))
    return b.build()


@pytest.mark.parametrize("q", [0, 4, 8])
def test_ternary_iterations_share_the_pixel_streams_slots(csim_lib, q):
    """On chip, a dual-path layer runs as one pixel stream per round whose slot is the LONGER of the
    window, the SRAM units, the ternary entries and requant (§10.3: the macro types in parallel), not
    their sum: the kernel's pixel_stream iterations == Σ over rounds (pixels + 4) · max(W, U, T, R, 8),
    with U from the SRAM tiles (paired units: two a cycle at 4 input bits) and T = Σ over the round's
    filter tiles of ⌈filters / 8⌉ groups × its row blocks, from the §10.3 tiling."""
    csim_lib("tiny-64-dual")
    prog = _stream_layer(q)
    pr, layer = prog.preset, prog.layers[0]
    imgs = random_images(prog, 1, q)
    dev = CSimDevice("tiny-64-dual")
    dev.load(prog)
    assert np.array_equal(dev.run(imgs), ReferenceEmulator(prog).run(imgs).outputs)
    prof = dev.kernel_profile()
    names = [lp["name"] for lp in prof["loops"]]
    iters = dict(zip(names, prof["layers"][0]["iters"]))
    f_t = layer.dual.n_tern(layer.n_filters)
    r_t = -(-layer.k_rows // pr.tern_rows_active)
    n_rt = -(-r_t // pr.tern_blocks_per_macro)
    tiles = [(ft, rt) for ft in range(-(-f_t // pr.tern_filters_per_macro)) for rt in range(n_rt)]
    t_rounds = [tiles[i:i + pr.tern_n_macros] for i in range(0, len(tiles), pr.tern_n_macros)]
    def entries(rnd):
        n = 0
        for ft in sorted({ft for ft, _ in rnd}):
            nf = min(f_t, (ft + 1) * pr.tern_filters_per_macro) - ft * pr.tern_filters_per_macro
            blocks = sum(min(r_t, (rt + 1) * pr.tern_blocks_per_macro) - rt * pr.tern_blocks_per_macro
                         for f, rt in rnd if f == ft)
            n += -(-nf // 8) * blocks
        return n
    # SRAM units per round: present units of the round's tiles (dense here), two a cycle (4-bit input)
    ng, r = layer.present.shape
    n_rtile = -(-r // pr.blocks_per_macro)
    s_tiles = [(gt, rt) for gt in range(-(-ng // pr.groups_per_macro)) for rt in range(n_rtile)] if ng else []
    s_rounds = [s_tiles[i:i + pr.n_macros] for i in range(0, len(s_tiles), pr.n_macros)]
    def units(rnd):
        return sum(int(layer.present[gt * pr.groups_per_macro:(gt + 1) * pr.groups_per_macro,
                                     rt * pr.blocks_per_macro:(rt + 1) * pr.blocks_per_macro].sum()) for gt, rt in rnd)
    pixels, w_steps, rq = 16, 9, -(-layer.n_filters // 4)
    n_rounds = max(len(s_rounds), len(t_rounds), 1)
    want = sum((pixels + 4) * max(w_steps, -(-units(s_rounds[k]) // 2) if k < len(s_rounds) else 0,
                                  entries(t_rounds[k]) if k < len(t_rounds) else 0, rq, 8) for k in range(n_rounds))
    assert iters["pixel_stream"] == want
    assert iters["units"] == 0 and iters["pixels"] == 0  # no per-pixel loops: everything in the stream
    if q:
        assert iters["load_tern"] == 2 * f_t * r_t and iters["tern_schedule"] == sum(entries(t) for t in t_rounds)
        assert max(entries(t) for t in t_rounds) > max(w_steps, rq)  # the ternary path sets the slot here
    # trace mode (DDR, per-pixel loops): one units loop per pixel and round, max(unit iterations, entries) long
    dev.trace(imgs)
    iters = dict(zip(names, dev.kernel_profile()["layers"][0]["iters"]))
    assert iters["pixel_stream"] == 0
    assert iters["units"] == sum(pixels * max(-(-units(s_rounds[k]) // 2) if k < len(s_rounds) else 0,
                                              entries(t_rounds[k]) if k < len(t_rounds) else 0)
                                 for k in range(n_rounds))


# ---- fuzzing the format-1.2 fields: the kernel's verdict is the host's ----

def _dual_fields(image):
    """(name, offset, struct code) of the format-1.2 fields of an image: version_minor, header bytes
    61..63, every layer's flags and off_dual, and each dual section's fields and ternary words."""
    import struct
    h = HEADER.unpack_from(image, 0)
    out = [("version_minor", 10, "H"), ("header[61]", 61, "B"), ("header[62]", 62, "B"), ("header[63]", 63, "B")]
    for i in range(h[14]):
        rec = h[18] + 96 * i
        if rec + 96 > len(image):  # a mutated layer table: only the records inside the image
            break
        out += [(f"layer{i}.flags", rec + 6, "H"), (f"layer{i}.off_dual", rec + 72, "I")]
        od = struct.unpack_from("<I", image, rec + 72)[0]
        if od and od + 16 <= len(image):
            out += [(f"layer{i}.dual.{n}", od + o, c) for n, o, c in (
                ("ratio", 0, "B"), ("threshold", 1, "B"), ("n_tern_rowblocks", 2, "H"), ("n_tern_words", 4, "I"),
                ("off_tern_weights", 8, "I"), ("reserved12", 12, "B"), ("reserved15", 15, "B"))]
            nw, ow = struct.unpack_from("<II", image, od + 4)
            if ow + 8 * nw <= len(image):
                out += [(f"layer{i}.tern[{w}]", ow + 8 * w, "Q") for w in range(nw)]
    return out


_FUZZ_BASES = [encode(random_dualpath_program(s, "tiny-64-dual", max_convs=2, max_hw=5, max_channels=9))
               for s in range(6)]


@settings(max_examples=150, deadline=None, derandomize=True)
@given(data=st.data())
def test_fuzzed_format_1_2_fields_get_the_hosts_verdict(csim_lib, data):
    """1..3 of the format-1.2 fields (or, sometimes, any field) set over their whole range or to an
    edge value: the host and the kernel both accept (and csim == the reference emulator, outputs and
    every counter), or both refuse with the class of the kernel's status, or the host alone refuses
    with a rule it keeps to itself (host_only)."""
    import struct
    from hybridcim.program import ProgramError
    from hybridcim.runtime import buffers
    from hybridcim.zoo.fuzz import field_range, mutate_image, set_field
    csim_lib("tiny-64-dual")
    image = data.draw(st.sampled_from(_FUZZ_BASES))
    what = []
    if data.draw(st.integers(0, 3)) == 0:
        image, what = mutate_image(image, lambda seq: data.draw(st.sampled_from(seq)),
                                   lambda lo, hi: data.draw(st.integers(lo, hi)))
    for _ in range(data.draw(st.integers(1, 3))):
        name, off, code = data.draw(st.sampled_from(_dual_fields(image)))
        lo, hi = field_range(code)
        cur = struct.unpack_from("<" + code, image, off)[0]
        bits = struct.calcsize(code) * 8
        near = [v for v in (0, 1, 2, cur - 1, cur + 1, cur ^ (1 << data.draw(st.integers(0, bits - 1))), hi)
                if lo <= v <= hi]
        value = data.draw(st.one_of(st.sampled_from(near), st.integers(lo, hi)))
        image = set_field(image, off, code, value)
        what.append(f"{name}={value}")
    image = reseal(image)
    dev = CSimDevice("tiny-64-dual")
    try:
        prog, host = decode(image, dev.preset, limits=dev.info), None
    except ProgramError as e:
        host = e
    rc = dev.lib.layout(buffers.program_words(image))[0]
    event(f"host {type(host).__name__ if host else None}, kernel status {rc & 0xFFFF}")  # --hypothesis-show-statistics
    if host is not None:
        if rc:
            assert isinstance(host, STATUS[rc & 0xFFFF][2]) and not host.host_only, \
                (what, STATUS[rc & 0xFFFF][0], repr(host))
        else:
            assert host.host_only, (what, "the kernel accepts, the host refuses with a kernel-checked rule", repr(host))
        return
    assert rc == 0, (what, f"the host accepts, the kernel says {STATUS[rc & 0xFFFF][0]}")
    images = random_images(prog, 2, seed=len(what))
    ref = ReferenceEmulator(prog).run(images)
    dev.load_image(image, prog)
    assert np.array_equal(dev.run(images), ref.outputs), what
    assert [c.as_dict() for c in dev.counters] == [c.as_dict() for c in ref.counters], what
