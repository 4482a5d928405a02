"""Property tests: pairing-aware precision assignment and macro-aligned structured pruning."""
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hybridcim.program.packing import pack_filters, utilization
from hybridcim.spec import get_preset
from hybridcim.train.models import build_model
from hybridcim.train.precision import assign_precision, average_bits
from hybridcim.train.pruning import check_unit_structure, oihw_to_hwc, prune_model, schedule, sparsity, units

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _model(seed, arch="resnet"):
    torch.manual_seed(seed)
    kw = dict(blocks=(1, 1, 1), widths=(8, 16, 32)) if arch == "resnet" else dict(widths=(8, 16, 16), fc_width=16)
    m = build_model(arch, calib_steps=3, **kw)
    m.eval()
    return m


def _random_omega(m, seed, nprec):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for n, l in m.cim_layers():
        base = torch.rand(l.cout, 1, generator=g)
        # error grows as precision falls (columns: descending precision order is not assumed)
        steps = torch.rand(l.cout, nprec, generator=g).cumsum(1).flip(1)
        out[n] = base * steps
    return out


@SETTINGS
@given(seed=st.integers(0, 10_000), budget=st.sampled_from([2.5, 3.0, 4.0, 5.5, 8.0]),
       preset=st.sampled_from(["sun-mars-256", "tiny-64"]), arch=st.sampled_from(["resnet", "cnv"]))
def test_precision_assignment_pairs_and_meets_budget(seed, budget, preset, arch):
    pr = get_preset(preset)
    m = _model(seed % 7, arch)
    names = [n for n, _ in m.cim_layers()]
    fixed = {names[0], names[-1]}
    omega = {n: o for n, o in _random_omega(m, seed, len(pr.precisions)).items()}
    assign_precision(m, omega, pr.precisions, budget, pr.group_width, fixed)
    # the lowest average reachable: fixed layers at 8 bits, the rest at 2 bits (bundles of 4)
    k_tot = sum(l.cout * l.cin * l.k * l.k for _, l in m.cim_layers())
    floor = sum(l.cout * l.cin * l.k * l.k * (8 if n in fixed else 2) for n, l in m.cim_layers()) / k_tot
    assert average_bits(m) <= max(budget, floor) + 1e-9
    for n, l in m.cim_layers():
        prec = l.precision.numpy()
        assert set(prec.tolist()) <= set(pr.precisions)
        if n in fixed:
            assert (prec == 8).all()
            continue
        assert (prec == 4).sum() % 2 == 0 and (prec == 2).sum() % 4 == 0
        groups = pack_filters(prec, pr.group_width)
        assert utilization(prec, groups, pr.group_width) == 1.0  # every column group full


@SETTINGS
@given(seed=st.integers(0, 10_000), target=st.floats(0.05, 0.85), preset=st.sampled_from(["sun-mars-256", "tiny-64"]),
       budget=st.sampled_from([3.0, 4.0]))
def test_pruning_units_align_with_packing(seed, target, preset, budget):
    pr = get_preset(preset)
    m = _model(seed % 5)
    names = [n for n, _ in m.cim_layers()]
    fixed = {names[0], names[-1]}
    assign_precision(m, _random_omega(m, seed, 3), pr.precisions, budget, pr.group_width, fixed)
    before = average_bits(m)
    prune_model(m, target / 2, pr.rows_active, pr.group_width, fixed, avg_bits=before)
    prune_model(m, target, pr.rows_active, pr.group_width, fixed, avg_bits=before)  # masks only grow
    assert sparsity(m) >= target - 1e-9
    assert average_bits(m) <= before + 1e-9  # removing whole groups never breaks the precision budget
    for n, l in m.cim_layers():
        check_unit_structure(l, pr.rows_active, pr.group_width)
        assert ((l.precision == 0) == ~l.mask.flatten(1).any(1)).all() or n in fixed
    # pairing still fills groups after whole groups were pruned away
    for n, l in m.cim_layers():
        if n not in fixed:
            prec = torch.where(l.alive(), l.precision, 0).numpy()
            if (prec > 0).any():
                assert utilization(prec, pack_filters(prec, pr.group_width), pr.group_width) == 1.0


def test_pruned_units_are_absent_in_program(tmp_path):
    from hybridcim.compiler import compile_model, load_integer_model
    from hybridcim.train.export import export_model
    pr = get_preset("tiny-64")
    m = _model(1)
    names = [n for n, _ in m.cim_layers()]
    fixed = {names[0], names[-1]}
    assign_precision(m, _random_omega(m, 1, 3), pr.precisions, 4.0, pr.group_width, fixed)
    prune_model(m, 0.6, pr.rows_active, pr.group_width, fixed)
    export_model(m, tmp_path, preset="tiny-64", qonnx=False)
    prog = compile_model(load_integer_model(tmp_path))
    by_name = {l.name: l for l in prog.layers}
    checked = 0
    for n, l in m.cim_layers():
        if n in fixed:
            continue
        groups, k, r = units(l, pr.rows_active, pr.group_width)
        pl = by_name[n]
        assert pl.present.shape == (len(groups), r)
        mask = oihw_to_hwc(l.mask).numpy()
        for g, fs in enumerate(groups):
            assert sorted(set(pl.col_filter[g][pl.col_filter[g] >= 0].tolist())) == sorted(fs)
            for b in range(r):
                if not mask[fs, b * pr.rows_active:(b + 1) * pr.rows_active].any():
                    assert not pl.present[g, b], (n, g, b)
                    checked += 1
    assert checked > 0, "no pruned unit was checked"


@pytest.mark.parametrize("e,want", [(0, 0.0), (1, 0.5 * (1 - 0.5 ** 3)), (2, 0.5), (9, 0.5)])
def test_schedule(e, want):
    assert schedule(e, 0.5, 1, 2) == pytest.approx(want)
