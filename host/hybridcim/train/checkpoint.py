"""Atomic, pickle-free training checkpoints: one safetensors file, JSON in its metadata.

Tensors: ``model/<state_dict key>``, ``optim/<param index>/<state key>``, ``rng/torch``.
Metadata ``{"hybridcim": JSON}``: epoch (completed), optimizer param_groups, config, the
metrics history and anything the trainer adds. Written to a temporary file in the same
folder, fsynced, then ``os.replace``d: a kill never leaves a half-written checkpoint.

Reading one is reading an input: only a regular file of at most :data:`CHECKPOINT_MAX_BYTES`,
whose safetensors header (at most :data:`HEADER_MAX_BYTES`) is parsed and checked before any
tensor is mapped, and whose metadata must hold ``config`` (an object) and ``epoch`` (an
integer). A truncated, corrupted or hostile file raises :class:`CheckpointError` naming the
file (FileNotFoundError when missing); the work is linear in the file's size (no pickles).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

KEY = "hybridcim"
CHECKPOINT = "checkpoint.safetensors"  # its name in a run folder
CHECKPOINT_MAX_BYTES = 4 << 30
HEADER_MAX_BYTES = 16 << 20
"""Caps on a checkpoint file and on its JSON header (ResNet-20's is about 3 MB and 40 KB)."""


class CheckpointError(ValueError):
    """A checkpoint file that is not a readable hybridcim checkpoint, or does not fit the model."""


def run_checkpoint(path: str | os.PathLike) -> Path:
    """A run folder's checkpoint, or the checkpoint file itself; names what is missing."""
    p = Path(path)
    p = p / CHECKPOINT if p.is_dir() else p
    if not p.is_file():
        raise FileNotFoundError(f"no checkpoint at {p}")
    return p


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                    meta: dict) -> Path:
    """Write model + optimizer + torch RNG + ``meta`` atomically to ``path``."""
    path = Path(path)
    tensors = {f"model/{k}": v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    groups = None
    if optimizer is not None:
        sd = optimizer.state_dict()
        for idx, st in sd["state"].items():
            for k, v in st.items():
                if isinstance(v, torch.Tensor):
                    tensors[f"optim/{idx}/{k}"] = v.detach().cpu().contiguous().clone()
                else:
                    meta.setdefault("optim_scalars", {}).setdefault(str(idx), {})[k] = v
        groups = sd["param_groups"]
    tensors["rng/torch"] = torch.get_rng_state()
    meta = dict(meta, optim_param_groups=groups)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata={KEY: json.dumps(meta)})
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def _check_header(path: Path) -> dict:
    """The checkpoint's metadata, after checking the file and its safetensors header."""
    import stat
    import struct
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no checkpoint at {path}") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read ({e.strerror or e})") from None
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{path}: not a regular file")
    if st.st_size > CHECKPOINT_MAX_BYTES:
        raise CheckpointError(f"{path}: {st.st_size:,} bytes, over the {CHECKPOINT_MAX_BYTES:,}-byte limit")
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: truncated ({st.st_size} bytes): not a safetensors checkpoint")
        (n,) = struct.unpack("<Q", head)
        if n > HEADER_MAX_BYTES or 8 + n > st.st_size:
            raise CheckpointError(f"{path}: header of {n:,} bytes does not fit the file ({st.st_size:,} bytes): "
                                  "truncated or not a safetensors checkpoint")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
        meta_text = header["__metadata__"][KEY] if isinstance(header, dict) else None
        meta = json.loads(meta_text) if isinstance(meta_text, str) else None
    except (UnicodeDecodeError, ValueError, RecursionError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: not a hybridcim checkpoint (header: {type(e).__name__})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: not a hybridcim checkpoint (no {KEY!r} metadata object)")
    if not isinstance(meta.get("config"), dict) or type(meta.get("epoch")) is not int or meta["epoch"] < 0:
        raise CheckpointError(f"{path}: checkpoint metadata needs 'config' (an object) and 'epoch' (an integer >= 0)")
    for key, kind in (("history", list), ("optim_param_groups", (list, type(None))), ("optim_scalars", dict)):
        if key in meta and not isinstance(meta[key], kind):
            raise CheckpointError(f"{path}: checkpoint metadata {key!r} has the wrong type ({type(meta[key]).__name__})")
    return meta


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, meta) of a checkpoint file; CheckpointError on a bad file (module docstring)."""
    from safetensors import SafetensorError
    path = Path(path)
    meta = _check_header(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: corrupt checkpoint ({' '.join(str(e).split())[:160]})") from None
    rng = tensors.get("rng/torch")
    if rng is not None and (rng.dtype != torch.uint8 or rng.ndim != 1):
        raise CheckpointError(f"{path}: rng/torch must be a uint8 vector, got {rng.dtype} {tuple(rng.shape)}")
    return tensors, meta


def load_checkpoint(path: str | os.PathLike, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None = None, restore_rng: bool = True) -> dict:
    """Restore model (strict), optimizer and RNG from ``path``; returns the metadata.

    Brevitas replaces some Parameter objects (learned scales) when a state dict is loaded,
    so an optimizer must be built *after* the model is loaded: use :func:`load_model_state`,
    build the optimizer, then :func:`load_optimizer_state` (this function does all three
    only when ``optimizer`` is None or was built after an earlier load).
    """
    tensors, meta = read_checkpoint(path)
    load_model_state(model, tensors)
    if optimizer is not None:
        load_optimizer_state(optimizer, tensors, meta)
    if restore_rng and "rng/torch" in tensors:
        torch.set_rng_state(tensors["rng/torch"])
    return meta


def load_model_state(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Strictly load the ``model/`` tensors of a checkpoint (CheckpointError when they do not fit)."""
    try:
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")}, strict=True)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        raise CheckpointError(f"checkpoint does not fit the model: {' '.join(lines[1:3] or lines)[:300]}") from None


def load_optimizer_state(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Restore an optimizer (built over the loaded model's parameters) from a checkpoint."""
    if meta.get("optim_param_groups") is not None:
        state: dict = {}
        try:
            for k, v in tensors.items():
                if k.startswith("optim/"):
                    _, idx, name = k.split("/", 2)
                    state.setdefault(int(idx), {})[name] = v
            for idx, d in meta.get("optim_scalars", {}).items():
                state.setdefault(int(idx), {}).update(d)
            optimizer.load_state_dict({"state": state, "param_groups": meta["optim_param_groups"]})
        except (ValueError, TypeError, KeyError, AttributeError, RuntimeError) as e:
            raise CheckpointError(f"checkpoint's optimizer state does not fit: {type(e).__name__}: "
                                  f"{' '.join(str(e).split())[:200]}") from None
