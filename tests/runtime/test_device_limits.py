"""Device.load decodes an image with the device kernel's capacities: an image that is both over
capacity and malformed gets one error class from the host's load and from the kernel."""
import re

import numpy as np
import pytest

from hybridcim.program import InvalidProgramError, ManifestError, ProgramBuilder, encode
from hybridcim.program.codec import image_crc
from hybridcim.program.errors import CapacityError
from hybridcim.program.format import HEADER
from hybridcim.runtime.device import as_program
from hybridcim.spec import get_preset
from hybridcim.spec.capacity import kernel_limits


def _too_wide_program():
    """tiny-64 program whose first conv reads 64·64 pixels × 8 bits = 32768 packed words > 16384."""
    b = ProgramBuilder(get_preset("tiny-64"), name="wide")
    x = b.input("image", 3, 64, 64)
    y = b.conv("c1", x, np.ones((2, 3, 1, 1), dtype=np.int64), [2, 2], [8, 8])
    g = b.avgpool("gap", y)
    b.fc("logits", g, np.ones((2, 2), dtype=np.int64), [2, 2], [0, 0], logits=True)
    return b.build()


def _resign(image: bytearray) -> bytes:
    image[16:20] = image_crc(image).to_bytes(4, "little")
    return bytes(image)


def over_capacity_and_malformed():
    """(name, image, class decode gives without limits): each image is over the kernel's capacity
    at layer 0 and malformed later (a host-only manifest rule; an unknown op code of the last layer)."""
    prog = _too_wide_program()
    image = encode(prog)
    h = HEADER.unpack_from(image, 0)
    bad_manifest = bytearray(image)
    bad_manifest[h[19]] = 0xFF  # manifest no longer UTF-8 JSON
    bad_op = bytearray(image)
    bad_op[h[18] + 96 * (len(prog.layers) - 1)] = 9  # layer table: unknown op code
    return [("manifest", _resign(bad_manifest), ManifestError), ("op code", _resign(bad_op), InvalidProgramError)]


@pytest.mark.parametrize("case", range(2))
def test_limits_decide_the_class_before_later_defects(tmp_path, case):
    name, image, without = over_capacity_and_malformed()[case]
    preset = get_preset("tiny-64")
    with pytest.raises(without) as plain:  # no kernel at hand: the later defect is what decode finds
        as_program(image, preset)
    assert not isinstance(plain.value, CapacityError)
    lim = kernel_limits(preset)
    with pytest.raises(CapacityError, match=r"layer 0\b.*packed input words"):
        as_program(image, preset, limits=lim)
    f = tmp_path / "bad.cim"
    f.write_bytes(image)
    with pytest.raises(CapacityError, match=re.escape(f"{f}: ") + r".*layer 0\b.*packed input words"):  # a file: same class, names the file
        as_program(f, preset, limits=lim)


@pytest.mark.parametrize("case", range(2))
def test_host_load_and_kernel_agree_on_the_class(csim_lib, tmp_path, case):
    from hybridcim.runtime.csim_device import CSimDevice
    from hybridcim.runtime.errors import KernelError
    csim_lib("tiny-64")
    dev = CSimDevice("tiny-64")
    name, image, _ = over_capacity_and_malformed()[case]
    with pytest.raises(KernelError) as kernel:
        dev.load_image(image)
    assert isinstance(kernel.value, CapacityError), (name, kernel.value)
    f = tmp_path / "bad.cim"
    f.write_bytes(image)
    for src in (image, f):
        with pytest.raises(CapacityError) as host:
            dev.load(src)
        assert not isinstance(host.value, KernelError), "the host's decode refuses it before the kernel runs"
