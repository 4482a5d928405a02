"""Read the exported integer model (``integer_model.json`` + ``.npz``; numpy only).

The format is documented in ``hybridcim.train.export`` (and docs in the report); this
module only loads and checks it, so the compiler runs without torch.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT = "hybridcim-integer-model"
VERSION = 1
ARRAYS = ("weight", "precision", "weight_exponent", "bias", "shift", "res_shift")


class IntegerModelError(ValueError):
    """A malformed integer model (names the file and the layer)."""


@dataclass
class IntegerModel:
    """JSON description + arrays keyed ``layer/field``."""

    desc: dict
    arrays: dict[str, np.ndarray]
    path: Path | None = None

    @property
    def layers(self) -> list[dict]:
        return self.desc["layers"]

    def array(self, layer: str, field: str) -> np.ndarray:
        return self.arrays[f"{layer}/{field}"]


def find_model_files(path: str | Path) -> Path:
    """``integer_model.json`` given itself or its folder (a run folder's ``model/`` is searched too)."""
    p = Path(path)
    for cand in (p, p / "integer_model.json", p / "model" / "integer_model.json"):
        if cand.is_file() and cand.name.endswith(".json"):
            return cand
    raise FileNotFoundError(f"no integer_model.json at {p} (give the exported model folder)")


def load_integer_model(path: str | Path) -> IntegerModel:
    """Load and check an integer model folder or JSON file."""
    jp = find_model_files(path)
    desc = json.loads(jp.read_text())
    if desc.get("format") != FORMAT or desc.get("version") != VERSION:
        raise IntegerModelError(f"{jp}: not a {FORMAT} v{VERSION} file (format={desc.get('format')!r}, "
                                f"version={desc.get('version')!r})")
    npz = jp.with_suffix(".npz")
    with np.load(npz, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    names = set()
    for layer in desc["layers"]:
        name = layer["name"]
        if name in names or name == desc["input"]["name"]:
            raise IntegerModelError(f"{jp}: duplicate layer name {name!r}")
        for ref in (layer.get("in"), layer.get("res")):
            if ref is not None and ref not in names and ref != desc["input"]["name"]:
                raise IntegerModelError(f"{jp}: layer {name!r} reads {ref!r}, which is not produced before it")
        names.add(name)
        if layer["op"] in ("conv", "fc"):
            f = int(layer["filters"])
            for a in ARRAYS:
                key = f"{name}/{a}"
                if key not in arrays:
                    raise IntegerModelError(f"{npz}: missing array {key!r}")
                if arrays[key].shape[0] != f:
                    raise IntegerModelError(f"{npz}: {key} has {arrays[key].shape[0]} filters, expected {f}")
    return IntegerModel(desc, arrays, jp)
