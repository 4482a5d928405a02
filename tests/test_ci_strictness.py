"""Under CI (CI=true, exported by .ci/run) a skipped test fails instead of hiding; locally it skips."""
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _run(tmp_path, ci: bool):
    (tmp_path / "conftest.py").write_text((TESTS / "conftest.py").read_text())
    (tmp_path / "test_skipping.py").write_text("import pytest\n\ndef test_needs_something():\n"
                                               "    pytest.skip('something is missing')\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": "true"} if ci else {})
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path)


def test_a_skip_fails_under_ci(tmp_path):
    proc = _run(tmp_path, ci=True)
    assert proc.returncode == 1 and "skipped under CI, where every test must run" in proc.stdout


def test_a_module_skipped_at_collection_fails_under_ci(tmp_path):
    (tmp_path / "conftest.py").write_text((TESTS / "conftest.py").read_text())
    (tmp_path / "test_mod.py").write_text("import pytest\n\npytest.importorskip('no_such_package_xyz')\n\n"
                                          "def test_x():\n    pass\n")
    env = os.environ | {"CI": "true"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode != 0 and "skipped under CI" in proc.stdout, proc.stdout


def test_ci_false_is_not_ci(tmp_path):
    (tmp_path / "conftest.py").write_text((TESTS / "conftest.py").read_text())
    (tmp_path / "test_s.py").write_text("import pytest\n\ndef test_s():\n    pytest.skip('x')\n")
    env = os.environ | {"CI": "false"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0 and "1 skipped" in proc.stdout


def test_a_skip_is_a_skip_locally(tmp_path):
    proc = _run(tmp_path, ci=False)
    assert proc.returncode == 0 and "1 skipped" in proc.stdout


def test_ci_script_sets_ci():
    assert "export CI=true" in (TESTS.parent / ".ci" / "run").read_text()
