"""The control register map derived from the HLS prototype (runtime.regmap) against the driver's
tables, the documented table, public Vitis-generated driver headers and the .hwh fixtures."""
import re
import sys
from pathlib import Path

import pytest

from hybridcim.runtime import pynq_device, regmap

sys.path.insert(0, str(Path(__file__).parent))
import ip_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _offsets(m):
    return {k: r.offset for k, r in m.items()}


def test_the_derived_maps_equal_the_driver_tables():
    assert _offsets(regmap.control_map(32)) == pynq_device.REGISTERS
    assert _offsets(regmap.control_map(64)) == pynq_device.REGISTERS_64
    m64 = regmap.control_map(64)
    assert {k for k, r in m64.items() if r.pointer} == set(pynq_device.POINTERS)
    assert all(m64[p].bits == 64 and m64[p].words == 2 for p in pynq_device.POINTERS)


# Prototypes of the same kind as ours (m_axi pointers with offset=slave, 32-bit scalars, a
# uint32 return in the control bundle) and the offsets Vitis generated for them, read from the
# public x<top>_hw.h files named here (the prototypes are reconstructed from those headers'
# register comments: names, widths and order).
PUBLIC_HEADERS = [
    ("vic9112/PQC_Falcon ip_compute_pk/ip/drivers/compute_public_v1_0/src/xcompute_public_hw.h "
     "(Vitis HLS 2022.1, 64-bit addresses, ap_return)",
     "uint32_t compute_public(uint16_t *h, const int8_t *f, const int8_t *g, unsigned logn, uint8_t *tmp)",
     ["h", "f", "g", "tmp"], ["logn", "return"], 64,
     {"ap_return": (0x10, 32), "h": (0x18, 64), "f": (0x24, 64), "g": (0x30, 64), "logn": (0x3C, 32),
      "tmp": (0x44, 64)}),
    ("CTSRD-CHERI/cheri-hls examples/spmv_crs/bare_metal_cpu_hls_fg/xhls_top_hw.h "
     "(Vitis HLS 2023.1, 64-bit addresses, void, a scalar first)",
     "void hls_top(int size, double *xval, int *xcols, int *xrowDelimiters, double *xvec, double *xout)",
     ["xval", "xcols", "xrowDelimiters", "xvec", "xout"], ["size"], 64,
     {"size": (0x10, 32), "xval": (0x18, 64), "xcols": (0x24, 64), "xrowdelimiters": (0x30, 64),
      "xvec": (0x3C, 64), "xout": (0x48, 64)}),
    ("whbldhwj/ppcg hls_tests/gemm/hls_prj/prj/solution1/.autopilot/db/driver/src/xkernel0_hw.h "
     "(Vivado HLS 2019.2, 32-bit addresses)",
     "void kernel0(ap_uint<512> *A_V, ap_uint<512> *B_V, ap_uint<512> *C_V)",
     ["A_V", "B_V", "C_V"], [], 32, {"a_v": (0x10, 32), "b_v": (0x18, 32), "c_v": (0x20, 32)}),
]


@pytest.mark.parametrize("source,proto,maxi,lite,addr_bits,want", PUBLIC_HEADERS, ids=lambda v: str(v)[:24])
def test_the_rules_reproduce_public_vitis_headers(source, proto, maxi, lite, addr_bits, want):
    pragmas = "\n".join([f"#pragma HLS INTERFACE m_axi port={p} offset=slave bundle=gmem{i}" for i, p in enumerate(maxi)]
                        + [f"#pragma HLS INTERFACE s_axilite port={p} bundle=control" for p in lite])
    top = re.search(r"(\w+)\(", proto).group(1)
    ret, args = regmap.parse_prototype(proto + ";", top)
    m = regmap.derive(ret, args, regmap.parse_interface_pragmas(pragmas), addr_bits)
    got = {k.lower(): (r.offset, r.bits) for k, r in m.items() if k not in ("ap_ctrl", "gie", "ier", "isr")}
    assert got == want, source


@pytest.mark.parametrize("bits", [32, 64])
def test_driver_header_round_trip(bits):
    m = regmap.control_map(bits)
    found = regmap.offsets_from_hw_header(regmap.hw_header_defines(m), "XHYBRIDCIM_ACCEL_CONTROL")
    assert found == {k: (r.offset, r.bits) for k, r in m.items()}
    assert pynq_device.offsets_from_driver_header(regmap.hw_header_defines(m)) == _offsets(m)


def test_the_documented_table_is_the_derived_map():
    """docs/program-format.md "Control registers": Zynq-7000 column and Zynq UltraScale+ column."""
    doc = (ROOT / "docs" / "program-format.md").read_text()
    z2, mp = {}, {}
    for o32, names, o64 in re.findall(r"^\| (0x[0-9A-F]{2}(?: / 0x[0-9A-F]{2})*) \| ((?:`\w+`(?: / )?)+) \| "
                                      r"(0x[0-9A-F]{2}(?: / 0x[0-9A-F]{2})*)", doc, re.M):
        for a, b, name in zip(o32.split(" / "), o64.split(" / "), re.findall(r"`(\w+)`", names)):
            z2[name.lower()], mp[name.lower()] = int(a, 16), int(b, 16)
    assert z2 == _offsets(regmap.control_map(32))
    assert mp == _offsets(regmap.control_map(64))


@pytest.mark.parametrize("board", ["pynq-z2", "kv260"])
def test_hwh_fixtures_are_generated_from_the_derived_map(board):
    path = Path(__file__).parent / "fixtures" / f"hybridcim_{board}.hwh"
    assert path.read_text() == ip_model.hwh_text(board), "regenerate: python -c 'import ip_model; ...' (see ip_model.hwh_text)"
    pytest.importorskip("pynq.pl_server.hwh_parser")
    ip = ip_model.parse_hwh(path, board).ip_dict[ip_model.IP_INSTANCE]
    bits = ip_model.BOARDS[board][4]
    assert ip["type"] == ip_model.IP_VLNV and ip["phys_addr"] == ip_model.BOARDS[board][5]
    assert regmap.from_hwh_registers(ip["registers"]) == {k: (r.offset, r.bits) for k, r in regmap.control_map(bits).items()}


def test_bad_prototypes_fail_loudly():
    with pytest.raises(regmap.RegmapError, match="without an m_axi pragma"):
        regmap.derive(*regmap.parse_prototype("int f(int *p);", "f"),
                      regmap.parse_interface_pragmas("#pragma HLS INTERFACE s_axilite port=p bundle=control"))
    with pytest.raises(regmap.RegmapError, match="no prototype"):
        regmap.parse_prototype("int g(int a);", "f")
    with pytest.raises(regmap.RegmapError, match="unknown scalar type"):
        regmap.derive(*regmap.parse_prototype("int f(mytype a);", "f"),
                      regmap.parse_interface_pragmas("#pragma HLS INTERFACE s_axilite port=a"))
    with pytest.raises(regmap.RegmapError, match="low/high pair"):
        regmap.from_hwh_registers({"prog_1": {"address_offset": 0x18, "size": 32}})
