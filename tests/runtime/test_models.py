"""hybridcim.models: default model name and resolution of names and paths."""
import pytest

from hybridcim.models import (DEFAULT_MODEL, MODELS_DIR, PREFERENCE, ModelNotFoundError, available_models,
                              default_model, resolve_model)


def test_default_model_is_the_best_shipped_one(tmp_path, monkeypatch):
    """The first of PREFERENCE that has a model.cim, judged on a models folder built here."""
    import hybridcim.models as models
    for name in ("resnet8-w4a4-p50-quick", "other", ".other.old", ".other.tmp123"):  # dot-folders: ship's own
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.cim").write_bytes(b"x")
    (tmp_path / DEFAULT_MODEL / "training").mkdir(parents=True)  # training state only: not shipped
    monkeypatch.setattr(models, "MODELS_DIR", tmp_path)
    assert PREFERENCE[0] == DEFAULT_MODEL == "resnet20-w4a4-p50"
    assert sorted(models.available_models()) == ["other", "resnet8-w4a4-p50-quick"]
    assert models.default_model() == "resnet8-w4a4-p50-quick"
    (tmp_path / DEFAULT_MODEL / "model.cim").write_bytes(b"x")
    assert models.default_model() == DEFAULT_MODEL


def test_paths_and_folders(tmp_path):
    f = tmp_path / "m.cim"
    f.write_bytes(b"x")
    assert resolve_model(f) == f
    d = tmp_path / "folder"
    d.mkdir()
    (d / "model.cim").write_bytes(b"x")
    assert resolve_model(d) == d / "model.cim"


def test_missing_model_is_named():
    with pytest.raises(ModelNotFoundError, match="model 'no-such-model' not found.*shipped models"):
        resolve_model("no-such-model")
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        resolve_model("no-such-model")


def test_ship_refuses_a_run_inside_the_folder_it_replaces(tmp_path):
    from hybridcim.models.packaging import ship
    run = tmp_path / "models" / "m" / "training"
    run.mkdir(parents=True)
    with pytest.raises(ValueError, match="inside .*which shipping replaces"):
        ship(run, "m", tmp_path / "config.yaml", tmp_path, models_dir=tmp_path / "models")
    assert run.is_dir()
