"""Every docstring example in the package runs as a doctest (its examples are true).

The modules are found by scanning the sources for ``>>>``, so a new example is tested
without registering it; modules of ``hybridcim.train`` need torch and are skipped without it.
"""
import doctest
import importlib
from pathlib import Path

import pytest

import hybridcim

ROOT = Path(hybridcim.__file__).parent
MODULES = sorted(".".join(("hybridcim",) + tuple(x for x in p.relative_to(ROOT).with_suffix("").parts
                                                  if x != "__init__"))
                 for p in ROOT.rglob("*.py") if ">>>" in p.read_text())


def test_examples_are_found():
    assert {"hybridcim.cim.bitplanes", "hybridcim.runtime.buffers", "hybridcim.train.trainer"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    if name.startswith("hybridcim.train."):
        pytest.importorskip("torch")
        pytest.importorskip("brevitas")
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no doctest examples"
    assert result.failed == 0
