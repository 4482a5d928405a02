"""Reader rules of spec 1.0.1 (program-format.md "Reader checks"): exact overflow bound, no
allocation before the sizes are checked against the image, the embedded manifest's schema,
tensor/layer record fields, the check order, and the shipped images loading unchanged."""
import json
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from hybridcim.program import (CapacityError, InvalidProgramError, ManifestError, ProgramBuilder, ProgramError,
                               SectionError, TruncatedError, decode, encode, read_program)
from hybridcim.program.format import HEADER, LAYER, TENSOR, colmap_entry
from hybridcim.program.validate import accumulator_bound
from hybridcim.spec import get_preset
from hybridcim.zoo import random_program
from hybridcim.zoo.fuzz import image_fields, reseal, set_field, with_manifest

MODELS = Path(__file__).resolve().parents[2] / "host" / "hybridcim" / "models"


def field(image, name):
    return next((o, c) for n, o, c in image_fields(image) if n == name)


def tamper(image, **fields):
    for name, value in fields.items():
        o, c = field(image, name.replace("__", "."))
        image = set_field(image, o, c, value)
    return reseal(image)


def residual_program(shift=0, res_shift=0):
    b = ProgramBuilder(get_preset("tiny-64"), name="res")
    x = b.input("image", 1, 4, 4)
    y = b.conv("c1", x, np.ones((2, 1, 1, 1), np.int64), [2, 2], [4, 4], out_bits=4)
    z = b.conv("c2", y, np.ones((2, 2, 1, 1), np.int64), [2, 2], [shift] * 2, res=y, res_shift=[res_shift] * 2,
               out_bits=4)
    g = b.avgpool("gap", z)
    b.fc("logits", g, np.ones((2, 2), np.int64), [2, 2], [0, 0], logits=True)
    return b.build()


def test_overflow_bound_is_exact_and_never_wraps():
    p = residual_program()
    c2 = p.layers[1]
    c2.shift = np.full(2, -31, np.int8)
    c2.res_shift = np.full(2, 29, np.int8)
    want = (2 * 15 + 0 + (15 << 29)) << 31  # (Σ|W|·xmax + |bias| + rmax·2^res_shift) · 2^31 ≈ 1.7e19 > 2^63
    assert accumulator_bound(c2, p) == want > 2**63
    with pytest.raises(InvalidProgramError, match="worst-case accumulator"):
        from hybridcim.program import validate
        validate(p)
    # the same bytes through decode: a valid image with the shift bytes patched and the CRC resealed
    image = bytearray(encode(residual_program()))
    off_shift, off_rs = (struct.unpack_from("<I", image, field(bytes(image), f"layer1.{n}")[0])[0]
                         for n in ("off_shift", "off_res_shift"))
    image[off_shift:off_shift + 2] = bytes([(-31) & 0xFF] * 2)
    image[off_rs:off_rs + 2] = bytes([29, 29])
    with pytest.raises(InvalidProgramError, match="worst-case accumulator") as ei:
        decode(reseal(image))
    assert ei.value.host_only


def test_pruned_filter_counts_through_its_bias():
    p = residual_program()
    c1 = p.layers[0]
    c1.precision = np.array([2, 0], np.uint8)
    c1.col_filter[c1.col_filter == 1] = -1
    c1.col_plane[c1.col_filter < 0] = 0
    c1.bias = np.array([0, 2**30], np.int32)
    c1.shift = np.array([0, -1], np.int8)
    assert accumulator_bound(c1, p) == 2**31
    with pytest.raises(InvalidProgramError, match="worst-case accumulator"):
        encode(p)


def _huge_kernel_image(n_filters: int, total: int = 33 * 1024) -> bytes:
    """A hand-made ``total``-byte image (tiny-64): 1x1 input, a 255x255 conv with pad 127 and
    n_filters pruned filters; the sections are laid out one after the other (they run past the
    image's end when n_filters is large)."""
    pr = get_preset("tiny-64")
    k = 255 * 255
    nrb = -(-k // pr.rows_active)
    toff, loff = HEADER.size, HEADER.size + TENSOR.size * 2
    a8 = lambda n: -(-n // 8) * 8  # noqa: E731
    prec = loff + LAYER.size
    bias = prec + a8(n_filters)
    shift = bias + a8(4 * n_filters)
    colmap = shift + a8(n_filters)
    skip = colmap + 4 * pr.group_width
    manifest = json.dumps({"name": "huge", "tensors": ["x", "y"], "layers": ["conv"], "metadata": {}}).encode()
    meta = min(skip + a8(-(-nrb // 8)), total - a8(len(manifest)))
    img = bytearray(total)
    HEADER.pack_into(img, 0, b"HCIMPROG", 1, 0, total, 0, pr.fingerprint, pr.rows, pr.cols, pr.rows_active,
                     pr.group_width, pr.n_macros, pr.acc_bits, pr.adc_bits, 2, 1, 0, 1, toff, loff, meta,
                     len(manifest), sum(1 << (p - 1) for p in pr.precisions))
    TENSOR.pack_into(img, toff, 1, 1, 1, 8, 0, 8)
    TENSOR.pack_into(img, toff + TENSOR.size, n_filters, 1, 1, 4, 0, 0)
    LAYER.pack_into(img, loff, 1, 0, 255, 255, 1, 127, 0, 0, 1, 0xFFFF, n_filters, k, 1, nrb, 0, 15, 0,
                    prec, bias, shift, shift, colmap, skip, skip, 0)
    img[meta:meta + len(manifest)] = manifest
    return reseal(img)


@pytest.mark.parametrize("n_filters", [65535, 640])
def test_huge_declared_sizes_allocate_nothing_big(n_filters):
    image = _huge_kernel_image(n_filters)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        prog = decode(image)
    except ProgramError as e:
        prog = e
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 5 and peak < 64 * 2**20, (elapsed, peak)
    if n_filters == 65535:  # 65,535 bias words cannot fit the image
        assert isinstance(prog, SectionError) and len(image) < 40_000
    else:  # every filter pruned, every unit absent: a (useless but) valid program, decoded in O(image) memory
        assert not isinstance(prog, Exception) and prog.layers[0].present.shape == (1, -(-255 * 255 // 16))
        with pytest.raises(CapacityError, match="filters = 640 > 512"):  # a device's limits refuse it
            decode(image, limits=_limits())


def _limits():
    class L:
        max_tensors = max_layers = 128
        max_filters = max_groups = max_rowblocks = 512
        max_cwords = 16
        max_pack_words = 16384
    return L()


@pytest.fixture(scope="module")
def image():
    return encode(random_program(7, "tiny-64"))


def test_deep_manifest_is_a_manifest_error_not_a_recursion_error(image):
    for depth in (33, 100_000):
        meta = '{"name": "x", "tensors": [], "layers": [], "metadata": {"a": ' + "[" * depth + "]" * depth + "}}"
        with pytest.raises(ManifestError, match="deeper than 32"):
            decode(with_manifest(image, meta.encode()))


@pytest.mark.parametrize("bad, match", [
    ({"name": None}, "program name must be a string"),
    ({"name": ""}, "program name must be a string"),
    ({"tensors": "t"}, "must be a list"),
    ({"tensors": "count"}, "names, the image has"),
    ({"layers": "obj"}, "layer 0 name must be a string"),
    ({"metadata": []}, "'metadata' must be an object"),
    ({"extra": 1}, "keys must be"),
])
def test_manifest_schema(image, bad, match):
    meta = json.loads(decode(image) and image[struct.unpack_from("<I", image, 52)[0]:][
        :struct.unpack_from("<I", image, 56)[0]])
    for k, v in bad.items():
        if v == "count":
            meta[k] = meta[k][:-1]
        elif v == "obj":
            meta[k][0] = {"a": 1}
        else:
            meta[k] = v
    with pytest.raises(ManifestError, match=match) as ei:
        decode(with_manifest(image, json.dumps(meta).encode()))
    assert ei.value.host_only


@pytest.mark.parametrize("name, value", [("tensor0.signed", 2), ("tensor0.signed", 255), ("tensor1.bits", 32),
                                         ("tensor1.reserved3", 1), ("header.reserved0", 1),
                                         ("layer0.reserved0", 1), ("layer0.reserved30", 7), ("layer0.pool_shift", 1)])
def test_record_fields_refused_by_the_host(image, name, value):
    with pytest.raises(InvalidProgramError) as ei:
        decode(tamper(image, **{name.replace(".", "__"): value}))
    assert not ei.value.host_only


def test_pool_record_fields_are_enforced(image):
    prog = decode(image)
    i = next(k for k, l in enumerate(prog.layers) if not l.op.is_cim)
    for f, v in (("n_filters", 1), ("k_rows", 1), ("n_groups", 1), ("n_rowblocks", 1), ("n_weight_words", 8),
                 ("off_bias", 64), ("clamp_hi", 1)):
        if f == "clamp_hi" and prog.layers[i].op.name != "MAXPOOL":
            continue
        with pytest.raises(InvalidProgramError, match="pool"):
            decode(tamper(image, **{f"layer{i}__{f}": v}))


def test_colmap_high_bits_and_unused_entries_are_refused(image):
    prog = decode(image)
    i = next(k for k, l in enumerate(prog.layers) if l.op.is_cim)
    off = struct.unpack_from("<I", image, field(image, f"layer{i}.off_colmap")[0])[0]
    entry = struct.unpack_from("<I", image, off)[0]
    for bad in (entry | 1 << 25, entry | 1 << 31, 5 if entry == 0 else None):
        if bad is not None:
            with pytest.raises(InvalidProgramError, match="column map"):
                decode(reseal(set_field(image, off, "I", bad)))
    assert colmap_entry(3, 1) >> 25 == 0


def test_weight_bits_above_rows_active_are_refused(image):
    prog = decode(image)
    i = next(k for k, l in enumerate(prog.layers) if l.op.is_cim and l.words.size)
    off = struct.unpack_from("<I", image, field(image, f"layer{i}.off_weights")[0])[0]
    w = struct.unpack_from("<Q", image, off)[0]
    with pytest.raises(InvalidProgramError, match="above rows_active"):
        decode(reseal(set_field(image, off, "Q", w | 1 << 16)))  # tiny-64: 16 rows active


def test_size_not_multiple_of_8_is_truncation(image):
    buf = bytearray(image + b"\0\0\0")
    buf[12:16] = len(buf).to_bytes(4, "little")
    with pytest.raises(TruncatedError, match="multiple of 8"):
        decode(reseal(buf))


def test_check_order_fixes_the_class_of_a_multi_defect_image(image):
    """A tensor defect (kernel TENSOR) comes before a layer defect and a host-only defect."""
    prog = decode(image)
    i = next(k for k, l in enumerate(prog.layers) if l.op.is_cim)
    both = tamper(image, tensor1__signed=3, layer0__flags=1, **{f"layer{i}__clamp_lo": -(2**31)})
    with pytest.raises(InvalidProgramError, match="signed byte 3") as ei:
        decode(both)
    assert not ei.value.host_only
    with pytest.raises(SectionError):  # a section outside the image before a bad column map
        o, c = field(image, f"layer{i}.off_weights")
        decode(reseal(set_field(set_field(image, o, c, len(image)), o - 8, "I", 0xFFFFFFFF)))


@pytest.mark.parametrize("model", sorted(p.name for p in MODELS.iterdir() if (p / "model.cim").is_file()))
def test_shipped_images_load_unchanged(model):
    path = MODELS / model / "model.cim"
    data = path.read_bytes()
    prog = read_program(path)
    assert encode(prog) == data
    sidecar = json.loads((MODELS / model / "model.cim.json").read_text())
    assert sidecar["image_bytes"] == len(data)
    prog.summary()


def test_avgpool_global_sum_must_fit_int32():
    p = residual_program()
    gap = next(l for l in p.layers if l.op.name == "AVGPOOL")
    from hybridcim.program import validate
    xmax = p.tensors[gap.in_tensor].fmt.max
    hw = p.tensors[gap.in_tensor].height * p.tensors[gap.in_tensor].width
    gap.pool_shift = -((2**31 - 1) // (hw * xmax)).bit_length()  # the first left shift past int32
    assert hw * xmax << -gap.pool_shift > 2**31 - 1 >= hw * xmax << (-gap.pool_shift - 1)
    with pytest.raises(InvalidProgramError, match="global sum"):
        validate(p)
    gap.pool_shift += 1
    validate(p)


def test_reserved_ranges_match_the_kernel_header():
    """format.*_RESERVED == the HCIM_*_RESERVED* byte ranges the kernel checks (hls/hybridcim_accel.h)."""
    import re
    from hybridcim.program import format as fmt
    text = (Path(__file__).resolve().parents[2] / "hls" / "hybridcim_accel.h").read_text()
    d = {k: int(v) for k, v in re.findall(r"#define\s+(HCIM_\w*RESERVED\w*)\s+(\d+)", text)}
    assert fmt.HEADER_RESERVED == ((d["HCIM_H_RESERVED"], d["HCIM_H_RESERVED_BYTES"]),)
    assert fmt.TENSOR_RESERVED == ((d["HCIM_T_RESERVED"], d["HCIM_T_RESERVED_BYTES"]),)
    assert fmt.LAYER_RESERVED == ((d["HCIM_L_RESERVED0"], d["HCIM_L_RESERVED0_BYTES"]),
                                  (d["HCIM_L_RESERVED1"], d["HCIM_L_RESERVED1_BYTES"]))
    # every byte of each record is a field or reserved: the reserved ranges close the struct layouts
    assert fmt.HEADER_RESERVED[0][0] + fmt.HEADER_RESERVED[0][1] == fmt.HEADER.size
    assert fmt.TENSOR_RESERVED[0][0] + fmt.TENSOR_RESERVED[0][1] == fmt.TENSOR.size
    assert fmt.LAYER_RESERVED[1][0] + fmt.LAYER_RESERVED[1][1] == fmt.LAYER.size


def test_reader_check_table_names_real_classes_and_statuses():
    """Every host class and kernel status of program-format.md's reader-check table exists, and
    the kernel status of each row maps to that row's host class (runtime.errors.STATUS)."""
    import re
    from hybridcim.program import errors
    from hybridcim.runtime.errors import STATUS
    doc = (Path(__file__).resolve().parents[2] / "docs" / "program-format.md").read_text()
    table = doc[doc.index("## Reader checks"):doc.index("**What the kernel leaves to the host.**")]
    rows = [r.split("|")[1:-1] for r in table.splitlines() if re.match(r"\| \d+ \|", r)]
    assert [int(r[0]) for r in rows] == list(range(1, len(rows) + 1))
    by_name = {name: cls for name, _, cls in STATUS.values()}
    for num, _, host, kernel in rows:
        classes = [getattr(errors, c) for c in re.findall(r"`(\w+Error)`", host)]
        assert classes, num
        for status in re.findall(r"\b(SIZE|MAGIC|VERSION|CHECKSUM|PRESET|LIMIT|LAYER|TENSOR)\b", kernel):
            assert any(issubclass(c, by_name[status]) for c in classes), (num, status, host)
