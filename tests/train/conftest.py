"""tests/train needs torch + brevitas (the [train] extra); without them these tests are not collected."""
import importlib.util

if importlib.util.find_spec("torch") is None or importlib.util.find_spec("brevitas") is None:
    collect_ignore_glob = ["test_*.py", "small_models.py"]
