"""program_compression on dual-path programs: a layer's ternary filters are stored (densely, in the
ternary macros), so they are neither pruned nor in avg_bits; their share is ternary_fraction."""
import numpy as np
import pytest

from hybridcim.compiler.report import program_compression
from hybridcim.program.builder import ProgramBuilder, make_dual
from hybridcim.program.dualpath import DualPathParams
from hybridcim.spec import get_preset


def _program(ratio: int, bits=4):
    rng = np.random.default_rng(1)
    b = ProgramBuilder(get_preset("sun-mars-256-dual"), name=f"q{ratio}")
    x = b.input("image", 3, 8, 8, bits=8)
    c1 = b.conv("c1", x, rng.integers(-8, 8, (16, 3, 3, 3)), [8] * 16, [7] * 16, pad=1, out_bits=4)
    c2 = b.conv("c2", c1, rng.integers(-8, 8, (16, 16, 3, 3)), [bits] * 16, [5] * 16, pad=1, out_bits=4)
    b.fc("fc", b.avgpool("gap", c2), rng.integers(-8, 8, (10, 16, 1, 1)), [8] * 10, [0] * 10, out_bits=16,
         out_signed=True)
    p = b.build()
    if ratio == 0:
        return p
    layer = next(l for l in p.layers if l.name == "c2")
    f_t = DualPathParams(ratio, 8).n_tern(layer.n_filters)
    return make_dual(p, {"c2": (DualPathParams(ratio, 8), rng.integers(-1, 2, (f_t, layer.k_rows)))})


@pytest.mark.parametrize("ratio", [0, 2, 4, 8])
def test_ternary_filters_are_kept_not_pruned_and_counted_apart(ratio):
    p = _program(ratio)
    c = program_compression(p)
    k = {l.name: l.k_rows for l in p.layers if l.op.is_cim}
    total = 16 * k["c1"] + 16 * k["c2"] + 10 * k["fc"]
    f_t = 16 * ratio // 8
    assert c["weights"] == total and c["structural_sparsity"] == 0.0  # dense: nothing pruned
    assert c["ternary_fraction"] == f_t * k["c2"] / total
    sram_bits = 8 * 16 * k["c1"] + 4 * (16 - f_t) * k["c2"] + 8 * 10 * k["fc"]
    assert c["avg_bits"] == sram_bits / (16 * k["c1"] + (16 - f_t) * k["c2"] + 10 * k["fc"])
