"""Export a trained CIMNet: the integer model (npz + JSON, numpy-readable) and QONNX.

Integer model (``integer_model.json`` + ``integer_model.npz``), format
``hybridcim-integer-model`` version 1 — everything the compiler and the reference need:

JSON: ``{"format", "version", "name", "arch", "preset", "classes", "act_bits",
"input": {"name", "channels", "height", "width", "bits": 8, "exponent": 8},
"layers": [...], "output": name, "metadata": {...}}``; each layer has ``name``, ``op``
(conv | fc | maxpool | avgpool), ``in``, and per op:
conv/fc: ``res`` (name or null), ``k``, ``stride``, ``pad``, ``filters``, ``logits``,
``in_exponent``, ``out_bits``, ``out_signed``, ``out_exponent`` (for logits: the logit exponent, shift 0);
maxpool: ``k``, ``stride``; avgpool: ``shift`` (pool_shift), ``out_bits``, ``out_exponent``.

NPZ (no pickles) per conv/fc layer ``L``: ``L/weight`` int8 (F, C, k, k) codes,
``L/precision`` uint8 (F,) (0 = pruned), ``L/weight_exponent`` int8 (F,),
``L/bias`` int32 (F,), ``L/shift`` int8 (F,) = e_w + e_in - e_out,
``L/res_shift`` int8 (F,) = e_w + e_in - e_res (zeros without residual).

Version 2 (only when the model has dual-path layers, architecture.md §10): such a conv/fc layer has
``"dual": {"ratio_eighths": q, "bin_threshold": θ}`` and ``L/tern_weight`` int8 (F_t, C, k, k) in
{-1, 0, 1}, the ternary weights of its last F_t = ⌊F·q/8⌋ filters, which have precision 0 and zero
``L/weight`` rows; their ``weight_exponent``, ``bias``, ``shift`` and ``res_shift`` follow the formulas
above with the binary input b = [x ≥ θ] taken at the input's scale 2^-e_in. Its QONNX file exports the
dual path as standard nodes (qonnx_export.py).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import torch

from .models import INPUT, CIMNet
from .quantizers import exponent_of

FORMAT = "hybridcim-integer-model"
VERSION = 1
VERSION_DUAL = 2


class ExportError(ValueError):
    """The trained model violates a constraint of the integer semantics (names the layer)."""


def eval_trace(model: CIMNet) -> dict:
    """Eval-mode trace on a zero image: name -> (value, scale); scales are data independent."""
    was = model.training
    model.eval()
    trace: dict = {}
    with torch.no_grad():
        model(torch.zeros(1, 3, model.image_hw, model.image_hw, device=next(model.parameters()).device), trace=trace)
    model.train(was)
    return trace


def integer_model(model: CIMNet, preset: str = "sun-mars-256", name: str | None = None,
                  metadata: dict | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """(JSON description, arrays) of the model's exact integer semantics."""
    trace = eval_trace(model)
    hw = model.image_hw
    desc = {"format": FORMAT, "version": VERSION, "name": name or model.arch, "arch": model.arch, "preset": preset,
            "classes": model.num_classes, "act_bits": model.act_bits,
            "input": {"name": INPUT, "channels": 3, "height": hw, "width": hw, "bits": 8,
                      "exponent": exponent_of(trace[INPUT][1])},
            "layers": [], "output": model.nodes[-1].name, "metadata": dict(metadata or {})}
    arrays: dict[str, np.ndarray] = {}
    for n in model.nodes:
        e_in = exponent_of(trace[n.inp][1])
        d = {"name": n.name, "op": n.op, "in": n.inp}
        if n.op in ("conv", "fc"):
            layer = model.cim[n.name]
            p = layer.integer_params(trace[n.inp][1], trace[n.res][1] if n.res is not None else None)
            p = {k: v.cpu() for k, v in p.items()}
            e_w = p["exponent"].numpy()
            prec = p["precision"].numpy()
            if n.logits:
                live = e_w[prec > 0]
                if live.size and (live != live[0]).any():
                    raise ExportError(f"layer {n.name!r}: logits layer needs one weight exponent, got {sorted(set(live.tolist()))}")
                e_w = np.full_like(e_w, live[0] if live.size else 0)
                e_out = e_in + int(e_w[0])
                shift = np.zeros_like(e_w)
                out_bits = 32
            else:
                e_out = exponent_of(trace[n.name][1])
                shift = e_w + e_in - e_out
                out_bits = n.bits
            res_shift = np.zeros_like(e_w)
            if n.res is not None:
                res_shift = e_w + e_in - exponent_of(trace[n.res][1])
                if res_shift.min() < 0 or res_shift.max() > 31:
                    raise ExportError(f"layer {n.name!r}: res_shift {res_shift.min()}..{res_shift.max()} outside 0..31 "
                                      f"(residual scale finer than the accumulator's)")
            if np.abs(shift).max(initial=0) > 31:
                raise ExportError(f"layer {n.name!r}: requant shift outside -31..31")
            codes = p["codes"].numpy()
            if codes.min(initial=0) < -128 or codes.max(initial=0) > 127:
                raise ExportError(f"layer {n.name!r}: weight codes exceed int8")
            d.update(res=n.res, k=layer.k, stride=layer.stride, pad=layer.pad, filters=layer.cout, logits=n.logits,
                     in_exponent=e_in, out_bits=out_bits, out_exponent=int(e_out), out_signed=bool(n.signed or n.logits))
            arrays[f"{n.name}/weight"] = codes.astype(np.int8)
            arrays[f"{n.name}/precision"] = prec.astype(np.uint8)
            arrays[f"{n.name}/weight_exponent"] = e_w.astype(np.int8)
            arrays[f"{n.name}/bias"] = p["bias_codes"].numpy().astype(np.int32)
            arrays[f"{n.name}/shift"] = shift.astype(np.int8)
            arrays[f"{n.name}/res_shift"] = res_shift.astype(np.int8)
            if "tern_codes" in p:  # a dual-path layer (dualpath.DualConv2d, architecture.md §10.2): version 2
                d["dual"] = {"ratio_eighths": int(p["ratio"]), "bin_threshold": int(p["bin_threshold"])}
                arrays[f"{n.name}/tern_weight"] = p["tern_codes"].numpy().astype(np.int8)
                desc["version"] = VERSION_DUAL
        elif n.op == "maxpool":
            d.update(k=n.k, stride=n.stride)
        elif n.op == "avgpool":
            v = trace[n.inp][0]
            area = v.shape[2] * v.shape[3]
            if area & (area - 1):
                raise ExportError(f"layer {n.name!r}: pooled area {area} is not a power of two")
            e_out = exponent_of(trace[n.name][1])
            d.update(shift=int(math.log2(area)) + e_in - e_out, out_bits=n.bits, out_exponent=e_out)
        desc["layers"].append(d)
    return desc, arrays


def save_integer_model(desc: dict, arrays: dict[str, np.ndarray], out_dir: str | os.PathLike) -> Path:
    """Write integer_model.json + integer_model.npz atomically (tmp + os.replace); returns the JSON path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp_npz = out / ".integer_model.tmp.npz"
    with open(tmp_npz, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp_npz, out / "integer_model.npz")
    tmp_json = out / ".integer_model.json.tmp"
    tmp_json.write_text(json.dumps(desc, indent=1))
    os.replace(tmp_json, out / "integer_model.json")
    return out / "integer_model.json"


def export_model(model: CIMNet, out_dir: str | os.PathLike, preset: str = "sun-mars-256", name: str | None = None,
                 metadata: dict | None = None, qonnx: bool = True) -> dict:
    """Integer model + (optionally) QONNX ``model.onnx`` into ``out_dir``; returns the description."""
    desc, arrays = integer_model(model, preset, name, metadata)
    save_integer_model(desc, arrays, out_dir)
    if qonnx:
        from .qonnx_export import export_qonnx_model
        export_qonnx_model(Path(out_dir), Path(out_dir) / "model.onnx")
    return desc


def model_from_checkpoint(path: str | os.PathLike) -> tuple[torch.nn.Module, dict]:
    """(model, checkpoint metadata) rebuilt from the config stored in a training checkpoint: a CIMNet, or a
    FloatResNet for a float teacher (eval mode either way)."""
    from .checkpoint import load_model_state, read_checkpoint, run_checkpoint
    from .config import config_from_dict
    from .models import build_model
    tensors, meta = read_checkpoint(run_checkpoint(path))
    cfg = config_from_dict(meta["config"])
    model = build_model(cfg.model.arch, **cfg.model_kwargs())
    load_model_state(model, tensors)
    model.eval()
    return model, meta


def export_checkpoint(path: str | os.PathLike, out_dir: str | os.PathLike, qonnx: bool = True) -> dict:
    """Export a training checkpoint (file or run folder) to ``out_dir``."""
    model, meta = model_from_checkpoint(path)
    cfg = meta["config"]
    if not isinstance(model, CIMNet):
        raise ValueError(f"{path}: model.arch={cfg['model']['arch']!r} is a float model (a distillation teacher); "
                         "it has no CIM integer form to export or compile")
    return export_model(model, out_dir, cfg["preset"], cfg["name"],
                        {"config": cfg, "epoch": meta["epoch"], "final": (meta.get("history") or [None])[-1]}, qonnx)
