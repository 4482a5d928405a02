"""Atomic, pickle-free training checkpoints: one safetensors file, JSON in its metadata.

Tensors: ``model/<state_dict key>``, ``optim/<param index>/<state key>``, ``rng/torch``.
Metadata ``{"hybridcim": JSON}``: epoch (completed), optimizer param_groups, config, the
metrics history and anything the trainer adds. Written to a temporary file in the same
folder, fsynced, then ``os.replace``d: a kill never leaves a half-written checkpoint.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

KEY = "hybridcim"
CHECKPOINT = "checkpoint.safetensors"  # its name in a run folder


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


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, meta) of a checkpoint file."""
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()[KEY])
    return load_file(str(path)), meta


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
    """Strictly load the ``model/`` tensors of a checkpoint."""
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")}, strict=True)


def load_optimizer_state(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Restore an optimizer (built over the loaded model's parameters) from a checkpoint."""
    if meta.get("optim_param_groups") is not None:
        state: dict = {}
        for k, v in tensors.items():
            if k.startswith("optim/"):
                _, idx, name = k.split("/", 2)
                state.setdefault(int(idx), {})[name] = v
        for idx, d in meta.get("optim_scalars", {}).items():
            state.setdefault(int(idx), {}).update(d)
        optimizer.load_state_dict({"state": state, "param_groups": meta["optim_param_groups"]})
