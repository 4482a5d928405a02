"""program_compression on dual-path programs: a layer's ternary filters are stored (densely, in the
ternary macros), so they are neither pruned nor in avg_bits; their share is ternary_fraction."""
import pytest

from hybridcim.compiler.report import program_compression
from hybridcim.zoo.fuzz import small_dual_program


@pytest.mark.parametrize("ratio", [0, 2, 4, 8])
def test_ternary_filters_are_kept_not_pruned_and_counted_apart(ratio):
    p = small_dual_program(ratio, outer_bits=8)
    c = program_compression(p)
    k = {l.name: l.k_rows for l in p.layers if l.op.is_cim}
    total = 16 * k["c1"] + 16 * k["c2"] + 10 * k["fc"]
    f_t = 16 * ratio // 8
    assert c["weights"] == total and c["structural_sparsity"] == 0.0  # dense: nothing pruned
    assert c["ternary_fraction"] == f_t * k["c2"] / total
    sram_bits = 8 * 16 * k["c1"] + 4 * (16 - f_t) * k["c2"] + 8 * 10 * k["fc"]
    assert c["avg_bits"] == sram_bits / (16 * k["c1"] + (16 - f_t) * k["c2"] + 10 * k["fc"])
