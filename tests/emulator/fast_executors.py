"""Shared by the fast-emulator equivalence tests: every fast-emulator engine available here, and the
bit-for-bit comparison of two ExecutionResults (outputs, every counter, every traced tensor)."""
import importlib.util

import numpy as np

from hybridcim.emulator import FastEmulator

HAS_TORCH = importlib.util.find_spec("torch") is not None


def fast_executors(p):
    """(name, FastEmulator) for numpy, torch float and, where oneDNN's int8 op passes its probe, torch int8."""
    out = [("numpy", FastEmulator(p, "numpy"))]
    if HAS_TORCH:
        out.append(("torch-float", FastEmulator(p, "torch", engine="float")))
        from hybridcim.emulator.torch_backend import int8_status
        if int8_status()[0]:
            out.append(("torch-int8", FastEmulator(p, "torch", engine="int8")))
    return out


def assert_same(ref, got, what):
    """``got`` equals ``ref`` bit for bit: outputs, every layer's counters and (if traced) every tensor."""
    assert np.array_equal(ref.outputs, got.outputs), what
    for a, b in zip(ref.counters, got.counters):
        assert a.as_dict() == b.as_dict(), (what, a.layer)
    if ref.tensors is not None:
        assert ref.tensors.keys() == got.tensors.keys()
        for k in ref.tensors:
            assert np.array_equal(ref.tensors[k], got.tensors[k]), (what, k)
