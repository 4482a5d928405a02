"""Fixtures of the search tests (the plain helpers are in search_support.py)."""
import sys
from pathlib import Path

import pytest

pytest.importorskip("optuna")  # the optional extra 'search' (in 'all', so never skipped under CI)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_support import env, tiny_supernet_config  # noqa: E402


@pytest.fixture(autouse=True)
def _toy_on_path(monkeypatch):
    """Worker subprocesses the CLI starts import the toy evaluator too."""
    monkeypatch.setenv("PYTHONPATH", env()["PYTHONPATH"])


@pytest.fixture(scope="session")
def tiny_supernet(tmp_path_factory, cifar10_root) -> Path:
    """The run folder of a tiny supernet trained for 4 steps (seconds; torch + brevitas)."""
    pytest.importorskip("torch")
    from hybridcim.train.config import config_from_dict
    from hybridcim.train.trainer import Trainer
    out = tmp_path_factory.mktemp("tiny-supernet")
    Trainer(config_from_dict(tiny_supernet_config(cifar10_root)), out, progress=False).run()
    return out
