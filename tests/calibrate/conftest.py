"""A tiny two-layer program whose logits depend on the input, and its digital labels."""
import numpy as np
import pytest

from hybridcim.emulator import ReferenceEmulator
from hybridcim.program.builder import ProgramBuilder
from hybridcim.spec import get_preset


def tiny_program():
    """tiny-64: 1x1 conv 32 -> 16 (4-bit weights, 4-bit ReLU output), fc 16 -> 4 logits (4-bit weights)."""
    rng = np.random.default_rng(7)
    b = ProgramBuilder(get_preset("tiny-64"), name="calib-tiny")
    x = b.input("x", channels=32, height=1, width=1, bits=4, exponent=0)
    h = b.conv("hidden", x, rng.integers(-8, 8, (16, 32, 1, 1)), precision=[4] * 16, shift=[5] * 16, out_bits=4)
    b.fc("logits", h, rng.integers(-8, 8, (4, 16)), precision=[4] * 4, shift=[0] * 4, logits=True)
    return b.build()


@pytest.fixture(scope="session")
def tiny():
    """(program, images uint8 (40, 32, 1, 1), labels = the digital program's top-1)."""
    p = tiny_program()
    rng = np.random.default_rng(3)
    imgs = (rng.random((40, 32, 1, 1)) ** 2 * 16).astype(np.uint8)  # mostly small inputs, like ReLU activations
    labels = ReferenceEmulator(p).run(imgs).outputs.argmax(axis=1).astype(np.uint8)
    return p, imgs, labels
