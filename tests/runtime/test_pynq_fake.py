"""PynqDevice end to end against a fake ``pynq`` whose IP core runs the csim kernel.

No board is needed: ``pynq.allocate`` hands out numpy buffers with fake physical addresses,
and writing ap_start to the fake IP's control register runs the C-simulation library on the
buffers the registers point at, reading each buffer as raw memory with the word count its
register gives (as the m_axi masters do). This checks what PynqDevice does on a board short
of the FPGA itself: the register protocol and offsets, buffer allocation, sizes and syncs,
the validate-only load, kernel refusals, counters, and freeing every buffer.
"""
import json
import sys
import types

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hybridcim.emulator import FastEmulator
from hybridcim.program import ChecksumError
from hybridcim.runtime.bitstream import make_manifest
from hybridcim.runtime.pynq_device import AP_DONE, AP_START, REGISTERS
from hybridcim.zoo import random_images, random_program

PRESET = "tiny-64"


class FakeBuffer(np.ndarray):
    """A pynq.allocate buffer: the host's view (an ndarray) of DDR memory that only the syncs copy
    to and from the board's side, as with a cached buffer; a physical address; freebuffer."""

    def _bytes(self):
        return self.view(np.ndarray).reshape(-1).view(np.uint8)

    def sync_to_device(self):
        self.board.memory[self.device_address][:] = self._bytes()

    def sync_from_device(self):
        self._bytes()[:] = self.board.memory[self.device_address]

    def freebuffer(self):
        self.board.memory.pop(self.device_address)


class FakeIP:
    """The hybridcim_accel IP: 32-bit control registers; ap_start runs the csim kernel."""

    register_map = None

    def __init__(self, board):
        self.board, self.regs = board, {REGISTERS["ap_ctrl"]: 0x4}  # ap_idle

    def write(self, offset, value):
        self.regs[offset] = int(value) & 0xFFFFFFFF
        if offset == REGISTERS["ap_ctrl"] and value & AP_START:
            self.board.calls.append(dict(self.regs))
            self.regs[REGISTERS["ap_return"]] = self.board.run_kernel(self.regs)
            self.regs[offset] = AP_DONE | 0x4  # done and idle again

    def read(self, offset):
        return self.regs.get(offset, 0)


class FakeBoard:
    def __init__(self, lib):
        self.lib, self.memory, self.next_address = lib, {}, 0x1000_0000  # address -> the board's bytes
        self.calls = []

    def allocate(self, shape, dtype):
        buf = np.zeros(shape, dtype=dtype).view(FakeBuffer)
        buf.board, buf.device_address = self, self.next_address
        self.memory[self.next_address] = np.zeros(buf.nbytes, dtype=np.uint8)
        self.next_address += (buf.nbytes + 0xFFF) // 0x1000 * 0x1000 + 0x1000
        return buf

    def _memory(self, regs, name, words_name, dtype):
        addr = regs.get(REGISTERS[name], 0)
        if addr == 0:
            return None
        raw = self.memory[addr]  # KeyError: the kernel would read an address nobody allocated
        n = regs[REGISTERS[words_name]]
        assert n * np.dtype(dtype).itemsize <= raw.size, f"{words_name}={n} overruns the {name} buffer"
        return raw[:n * np.dtype(dtype).itemsize].view(dtype)

    corrupt_out = False  # flip one bit of the first output word after each call (a faulty board)

    def run_kernel(self, regs):
        m = lambda *a: self._memory(regs, *a)
        prog = m("prog", "prog_words", np.uint64)
        images, out = m("images", "image_words", np.uint64), m("out", "out_words", np.int32)
        scratch = m("scratch", "scratch_words", np.int32)
        counters = m("counters", "counters_words", np.uint64) if REGISTERS["counters"] in regs else None
        rc = self.lib.run(prog, images, regs[REGISTERS["n_images"]], out, scratch, regs[REGISTERS["flags"]],
                          counters)
        if self.corrupt_out and regs[REGISTERS["n_images"]]:
            out[0] ^= 1
        return rc


@pytest.fixture
def board(csim_lib, monkeypatch, tmp_path):
    return make_board(csim_lib, monkeypatch, tmp_path, PRESET)


def make_board(csim_lib, monkeypatch, tmp_path, preset):
    lib = csim_lib(preset)
    fake = FakeBoard(lib)
    pynq = types.ModuleType("pynq")
    pynq.Device = types.SimpleNamespace(devices=["fake-fpga"])
    pynq.allocate = fake.allocate
    pynq.Overlay = lambda path: types.SimpleNamespace(hybridcim_accel_0=FakeIP(fake), path=path)
    monkeypatch.setitem(sys.modules, "pynq", pynq)

    def bitstream_dir(kernel_version=None):
        d = tmp_path / preset / (kernel_version or "current") / "pynq-z2"
        d.mkdir(parents=True, exist_ok=True)
        (d / "hybridcim.bit").write_bytes(b"fake")
        (d / "hybridcim.hwh").write_text("<xml/>")
        man = make_manifest("pynq-z2", preset, "xc7z020clg400-1", "hybridcim.bit", "hybridcim.hwh")
        if kernel_version:
            man["kernel_version"] = kernel_version
        (d / "manifest.json").write_text(json.dumps(man))
        return d.parent

    fake.bitstream_dir = bitstream_dir
    return fake


def test_run_trace_and_counters_equal_the_emulator(board):
    from hybridcim.runtime.pynq_device import PynqDevice
    prog = random_program(9, PRESET)
    images = random_images(prog, 5, seed=2)
    ref = FastEmulator(prog)
    with PynqDevice(bitstream_dir=board.bitstream_dir(), batch_size=2) as dev:
        dev.load(prog)
        assert board.calls[-1][REGISTERS["flags"]] == 2  # load ran the kernel's VALIDATE_ONLY checks
        out = dev.run(images)
        assert np.array_equal(out, ref.run(images).outputs) and out.dtype == np.int64
        assert len(board.calls) == 1 + 3  # batches of 2, 2, 1
        assert all(c[REGISTERS["flags"]] == 4 for c in board.calls[1:])  # COUNTERS
        tr = dev.trace(images[:2])
        want = ref.run(images[:2], trace=True).tensors
        assert tr.keys() == want.keys() and all(np.array_equal(tr[k], want[k]) for k in tr)
        assert board.calls[-1][REGISTERS["flags"]] == 4 | 1  # COUNTERS | TRACE
        expected = [(a + b).as_dict() for a, b in zip(ref.run(images).counters, ref.run(images[:2]).counters)]
        assert [c.as_dict() for c in dev.counters] == expected
        assert dev.reports_counters
    assert set(board.memory) == set()  # every buffer freed, the program's on close


def test_a_corrupt_image_is_refused_by_the_kernel_on_load(board):
    from hybridcim.program import encode
    from hybridcim.runtime import buffers
    from hybridcim.runtime.pynq_device import PynqDevice
    prog = random_program(9, PRESET)
    dev = PynqDevice(bitstream_dir=board.bitstream_dir())
    image = bytearray(encode(prog))
    image[-9] ^= 1
    # host checks first: a corrupt image never reaches the board through load()
    with pytest.raises(ChecksumError):
        dev.load(bytes(image))
    assert board.calls == []
    # the kernel's own check, as if the host were bypassed: the same error class
    words = buffers.program_words(bytes(image))
    buf = board.allocate(words.shape, np.uint64)
    buf[:] = words
    buf.sync_to_device()
    dev._prog_buf, dev._program = buf, prog
    with pytest.raises(ChecksumError, match="CHECKSUM"):
        dev._start(0, None, None, None, buffers.FLAG_VALIDATE_ONLY)


@pytest.mark.parametrize("version", ["1.0", "1.1"])  # 1.1: a counter block without header nor memory counters
def test_an_old_kernel_bitstream_runs_without_counters(board, version):
    from hybridcim.runtime.pynq_device import PynqDevice
    prog = random_program(9, PRESET)
    images = random_images(prog, 2, seed=1)
    with PynqDevice(bitstream_dir=board.bitstream_dir(version)) as dev:
        dev.load(prog)
        assert not dev.reports_counters
        assert np.array_equal(dev.run(images), FastEmulator(prog).run(images).outputs)
        assert all(REGISTERS["counters"] not in c and c[REGISTERS["flags"]] == 0 for c in board.calls[1:])
        assert all(c.images == 0 for c in dev.counters)


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), preset=st.sampled_from(["tiny-64", "sun-mars-256"]),
       n=st.integers(1, 5), batch=st.integers(1, 4))
def test_pynq_transport_equals_the_emulator_on_fuzzed_programs(csim_lib, monkeypatch, tmp_path, seed, preset, n,
                                                                 batch):
    from hybridcim.runtime.pynq_device import PynqDevice
    fake = make_board(csim_lib, monkeypatch, tmp_path, preset)
    prog = random_program(seed, preset)
    images = random_images(prog, n, seed)
    with PynqDevice(bitstream_dir=fake.bitstream_dir(), batch_size=batch) as dev:
        dev.load(prog)
        ref = FastEmulator(prog).run(images)
        assert np.array_equal(dev.run(images), ref.outputs)
        assert [c.as_dict() for c in dev.counters] == [c.as_dict() for c in ref.counters]
    assert not fake.memory


def test_a_faulty_board_is_caught_by_the_session(board):
    """Negative case of pynq vs emulator: one flipped output bit fails the session and is located."""
    from hybridcim.runtime import EmulatorDevice, Session
    from hybridcim.runtime.pynq_device import PynqDevice
    prog = random_program(9, PRESET)
    images = random_images(prog, 4, seed=3)
    board.corrupt_out = True
    with PynqDevice(bitstream_dir=board.bitstream_dir(), batch_size=2) as dev, EmulatorDevice() as ref:
        dev.load(prog)
        ref.load(prog)
        rep = Session(dev, ref, "emulator", show_progress=False).run([(images, None)])
    assert not rep.ok and rep.mismatches == [0, 2]  # the first image of each batch of 2
    # the traced tensors (scratch) are intact, so the session says the fault is past the last layer
    assert rep.first_mismatch is None and "image 0: traced alone, every tensor agrees" in rep.mismatch_note
    assert "output buffer or its transfer" in rep.summary()


def test_a_missing_sync_is_caught(board, monkeypatch):
    """The fake keeps the board's memory apart from the host's view: without sync_to_device the
    kernel reads zeros (the images never reached DDR) and the results differ."""
    from hybridcim.runtime.pynq_device import PynqDevice
    prog = random_program(9, PRESET)
    images = random_images(prog, 2, seed=5)
    with PynqDevice(bitstream_dir=board.bitstream_dir()) as dev:
        dev.load(prog)
        monkeypatch.setattr(FakeBuffer, "sync_to_device", lambda self: None)
        out = dev.run(images)
    assert not np.array_equal(out, FastEmulator(prog).run(images).outputs)
