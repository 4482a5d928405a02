"""Comparisons of a csim trace with an emulator's, shared by the csim tests (a plain module with a
name of its own: a test folder's conftest is not importable by name in a full run)."""
import numpy as np
import pytest


def assert_tensors_equal(prog, want: dict, got: dict, with_input: bool = False) -> None:
    """Every layer's output tensor (and the input with ``with_input``) of trace ``got`` equals
    ``want``'s; a failure names the tensor, its layer and mode, and the first NHWC index that differs."""
    assert got.keys() == want.keys()
    for layer in ([None] if with_input else []) + list(prog.layers):
        name = prog.input.name if layer is None else prog.tensors[layer.out_tensor].name
        w, g = want[name], got[name]
        if not np.array_equal(w, g):
            idx = tuple(int(v) for v in np.argwhere(w != g)[0])
            where = "" if layer is None else f" ({layer.name}, mode {layer.mode}, dual {getattr(layer, 'dual', None)})"
            pytest.fail(f"tensor {name!r}{where} differs first at NHWC {idx}: expected {w[idx]}, got {g[idx]}")
