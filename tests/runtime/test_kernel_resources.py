"""The kernel resource estimate (hybridcim.runtime.kernel_resources): building blocks, source parsing, totals."""
from math import ceil

import pytest

from hybridcim.runtime.kernel_cycles import BOARDS, LABEL
from hybridcim.runtime.kernel_resources import (BOARD_DEFINES, BOARD_URAM, SourceModel, adder_tree_luts, bram36,
                                                compressor_popcount_luts, estimate_resources, popcount_luts,
                                                uram_blocks)
from hybridcim.spec import get_preset


@pytest.mark.parametrize("k", range(1, 9))
def test_popcount_tree_closed_form(k):
    n = 2 ** k
    # level 1: n/2 LUT6_2 (two bits -> 2-bit sum, AND absorbed); level l >= 2: n/2^l adders of l+1 bits
    assert popcount_luts(n) == n // 2 + sum((n >> l) * (l + 1) for l in range(2, k + 1))


@pytest.mark.parametrize("n", [6, 7, 12, 36, 64, 128, 256])
def test_compressor_tree_is_a_lower_bound(n):
    assert n / 3 <= compressor_popcount_luts(n) <= popcount_luts(n)


def test_adder_tree_and_bram_shapes():
    assert adder_tree_luts([8, 8]) == 9 and adder_tree_luts([4, 4, 4, 4]) == 5 + 5 + 6 and adder_tree_luts([3]) == 0
    assert bram36(512, 72) == 1 and bram36(513, 72) == 2 and bram36(1024, 64) == 2
    assert bram36(32768, 1) == 1 and bram36(4096, 32) == 4 and bram36(128, 16) == 0.5


HDR = """
#define HCIM_N_MACROS 4
#define HCIM_ROWS 256
#define HCIM_ROWS_ACTIVE 64
#define HCIM_BLOCKS (HCIM_ROWS / HCIM_ROWS_ACTIVE)
typedef unsigned long long word_t_x;
typedef ap_uint<40> w40_t;
"""
SRC = """
#include "x.h"
#define DEPTH (HCIM_BLOCKS * 256u)
struct pair_s { uint16_t a; w40_t b[3]; };
static word_t g_big[HCIM_N_MACROS][DEPTH];
static uint32_t g_small[4], g_mid[2048];
static pair_s g_p;
void f(const word_t *p, uint32_t n, uint32_t m) {
#pragma HLS ARRAY_PARTITION variable = g_big dim = 1 complete
    uint32_t loc[HCIM_ROWS_ACTIVE * 16];
    uint32_t q = n * m;
    for (uint32_t i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
        loc[i] = i * m + p[i] * n;
    }
}
"""


@pytest.fixture
def hls(tmp_path):
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "sun-mars-256.h").write_text(HDR)
    (tmp_path / "hybridcim_accel.h").write_text("typedef uint64_t word_t;\n")
    for f in ("hybridcim_accel.cpp", "hcim_program.cpp"):
        (tmp_path / f).write_text("\n")
    (tmp_path / "hcim_layers.cpp").write_text(SRC)
    return tmp_path


def test_source_model_reads_arrays_partitions_and_products(hls):
    sm = SourceModel(hls, get_preset("sun-mars-256"))
    assert sm.const("DEPTH") == 1024 and sm.const("HCIM_BLOCKS * 2") == 8 and sm.const("n * 2") is None
    arr = {a["name"]: a for a in sm.arrays()}
    assert arr["g_big"]["dims"] == [4, 1024] and arr["g_big"]["banks"] == 4 and arr["g_big"]["depth"] == 1024
    assert arr["g_big"]["width"] == 64 and arr["g_small"]["dims"] == [4] and arr["g_mid"]["dims"] == [2048]
    assert arr["loc"]["dims"] == [1024] and arr["g_p.b"]["width"] == 40 and arr["g_p.b"]["dims"] == [3]
    assert "p" not in arr  # a parameter is not an array of the kernel
    assert sm.multiply_sites() == (3, 2, 1)  # n*m outside the pipeline (shared), i*m and p[i]*n inside


MUL = """
template <int N>
static uint32_t mix(uint32_t y) {
    for (int r = 0; r < N; r++) {
#pragma HLS UNROLL
        y = (uint32_t)((uint64_t)0x9E3779B9u * y);
        y = y * 4u + y * 1000u;
    }
    return y;
}
void top(uint32_t n, uint32_t *o) {
lanes:
    for (uint32_t i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
        for (int c = 0; c < 8; c++) o[c] = mix<3>(o[c]) + mix<1>(i);
    }
    uint32_t q = n * n, z = n * 0x12345u;
}
"""


def test_pipeline_multipliers_unroll_and_inline(hls):
    (hls / "hcim_layers.cpp").write_text(MUL)
    sm = SourceModel(hls, get_preset("sun-mars-256"))
    # per lane (c < 8 unrolled): mix<3> and mix<1> inlined with their own N, one 64-bit product (4 DSP48) a
    # round; *4 (a shift) and *1000 (a small constant) take none
    assert sm.pipeline_multipliers() == [("hcim_layers.cpp", "lanes", 8 * (3 + 1) * 4)]
    assert sm.multiply_sites()[0] == 1  # n * n (variable by variable); n * 0x12345 is by a constant


def test_estimate_counts_memories_from_sources(hls):
    e = estimate_resources("sun-mars-256", "pynq-z2", hls_dir=hls)
    mem = {m["name"]: m["bram36"] for m in e.memories}
    assert mem["g_big"] == 4 * bram36(1024, 64) and mem["g_mid"] == bram36(2048, 32) and mem["g_small"] == 0
    assert next(b for b in e.blocks if b.name == "on-chip memories").bram36 == sum(mem.values())
    assert e.total()["dsps"] == 3 * (2 + 1)


@pytest.mark.parametrize("board", list(BOARDS))
@pytest.mark.parametrize("preset", ["sun-mars-256", "tiny-64", "wide-512"])
def test_estimate_of_the_shipped_kernel(preset, board):
    e = estimate_resources(preset, board)
    p = get_preset(preset)
    assert e.datapath.columns == p.group_width and e.datapath.rows == p.rows_active
    t = e.table()
    assert LABEL in t and BOARDS[board].part in t and "| **total** |" in t
    pop = next(b for b in e.blocks if b.name == "popcount array")
    assert pop.luts == e.datapath.columns * e.datapath.planes * popcount_luts(p.rows_active)
    assert any(m["bram36"] >= 1 for m in e.memories) and "BRAM36" in e.memory_table()


def test_default_kernel_fits_the_pynq_z2():
    e = estimate_resources("sun-mars-256", "pynq-z2")
    assert e.fits(), e.table()
    assert e.total()["bram36"] == pytest.approx(sum(m["bram36"] for m in e.memories) + 2.5)
    assert ceil(e.total()["luts"]) < 53_200


def test_dual_kernel_estimate_has_the_second_macro_type():
    """The dual preset's kernel (architecture.md §10): its ternary cell memories (tern_n_macros x tern_cols/2
    filters x blocks x 2 cells x 64-bit words), the binary window plane and the ternary unit are in the
    estimate; the SRAM preset's estimate has none of them (its sources' dual-path code compiles out)."""
    p = get_preset("sun-mars-256-dual")
    dual, base = estimate_resources(p, "pynq-z2"), estimate_resources("sun-mars-256", "pynq-z2")
    mem = {m["name"]: m for m in dual.memories}
    assert mem["g_tmacro"]["bram36"] * 36 * 1024 >= p.tern_n_macros * p.tern_cols // 2 * p.tern_blocks_per_macro * 2 * 64
    assert mem["xw3"]["dims"][1] == 9 and {m["name"]: m for m in base.memories}["xw3"]["dims"][1] == 8
    assert not {"g_tmacro", "g_tacc", "g_tsched"} & {m["name"] for m in base.memories}
    assert any(b.name.startswith("ternary unit") for b in dual.blocks)
    assert not any(b.name.startswith("ternary unit") for b in base.blocks)
    assert dual.total()["bram36"] > base.total()["bram36"] and dual.total()["luts"] > base.total()["luts"]


def test_uram_block_shape():
    # one 288 Kb block is 4096 x 72 (no other aspect ratio): cascaded in depth, side by side in width
    assert uram_blocks(4096, 72) == 1 and uram_blocks(4097, 72) == 2 and uram_blocks(4096, 73) == 2
    assert uram_blocks(16384, 64) == 4 and uram_blocks(1536, 32) == 1 and uram_blocks(1, 1) == 1


URAM_SRC = """
static word_t g_act[16384];
static word_t g_other[4096];
void f(uint32_t n) {
#ifdef HCIM_URAM
#pragma HLS BIND_STORAGE variable = g_act type = ram_2p impl = uram
#endif
    for (uint32_t i = 0; i < n; i++) g_act[i] = g_other[i];
}
"""


def test_uram_binding_follows_the_board_build(hls):
    """An array bound to UltraRAM under HCIM_URAM: the KV260's build sets the define (URAM blocks, no BRAM for
    it), the PYNQ-Z2's does not (block RAM), and asking for it on the Z2 (no UltraRAM) is refused."""
    (hls / "hcim_layers.cpp").write_text(URAM_SRC)
    kv = estimate_resources("sun-mars-256", "kv260", hls_dir=hls)
    z2 = estimate_resources("sun-mars-256", "pynq-z2", hls_dir=hls)
    mkv, mz2 = ({m["name"]: m for m in e.memories} for e in (kv, z2))
    assert kv.defines == {"HCIM_URAM"} and z2.defines == frozenset()
    assert mkv["g_act"]["uram"] == 4 and mkv["g_act"]["bram36"] == 0 and mkv["g_other"]["bram36"] == 8
    assert mz2["g_act"]["uram"] == 0 and mz2["g_act"]["bram36"] == 32
    assert kv.total()["uram"] == 4 and kv.total()["bram36"] == z2.total()["bram36"] - 32
    assert kv.capacity()["uram"] == 64 and z2.capacity()["uram"] == 0
    mem = next(b for b in kv.blocks if b.name == "on-chip memories")
    assert mem.uram == 4 and "UltraRAM" in mem.why and "(4 URAM)" in kv.memory_table()
    assert "| URAM |" in kv.table() and "URAM" not in z2.table()  # the Z2's table keeps its columns
    off = estimate_resources("sun-mars-256", "kv260", hls_dir=hls, uram=False)
    assert off.total()["uram"] == 0 and off.total()["bram36"] == z2.total()["bram36"]
    with pytest.raises(ValueError, match="pynq-z2 .*no UltraRAM"):
        estimate_resources("sun-mars-256", "pynq-z2", hls_dir=hls, uram=True)


def test_uram_over_the_board_capacity_does_not_fit(hls):
    (hls / "hcim_layers.cpp").write_text(URAM_SRC.replace("g_act[16384]", "g_act[65][4096]")
                                         .replace("g_act[i]", "g_act[i][0]"))
    e = estimate_resources("sun-mars-256", "kv260", hls_dir=hls)
    assert e.total()["uram"] == 65 > BOARD_URAM["kv260"] and not e.fits() and "DOES NOT FIT" in e.table()


def test_dual_kernel_fits_the_kv260_with_the_activation_buffer_in_uram():
    """sun-mars-256-dual: over the KV260's 144 BRAM36 with every array in block RAM; its build's HCIM_URAM moves
    the activation buffer (64 x 16384 bits) into 4 UltraRAM blocks and the estimate fits. The PYNQ-Z2 build
    is unchanged (no UltraRAM): the dual kernel does not fit it, the SRAM kernel does."""
    kv = estimate_resources("sun-mars-256-dual", "kv260")
    bram_only = estimate_resources("sun-mars-256-dual", "kv260", uram=False)
    z2 = estimate_resources("sun-mars-256-dual", "pynq-z2")
    planes = {m["name"]: m for m in kv.memories}["g_planes"]
    assert planes["uram"] == 4 and planes["bram36"] == 0
    assert {m["name"]: m for m in z2.memories}["g_planes"]["bram36"] == 32
    assert kv.total()["bram36"] == bram_only.total()["bram36"] - 32 == z2.total()["bram36"] - 32
    assert kv.fits() and kv.total()["bram36"] <= 144 and kv.total()["uram"] == 4
    assert not bram_only.fits() and not z2.fits()
    # the define changes the memories only
    assert {k: v for k, v in kv.total().items() if k not in ("bram36", "uram")} == \
        {k: v for k, v in z2.total().items() if k not in ("bram36", "uram")}
    sram = estimate_resources("sun-mars-256", "pynq-z2")
    assert sram.fits() and sram.total()["uram"] == 0


def test_kernel_resources_cli_uram(capsys):
    from hybridcim.runtime.kernel_resources import main
    assert main(["--preset", "sun-mars-256-dual", "--board", "kv260"]) == 0
    out = capsys.readouterr().out
    assert "-DHCIM_URAM" in out and "| fits |" in out and "`g_planes`" in out and "(4 URAM)" in out
    assert main(["--preset", "sun-mars-256-dual", "--board", "pynq-z2", "--uram"]) == 2
    assert "no UltraRAM" in capsys.readouterr().err
    assert main(["--preset", "sun-mars-256-dual", "--board", "kv260", "--no-uram"]) == 0
    assert "DOES NOT FIT" in capsys.readouterr().out


def test_board_build_sets_the_defines_the_estimate_reads():
    """overlay/build.sh's board table (uram=0/1 -> URAM -> hls/run_hls.tcl's -DHCIM_URAM) and the estimate's
    BOARD_DEFINES / BOARD_URAM agree; the kernel source binds g_planes to UltraRAM under that define only."""
    import re
    from pathlib import Path
    repo = Path(__file__).resolve().parents[2]
    table = dict(re.findall(r"^\s+([\w-]+)\)\s+part=\S+;.*\buram=([01])", (repo / "overlay" / "build.sh").read_text(), re.M))
    assert set(table) == set(BOARDS) == set(BOARD_DEFINES) == set(BOARD_URAM)
    for board, u in table.items():
        assert ("HCIM_URAM" in BOARD_DEFINES[board]) == (u == "1"), board
        assert u == "0" or BOARD_URAM[board] > 0, board
    src = (repo / "hls" / "hcim_layers.cpp").read_text()
    assert re.search(r"#ifdef HCIM_URAM\s*\n(?:\s*//[^\n]*\n)*#pragma HLS BIND_STORAGE variable = g_planes "
                     r"type = ram_t2p impl = uram\s*\n#endif", src)


@pytest.mark.parametrize("uram,part,ok", [("1", "xck26-sfvc784-2LV-c", True), ("0", "xck26-sfvc784-2LV-c", True),
                                          ("1", "xc7z020clg400-1", False)])
def test_run_hls_adds_the_uram_define(tmp_path, uram, part, ok):
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "overlay"))
    from tcl_harness import REPO, names, run_tcl
    tb = tmp_path / "tb"
    tb.mkdir()
    for f in ("program.cim", "images.u8", "expected.i32", "counters.u64"):
        (tb / f).write_bytes(b"x")
    rc, out, calls = run_tcl(REPO / "hls" / "run_hls.tcl", tmp_path / "log",
                             {"PROJ": str(tmp_path / "p"), "TB_DATA": str(tb), "URAM": uram, "PART": part,
                              "HCIM_STEPS": "csynth"})
    if not ok:
        assert rc != 0 and "no UltraRAM" in out and "csynth_design" not in names(calls)
        return
    assert rc == 0, out
    kernel = [c for c in calls if c[0] == "add_files" and "-tb" not in c]
    assert len(kernel) == 3 and all(("-DHCIM_URAM" in c[-1]) == (uram == "1") for c in kernel)


RPT = """================================================================
== Utilization Estimates
================================================================
* Summary:
+---------------------+---------+------+---------+---------+-----+
|         Name        | BRAM_18K|  DSP |    FF   |   LUT   | URAM|
+---------------------+---------+------+---------+---------+-----+
|DSP                  |        -|     -|        -|        -|    -|
|Total                |      190|    54|    21033|    30512|    0|
+---------------------+---------+------+---------+---------+-----+
|Available            |      280|   220|   106400|    53200|    0|
"""


def test_csynth_utilization_and_cli(tmp_path, capsys):
    from hybridcim.runtime.kernel_csynth import csynth_utilization, main
    assert csynth_utilization(RPT) == {"luts": 30512, "ffs": 21033, "bram36": 95, "dsps": 54}
    with pytest.raises(ValueError, match="Utilization"):
        csynth_utilization("no table here")
    rpt = tmp_path / "csynth.rpt"
    rpt.write_text(RPT)
    assert main(["--csynth", str(rpt)]) == 0
    assert "| csynth | 30,512 | 21,033 | 95 | 54 |" in capsys.readouterr().out
    rpt.write_text("garbage")
    assert main(["--csynth", str(rpt)]) == 2
