"""Power-of-two per-filter weight quantizer and the Brevitas activation quantizers."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridcim.train.quantizers import (EXPONENT_RANGE, PRUNED_EXPONENT, act_quant, assert_act_bits, choose_exponents,
                                        deploy_act, exponent_of, quantize_weight)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 31 - 1), f=st.integers(1, 12), scale=st.floats(1e-4, 10.0),
       per_tensor=st.booleans(), lo=st.one_of(st.none(), st.integers(-2, 12)))
def test_codes_respect_precision_and_scale_is_pow2(seed, f, scale, per_tensor, lo):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(f, 3, 3, 3, generator=g) * scale
    prec = torch.tensor([(0, 2, 4, 8)[i % 4] for i in range(f)])
    hi = None if lo is None else lo + 15
    e = choose_exponents(w, prec, per_tensor, lo, hi)
    wq, codes = quantize_weight(w, prec, e)
    assert e.dtype == torch.int64
    if lo is not None:
        assert (e >= lo).all() and (e <= hi).all()
    else:
        assert (e >= EXPONENT_RANGE[0]).all() and (e <= EXPONENT_RANGE[1]).all()
    for i, p in enumerate(prec.tolist()):
        c = codes[i]
        assert torch.equal(c, torch.round(c))
        if p == 0:
            assert not c.any()
            if lo is None:
                assert int(e[i]) == PRUNED_EXPONENT
        else:
            assert c.min() >= -(1 << (p - 1)) and c.max() <= (1 << (p - 1)) - 1
        assert torch.equal(wq[i], c * 2.0 ** -int(e[i]))  # exact dequantization
    if per_tensor and lo is None:
        assert len(set(e[prec > 0].tolist())) <= 1


def test_exponent_choice_is_mse_optimal_among_candidates():
    w = torch.tensor([[0.9, 0.1, -0.12, 0.05]])
    prec = torch.tensor([2])
    e = int(choose_exponents(w, prec)[0])
    errs = {k: float(((quantize_weight(w, prec, torch.tensor([k]))[0] - w) ** 2).sum()) for k in range(-2, 6)}
    e0 = min(k for k in errs if abs(w).max() * 2 ** k <= 1)  # no clipping of the max
    assert errs[e] == min(errs[k] for k in (e0, e0 + 1, e0 + 2))


def test_realized_bit_widths_are_checked():
    from brevitas.nn import QuantReLU

    from hybridcim.train.quantizers import UintActPoT
    assert_act_bits(act_quant(4, 3), 4)
    wrong = QuantReLU(act_quant=UintActPoT, bit_widht=4, return_quant_tensor=True)  # misspelled: 8 bits
    with pytest.raises(AssertionError, match="realized 8 bits"):
        assert_act_bits(wrong, 4)


@pytest.mark.parametrize("bits,e,signed", [(4, 2, False), (8, 8, False), (8, 5, True), (3, -1, False)])
def test_deploy_act_has_exact_scale(bits, e, signed):
    m = deploy_act(bits, e, relu=not signed, signed=signed).eval()
    x = torch.linspace(-40, 40, 1001)
    q = m(x)
    assert exponent_of(q.scale) == e
    ints = q.value * 2.0 ** e
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    assert torch.equal(ints, torch.clamp(torch.round(x * 2.0 ** e), lo, hi))
