"""Shipped trained models: ``models/<name>/model.cim`` (+ the exported integer model beside it).

>>> DEFAULT_MODEL
'resnet20-w4a4-p50'
"""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL = "resnet20-w4a4-p50"
PREFERENCE = (DEFAULT_MODEL, "resnet8-w4a4-p50-quick")
"""Shipped models in order of preference: the first one present is the default."""
MODELS_DIR = Path(__file__).resolve().parent


class ModelNotFoundError(FileNotFoundError):
    """Neither a file nor a shipped model of that name exists."""


def available_models() -> list[str]:
    """Names of the shipped models (folders holding model.cim)."""
    return sorted(p.parent.name for p in MODELS_DIR.glob("*/model.cim") if not p.parent.name.startswith("."))


def default_model() -> str:
    """The name of the best shipped model (PREFERENCE order), or DEFAULT_MODEL when none is shipped."""
    have = set(available_models())
    return next((m for m in PREFERENCE if m in have), DEFAULT_MODEL)


def resolve_model(name_or_path: "str | os.PathLike" = DEFAULT_MODEL) -> Path:
    """The ``.cim`` image of a shipped model name, a model folder, or a path to an image.

    Raises ModelNotFoundError naming the model and where it was looked for.
    """
    p = Path(name_or_path).expanduser()
    if p.is_file():
        return p
    if p.is_dir() and (p / "model.cim").is_file():
        return p / "model.cim"
    shipped = MODELS_DIR / str(name_or_path) / "model.cim"
    if "/" not in str(name_or_path) and shipped.is_file():
        return shipped
    have = available_models()
    raise ModelNotFoundError(
        f"model {str(name_or_path)!r} not found: it is not a file, not a folder holding model.cim, and not a "
        f"shipped model ({shipped} does not exist; shipped models: {have or 'none yet'}). Train and compile one "
        f"(hybridcim train / hybridcim compile) or pass the path of a .cim image")
