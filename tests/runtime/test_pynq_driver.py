"""PynqDevice against an independent register-level model of the IP (tests/runtime/ip_model.py).

The model takes its register offsets from hybridcim.runtime.regmap (derived from the HLS
prototype), its IP table from a .hwh fixture parsed by pynq's own parser, and its kernel from
the csim library; it keeps the host's view of every buffer apart from the device's bytes and
logs every register access, cache operation, start and completion. So these tests see what a
board would: wrong offsets, a missing flush or invalidate, a buffer freed while the IP may
still write it, a start while busy, a pointer's high word left out.
"""
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from hybridcim.emulator import FastEmulator
from hybridcim.program import PresetMismatchError
from hybridcim.runtime import pynq_device, regmap
from hybridcim.runtime.bitstream import make_manifest
from hybridcim.runtime.errors import DeviceError
from hybridcim.zoo import random_images, random_program

sys.path.insert(0, str(Path(__file__).parent))
import ip_model  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
PRESET = "tiny-64"
PARTS = {"pynq-z2": "xc7z020clg400-1", "kv260": "xck26-sfvc784-2LV-c"}
BASES = {"pynq-z2": 0x1000_0000, "kv260": 0x8_0000_0000}  # KV260 buffers above 4 GiB: the high word matters

pytest.importorskip("pynq.pl_server.hwh_parser")  # pynq's own .hwh parser reads the fixtures (pip install -e .[board])


class Rig:
    """A board: DDR model, the IP model, a fake pynq module, a bitstream folder."""

    def __init__(self, csim_lib, monkeypatch, tmp_path, board="pynq-z2", polls=3, never_finish=False,
                 hwh_text=None, preset=PRESET):
        self.board, self.mem = board, ip_model.Memory(BASES[board])
        self.regs = regmap.control_map(ip_model.BOARDS[board][4])
        self.ip = ip_model.HlsIpModel(self.mem, self.regs, csim_lib(preset).run, polls, never_finish)
        monkeypatch.setitem(sys.modules, "pynq", ip_model.fake_pynq(self.mem, self.ip, board))
        self.sleeps = []
        monkeypatch.setattr(pynq_device, "_sleep", self.sleeps.append)
        self.dir = tmp_path / "bitstreams"
        d = self.dir / board
        d.mkdir(parents=True)
        (d / "hybridcim.bit").write_bytes(b"model bitstream")
        (d / "hybridcim.hwh").write_text(hwh_text if hwh_text is not None else
                                         (FIXTURES / f"hybridcim_{board}.hwh").read_text())
        man = make_manifest(board, preset, PARTS[board], "hybridcim.bit", "hybridcim.hwh")
        (d / "manifest.json").write_text(json.dumps(man))

    def device(self, **kw):
        return pynq_device.PynqDevice(board=self.board, bitstream_dir=self.dir, **kw)

    def events(self, kind):
        return [e for e in self.mem.events if e[0] == kind]


@pytest.fixture
def rig(csim_lib, monkeypatch, tmp_path):
    return lambda **kw: Rig(csim_lib, monkeypatch, tmp_path, **kw)


@pytest.mark.parametrize("board", ["pynq-z2", "kv260"])
def test_loads_and_runs_back_to_back_like_the_emulator(rig, board):
    r = rig(board=board, polls=4)
    prog = random_program(3, PRESET)
    images = random_images(prog, 5, seed=1)
    want = FastEmulator(prog).run(images).outputs
    with r.device(batch_size=2) as dev:
        assert dev.addr_bits == (64 if board == "kv260" else 32)
        dev.load(prog)
        assert len(r.mem.blocks) == 1  # only the program: the validate-only dummy was freed
        assert np.array_equal(dev.run(images), want)
        assert np.array_equal(dev.run(images[::-1]), want[::-1])  # back to back, no reload
        tr = dev.trace(images[:2])
        ref = FastEmulator(prog).run(images[:2], trace=True).tensors
        assert all(np.array_equal(tr[k], ref[k]) for k in ref)
    assert r.ip.starts == 1 + 3 + 3 + 1
    assert r.mem.violations == []
    assert r.mem.blocks == {}  # everything freed on close, nothing twice


def test_every_start_follows_an_idle_check_and_flushed_inputs(rig):
    r = rig(polls=2)
    prog = random_program(4, PRESET)
    with r.device(batch_size=3) as dev:
        dev.load(prog)
        dev.run(random_images(prog, 4, seed=2))
    ctrl = r.regs["ap_ctrl"].offset
    ev = r.mem.events
    starts = [i for i, e in enumerate(ev) if e[0] == "start"]
    assert len(starts) == 3
    prog_addr = r.ip.arg("prog", r.ip.snapshot)
    for k, s in enumerate(starts):
        prev = starts[k - 1] if k else 0
        window = ev[prev:s]
        # ap_idle read before any argument write of this call
        first_write = next(i for i, e in enumerate(window) if e[0] == "write")
        assert ("read", ctrl) in window[:first_write]
        # every buffer the IP reads was flushed after its last host write (allocation) and before the start
        snap = {p: r.ip.arg(p, r.ip.snapshot) for p in ("images", "out", "scratch")}
        if k == len(starts) - 1:
            for p in ("images", "out", "scratch"):
                assert ("flush", snap[p]) in window, p
    assert ("flush", prog_addr) in ev[:starts[0]]


def test_outputs_are_invalidated_only_after_ap_done(rig):
    r = rig(polls=3)
    prog = random_program(5, PRESET)
    with r.device() as dev:
        dev.load(prog)
        dev.run(random_images(prog, 2, seed=3))
        out_addr = r.ip.arg("out", r.ip.snapshot)
    ev = r.mem.events
    start = max(i for i, e in enumerate(ev) if e[0] == "start")
    done = max(i for i, e in enumerate(ev) if e[0] == "done")
    inval = [i for i, e in enumerate(ev) if e == ("invalidate", out_addr)]
    assert inval and all(i > done for i in inval)
    assert not [e for e in ev[start:done] if e[0] in ("invalidate", "free")]


def test_the_poll_loop_backs_off(rig):
    r = rig(polls=9)
    prog = random_program(6, PRESET)
    with r.device() as dev:
        dev.load(prog)
        n0 = len(r.sleeps)
        dev.run(random_images(prog, 1, seed=4))
    s = r.sleeps[n0:]
    assert len(s) == 8  # 9 reads of AP_CTRL until ap_done, a sleep between each two
    assert s[0] == pynq_device.POLL_FIRST_S and all(b == min(2 * a, pynq_device.POLL_MAX_S) for a, b in zip(s, s[1:]))
    assert max(s) <= pynq_device.POLL_MAX_S


def test_a_timeout_quarantines_every_buffer_the_ip_may_write(rig):
    r = rig(polls=1)
    prog = random_program(7, PRESET)
    images = random_images(prog, 2, seed=5)
    dev = r.device(timeout_s=0.02)
    dev.load(prog)
    r.ip.never_finish = True
    before = len(pynq_device._QUARANTINE)
    with pytest.raises(DeviceError, match="did not finish"):
        dev.run(images)
    held = {r.ip.arg(p, r.ip.snapshot) for p in ("prog", "images", "out", "scratch", "counters")} - {0}
    assert held <= set(r.mem.blocks)  # still allocated: the IP may write them
    assert {b.device_address for b in pynq_device._QUARANTINE[before:]} == held
    assert r.mem.violations == []
    with pytest.raises(DeviceError, match="reload the overlay"):
        dev.run(images)  # the device refuses to start the IP again
    with pytest.raises(DeviceError, match="reload the overlay"):
        dev.load(prog)
    dev.close()
    assert held <= set(r.mem.blocks) and r.mem.violations == []  # close frees none of them
    r.ip.never_finish = False
    r.ip.read(r.regs["ap_ctrl"].offset)  # the IP finishes late: it writes into live memory, no fault
    assert r.ip.done is False and not r.ip.busy


def test_a_busy_ip_is_not_started(rig):
    r = rig()
    prog = random_program(8, PRESET)
    with r.device() as dev:
        dev.load(prog)
        r.ip.busy = r.ip.never_finish = True  # someone else's run is in flight (ap_idle = 0)
        n_writes = len(r.events("write"))
        with pytest.raises(DeviceError, match="not idle"):
            dev.run(random_images(prog, 1, seed=6))
        assert len(r.events("write")) == n_writes  # no argument touched, no ap_start
        r.ip.busy = r.ip.never_finish = False  # it ends
        assert np.array_equal(dev.run(random_images(prog, 1, seed=6)),
                              FastEmulator(prog).run(random_images(prog, 1, seed=6)).outputs)
    assert r.mem.violations == []


def test_32_bit_addresses_refuse_a_buffer_above_4_gib(rig):
    r = rig()
    r.mem.next_address = 0x1_0000_0000
    with r.device() as dev:
        with pytest.raises(DeviceError, match="above 4 GiB"):
            dev.load(random_program(9, PRESET))
    assert r.ip.starts == 0 and r.mem.blocks == {}  # never started: every buffer freed


def test_an_interrupt_while_polling_quarantines_too(rig, monkeypatch):
    r = rig(never_finish=True)
    dev = r.device()
    r.ip.never_finish = False
    dev.load(random_program(12, PRESET))
    r.ip.never_finish = True

    def interrupt(_):
        raise KeyboardInterrupt
    monkeypatch.setattr(pynq_device, "_sleep", interrupt)
    with pytest.raises(KeyboardInterrupt):
        dev.run(random_images(dev.program, 1, seed=8))
    assert r.ip.busy and r.mem.violations == [] and len(r.mem.blocks) == 4 + dev.has_counters
    with pytest.raises(DeviceError, match="reload the overlay"):
        dev.run(random_images(dev.program, 1, seed=8))


@pytest.mark.parametrize("board", ["pynq-z2", "kv260"])
def test_without_hwh_registers_the_fallback_table_matches_the_model(rig, board):
    """An .hwh without register descriptions: the driver's REGISTERS / REGISTERS_64 drive the
    model, whose offsets are derived independently; a wrong table entry is caught."""
    text = re.sub(r"<REGISTERS>.*</REGISTERS>", "<REGISTERS/>", (FIXTURES / f"hybridcim_{board}.hwh").read_text(),
                  flags=re.S)
    r = rig(board=board, hwh_text=text)
    prog = random_program(10, PRESET)
    with r.device() as dev:
        assert dev.regs == (pynq_device.REGISTERS if board == "pynq-z2" else pynq_device.REGISTERS_64)
        dev.load(prog)
        images = random_images(prog, 2, seed=7)
        assert np.array_equal(dev.run(images), FastEmulator(prog).run(images).outputs)
        assert r.mem.violations == []
        dev.regs = dict(dev.regs, n_images=dev.regs["n_images"] + 4)  # an offset mistake: a reserved word
        with pytest.raises(DeviceError, match="ARGS"):  # the IP ignores the write: stale n_images = 2 > 1
            dev.run(images[:1])
    assert r.mem.violations == [f"write to unmapped or read-only control offset 0x{r.regs['n_images'].offset + 4:x}"]


def test_a_bitstream_without_the_ip_is_refused(rig):
    text = (FIXTURES / "hybridcim_pynq-z2.hwh").read_text().replace(ip_model.IP_VLNV, "xilinx.com:ip:axi_gpio:2.0")
    with pytest.raises(DeviceError, match="wrong bitstream"):
        rig(hwh_text=text).device()


def test_a_control_map_missing_a_register_is_refused(rig):
    text = re.sub(r'<REGISTER NAME="counters_words">.*?</REGISTER>', "",
                  (FIXTURES / "hybridcim_pynq-z2.hwh").read_text(), flags=re.S)
    with pytest.raises(DeviceError, match="counters_words"):
        rig(hwh_text=text).device()


def test_an_overlay_naming_another_instance_is_refused(rig):
    text = (FIXTURES / "hybridcim_pynq-z2.hwh").read_text().replace(ip_model.IP_INSTANCE, "other_accel_0")
    with pytest.raises(DeviceError, match="has no IP 'hybridcim_accel_0'"):
        rig(hwh_text=text).device()


def test_wrong_presets_are_refused_before_the_ip_starts(rig):
    r = rig()
    with pytest.raises(DeviceError, match="built for preset 'tiny-64'"):
        r.device(preset="sun-mars-256")
    with r.device() as dev:
        with pytest.raises(PresetMismatchError):
            dev.load(random_program(11, "sun-mars-256"))
    assert r.ip.starts == 0 and r.mem.blocks == {}


def test_the_driver_uses_only_pynq_3_0_1_names():
    """The board's preinstalled pynq (3.0.1 on the PYNQ-Z2 v3.0.1 image) has every name used."""
    src = Path(pynq_device.__file__).read_text()
    used = set(re.findall(r"pynq\.(\w+)", src)) | set(re.findall(r"self\._pynq\.(\w+)", src))
    assert used <= {"Device", "Overlay", "allocate"}, used
    buf_calls = set(re.findall(r"\b(?:buf|b|dummy|ib|ob|sb|cb|self\._prog_buf)\.(\w+)\(", src))
    assert buf_calls <= {"sync_to_device", "sync_from_device", "freebuffer"}, buf_calls
