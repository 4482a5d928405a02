"""The FPGA kernel cycle model (hybridcim.runtime.kernel_cycles) on synthetic profiles.

Expectations are computed independently: a pipeline simulated start by start, bursts summed one
by one, totals by hand. The board presets are checked against overlay/build.sh's parts.
"""
import re
from math import ceil
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from hybridcim.runtime.kernel_csynth import compare_hls_log
from hybridcim.runtime.kernel_cycles import (BOARDS, LABEL, KernelProfileError, burst_cycles, estimate, get_board,
                                             loop_cycles)

ROOT = Path(__file__).resolve().parents[2]


def simulate_pipeline(ii: int, depth: int, trips: list[int]) -> int:
    """Cycle by cycle: each start issues its first iteration at t, the k-th at t + k*ii, done at last + depth."""
    total = 0
    for n in trips:
        t_last_issue = (n - 1) * ii
        total += t_last_issue + depth
    return total


@settings(max_examples=200, deadline=None)
@given(ii=st.integers(1, 8), depth=st.integers(1, 40), trips=st.lists(st.integers(1, 300), max_size=20))
def test_pipelined_loop_matches_simulation(ii, depth, trips):
    assert loop_cycles(ii, depth, len(trips), sum(trips)) == simulate_pipeline(ii, depth, trips)


def test_unpipelined_loop_is_one_cycle_per_iteration():
    assert loop_cycles(0, 0, 5, 37) == 37
    assert loop_cycles(0, 9, 5, 37) == 37  # depth means nothing without a pipeline


def test_zero_trip_starts_pay_their_depth():
    assert loop_cycles(2, 5, entries=4, iters=0) == 20
    assert loop_cycles(2, 5, entries=4, iters=6) == 4 * 5 + 2 * 2


@pytest.mark.parametrize("args", [(1, 4, 0, 5), (-1, 1, 1, 1), (1, 1, -1, 0)])
def test_impossible_loop_counts_refused(args):
    with pytest.raises(KernelProfileError):
        loop_cycles(*args)


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(1, 5000), min_size=1, max_size=40), beat=st.sampled_from([4, 8, 16]),
       lat=st.integers(0, 100))
def test_burst_bound_is_tight_upper_bound(sizes, beat, lat):
    exact = sum(lat + ceil(b / beat) for b in sizes)
    got = burst_cycles(len(sizes), sum(sizes), beat, lat)
    assert exact <= got < exact + len(sizes)


def test_burst_exact_for_one_burst_and_zero_for_none():
    assert burst_cycles(1, 4096, 8, 64) == 64 + 512
    assert burst_cycles(1, 4097, 8, 64) == 64 + 513
    assert burst_cycles(0, 0, 8, 64) == 0
    with pytest.raises(KernelProfileError):
        burst_cycles(0, 8, 8, 64)


LOOPS = [{"name": "pixels", "ii": 0, "depth": 0}, {"name": "units", "ii": 1, "depth": 6},
         {"name": "load_w", "ii": 1, "depth": 3}]


def profile(images=2):
    return {"loops": LOOPS, "images": images,
            "layers": [{"entries": [1, 64, 1], "iters": [64, 640, 256], "bursts": [2, 1], "bytes": [2048, 256]},
                       {"entries": [1, 16, 0], "iters": [16, 16, 0], "bursts": [0, 0], "bytes": [0, 0]}]}


def test_estimate_by_hand():
    est = estimate(profile(), "pynq-z2", layer_names=["conv1", "fc"])
    l0, l1 = est.layers
    assert l0.loop_cycles == {"pixels": 64, "units": 64 * 6 + (640 - 64), "load_w": 3 + 255}
    # reads: 2 bursts, 2048 bytes: 2*64 + floor((2048 + 2*7)/8) = 128 + 257; write: 64 + 32
    assert l0.ddr_cycles == 128 + 257 + 64 + 32
    assert l0.kernel_cycles == 64 + 960 + 258 + 481
    assert l1.kernel_cycles == 16 + 16 * 6
    total = l0.kernel_cycles + l1.kernel_cycles
    assert est.kernel_cycles == total
    assert est.est_board_images_per_s == pytest.approx(2 * 100e6 / total)
    assert l0.bound == "units" and l1.bound == "units" and est.bound == "units"
    d = est.as_dict()
    assert d["label"] == LABEL == "estimate, not checked by csynth"
    assert d["board"] == "pynq-z2" and d["pl_mhz"] == 100.0
    assert [l["name"] for l in d["layers"]] == ["conv1", "fc"]
    assert "csynth" in est.summary() and "pynq-z2" in est.summary()
    assert "| conv1 |" in est.table()


def test_clock_and_board_change_the_estimate():
    base = estimate(profile(), "pynq-z2")
    assert estimate(profile(), "pynq-z2", pl_mhz=200).est_board_images_per_s == pytest.approx(
        2 * base.est_board_images_per_s)
    # kv260: a 128-bit HP port, but the kernel's 64-bit m_axi ports move 8 bytes a beat (no widening)
    assert estimate(profile(), "kv260").kernel_cycles == base.kernel_cycles
    wide = get_board("kv260").__class__(**{**get_board("kv260").__dict__, "axi_bytes": 16})
    assert estimate(profile(), wide).layers[0].ddr_cycles < base.layers[0].ddr_cycles


def test_ddr_bound_layer():
    p = profile()
    p["layers"][1] = {"entries": [1, 1, 0], "iters": [1, 1, 0], "bursts": [100, 0], "bytes": [800, 0]}
    assert estimate(p).layers[1].bound == "ddr"


def test_call_overhead_counted_once():
    p = profile()
    p["call"] = {"entries": [0, 0, 1], "iters": [0, 0, 100], "bursts": [1, 0], "bytes": [800, 0]}
    with_call, without = estimate(p), estimate(profile())
    assert with_call.kernel_cycles - without.kernel_cycles == (3 + 99) + (64 + 100)
    assert not with_call.notes and without.notes


@pytest.mark.parametrize("mutate, match", [
    (lambda p: p.pop("loops"), "loops"),
    (lambda p: p["layers"][0].update(iters=[1, 2]), "iters"),
    (lambda p: p["layers"][0].update(bursts=[1, -1]), "bursts"),
    (lambda p: p.update(images=-1), "images"),
    (lambda p: p["loops"].append({"name": "x", "ii": 1, "depth": 0}), "depth"),
    (lambda p: p["layers"][1].update(entries=[1, 0, 0]), "units"),
])
def test_malformed_profiles_refused(mutate, match):
    p = profile()
    p["loops"] = [dict(l) for l in LOOPS]
    mutate(p)
    with pytest.raises(KernelProfileError, match=match):
        estimate(p)


@pytest.mark.parametrize("mhz", [0, -5, float("nan"), float("inf")])
def test_bad_clock_refused(mhz):
    with pytest.raises(KernelProfileError, match="MHz"):
        estimate(profile(), pl_mhz=mhz)


def test_unknown_board_and_layer_count():
    with pytest.raises(KernelProfileError, match="pynq-z2, kv260"):
        estimate(profile(), "zcu104")
    with pytest.raises(KernelProfileError, match="layers"):
        estimate(profile(), layer_names=["only one"])


def test_board_presets_match_the_overlay_build():
    text = (ROOT / "overlay" / "build.sh").read_text()
    parts = dict(re.findall(r"^\s+([\w-]+)\)\s+part=(\S+?);", text, re.M))
    assert parts == {name: b.part for name, b in BOARDS.items()}
    assert BOARDS["pynq-z2"].hp_port_bytes == 8 and BOARDS["kv260"].hp_port_bytes == 16
    assert (BOARDS["pynq-z2"].luts, BOARDS["pynq-z2"].ffs, BOARDS["pynq-z2"].bram36, BOARDS["pynq-z2"].dsps) == \
        (53_200, 106_400, 140, 220)
    for b in BOARDS.values():
        assert b.sources and b.pl_mhz == 100.0


LOG = """INFO: [HLS 200-1470] Pipelining result : Target II = 1, Final II = 1, Depth = 7, loop 'units'
INFO: [HLS 200-1470] Pipelining result : Target II = 1, Final II = 2, Depth = 4, loop 'VITIS_LOOP_12_load_w'
INFO: [HLS 200-1470] Pipelining result : Target II = 1, Final II = 1, Depth = 3, loop 'other'
"""


def test_compare_hls_log():
    rows = {r["name"]: r for r in compare_hls_log(LOG, LOOPS)}
    assert set(rows) == {"units", "load_w"}  # only pipelined loops
    assert rows["units"]["ok"] and rows["units"]["final_depth"] == 7
    assert not rows["load_w"]["ok"] and rows["load_w"]["final_ii"] == 2
    assert compare_hls_log("", LOOPS)[0]["final_ii"] is None and not compare_hls_log("", LOOPS)[0]["ok"]
    old = ("INFO: [SCHED 204-61] Pipelining loop 'units'.\n"
           "INFO: [SCHED 204-61] Pipelining result : Target II = 1, Final II = 1, Depth = 9.\n"
           "INFO: [v++ 200-1470] Pipelining result : Target II = NA, Final II = 3, Depth = 2, loop 'load_w'\n")
    rows = {r["name"]: r for r in compare_hls_log(old, LOOPS)}
    assert rows["units"]["final_depth"] == 9 and rows["units"]["ok"] and rows["load_w"]["final_ii"] == 3


def test_loop_table_of_the_sources_and_log_cli(tmp_path, capsys):
    from hybridcim.runtime.kernel_csynth import loop_table, main
    table = loop_table()
    assert table and all(set(l) == {"name", "ii", "depth"} for l in table)
    log = tmp_path / "vitis_hls.log"
    log.write_text("".join(f"INFO: [HLS 200-1470] Pipelining result : Target II = {l['ii']}, Final II = {l['ii']}, "
                           f"Depth = {l['depth']}, loop '{l['name']}'\n" for l in table if l["ii"]))
    assert main(["--hls-log", str(log)]) == 0 and "| ok |" in capsys.readouterr().out
    log.write_text("")
    assert main(["--hls-log", str(log)]) == 1 and "not in the log" in capsys.readouterr().out
    assert main(["--hls-log", str(tmp_path / "missing.log")]) == 2
