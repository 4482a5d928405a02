"""One Device interface: EmulatorDevice, CSimDevice, PynqDevice (off-board errors only)."""
import json
import subprocess
import sys

import numpy as np
import pytest

from hybridcim.emulator import FastEmulator
from hybridcim.program import PresetMismatchError, write_program
from hybridcim.runtime import Device, EmulatorDevice, open_device
from hybridcim.runtime.bitstream import kernel_info_from_headers, make_manifest
from hybridcim.runtime.errors import DeviceError, DeviceNotAvailableError
from hybridcim.zoo import random_images, random_program


def test_import_needs_numpy_only():
    code = ("import sys, hybridcim.runtime as r; "
            "bad = [m for m in ('torch', 'pynq', 'hybridcim.runtime.csim_device', 'hybridcim.runtime.pynq_device') "
            "if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("backend", ["emulator", "csim"])
def test_device_interface(backend, csim_lib, tmp_path):
    if backend == "csim":
        csim_lib("tiny-64")
    prog = random_program(9, "tiny-64")
    images = random_images(prog, 3, seed=4)
    ref = FastEmulator(prog).run(images, trace=True)
    path = write_program(prog, tmp_path / "p.cim")
    with open_device(backend, "tiny-64") as dev:
        assert isinstance(dev, Device) and dev.preset.name == "tiny-64"
        with pytest.raises(DeviceError, match="no program loaded"):
            dev.run(images)
        dev.load(path)  # a path, bytes or a Program
        out = dev.run(images)
        assert out.dtype == np.int64 and out.shape == (3, prog.output.channels)
        assert np.array_equal(out, ref.outputs)
        tr = dev.trace(images)
        assert tr.keys() == ref.tensors.keys()
        assert all(np.array_equal(tr[k], ref.tensors[k]) for k in tr)
        # counters: everything run or traced since load, the emulator's numbers
        assert [c.as_dict() for c in dev.counters] == [(c + c).as_dict() for c in ref.counters]
        dev.load(prog)
        assert all(c.images == 0 and c.unit_activations == 0 for c in dev.counters)
        with pytest.raises(PresetMismatchError):
            dev.load(random_program(1, "sun-mars-256"))
    with pytest.raises(DeviceError, match="closed"):
        dev.run(images)


def test_emulator_device_without_preset_takes_the_programs():
    dev = EmulatorDevice()
    assert dev.preset is None
    dev.load(random_program(1, "wide-512"))
    assert dev.preset.name == "wide-512"


def test_csim_library_reports_the_header_constants(csim_lib):
    for preset in ("tiny-64", "sun-mars-256"):
        assert csim_lib(preset).info == kernel_info_from_headers(preset)
        assert csim_lib(preset).preset_name == preset


def test_pynq_without_manifest(tmp_path):
    from hybridcim.runtime.pynq_device import PynqDevice
    with pytest.raises(DeviceError, match="no bitstream manifest at .*manifest.json.*overlay/build.sh"):
        PynqDevice(bitstream_dir=tmp_path)


def _fake_board(tmp_path, **changes):
    board = tmp_path / "pynq-z2"
    board.mkdir(parents=True)
    (board / "hybridcim.bit").write_bytes(b"not a bitstream")
    (board / "hybridcim.hwh").write_text("<xml/>")
    m = make_manifest("pynq-z2", "sun-mars-256", "xc7z020clg400-1", "hybridcim.bit", "hybridcim.hwh")
    m.update(changes)
    (board / "manifest.json").write_text(json.dumps(m))
    return tmp_path


def test_pynq_manifest_checks(tmp_path):
    from hybridcim.runtime.pynq_device import PynqDevice
    with pytest.raises(DeviceError, match="kernel version 2.0 is not supported"):
        PynqDevice(bitstream_dir=_fake_board(tmp_path / "a", kernel_version="2.0"))
    with pytest.raises(DeviceError, match="built for preset 'sun-mars-256', not 'tiny-64'"):
        PynqDevice(bitstream_dir=_fake_board(tmp_path / "b"), preset="tiny-64")


def test_pynq_off_board_is_a_clean_error(tmp_path):
    from hybridcim.runtime.pynq_device import PynqDevice
    with pytest.raises(DeviceNotAvailableError, match="pynq"):
        PynqDevice(bitstream_dir=_fake_board(tmp_path))


def test_register_offsets_from_the_hls_driver_header():
    from hybridcim.runtime.pynq_device import REGISTERS, offsets_from_driver_header
    # the shape of Vitis HLS's xhybridcim_accel_hw.h for this prototype (32-bit m_axi addresses)
    text = "\n".join(["#define XHYBRIDCIM_ACCEL_CONTROL_ADDR_AP_CTRL 0x00",
                      "#define XHYBRIDCIM_ACCEL_CONTROL_ADDR_AP_RETURN 0x10",
                      "#define XHYBRIDCIM_ACCEL_CONTROL_BITS_AP_RETURN 32"] +
                     [f"#define XHYBRIDCIM_ACCEL_CONTROL_ADDR_{n.upper()}_DATA 0x{REGISTERS[n]:02x}\n"
                      f"#define XHYBRIDCIM_ACCEL_CONTROL_BITS_{n.upper()}_DATA 32"
                      for n in ("prog", "prog_words", "images", "image_words", "n_images", "out", "out_words",
                                "scratch", "scratch_words", "flags", "counters", "counters_words", "image_base")])
    found = offsets_from_driver_header(text)
    assert found == {k: v for k, v in REGISTERS.items() if k not in ("gie", "ier", "isr")}


def test_register_offsets_are_the_documented_ones():
    """REGISTERS == the control-register table of docs/program-format.md (an independent source)."""
    import re
    from pathlib import Path
    from hybridcim.runtime.pynq_device import REGISTERS
    doc = (Path(__file__).resolve().parents[2] / "docs" / "program-format.md").read_text()
    table = {}
    for offs, names in re.findall(r"^\| (0x[0-9A-F]{2}(?: / 0x[0-9A-F]{2})*) \| ((?:`\w+`(?: / )?)+) \|", doc, re.M):
        for off, name in zip(offs.split(" / "), re.findall(r"`(\w+)`", names)):
            table[name.lower()] = int(off, 16)
    assert table == REGISTERS
    assert (table["counters"], table["counters_words"]) == (0x68, 0x70)
