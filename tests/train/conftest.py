"""tests/train needs torch + brevitas (the [train] extra); without them these tests are not
collected, except under CI (CI=true), where the README's install provides both."""
import importlib.util
import os

if importlib.util.find_spec("torch") is None or importlib.util.find_spec("brevitas") is None:
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        raise RuntimeError("CI: torch and brevitas must be installed (pip install -e '.[all]'); tests/train would be hidden")
    collect_ignore_glob = ["test_*.py", "small_models.py"]
