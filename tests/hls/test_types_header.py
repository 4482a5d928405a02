"""The HLS header's types and format constants agree with the Python definitions (STYLE 5).

hls/hybridcim_accel.h is parsed as text (no compiler needed) and compared with
hybridcim.spec.numformat, hybridcim.program.format, hybridcim.runtime.errors.STATUS and every
preset in hybridcim.spec.hardware.PRESETS that has a kernel build (hls/presets/<name>.h).
"""
import re
import struct

import pytest

from hybridcim.program import format as fmt
from hybridcim.runtime import buffers
from hybridcim.runtime.bitstream import header_defines, kernel_info_from_headers
from hybridcim.runtime.csim_build import hls_dir
from hybridcim.runtime.errors import STATUS
from hybridcim.spec.hardware import PRESETS
from hybridcim.spec.numformat import INT32, UINT8, IntFormat

HLS = hls_dir()
HEADER = (HLS / "hybridcim_accel.h").read_text()
DEFINES = header_defines(HLS / "hybridcim_accel.h")

HEADER_FIELDS = ["magic", "version_major", "version_minor", "image_bytes", "crc32", "fingerprint", "rows", "cols",
                 "rows_active", "group_width", "n_macros", "acc_bits", "adc_bits", "n_tensors", "n_layers",
                 "input_tensor", "output_tensor", "tensor_table", "layer_table", "manifest_offset",
                 "manifest_bytes", "precision_mask"]
TENSOR_FIELDS = ["channels", "height", "width", "bits", "signed", "exponent"]
LAYER_FIELDS = ["op", "mode", "kh", "kw", "stride", "pad", "flags", "in_tensor", "out_tensor", "res_tensor",
                "n_filters", "k_rows", "n_groups", "n_rowblocks", "clamp_lo", "clamp_hi", "pool_shift",
                "off_precision", "off_bias", "off_shift", "off_res_shift", "off_colmap", "off_skip", "off_weights",
                "n_weight_words"]


def field_offsets(st: struct.Struct) -> list[int]:
    """Byte offset of every non-pad field of a little-endian struct format."""
    offs, prefix = [], st.format[0]
    for count, code in re.findall(r"(\d*)([a-zA-Z?])", st.format[1:]):
        if code != "x":
            if code == "s":
                offs.append(struct.calcsize(prefix))
            else:
                for _ in range(int(count or 1)):
                    offs.append(struct.calcsize(prefix))
                    prefix += code
                continue
        prefix += count + code
    return offs


def define(name: str) -> int:
    return int(DEFINES[name].rstrip("uUlL"), 0)


def typedef(name: str) -> str:
    m = re.search(r"typedef\s+(ap_u?int<\d+>)\s+" + name + r"\s*;", HEADER)
    assert m, f"typedef {name} missing from hybridcim_accel.h"
    return m.group(1)


@pytest.mark.parametrize("name, want", [("pixel_t", UINT8), ("logit_t", INT32), ("act4_t", IntFormat(4, False)),
                                        ("w2_t", IntFormat(2, True)), ("w4_t", IntFormat(4, True)),
                                        ("w8_t", IntFormat(8, True))])
def test_number_format_typedefs(name, want):
    assert typedef(name) == want.ap_type


def test_row_word_holds_the_widest_row_block():
    assert typedef("rowword_t") == "ap_uint<64>"
    assert max(p.rows_active for p in PRESETS.values()) <= 64


def test_native_containers_have_the_format_widths():
    assert re.search(r"typedef\s+int32_t\s+acc_t\s*;", HEADER) and INT32 == IntFormat(32, True)
    assert re.search(r"typedef\s+uint64_t\s+word_t\s*;", HEADER)


def test_image_constants():
    assert define("HCIM_MAGIC_WORD") == int.from_bytes(fmt.MAGIC, "little")
    assert (define("HCIM_FORMAT_MAJOR"), define("HCIM_FORMAT_MINOR")) == (fmt.VERSION_MAJOR, fmt.VERSION_MINOR)
    assert define("HCIM_HEADER_BYTES") == fmt.HEADER.size
    assert define("HCIM_TENSOR_BYTES") == fmt.TENSOR.size
    assert define("HCIM_LAYER_BYTES") == fmt.LAYER.size
    assert define("HCIM_NO_TENSOR") == fmt.NO_TENSOR
    assert define("HCIM_ALIGN") == fmt.ALIGN
    for op in fmt.Op:
        assert define(f"HCIM_OP_{op.name}") == int(op)
    e = fmt.colmap_entry(0x1234, 5)
    assert (e >> define("HCIM_CM_PLANE_SHIFT")) & 0xFF == 5 and (e >> define("HCIM_CM_USED_SHIFT")) & 1 == 1


@pytest.mark.parametrize("st, fields, prefix", [(fmt.HEADER, HEADER_FIELDS, "HCIM_H_"),
                                                (fmt.TENSOR, TENSOR_FIELDS, "HCIM_T_"),
                                                (fmt.LAYER, LAYER_FIELDS, "HCIM_L_")])
def test_record_field_offsets(st, fields, prefix):
    offs = field_offsets(st)
    assert len(offs) == len(fields)
    names = {"crc32": "CRC32", "fingerprint": "FINGERPRINT", "tensor_table": "TENSOR_TABLE",
             "layer_table": "LAYER_TABLE"}
    for field, off in zip(fields, offs):
        if field == "magic":
            assert off == 0
            continue
        macro = prefix + names.get(field, field.upper())
        assert macro in DEFINES, f"{macro} missing"
        assert define(macro) == off, f"{macro} = {define(macro)}, struct says {off}"


def test_status_codes_and_flags():
    codes = {k[len("HCIM_ERR_"):]: define(k) for k in DEFINES if k.startswith("HCIM_ERR_")}
    codes["OK"] = define("HCIM_OK")
    assert codes == {name: code for code, (name, _, _) in STATUS.items()}
    assert define("HCIM_FLAG_TRACE") == buffers.FLAG_TRACE
    assert define("HCIM_FLAG_VALIDATE_ONLY") == buffers.FLAG_VALIDATE_ONLY
    assert define("HCIM_FLAG_COUNTERS") == buffers.FLAG_COUNTERS


def test_counter_order_is_the_emulators():
    from hybridcim.emulator.counters import DUAL_EXTRA, HYBRID_EXTRA, PER_IMAGE
    from hybridcim.program.dualpath import TERN_PER_IMAGE
    fields = PER_IMAGE + HYBRID_EXTRA + DUAL_EXTRA
    assert DUAL_EXTRA == TERN_PER_IMAGE
    assert define("HCIM_N_COUNTERS") == len(fields) == len(buffers.COUNTER_FIELDS) == 32
    found = {k[len("HCIM_C_"):].lower(): define(k) for k in DEFINES if k.startswith("HCIM_C_")}
    assert found == {name: i for i, name in enumerate(fields)}
    assert buffers.COUNTERS_PER_LAYOUT == {1: 16, 2: 25, 3: 32} and define("HCIM_CNT_LAYOUT") == 3
    assert re.search(r"typedef\s+uint64_t\s+cnt_t\s*;", HEADER)
    top = (HLS / "hybridcim_accel.cpp").read_text()
    depth = int(re.search(r"port = counters .*depth = (\d+)", top).group(1))
    assert all(buffers.COUNTERS_HEADER_WORDS + kernel_info_from_headers(p).max_layers * len(buffers.COUNTER_FIELDS)
               == depth for p in PRESETS)
    assert define("HCIM_CNT_MAGIC") == buffers.COUNTERS_MAGIC and define("HCIM_CNT_LAYOUT") == buffers.COUNTERS_LAYOUT
    assert define("HCIM_CNT_HEADER_WORDS") == buffers.COUNTERS_HEADER_WORDS


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_headers(name):
    p = PRESETS[name]
    info = kernel_info_from_headers(p)
    assert info.fingerprint == p.fingerprint
    assert (info.rows, info.cols, info.rows_active, info.group_width, info.n_macros, info.acc_bits, info.adc_bits) == \
        (p.rows, p.cols, p.rows_active, p.group_width, p.n_macros, p.acc_bits, p.adc_bits)
    assert info.precision_mask == sum(1 << (q - 1) for q in p.precisions)
    assert header_defines(HLS / "presets" / f"{name}.h")["HCIM_PRESET_NAME"] == f'"{name}"'
    assert info.max_rowblocks * p.rows_active >= 4608, "kernel must take 3x3x512 convolutions"


def test_kernel_version_matches_runtime():
    from hybridcim.runtime.bitstream import KERNEL_MAJOR
    assert define("HCIM_KERNEL_VERSION_MAJOR") == KERNEL_MAJOR


def test_hybrid_section_constants():
    """The kernel's hybrid-section offsets, limits and layer-mode constants are the host's."""
    from hybridcim.cim import hybrid as hy
    from hybridcim.program.hybrid import HYBRID, HYBRID_RESERVED
    offs = field_offsets(HYBRID)
    names = ["N_LEVELS", "SAL_PLANES", "NOISE_PAIRS", "NOISE_SHIFT", "NOISE_SEED"]
    assert [define(f"HCIM_HY_{n}") for n in names] == offs[:5]
    assert (define("HCIM_HY_THRESHOLDS"), define("HCIM_HY_DIGITAL_DEPTH"), define("HCIM_HY_KEEP_DEPTH")) == \
        (offs[5], offs[12], offs[20])
    assert ((define("HCIM_HY_RESERVED0"), 8), (define("HCIM_HY_RESERVED1"), 4)) == HYBRID_RESERVED
    assert define("HCIM_HY_BYTES") == HYBRID.size
    assert (define("HCIM_MAX_LEVELS"), define("HCIM_DEPTH_ALL"), define("HCIM_MAX_NOISE_PAIRS"),
            define("HCIM_MAX_NOISE_SHIFT"), define("HCIM_NOISE_FRAC_BITS")) == \
        (hy.MAX_LEVELS, hy.DEPTH_ALL, hy.MAX_NOISE_PAIRS, hy.MAX_NOISE_SHIFT, hy.NOISE_FRAC_BITS)
    assert (define("HCIM_MODE_DIGITAL"), define("HCIM_MODE_HYBRID")) == (fmt.MODE_DIGITAL, fmt.MODE_HYBRID)
    assert define("HCIM_FORMAT_MINOR_HYBRID") == fmt.VERSION_MINOR_HYBRID
    assert define("HCIM_L_OFF_HYBRID") == fmt.LAYER_OFF_HYBRID
