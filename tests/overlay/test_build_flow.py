"""hls/run_hls.tcl, hls/Makefile, overlay/Makefile and overlay/build.sh under stub tools.

`make -C overlay BOARD=...` runs end to end with stand-ins for vitis_hls and vivado that run
the real Tcl scripts against recorded stub commands (tcl_stubs.tcl); the manifest is written
by the package's real writer. Checks: co-simulation is off by default and, when asked for,
runs one image of a small program; the address width follows the board; the outputs land
in OUT only when every step passed.
"""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from tcl_harness import REPO, names, read_log, run_tcl, tool_stubs  # noqa: E402

RUN_HLS = REPO / "hls" / "run_hls.tcl"


def tb_dir(tmp_path, name):
    d = tmp_path / name
    d.mkdir(parents=True, exist_ok=True)
    for f in ("program.cim", "images.u8", "expected.i32", "counters.u64"):
        (d / f).write_bytes(b"x")
    return d


def hls_env(tmp_path, **kw):
    return {"PROJ": str(tmp_path / "proj"), "TB_DATA": str(tb_dir(tmp_path, "tb")),
            "COSIM_DATA": str(tb_dir(tmp_path, "tb-cosim")), **kw}


def test_run_hls_defaults_to_no_cosimulation_and_32_bit_addresses(tmp_path):
    rc, out, calls = run_tcl(RUN_HLS, tmp_path / "log", hls_env(tmp_path))
    assert rc == 0, out
    n = names(calls)
    assert "cosim_design" not in n
    assert [c for c in n if c.endswith("_design")] == ["csim_design", "csynth_design", "export_design"]
    assert ["config_interface", "-m_axi_addr64=false"] in calls
    assert ["set_part", "xc7z020clg400-1"] in calls
    csim = calls[n.index("csim_design")]
    assert csim[1] == "-argv" and csim[2].split()[0] == str(tmp_path / "tb" / "program.cim")


def test_run_hls_cosimulates_the_one_image_data_when_asked(tmp_path):
    rc, out, calls = run_tcl(RUN_HLS, tmp_path / "log", hls_env(tmp_path, HCIM_STEPS="csynth cosim", ADDR64="1",
                                                                  PART="xck26-sfvc784-2LV-c"))
    assert rc == 0, out
    n = names(calls)
    assert n.index("csynth_design") < n.index("cosim_design") and "export_design" not in n
    assert calls[n.index("cosim_design")][2].split()[0] == str(tmp_path / "tb-cosim" / "program.cim")
    assert ["config_interface", "-m_axi_addr64=true"] in calls


def test_run_hls_refuses_missing_testbench_data_and_unknown_steps(tmp_path):
    rc, out, _ = run_tcl(RUN_HLS, tmp_path / "log", {"PROJ": str(tmp_path / "p"), "TB_DATA": str(tmp_path / "none")})
    assert rc != 0 and "make -C hls tb-data" in out
    rc, out, _ = run_tcl(RUN_HLS, tmp_path / "log2", hls_env(tmp_path, HCIM_STEPS="csim cosimm"))
    assert rc != 0 and "unknown step cosimm" in out


def _make_n(*args):
    return subprocess.run(["make", "-n", *args], cwd=REPO, capture_output=True, text=True, timeout=120).stdout


def test_make_ip_runs_no_cosimulation_and_cosim_data_is_one_image():
    ip = [l for l in _make_n("-C", "hls", "ip").splitlines() if "vitis_hls" in l]
    assert len(ip) == 1 and 'HCIM_STEPS="csim csynth export"' in ip[0]
    data = _make_n("-C", "hls", "cosim-data", "PRESET=tiny-64")
    assert "random_program(1, 'tiny-64')" in data and "random_images(p, 1, 1)" in data
    assert "./build.sh" in _make_n("-C", "overlay", "BOARD=pynq-z2")


@pytest.mark.parametrize("board,part,bits,mhz", [("pynq-z2", "xc7z020clg400-1", 32, "100"),
                                                  ("kv260", "xck26-sfvc784-2LV-c", 64, "80")])
def test_make_overlay_builds_a_bitstream_folder_with_its_manifest(tmp_path, board, part, bits, mhz):
    from hybridcim.runtime import regmap
    from hybridcim.runtime.bitstream import load_manifest
    logs = tmp_path / "logs"
    bin_dir = tool_stubs(tmp_path / "bin", logs)
    header = tmp_path / "hw.h"
    header.write_text(regmap.hw_header_defines(regmap.control_map(bits)))
    out = tmp_path / "bitstreams" / board
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", OUT=str(out), HLS_PROJ=str(tmp_path / "hls"),
               BUILD_DIR=str(tmp_path / "build"), TB_DATA=str(tb_dir(tmp_path, "tb")), STUB_HW_HEADER=str(header),
               PYTHON=sys.executable)
    p = subprocess.run(["make", "-C", "overlay", f"BOARD={board}", "PRESET=tiny-64", f"CLOCK_MHZ={mhz}"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert sorted(f.name for f in out.iterdir()) == ["hybridcim.bit", "hybridcim.hwh", "manifest.json", "timing.txt",
                                                     "utilization.txt", "xhybridcim_accel_hw.h"]
    m = load_manifest(out)  # the package's own checks, sha256 of the .bit included
    assert m["board"] == board and m["part"] == part and m["preset"]["name"] == "tiny-64"
    assert m["bit_sha256"] == hashlib.sha256((out / "hybridcim.bit").read_bytes()).hexdigest()
    assert "vivado v2023.2" in m["tools"] and "Vitis HLS" in m["tools"] and m["driver_header"] == "xhybridcim_accel_hw.h"
    hls = [read_log(f) for f in sorted(logs.glob("vitis_hls.*.log"))]
    assert len(hls) == 1 and "cosim_design" not in names(hls[0])
    assert ["config_interface", f"-m_axi_addr64={'true' if bits == 64 else 'false'}"] in hls[0]
    assert ["create_clock", "-period", {"100": "10", "80": "12.5"}[mhz], "-name", "default"] in hls[0]
    assert m["clock_mhz"] == float(mhz)
    viv = [read_log(f) for f in sorted(logs.glob("vivado.*.log"))]
    board_part = "tul.com.tw:pynq-z2:part0:1.0" if board == "pynq-z2" else "xilinx.com:kv260_som:part0:1.4"
    assert len(viv) == 1 and ["set_property", "board_part", board_part, "hybridcim"] in viv[0]
    assert ["create_project", "-force", "hybridcim", str(tmp_path / "build" / "vivado"), "-part", part] in viv[0]
    freq = [c for c in viv[0] if c[0] == "set_property" and c[1] == "-dict"][0][2]
    assert freq.endswith(("FREQMHZ " + mhz)), freq


def test_a_failed_timing_leaves_out_untouched(tmp_path):
    logs = tmp_path / "logs"
    bin_dir = tool_stubs(tmp_path / "bin", logs)
    out = tmp_path / "bitstreams" / "pynq-z2"
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", OUT=str(out), HLS_PROJ=str(tmp_path / "hls"),
               BUILD_DIR=str(tmp_path / "build"), TB_DATA=str(tb_dir(tmp_path, "tb")), STUB_WNS="-1.5",
               PYTHON=sys.executable)
    p = subprocess.run(["bash", "overlay/build.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode != 0 and "WNS = -1.5 ns" in p.stdout + p.stderr
    assert not out.exists()


def test_an_unknown_board_is_refused(tmp_path):
    p = subprocess.run(["bash", "overlay/build.sh"], cwd=REPO, env=dict(os.environ, BOARD="zedboard"),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "unknown BOARD=zedboard (known: pynq-z2, kv260)" in p.stderr


def test_the_driver_infers_each_boards_address_width_from_its_part():
    """build.sh's board table (part, ADDR64) and PynqDevice's fallback (manifest part -> width) agree."""
    import re
    import types
    from hybridcim.runtime.pynq_device import PynqDevice
    table = re.findall(r"^\s+([\w-]+)\)\s+part=(\S+);.*addr64=([01])", (REPO / "overlay" / "build.sh").read_text(), re.M)
    assert {b for b, _, _ in table} == {"pynq-z2", "kv260"}
    for board, part, addr64 in table:
        dev = types.SimpleNamespace(manifest={"part": part})
        assert PynqDevice._addr_bits_from_manifest(dev) == (64 if addr64 == "1" else 32), board
