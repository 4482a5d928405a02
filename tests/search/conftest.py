"""Helpers of the search tests: a toy config, the CLI in a subprocess, the study read back."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("optuna")  # the optional extra 'search' (in 'all', so never skipped under CI)

HERE = Path(__file__).resolve().parent


def toy_config(tmp: Path, name: str = "toy", trials: int = 8, **options) -> Path:
    """Write a JSON config of the toy evaluator (tests/search/toy_evaluator.py) and return its path."""
    import json
    cfg = {"name": name, "evaluator": {"kind": "toy_evaluator:make", "options": {"layers": 3, **options}},
           "space": {"ratios": [0, 4, 8]}, "objectives": ["accuracy", "energy_uj"],
           "sampler": {"population_size": 4, "seed": 3}, "trials": trials,
           "baselines": [{"name": "all INT4", "ratio": 0}, {"name": "given", "accuracy": 0.9, "energy_uj": 6.0}]}
    p = tmp / f"{name}.json"
    p.write_text(json.dumps(cfg))
    return p


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(HERE), e.get("PYTHONPATH", "")])
    return e


def cli(*args, check=False, timeout=120) -> subprocess.CompletedProcess:
    """``hybridcim search ARGS`` in a subprocess (the toy evaluator importable)."""
    p = subprocess.run([sys.executable, "-m", "hybridcim.cli.main", "search", *map(str, args)], env=env(),
                       capture_output=True, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, p.stderr[-3000:]
    return p


def run_main(capsys, *args) -> "tuple[int, str, str]":
    """``hybridcim search ARGS`` in this process: (exit status, stdout, stderr)."""
    from hybridcim.cli.main import main
    capsys.readouterr()
    rc = main(["search", *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(autouse=True)
def _toy_on_path(monkeypatch):
    """Worker subprocesses the CLI starts import the toy evaluator too."""
    monkeypatch.setenv("PYTHONPATH", env()["PYTHONPATH"])


def popen(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hybridcim.cli.main", "search", *map(str, args)], env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def load_trials(out: Path, name: str = "toy"):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    st = JournalStorage(JournalFileBackend(str(out / "search.journal")))
    return optuna.load_study(study_name=name, storage=st).get_trials(deepcopy=True)
