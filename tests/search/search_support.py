"""Plain helpers of the search tests (imported by name: `from search_support import ...`; a module name
of its own, since `conftest` names a different module in every test folder): a toy config, the CLI in this
process or a subprocess, the study read back, a tiny supernet's training config."""
import os
import subprocess
import sys
from pathlib import Path

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


def popen(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hybridcim.cli.main", "search", *map(str, args)], env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def load_trials(out: Path, name: str = "toy"):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    st = JournalStorage(JournalFileBackend(str(out / "search.journal")))
    return optuna.load_study(study_name=name, storage=st).get_trials(deepcopy=True)


SUPERNET_DUAL = {"layers": "blocks", "mode": "supernet", "ratios": [0, 2, 4, 6, 8], "ratio": 4, "bin_threshold": 2}


def tiny_supernet_config(root, epochs: int = 1) -> dict:
    """A tiny dual-path ResNet supernet (6 dual layers) as a training-config mapping: the smoke config
    on sun-mars-256-dual, dense, one epoch of 4 steps of 32 training images (the first 128, which lie
    outside the calibration split), binary input b = x >= 2 (a briefly trained net rarely reaches the
    4-bit MSB)."""
    from hybridcim.train import trainer as trainer_mod
    from hybridcim.train.config import load_config
    cfg = load_config(Path(trainer_mod.__file__).parent / "configs" / "smoke.yaml").to_dict()
    cfg.update(name="tiny-supernet", preset="sun-mars-256-dual", dual=dict(SUPERNET_DUAL))
    cfg["pruning"]["target"] = 0.0
    cfg["precision"].update(precisions=[4, 8], assign_epoch=0)
    cfg["optim"].update(epochs=epochs, bn_freeze_epoch=None, batch_size=32)
    cfg["data"].update(root=str(root), train_limit=128, test_limit=32, eval_batch_size=32)
    return cfg
