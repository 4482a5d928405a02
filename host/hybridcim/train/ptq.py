"""Post-training quantization: a CIM-aware ResNet initialized from a trained float ResNet.

:func:`cim_state_from_float` maps the state of a float teacher (float_models.FloatResNet:
``stem.0`` conv + ``stem.1`` BN, ``blocks.i.conv1/bn1/conv2/bn2``, ``blocks.i.short.0/1``,
``fc``) onto the layer names of models.resnet (``cim.stem``, ``cim.s{s}b{b}_conv1``, ...,
``cim.fc``): the float weights, the BN affine parameters and running statistics. The
quantizers, per-filter precision buffers (8 bits unless assigned), masks (all kept) and the
activation scales are the CIM model's own: the activation scales are calibrated from
runtime statistics on training images by the first ``model.calib_steps`` training steps,
which also re-estimate the BN statistics of the quantized network (BN calibration). In a
dual-path conv (dualpath.DualConv2d) the ternary path starts from the same float filters and
BN affine parameters (its BN statistics are its own: its binary input is another tensor). A
fine-tune config (``init_from:`` a float checkpoint) runs this way through the trainer;
with a zero learning rate that is plain PTQ.
"""
from __future__ import annotations

import torch


def float_to_cim_names(blocks=(3, 3, 3)) -> dict[str, str]:
    """{float module prefix: CIM layer name} for a float ResNet with ``blocks`` per stage."""
    names = {"stem.0": "stem", "fc": "fc"}
    i = 0
    for s, nb in enumerate(blocks):
        for b in range(nb):
            p = f"s{s + 1}b{b + 1}"
            names[f"blocks.{i}.conv1"] = f"{p}_conv1"
            names[f"blocks.{i}.conv2"] = f"{p}_conv2"
            names[f"blocks.{i}.short.0"] = f"{p}_short"
            i += 1
    return names


def _bn_of(conv_prefix: str) -> str:
    """The float model's BN module that follows a conv: stem.0 -> stem.1, conv1 -> bn1, short.0 -> short.1."""
    head, _, last = conv_prefix.rpartition(".")
    if last == "0":
        return f"{head}.1"
    return f"{head}.bn{last[-1]}"


def cim_state_from_float(float_state: dict[str, torch.Tensor], cim_model: torch.nn.Module,
                         blocks=(3, 3, 3)) -> dict[str, torch.Tensor]:
    """A partial state dict for ``cim_model`` (a models.CIMNet ResNet) holding the float model's
    weights and BN parameters/statistics; raises ValueError naming a missing or misshapen tensor."""
    own = cim_model.state_dict()
    out: dict[str, torch.Tensor] = {}

    def put(dst: str, src: str, reshape=None) -> None:
        if src not in float_state:
            raise ValueError(f"float checkpoint has no tensor {src!r} (not a float ResNet of this shape)")
        if dst not in own:
            raise ValueError(f"the CIM model has no tensor {dst!r}")
        v = float_state[src].detach().to(own[dst].dtype)
        if reshape and v.numel() == own[dst].numel():  # fc (F, C) -> the CIM layer's (F, C, 1, 1)
            v = v.reshape(own[dst].shape)
        if v.shape != own[dst].shape:
            raise ValueError(f"{src}: shape {tuple(v.shape)} does not fit {dst} {tuple(own[dst].shape)}")
        out[dst] = v.clone()

    for fp, name in float_to_cim_names(blocks).items():
        if f"{fp}.weight" not in float_state and ".short." in f"{fp}.":
            continue  # identity shortcut: no projection in this block
        c = f"cim.{name}"
        if name == "fc":
            put(f"{c}.weight", "fc.weight", reshape=True)
            put(f"{c}.bias", "fc.bias")
            continue
        put(f"{c}.weight", f"{fp}.weight")
        bn = _bn_of(fp)
        put(f"{c}.bn_weight", f"{bn}.weight")
        put(f"{c}.bn_bias", f"{bn}.bias")
        put(f"{c}.running_mean", f"{bn}.running_mean")
        put(f"{c}.running_var", f"{bn}.running_var")
        if f"{c}.tern.weight" in own:  # a dual-path conv: its ternary path starts from the same filters
            put(f"{c}.tern.weight", f"{fp}.weight")  # (its BN statistics stay: its binary input is another tensor)
            put(f"{c}.tern.bn_weight", f"{bn}.weight")
            put(f"{c}.tern.bn_bias", f"{bn}.bias")
    n_cim = sum(1 for k in own if k.startswith("cim.") and k.endswith(".weight") and "bn_" not in k)
    n_got = sum(1 for k in out if k.endswith(".weight") and "bn_" not in k)
    if n_got != n_cim:
        raise ValueError(f"float checkpoint fills {n_got} of the CIM model's {n_cim} layers")
    return out


def load_float_into_cim(cim_model: torch.nn.Module, float_state: dict[str, torch.Tensor], blocks=(3, 3, 3)) -> None:
    """Copy a float ResNet's weights and BN state into ``cim_model`` in place (the rest is kept)."""
    part = cim_state_from_float(float_state, cim_model, blocks)
    with torch.no_grad():
        own = cim_model.state_dict()
        for k, v in part.items():
            own[k].copy_(v)
