"""Shared pytest fixtures."""
import os
from pathlib import Path

import pytest


def in_ci() -> bool:
    """CI=true (or 1/yes), as .ci/run and most CI services set it; CI=false/0/empty is not CI."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def cifar10_root() -> Path:
    """The real CIFAR-10 (read-only): $CIFAR10_DIR, else <repo>/../shared/cifar10; skip if absent
    (a failure under CI)."""
    env = os.environ.get("CIFAR10_DIR")
    root = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "cifar10"
    if not (root / "cifar-10-batches-bin").is_dir() and not (root / "cifar-10-batches-py").is_dir() \
            and not (root / "test_batch.bin").is_file() and not (root / "test_batch").is_file():
        pytest.skip(f"CIFAR-10 not found at {root} (set CIFAR10_DIR)")
    return root


@pytest.fixture(scope="session")
def csim_lib():
    """csim_lib(preset) -> CSimLibrary, built once per preset and cached on disk by content hash.

    Skips where g++ or the hls4ml headers are missing, except under CI (CI=true), where the
    README's install provides both and a missing csim backend must fail, not hide.
    """
    from hybridcim.runtime.csim_device import load_library
    from hybridcim.runtime.errors import DeviceNotAvailableError

    def get(preset: str = "sun-mars-256"):
        try:
            return load_library(preset)
        except DeviceNotAvailableError as e:
            if in_ci():
                raise
            pytest.skip(f"csim backend unavailable: {e}")
    return get


@pytest.fixture()
def dual_demo_program(tmp_path) -> Path:
    """A written tiny-64-dual program: a dual-path conv (q = 3: 3 of 8 filters ternary, threshold 8)
    and a plain digital conv (architecture.md §10)."""
    import numpy as np
    from hybridcim.program import write_program
    from hybridcim.program.builder import ProgramBuilder
    from hybridcim.program.dualpath import DualPathParams
    from hybridcim.spec import get_preset
    rng = np.random.default_rng(0)
    b = ProgramBuilder(get_preset("tiny-64-dual"), name="dualdemo")
    x = b.input("image", 3, 6, 6, bits=4)
    w = rng.integers(-8, 8, (8, 3, 3, 3))
    w[5:] = np.clip(w[5:], -1, 1)
    y = b.conv("c1", x, w, [4] * 5 + [0] * 3, [4] * 8, bias=np.zeros(8, int), pad=1, stride=1, dual=DualPathParams(3, 8))
    b.conv("c2", y, rng.integers(-8, 8, (4, 8, 3, 3)), [4] * 4, [4] * 4, bias=np.zeros(4, int), pad=1, stride=1)
    return write_program(b.build(), tmp_path / "dual.cim")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI (CI=true, set by .ci/run) a skipped test fails: the README's install provides
    everything (data, g++, hls4ml headers, torch, brevitas, qonnx), so a skip there hides a test."""
    outcome = yield
    _fail_skip_under_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """The same for a whole module skipped while it is collected (a module-level importorskip)."""
    outcome = yield
    _fail_skip_under_ci(outcome.get_result())


def _fail_skip_under_ci(rep) -> None:
    if in_ci() and rep.skipped and not hasattr(rep, "wasxfail"):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else rep.longrepr
        rep.outcome = "failed"
        rep.longrepr = f"skipped under CI, where every test must run: {reason}"


def _hypothesis_profiles() -> None:
    """CI runs derandomized (reproducible) property tests; locally they explore new seeds."""
    from hypothesis import settings
    settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
    settings.register_profile("dev", deadline=None)
    settings.load_profile("ci" if in_ci() else "dev")


_hypothesis_profiles()
