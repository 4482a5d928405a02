"""overlay/hybridcim_bd.tcl under stub Vivado commands: the order and arguments of its calls.

No Vivado here: these tests run the script's own Tcl (tclsh) with every Vivado command
replaced by a stub that records the call (tests/overlay/tcl_stubs.tcl). They check what a
real build depends on: board files required, one automation call per AXI master pin, the
implemented design opened before the reports, WNS/WHS read and enforced, and outputs
written only after all of that.
"""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from tcl_harness import REPO, index, names, run_tcl  # noqa: E402

SCRIPT = REPO / "overlay" / "hybridcim_bd.tcl"
MASTERS = [f"/hybridcim_accel_0/m_axi_gmem{i}" for i in range(5)]
BOARDS = {"pynq-z2": ("xc7z020clg400-1", "tul.com.tw:pynq-z2:part0:1.0", "/ps7/S_AXI_HP0", "/ps7/M_AXI_GP0",
                      "processing_system7"),
          "kv260": ("xck26-sfvc784-2LV-c", "xilinx.com:kv260_som:part0:1.4", "/zynq_ultra_ps_e_0/S_AXI_HP0_FPD",
                    "/zynq_ultra_ps_e_0/M_AXI_HPM0_FPD", "zynq_ultra_ps_e")}


def build(tmp_path, board="pynq-z2", **stub):
    part, board_part = BOARDS[board][:2]
    (tmp_path / "ip").mkdir(exist_ok=True)
    env = {"PART": part, "BOARD_PART": board_part, "IP_REPO": str(tmp_path / "ip"), "OUT": str(tmp_path / "out"),
           "PROJ_DIR": str(tmp_path / "proj"), **{f"STUB_{k.upper()}": str(v) for k, v in stub.items()}}
    return run_tcl(SCRIPT, tmp_path / "calls.log", env)


def config(call) -> dict:
    """The -config dict of an apply_bd_automation call (a Tcl list of key value pairs)."""
    cfg = call[call.index("-config") + 1]
    import shlex
    words = shlex.split(cfg.replace("{", '"').replace("}", '"'))
    return dict(zip(words[::2], words[1::2]))


@pytest.mark.parametrize("board", list(BOARDS))
def test_a_build_opens_the_design_checks_timing_then_writes_the_outputs(tmp_path, board):
    rc, out, calls = build(tmp_path, board)
    assert rc == 0, out
    _, board_part, hp, ctrl, ps = BOARDS[board]
    n = names(calls)
    # board files checked before they are used
    assert index(calls, "get_board_parts") < n.index("set_property")
    assert ["set_property", "board_part", board_part, "hybridcim"] in calls
    # the PS of the part's family, newest catalog version
    assert ["create_bd_cell", "-type", "ip", "-vlnv", f"xilinx.com:ip:{ps}:10.1", ps if ps == "zynq_ultra_ps_e"
            else "ps7"][:5] == [c for c in calls if c[0] == "create_bd_cell"][0][:5]
    # connection automation: the control path, then once per master pin, each pin its own target
    auto = [c for c in calls if c[0] == "apply_bd_automation" and "xilinx.com:bd_rule:axi4" in c]
    assert config(auto[0])["Master"] == ctrl and auto[0][-1] == "/hybridcim_accel_0/s_axi_control"
    data = auto[1:]
    assert [c[-1] for c in data] == MASTERS
    assert [config(c)["Master"] for c in data] == MASTERS and {config(c)["Slave"] for c in data} == {hp}
    assert [config(c)["intc_ip"] for c in data] == ["New AXI Interconnect"] + ["/axi_mem_intercon"] * 4
    # implementation, then the implemented design opened before any report or timing query
    run = index(calls, "launch_runs")
    assert n.index("wait_on_run") > run
    opened = index(calls, "open_run")
    assert calls[opened] == ["open_run", "impl_1"] and opened > n.index("wait_on_run")
    for r in ("report_utilization", "report_timing_summary", "get_timing_paths"):
        assert index(calls, r) > opened, r
    assert ["get_property", "SLACK", "setup_path"] in calls and ["get_property", "SLACK", "hold_path"] in calls
    assert "WNS = 0.412 ns, WHS = 0.031 ns" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["hybridcim.bit", "hybridcim.hwh", "timing.txt",
                                                                     "utilization.txt"]


def test_missing_board_files_stop_the_build(tmp_path):
    rc, out, calls = build(tmp_path, board_parts="xilinx.com:zcu104:part0:1.1")
    assert rc != 0 and "board files for tul.com.tw:pynq-z2:part0:1.0 are not installed" in out
    assert "create_bd_design" not in names(calls) and not (tmp_path / "out").exists()


@pytest.mark.parametrize("wns,whs,what", [("-0.250", "0.020", "WNS = -0.250 ns"), ("0.100", "-0.004", "WHS = -0.004 ns")])
def test_negative_slack_fails_the_build_and_prints_it(tmp_path, wns, whs, what):
    rc, out, calls = build(tmp_path, wns=wns, whs=whs)
    assert rc != 0 and "timing not met" in out and what in out
    assert not (tmp_path / "out" / "hybridcim.bit").exists()  # no bitstream leaves a failed build


def test_an_unfinished_implementation_fails(tmp_path):
    rc, out, calls = build(tmp_path, progress="71%")
    assert rc != 0 and "implementation stopped at 71%" in out
    assert "open_run" not in names(calls)


def test_a_missing_ip_repo_fails_first(tmp_path):
    rc, out, calls = run_tcl(SCRIPT, tmp_path / "calls.log", {"IP_REPO": str(tmp_path / "none"),
                                                               "OUT": str(tmp_path / "out")})
    assert rc != 0 and "no HLS IP" in out and "create_project" not in names(calls)
