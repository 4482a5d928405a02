"""Small CIFAR-shaped programs (32x32x3 pixels in, 10 logits out) with hybrid layers, for CLI tests:
fast enough for the reference emulator (a few ms per image)."""
import numpy as np

from hybridcim.program import write_program
from hybridcim.program.builder import ProgramBuilder, make_hybrid
from hybridcim.program.hybrid import HybridParams
from hybridcim.spec.hardware import get_preset

LEVELS = HybridParams((2, 4, 15), (6, 15, 15), (40, 120), sal_planes=2)
"""Three levels: least salient windows keep depth < 6 (digital < 2), the most salient are all digital."""


def small_program(seed: int = 0, name: str = "small"):
    """maxpool 4x4 -> conv 3x3 (8 filters: 2-, 4- and 8-bit) -> global avgpool -> fc (10 logits); digital."""
    rng = np.random.default_rng(seed)
    b = ProgramBuilder(get_preset("sun-mars-256"), name=name)
    x = b.input("x", channels=3, height=32, width=32)
    p = b.maxpool("pool0", x, k=4)
    prec = [8, 8, 4, 4, 4, 4, 2, 2]
    w = np.stack([rng.integers(-(1 << (q - 1)), 1 << (q - 1), size=(3, 3, 3)) for q in prec])
    c = b.conv("conv", p, w, precision=prec, shift=[9, 9, 6, 6, 6, 6, 4, 4], pad=1, out_bits=4)
    a = b.avgpool("gap", c)
    b.fc("fc", a, rng.integers(-8, 8, size=(10, 8)), precision=[4] * 10, shift=[0] * 10, logits=True)
    return b.build()


def hybrid_program(seed: int = 0, noise: bool = False):
    """:func:`small_program` with ``conv`` in hybrid mode (:data:`LEVELS`, noise optional) and ``fc`` on a
    static boundary (one level, D = 3)."""
    lv = LEVELS
    if noise:
        lv = HybridParams(lv.digital_depth, lv.keep_depth, lv.thresholds, lv.sal_planes, noise_pairs=16,
                          noise_shift=3, noise_seed=5)
    return make_hybrid(small_program(seed, "small-hybrid"), {"conv": lv, "fc": HybridParams.static(3)})


def write(prog, folder, name="model.cim"):
    return write_program(prog, folder / name)
