"""Compile an integer model into a CIM program (ProgramBuilder) — numpy only.

Per conv/fc layer: integer weights and per-filter precision (0 = pruned), column groups
by ``pack_filters`` (paired first-fit decreasing, the same packing the trainer aligned its
pruning units with), the skip index from all-zero (row block × group) units, int32 bias,
requant shifts and residual shifts; pools as such. Filters whose weights are all zero get
precision 0 only if they were pruned in training (precision 0 in the model), so the packing
of the others never shifts. A dual-path layer (integer model version 2) becomes a builder layer
with ``dual=DualPathParams(q, θ)`` whose last F_t filters carry the ternary weights (architecture.md §10).
"""
from __future__ import annotations

import numpy as np

from ..program import Program, ProgramBuilder
from ..program.packing import pack_filters
from ..spec.hardware import HardwarePreset, get_preset
from .integer_model import IntegerModel, IntegerModelError


def compile_model(model: IntegerModel, preset: "str | HardwarePreset | None" = None, packing: str = "paired",
                  name: str | None = None) -> Program:
    """The validated Program of ``model`` for ``preset`` (default: the model's own)."""
    pr = get_preset(preset or model.desc.get("preset", "sun-mars-256"))
    bad = set(int(p) for l in model.layers if l["op"] in ("conv", "fc")
              for p in np.unique(model.array(l["name"], "precision"))) - set(pr.precisions) - {0}
    if bad:
        raise IntegerModelError(f"precisions {sorted(bad)} not in preset {pr.name!r} {pr.precisions}")
    meta = dict(model.desc.get("metadata", {}), classes=model.desc.get("classes"), arch=model.desc.get("arch"),
                logit_exponent=None)
    b = ProgramBuilder(pr, name=name or model.desc.get("name", "model"), metadata=meta)
    inp = model.desc["input"]
    ids = {inp["name"]: b.input(inp["name"], inp["channels"], inp["height"], inp["width"], inp["bits"], inp["exponent"])}
    for l in model.layers:
        n, x = l["name"], ids[l["in"]]
        if l["op"] in ("conv", "fc"):
            w = model.array(n, "weight").astype(np.int64)
            prec = model.array(n, "precision").astype(np.int64)
            kw = dict(bias=model.array(n, "bias").astype(np.int64), packing=packing,
                      groups=pack_filters(prec, pr.group_width, packing))
            if l.get("res") is not None:
                kw.update(res=ids[l["res"]], res_shift=model.array(n, "res_shift").astype(np.int64))
            shift = model.array(n, "shift").astype(np.int64)
            if l.get("dual") is not None:  # dual-path layer (§10.2): the last F_t filters are ternary
                from ..program.dualpath import DualPathParams
                dual = DualPathParams(int(l["dual"]["ratio_eighths"]), int(l["dual"]["bin_threshold"]))
                t = model.array(n, "tern_weight").astype(np.int64)
                w[len(w) - len(t):] = t
                kw["dual"] = dual
            if l["op"] == "fc" and l.get("logits"):
                ids[n] = b.fc(n, x, w, prec, shift, logits=True, out_exponent=int(l["out_exponent"]), **kw)
                meta["logit_exponent"] = int(l["out_exponent"])
            elif l["op"] == "fc":
                ids[n] = b.fc(n, x, w, prec, shift, out_bits=int(l["out_bits"]), out_exponent=int(l["out_exponent"]), **kw)
            else:
                ids[n] = b.conv(n, x, w, prec, shift, stride=int(l["stride"]), pad=int(l["pad"]),
                                out_bits=int(l["out_bits"]), out_exponent=int(l["out_exponent"]),
                                out_signed=bool(l.get("out_signed", False)), **kw)
        elif l["op"] == "maxpool":
            ids[n] = b.maxpool(n, x, int(l["k"]), int(l["stride"]))
        elif l["op"] == "avgpool":
            ids[n] = b.avgpool(n, x, shift=int(l["shift"]), out_bits=int(l["out_bits"]),
                               out_exponent=int(l["out_exponent"]))
        else:
            raise IntegerModelError(f"layer {n!r}: unknown op {l['op']!r}")
    b.metadata = meta
    return b.build(output=ids[model.desc["output"]])
