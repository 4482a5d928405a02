"""Docstring examples of the numpy-only modules run as doctests (their examples are true)."""
import doctest
import importlib

import pytest

MODULES = ["hybridcim.cim.bitplanes", "hybridcim.cim.popcount", "hybridcim.cim.requant", "hybridcim.spec.numformat",
           "hybridcim.program.packing", "hybridcim.program.builder"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no doctest examples"
    assert result.failed == 0
