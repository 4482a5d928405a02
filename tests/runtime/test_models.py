"""hybridcim.models: default model name and resolution of names and paths."""
import pytest

from hybridcim.models import (DEFAULT_MODEL, MODELS_DIR, PREFERENCE, ModelNotFoundError, available_models,
                              default_model, resolve_model)


def test_default_model_name():
    assert DEFAULT_MODEL == "resnet20-w4a4-p50"


def test_default_model_is_the_best_shipped_one():
    shipped = [m for m in PREFERENCE if m in available_models()]
    assert default_model() == (shipped[0] if shipped else DEFAULT_MODEL)
    assert resolve_model(default_model()).is_file() or not shipped


def test_paths_and_folders(tmp_path):
    f = tmp_path / "m.cim"
    f.write_bytes(b"x")
    assert resolve_model(f) == f
    d = tmp_path / "folder"
    d.mkdir()
    (d / "model.cim").write_bytes(b"x")
    assert resolve_model(d) == d / "model.cim"


def test_missing_model_is_named():
    if (MODELS_DIR / DEFAULT_MODEL / "model.cim").is_file():
        assert resolve_model(DEFAULT_MODEL).name == "model.cim"
        return
    with pytest.raises(ModelNotFoundError, match=f"model '{DEFAULT_MODEL}' not found.*shipped models"):
        resolve_model(DEFAULT_MODEL)
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        resolve_model("no-such-model")
