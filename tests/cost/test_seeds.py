"""The seeds' comparison baselines (naive packing, dense 8-bit counterpart) and the seeds table."""
import numpy as np
import pytest

from hybridcim.cost.seeds import dense_counterpart, repack
from hybridcim.emulator import FastEmulator
from hybridcim.emulator.counters import static_counters
from hybridcim.models import MODELS_DIR
from hybridcim.program import read_program
from hybridcim.zoo import random_images, random_program

QUICK = MODELS_DIR / "resnet8-w4a4-p50-quick" / "model.cim"


@pytest.fixture(scope="module")
def quick():
    return read_program(QUICK)


def _outputs(program, images):
    return FastEmulator(program, "numpy").run(images).outputs


def test_naive_repack_same_outputs_one_filter_per_group(quick):
    naive = repack(quick, "naive")
    imgs = random_images(quick, 3, seed=1)
    assert np.array_equal(_outputs(naive, imgs), _outputs(quick, imgs))
    for l, ln in zip(quick.layers, naive.layers):
        if l.op.is_cim:
            assert ln.n_groups == int((l.precision > 0).sum())
            assert np.array_equal(ln.precision, l.precision)
            # one filter per group: a group's used columns all belong to one filter
            for row in ln.col_filter:
                assert len(set(int(f) for f in row if f >= 0)) == 1
    paired_util = sum(static_counters(l, quick, 1).weight_bits for l in quick.layers)
    naive_util = sum(static_counters(l, naive, 1).weight_bits for l in naive.layers)
    assert paired_util == naive_util  # the same weight bits, only spread over more groups


def test_dense_counterpart_same_logits_all_8bit_all_units(quick):
    dense = dense_counterpart(quick)
    imgs = random_images(quick, 3, seed=2)
    assert np.array_equal(_outputs(dense, imgs), _outputs(quick, imgs))
    for l in dense.layers:
        if l.op.is_cim:
            assert (l.precision == 8).all() and l.present.all()
            c = static_counters(l, dense, 1)
            assert c.units_present == c.units_total
    cyc = lambda p: sum(static_counters(l, p, 1).cycles for l in p.layers)
    assert cyc(dense) >= cyc(quick)


def test_dense_counterpart_of_random_programs_is_exact():
    for seed in range(6):
        p = random_program(seed)
        imgs = random_images(p, 2, seed=seed)
        assert np.array_equal(_outputs(dense_counterpart(p), imgs), _outputs(p, imgs)), seed


def test_dense_counterpart_refuses_a_precision_outside_the_preset(quick):
    with pytest.raises(ValueError, match="not a precision"):
        dense_counterpart(quick, bits=6)
