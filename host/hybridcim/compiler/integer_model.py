"""Read the exported integer model (``integer_model.json`` + ``.npz``; numpy only).

The format is documented in ``hybridcim.train.export``; this module only loads and checks it,
so the compiler runs without torch. A model is an input a user hands over: every defect of
either file (missing, not a regular file, over its size cap, truncated, not UTF-8/JSON/zip,
pickled or non-integer arrays, a field of the wrong type or range, arrays whose shapes
disagree with the JSON) raises :class:`IntegerModelError` (or FileNotFoundError for a missing
file) naming the file and the field. Time bound: reading is linear in the files' sizes, which
are capped (:data:`JSON_MAX_BYTES`, :data:`NPZ_MAX_BYTES` uncompressed), so a hostile model is
refused within about a second on a laptop, before any array is expanded.
"""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT = "hybridcim-integer-model"
VERSION = 1
VERSION_DUAL = 2
"""Version 2: a model with dual-path layers (a layer's ``dual`` object and ``L/tern_weight``, train/export.py)."""
ARRAYS = ("weight", "precision", "weight_exponent", "bias", "shift", "res_shift")
JSON_MAX_BYTES = 16 << 20
NPZ_MAX_BYTES = 256 << 20
"""Caps on integer_model.json and on the npz (its compressed and its total uncompressed size)."""
MAX_LAYERS = 4096
OPS = ("conv", "fc", "maxpool", "avgpool")
# per-op integer fields: (name, lo, hi)
_INT_FIELDS = {
    "conv": (("k", 1, 255), ("stride", 1, 255), ("pad", 0, 255), ("filters", 1, 65535), ("out_bits", 1, 32),
             ("out_exponent", -64, 64)),
    "maxpool": (("k", 1, 255), ("stride", 1, 255)),
    "avgpool": (("shift", -64, 64), ("out_bits", 1, 32), ("out_exponent", -64, 64)),
}
_INT_FIELDS["fc"] = _INT_FIELDS["conv"]
_DTYPES = {"weight": "i", "precision": "u", "weight_exponent": "i", "bias": "i", "shift": "i", "res_shift": "i"}


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
        if cand.name.endswith(".json") and (cand.exists() or cand.is_symlink()) and not cand.is_dir():
            return cand  # a FIFO, device or dangling link is refused when read, naming itself
    raise FileNotFoundError(f"no integer_model.json at {p} (give the exported model folder)")


def _read(path: Path, cap: int) -> bytes:
    from ..fileio import FileError, read_regular_file
    try:
        return read_regular_file(path, cap, "integer model file")
    except FileError as e:
        raise IntegerModelError(str(e)) from None


def _int(where: str, v, lo: int, hi: int) -> int:
    if type(v) is not int or not lo <= v <= hi:
        shown = repr(v)[:40] if not isinstance(v, (dict, list)) else type(v).__name__
        raise IntegerModelError(f"{where} must be an integer in {lo}..{hi}, got {shown}")
    return v


def _name(where: str, v) -> str:
    if not isinstance(v, str) or not 1 <= len(v) <= 200:
        raise IntegerModelError(f"{where} must be a name (a string of 1..200 characters), got {repr(v)[:40]}")
    return v


def check_desc(desc, where: str = "integer_model.json") -> dict:
    """Check the JSON description's schema (the fields train/export.py writes); returns it."""
    if not isinstance(desc, dict):
        raise IntegerModelError(f"{where}: a JSON {type(desc).__name__}, not an object")
    if desc.get("format") != FORMAT or desc.get("version") not in (VERSION, VERSION_DUAL):
        raise IntegerModelError(f"{where}: not a {FORMAT} v{VERSION}/v{VERSION_DUAL} file (format={repr(desc.get('format'))[:40]}, "
                                f"version={repr(desc.get('version'))[:20]})")
    for key, kind in (("name", str), ("arch", str), ("preset", str), ("metadata", dict)):
        if key in desc and not isinstance(desc[key], kind):
            raise IntegerModelError(f"{where}: field {key!r} must be a {kind.__name__}, got {type(desc[key]).__name__}")
    if "classes" in desc:
        _int(f"{where}: field 'classes'", desc["classes"], 1, 65535)
    inp = desc.get("input")
    if not isinstance(inp, dict):
        raise IntegerModelError(f"{where}: field 'input' must be an object")
    _name(f"{where}: input.name", inp.get("name"))
    for k, lo, hi in (("channels", 1, 4096), ("height", 1, 4096), ("width", 1, 4096), ("bits", 1, 16),
                      ("exponent", -64, 64)):
        _int(f"{where}: input.{k}", inp.get(k), lo, hi)
    layers = desc.get("layers")
    if not isinstance(layers, list) or not 1 <= len(layers) <= MAX_LAYERS:
        raise IntegerModelError(f"{where}: field 'layers' must be a list of 1..{MAX_LAYERS} layers")
    names = {inp["name"]}
    for i, layer in enumerate(layers):
        at = f"{where}: layers[{i}]"
        if not isinstance(layer, dict):
            raise IntegerModelError(f"{at} must be an object, got {type(layer).__name__}")
        name = _name(f"{at}.name", layer.get("name"))
        at = f"{where}: layer {name!r}"
        if name in names:
            raise IntegerModelError(f"{where}: duplicate layer name {name!r}")
        if layer.get("op") not in OPS:
            raise IntegerModelError(f"{at}: op must be one of {', '.join(OPS)}, got {repr(layer.get('op'))[:40]}")
        for ref_key in ("in", "res"):
            ref = layer.get(ref_key)
            if ref_key == "in" or ref is not None:
                if not isinstance(ref, str) or ref not in names:
                    raise IntegerModelError(f"{at} reads {repr(ref)[:60]}, which is not produced before it")
        for k, lo, hi in _INT_FIELDS[layer["op"]]:
            _int(f"{at}: {k}", layer.get(k), lo, hi)
        for k in ("logits", "out_signed"):
            if k in layer and not isinstance(layer[k], bool):
                raise IntegerModelError(f"{at}: {k} must be true or false, got {repr(layer[k])[:20]}")
        if "dual" in layer:
            dual = layer["dual"]
            if desc["version"] != VERSION_DUAL or layer["op"] not in ("conv", "fc") or layer.get("logits"):
                raise IntegerModelError(f"{at}: a dual-path layer must be a non-logits conv/fc of a "
                                        f"version-{VERSION_DUAL} model")
            if not isinstance(dual, dict) or set(dual) != {"ratio_eighths", "bin_threshold"}:
                raise IntegerModelError(f"{at}: dual must be an object with ratio_eighths and bin_threshold")
            _int(f"{at}: dual.ratio_eighths", dual["ratio_eighths"], 0, 8)
            _int(f"{at}: dual.bin_threshold", dual["bin_threshold"], 1, 255)
        names.add(name)
    out = desc.get("output")
    if not isinstance(out, str) or out not in names - {inp["name"]}:
        raise IntegerModelError(f"{where}: field 'output' must name a layer, got {repr(desc.get('output'))[:60]}")
    return desc


def _load_npz(npz: Path) -> dict[str, np.ndarray]:
    raw = _read(npz, NPZ_MAX_BYTES)
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            total = sum(i.file_size for i in zf.infolist())
            if total > NPZ_MAX_BYTES:
                raise IntegerModelError(f"{npz}: arrays of {total:,} bytes uncompressed, over the "
                                        f"{NPZ_MAX_BYTES:,}-byte limit")
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except IntegerModelError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, NotImplementedError,
            RuntimeError, MemoryError) as e:  # truncated, corrupted, pickled (allow_pickle=False) arrays
        raise IntegerModelError(f"{npz}: not a readable npz of arrays ({type(e).__name__}: {str(e)[:120]})") from None


def load_integer_model(path: str | Path) -> IntegerModel:
    """Load and check an integer model folder or JSON file (see the module docstring for the bounds)."""
    jp = find_model_files(path)
    try:
        desc = json.loads(_read(jp, JSON_MAX_BYTES).decode("utf-8"))
    except UnicodeDecodeError as e:
        raise IntegerModelError(f"{jp}: not UTF-8 text (byte {e.start})") from None
    except RecursionError:
        raise IntegerModelError(f"{jp}: not valid JSON (nested too deep)") from None
    except ValueError as e:
        raise IntegerModelError(f"{jp}: not valid JSON ({str(e)[:120]})") from None
    check_desc(desc, str(jp))
    npz = jp.with_suffix(".npz")
    if not npz.exists():
        raise FileNotFoundError(f"{npz} is missing (the arrays of {jp.name})")
    arrays = _load_npz(npz)
    for layer in desc["layers"]:
        if layer["op"] not in ("conv", "fc"):
            continue
        name, f = layer["name"], layer["filters"]
        for a in ARRAYS:
            key = f"{name}/{a}"
            if key not in arrays:
                raise IntegerModelError(f"{npz}: missing array {key!r}")
            arr = arrays[key]
            if arr.dtype.kind not in _DTYPES[a] + ("i" if _DTYPES[a] == "u" else "") or arr.dtype.itemsize > 4:
                raise IntegerModelError(f"{npz}: {key} must be an integer array of at most 32 bits, got {arr.dtype}")
            want_ndim = 4 if a == "weight" else 1
            if arr.ndim != want_ndim or arr.shape[0] != f:
                raise IntegerModelError(f"{npz}: {key} has shape {arr.shape}, expected {f} filters"
                                        f"{' (F, C, k, k)' if a == 'weight' else ''}")
        w = arrays[f"{name}/weight"]
        if w.shape[2:] != (layer["k"], layer["k"]):
            raise IntegerModelError(f"{npz}: {name}/weight has shape {w.shape}, expected kernel {layer['k']}x{layer['k']}")
        prec = arrays[f"{name}/precision"].astype(np.int64)
        if prec.min(initial=0) < 0 or prec.max(initial=0) > 8:
            raise IntegerModelError(f"{npz}: {name}/precision must be 0..8 bits, got {prec.min()}..{prec.max()}")
        wf = w.reshape(len(w), -1).astype(np.int64)
        half = np.where(prec > 0, 1 << np.maximum(prec - 1, 0), 0)  # int-p range [-half, half - 1]; 0: pruned
        # a precision outside the preset's set is the compiler's to report (it names the preset)
        mine = np.isin(prec, [0, *_preset_precisions(desc.get("preset"))])
        bad = np.flatnonzero(mine & ((wf.min(axis=1, initial=0) < -half) | (wf.max(axis=1, initial=0) > np.maximum(half - 1, 0))))
        if bad.size:
            raise IntegerModelError(f"{npz}: {name}/weight filter {int(bad[0])} exceeds its {int(prec[bad[0]])}-bit range")
        if "dual" in layer:
            _check_tern(npz, layer, arrays, prec)
    _check_shapes(desc, arrays, str(jp))
    return IntegerModel(desc, arrays, jp)


def _check_tern(npz: Path, layer: dict, arrays: dict[str, np.ndarray], prec: np.ndarray) -> None:
    """A dual-path layer's ternary weights: (F_t, C, k, k) in {-1, 0, 1}; its last F_t filters have precision 0."""
    name, f = layer["name"], layer["filters"]
    ft = f * layer["dual"]["ratio_eighths"] // 8
    key = f"{name}/tern_weight"
    t = arrays.get(key)
    if t is None:
        raise IntegerModelError(f"{npz}: missing array {key!r} (layer {name!r} is dual-path)")
    want = (ft,) + arrays[f"{name}/weight"].shape[1:]
    if t.dtype.kind != "i" or t.dtype.itemsize > 4 or t.shape != want:
        raise IntegerModelError(f"{npz}: {key} must be an integer array of shape {want}, got {t.dtype} {t.shape}")
    if t.size and (t.min() < -1 or t.max() > 1):
        raise IntegerModelError(f"{npz}: {key} has a ternary weight outside {{-1, 0, 1}} ([{t.min()}, {t.max()}])")
    if ft and prec[f - ft:].any():
        raise IntegerModelError(f"{npz}: {name}/precision must be 0 for the {ft} ternary-path filters {f - ft}..{f - 1}")


def _preset_precisions(name) -> tuple[int, ...]:
    """The weight precisions of the model's preset (all of 1..8 when it names none we know)."""
    from ..spec.hardware import PRESETS
    p = PRESETS.get(name) if isinstance(name, str) else None
    return p.precisions if p is not None else tuple(range(1, 9))


def _check_shapes(desc: dict, arrays: dict[str, np.ndarray], where: str) -> None:
    """Propagate (channels, height, width) through the layers as the compiler will: a weight whose
    input channels, an fc kernel that does not cover its input, an empty output or a residual of
    another shape is refused here, naming the layer."""
    inp = desc["input"]
    shapes = {inp["name"]: (inp["channels"], inp["height"], inp["width"])}
    for layer in desc["layers"]:
        name, op = layer["name"], layer["op"]
        c, h, w = shapes[layer["in"]]
        if op in ("conv", "fc"):
            wc = arrays[f"{name}/weight"].shape[1]
            if wc != c:
                raise IntegerModelError(f"{where}: layer {name!r} has weights for {wc} input channels, "
                                        f"its input {layer['in']!r} has {c}")
            k, s, p = layer["k"], layer["stride"], layer["pad"]
            if op == "fc" and (k, k, s, p) != (h, w, 1, 0):
                raise IntegerModelError(f"{where}: fc layer {name!r} (k {k}, stride {s}, pad {p}) must cover its "
                                        f"{h}x{w} input with stride 1 and no padding")
            out = (layer["filters"], (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
        elif op == "maxpool":
            k, s = layer["k"], layer["stride"]
            out = (c, (h - k) // s + 1, (w - k) // s + 1)
        else:  # avgpool: global
            out = (c, 1, 1)
        if out[1] < 1 or out[2] < 1:
            raise IntegerModelError(f"{where}: layer {name!r} has an empty {out[1]}x{out[2]} output")
        if layer.get("res") is not None and shapes[layer["res"]] != out:
            raise IntegerModelError(f"{where}: layer {name!r} adds residual {layer['res']!r} of shape "
                                    f"{shapes[layer['res']]} to its output of shape {out}")
        shapes[name] = out
