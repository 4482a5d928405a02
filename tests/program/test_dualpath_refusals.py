"""Executors that do not implement dual-path layers refuse them with a clear error (architecture.md §10.6):
the HLS kernel in C simulation (by fingerprint, and by flags / header bytes on its own preset, with the
host reader's verdict class). The emulators run them (tests/emulator/test_dual_fast.py)."""
import pytest

from hybridcim.program.codec import decode, encode
from hybridcim.program.errors import InvalidProgramError, PresetMismatchError
from hybridcim.program.format import HEADER
from hybridcim.zoo.fuzz import random_dualpath_program, random_program, reseal


def _csim(preset):
    from hybridcim.runtime.errors import DeviceNotAvailableError
    from hybridcim.runtime.csim_device import CSimDevice
    try:
        return CSimDevice(preset)
    except DeviceNotAvailableError as e:  # no C++ compiler here
        pytest.skip(str(e))


def _with_dual_layer(seed=0):
    """A dual-path program whose first layer is dual-path with at least one ternary filter."""
    for s in range(seed, seed + 200):
        p = random_dualpath_program(s, "tiny-64-dual", max_convs=2)
        if any(l.dual is not None and l.dual.n_tern(l.n_filters) for l in p.layers):
            return p
    raise AssertionError("no dual-path program drawn")


def test_csim_kernel_refuses_dual_path_images():
    dev = _csim("tiny-64")
    image = encode(_with_dual_layer())
    with pytest.raises(PresetMismatchError):  # row 6: the fingerprint covers the second macro type
        dev.load_image(image)
    with pytest.raises(PresetMismatchError):
        decode(image, dev.preset)
    # an image of the kernel's own preset that sets flags bit 0 (format 1.2): refused at row 12(b) / 12(f),
    # InvalidProgramError from both readers
    plain = bytearray(encode(random_program(4, "tiny-64", max_convs=1)))
    plain[10] = 2
    loff = HEADER.unpack_from(plain, 0)[18]
    plain[loff + 6] = 1
    flagged = reseal(plain)
    with pytest.raises(InvalidProgramError, match="without the second macro type"):
        decode(flagged)
    with pytest.raises(InvalidProgramError):
        dev.load_image(flagged)
    # format 1.2 header bytes 61..63 on the kernel's own preset: row 7 for both
    plain[loff + 6] = 0
    plain[61:64] = image[61:64]
    with pytest.raises(InvalidProgramError, match="header bytes 61..63"):
        decode(reseal(plain))
    with pytest.raises(InvalidProgramError):
        dev.load_image(reseal(plain))


def test_csim_device_refuses_a_dual_path_program_before_running():
    dev = _csim("tiny-64")
    with pytest.raises(PresetMismatchError):
        dev.load(_with_dual_layer())
