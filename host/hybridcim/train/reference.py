"""The Brevitas reference of an exported model: stock Brevitas layers rebuilt from the integer model.

``DeployNet`` is made only of Brevitas layers (QuantIdentity/QuantReLU with power-of-two
scales set exactly, QuantConv2d with 8-bit per-filter power-of-two weights and Int32Bias,
QuantMaxPool2d) plus a float global average pool. A dual-path layer (architecture.md §10.2) is
the INT4 QuantConv2d of its first F - F_t filters, concatenated along channels with the ternary
path: the comparison x >= θ feeding a 1-bit unsigned quantizer at the input's scale, and a
QuantConv2d of the ternary weights (2-bit narrow-range codes {-1, 0, 1}, per-filter power-of-two
scales). Its float outputs are exact multiples of the program's scales, so ``value * 2^exponent`` is the program's integer tensor. It is the
model exported to QONNX and the reference ``hybridcim run --backend emulator`` compares with.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from brevitas.inject.enum import ScalingImplType
from brevitas.nn import QuantConv2d
from brevitas.quant import Int32Bias
from brevitas.quant.fixed_point import Int8WeightPerChannelFixedPoint
from brevitas.quant_tensor import QuantTensor
from torch import nn

from ..compiler.integer_model import IntegerModel, load_integer_model
from .quantizers import deploy_act, deploy_conv, set_pot_exponent


class ExactnessError(AssertionError):
    """A float tensor of the Brevitas model is not an exact integer multiple of its scale."""


class TernaryWeightPoTDeploy(Int8WeightPerChannelFixedPoint):
    """Ternary weights: 2-bit narrow-range codes {-1, 0, 1}, per-filter power-of-two scale set by
    set_pot_exponent (exported to QONNX as a 2-bit signed narrow Quant node)."""

    bit_width = 2
    narrow_range = True
    scaling_impl_type = ScalingImplType.PARAMETER
    scaling_init = 1.0


def ternary_conv(cin: int, cout: int, k: int, stride: int, pad: int, exponents) -> QuantConv2d:
    """QuantConv2d of a dual-path layer's ternary filters: weights T · 2^-exponents with T in {-1, 0, 1}
    (2-bit narrow range), int32 bias."""
    m = QuantConv2d(cin, cout, k, stride=stride, padding=pad, bias=True, weight_quant=TernaryWeightPoTDeploy,
                    bias_quant=Int32Bias, return_quant_tensor=False)
    set_pot_exponent(m.weight_quant.tensor_quant.scaling_impl, lambda: m.quant_weight().scale, exponents)
    m.requires_grad_(False)
    qw = m.quant_weight()
    if int(qw.bit_width) != 2 or not m.weight_quant.is_narrow_range:
        raise AssertionError(f"ternary conv realized {int(qw.bit_width)}-bit weights "
                             f"(narrow range {m.weight_quant.is_narrow_range}), expected 2-bit narrow")
    return m


class DeployNet(nn.Module):
    """Brevitas model of an IntegerModel; forward(pixel/256) -> float logits."""

    def __init__(self, model: IntegerModel):
        super().__init__()
        self.desc = model.desc
        inp = model.desc["input"]
        self.inp = deploy_act(8, int(inp["exponent"]), relu=False)
        self.mods = nn.ModuleDict()
        self.exponents = {inp["name"]: int(inp["exponent"])}
        for l in model.layers:
            n = l["name"]
            if l["op"] in ("conv", "fc"):
                e_w = model.array(n, "weight_exponent").astype(np.int64)
                f0 = l["filters"] - (len(model.array(n, "tern_weight")) if l.get("dual") is not None else 0)
                if f0:  # the INT4 path: filters 0..F-F_t-1 (all of them in a single-path layer)
                    w = model.array(n, "weight")[:f0].astype(np.float64)
                    conv = deploy_conv(w.shape[1], f0, w.shape[2], int(l.get("stride", 1)), int(l.get("pad", 0)),
                                       e_w[:f0])
                    with torch.no_grad():
                        conv.weight.copy_(torch.from_numpy(np.ldexp(w, -e_w[:f0, None, None, None])))
                        unit = np.ldexp(1.0, -(e_w[:f0] + int(l["in_exponent"])))
                        conv.bias.copy_(torch.from_numpy(model.array(n, "bias")[:f0].astype(np.float64) * unit))
                    self.mods[n] = conv
                if l.get("dual") is not None:
                    self._dual(model, l, e_w)
                if not l.get("logits"):
                    signed = bool(l.get("out_signed", False))
                    self.mods[n + "__act"] = deploy_act(int(l["out_bits"]), int(l["out_exponent"]), relu=not signed,
                                                        signed=signed)
            elif l["op"] == "maxpool":
                self.mods[n] = nn.MaxPool2d(int(l["k"]), int(l["stride"]))  # QuantTensor passes through (scale kept)
            elif l["op"] == "avgpool":
                self.mods[n + "__act"] = deploy_act(int(l["out_bits"]), int(l["out_exponent"]), relu=False)
            self.exponents[n] = int(l["out_exponent"]) if "out_exponent" in l else self.exponents[l["in"]]
        self.trace: dict | None = None

    def _dual(self, model: IntegerModel, l: dict, e_w: np.ndarray) -> None:
        """Brevitas layers of a dual-path layer's ternary path: the binary input b = [x >= θ] as a 1-bit
        unsigned quantizer at the input's scale 2^-e_in, and a QuantConv2d of the ternary weights T · 2^-e_w
        (2-bit narrow-range codes, i.e. {-1, 0, 1}, per-filter power-of-two scales)."""
        n, e_in = l["name"], int(l["in_exponent"])
        t = model.array(n, "tern_weight").astype(np.float64)
        f0 = l["filters"] - len(t)
        self.mods[n + "__bin"] = deploy_act(1, e_in, relu=False)
        if not len(t):
            return
        e_t = e_w[f0:]
        conv = ternary_conv(t.shape[1], len(t), t.shape[2], int(l.get("stride", 1)), int(l.get("pad", 0)), e_t)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(np.ldexp(t, -e_t[:, None, None, None])))
            conv.bias.copy_(torch.from_numpy(model.array(n, "bias")[f0:].astype(np.float64) * np.ldexp(1.0, -(e_t + e_in))))
        self.mods[n + "__tern"] = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env = {self.desc["input"]["name"]: self.inp(x)}
        y = None
        for l in self.desc["layers"]:
            n, q = l["name"], env[l["in"]]
            if l["op"] in ("conv", "fc"):
                parts = [self.mods[n](q)] if n in self.mods else []
                if n + "__tern" in self.mods:  # dual-path (§10.2): the last F_t channels from the ternary path
                    s_in = 2.0 ** -int(l["in_exponent"])
                    b = self.mods[n + "__bin"]((_val(q) >= l["dual"]["bin_threshold"] * s_in).to(torch.float32) * s_in)
                    parts.append(self.mods[n + "__tern"](b))
                y = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
                if l.get("res") is not None:
                    y = y + _val(env[l["res"]])
                env[n] = y if l.get("logits") else self.mods[n + "__act"](y)
            elif l["op"] == "maxpool":
                env[n] = self.mods[n](q)
            else:
                env[n] = self.mods[n + "__act"](F.adaptive_avg_pool2d(_val(q), 1))
        if self.trace is not None:
            self.trace.update({k: _val(v) for k, v in env.items()})
        return _val(env[self.desc["output"]]).flatten(1)


def _val(t):
    """The float value of a QuantTensor (plain tensors pass: Brevitas export mode returns those)."""
    return t.value if isinstance(t, QuantTensor) else t


def to_int(value: torch.Tensor, exponent: int, name: str) -> np.ndarray:
    """Exact int64 of value * 2^exponent (float64 check); raises ExactnessError naming the tensor."""
    v = value.detach().to(torch.float64).numpy() * np.ldexp(1.0, exponent)
    r = np.round(v)
    if not np.array_equal(v, r) or np.abs(r).max(initial=0) >= 2 ** 24:
        raise ExactnessError(f"tensor {name!r}: Brevitas value is not an exact integer multiple of 2^-{exponent} "
                             f"below 2^24 (max |v| {np.abs(v).max(initial=0):.1f})")
    return r.astype(np.int64)


def uint8_nchw(images) -> np.ndarray:
    """``images`` as an array; ValueError unless it is uint8 with 4 dimensions (N, C, H, W)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 NCHW, got {images.dtype} {images.shape}")
    return images


class BrevitasReference:
    """``run(images uint8 NCHW) -> int64 logits (N, classes)`` at the program's logit scale."""

    def __init__(self, model: IntegerModel):
        self.model = model
        self.net = DeployNet(model).eval()
        self.logit_exponent = self.net.exponents[model.desc["output"]]

    def _forward(self, images: np.ndarray, trace: bool) -> tuple[np.ndarray, dict | None]:
        x = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32) / 256.0
        self.net.trace = {} if trace else None
        with torch.no_grad():
            y = self.net(x)
        ints = None
        if trace:
            ints = {}
            for k, v in self.net.trace.items():
                a = to_int(v, self.net.exponents[k], k)
                ints[k] = a.transpose(0, 2, 3, 1) if a.ndim == 4 else a
            self.net.trace = None
        return to_int(y, self.logit_exponent, self.model.desc["output"]), ints

    def run(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        images = uint8_nchw(images)
        outs = [self._forward(images[i:i + batch_size], False)[0] for i in range(0, len(images), batch_size)]
        return np.concatenate(outs) if outs else np.zeros((0, self.model.desc["classes"]), np.int64)

    def trace(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Every tensor as int64 NHWC (the program's layout and names)."""
        return self._forward(np.asarray(images), True)[1]


def load_brevitas_reference(model_dir: str | Path) -> BrevitasReference:
    """The Brevitas reference of the exported model in ``model_dir`` (integer_model.json + .npz)."""
    return BrevitasReference(load_integer_model(model_dir))
