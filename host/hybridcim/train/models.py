"""CIFAR-10 models as an explicit layer graph of CIM-aware layers (ResNet-20, FINN's CNV).

A model is a list of :class:`Node` in execution order, the same order and names as the
compiled program's layers, so that per-layer integer tensors can be compared by name.
Node ops: ``conv`` (CIMConv2d + optional residual + Brevitas QuantReLU), ``fc`` (CIMConv2d
over a 1x1 input; ``logits`` = no activation quantizer, per-tensor weight scale),
``maxpool`` and ``avgpool`` (global mean + Brevitas unsigned quantizer).

The network input is ``pixel / 256`` (architecture.md §2): no mean/std normalization; the
first conv's batch norm absorbs it. ResNet-20 uses option-B shortcuts (1x1 conv + BN) for
downsampling, quantized to a signed tensor (a residual operand may be signed, §6).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .layers import CIMConv2d
from .quantizers import act_quant, input_quant

INPUT = "input"


@dataclass
class Node:
    """One layer of the graph; ``inp``/``res`` name earlier nodes (or ``input``)."""

    name: str
    op: str  # conv | fc | maxpool | avgpool
    inp: str
    res: str | None = None
    k: int = 1
    stride: int = 1
    pad: int = 0
    logits: bool = False
    bits: int | None = None
    signed: bool = False
    meta: dict = field(default_factory=dict)


class CIMNet(nn.Module):
    """A CIM-aware quantized network: ``forward(x)`` takes pixel/256 float NCHW, returns float logits."""

    def __init__(self, arch: str, nodes: list[Node], layers: dict[str, CIMConv2d], acts: dict[str, nn.Module],
                 num_classes: int = 10, image_hw: int = 32, act_bits: int = 4):
        super().__init__()
        self.arch, self.nodes, self.num_classes, self.image_hw, self.act_bits = arch, nodes, num_classes, image_hw, act_bits
        self.inp = input_quant()
        self.cim = nn.ModuleDict(layers)
        self.acts = nn.ModuleDict(acts)

    def cim_layers(self) -> list[tuple[str, CIMConv2d]]:
        return [(n.name, self.cim[n.name]) for n in self.nodes if n.op in ("conv", "fc")]

    def forward(self, x: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
        """Logits (float: exact multiples of the logit scale). ``trace`` collects name -> (value, scale)."""
        q = self.inp(x)
        env = {INPUT: (q.value, q.scale)}
        out = None
        for n in self.nodes:
            v, s = env[n.inp]
            if n.op in ("conv", "fc"):
                if n.res is not None:
                    y = self.cim[n.name](v, s, env[n.res][1]) + env[n.res][0]
                else:
                    y = self.cim[n.name](v, s)
                if n.logits:
                    w_e = self.cim[n.name].last["exponent"]
                    env[n.name] = (y, s.detach() * torch.pow(2.0, -w_e[0].to(torch.float32)))
                    out = y
                    continue
                q = self.acts[n.name](y)
                env[n.name] = (q.value, q.scale)
            elif n.op == "maxpool":
                env[n.name] = (F.max_pool2d(v, n.k, n.stride), s)
            elif n.op == "avgpool":
                q = self.acts[n.name](v.mean(dim=(2, 3), keepdim=True))
                env[n.name] = (q.value, q.scale)
            else:
                raise ValueError(f"node {n.name!r}: unknown op {n.op!r}")
            out = env[n.name][0]
        if trace is not None:
            trace.update(env)
        return out.flatten(1)

    def assert_bit_widths(self) -> None:
        """Realized activation bit widths (STYLE.md 4) and precision buffers are what was asked."""
        from .quantizers import assert_act_bits
        assert_act_bits(self.inp, 8)
        for n in self.nodes:
            if n.name in self.acts:
                assert_act_bits(self.acts[n.name], n.bits)
                if bool(self.acts[n.name].act_quant.is_signed) != n.signed:
                    raise AssertionError(f"{n.name}: activation signedness is not {n.signed}")


def _conv(nodes, layers, acts, name, inp, cin, cout, k, stride, pad, bits, calib, res=None, signed=False,
          keep_dead_bias=False, dual: dict | None = None):
    nodes.append(Node(name, "conv", inp, res=res, k=k, stride=stride, pad=pad, bits=bits, signed=signed))
    if dual is not None:  # a dual-path (INT4 + ternary-binary) conv, architecture.md §10
        from .dualpath import DualConv2d
        layers[name] = DualConv2d(cin, cout, k, stride, pad, keep_dead_bias=keep_dead_bias, **dual)
    else:
        layers[name] = CIMConv2d(cin, cout, k, stride, pad, keep_dead_bias=keep_dead_bias)
    acts[name] = act_quant(bits, calib, relu=not signed, signed=signed)


def resnet(blocks=(3, 3, 3), widths=(16, 32, 64), act_bits: int = 4, num_classes: int = 10,
           calib_steps: int = 30, image_hw: int = 32, arch: str = "resnet20", shortcut_bits: int = 8,
           dual_layers: str = "none", bin_threshold: int | None = None, tern_delta: float = 0.7) -> CIMNet:
    """CIFAR ResNet (He et al. 2016, 6n+2 layers; (3,3,3) = ResNet-20) with option-B shortcuts.

    The projection shortcut (1x1 conv + BN, no ReLU) is quantized to a signed
    ``shortcut_bits`` tensor; it is only ever a residual operand, never a CIM input.
    ``dual_layers``: which convs are dual-path (dualpath.DualConv2d): ``none``, ``blocks`` (the
    residual blocks' 3x3 convs) or ``all`` (also the stem and the shortcuts); ``bin_threshold`` θ
    (None: the input's MSB) and ``tern_delta`` (initial ternary threshold ratio) configure them.
    """
    nodes: list[Node] = []
    layers: dict = {}
    acts: dict = {}
    if dual_layers not in ("none", "blocks", "all"):
        raise ValueError(f"dual_layers={dual_layers!r} must be none, blocks or all")

    def dual(in_bits: int, where: str) -> dict | None:
        if dual_layers == "all" or (dual_layers == "blocks" and where == "block"):
            return {"in_bits": in_bits, "bin_threshold": bin_threshold, "tern_delta": tern_delta}
        return None

    _conv(nodes, layers, acts, "stem", INPUT, 3, widths[0], 3, 1, 1, act_bits, calib_steps, dual=dual(8, "stem"))
    x, cin = "stem", widths[0]
    for s, (nb, w) in enumerate(zip(blocks, widths)):
        for b in range(nb):
            stride = 2 if (s > 0 and b == 0) else 1
            p = f"s{s + 1}b{b + 1}"
            _conv(nodes, layers, acts, f"{p}_conv1", x, cin, w, 3, stride, 1, act_bits, calib_steps,
                  dual=dual(act_bits, "block"))
            short = x
            if stride != 1 or cin != w:
                _conv(nodes, layers, acts, f"{p}_short", x, cin, w, 1, stride, 0, shortcut_bits, calib_steps,
                      signed=True, keep_dead_bias=True, dual=dual(act_bits, "short"))
                short = f"{p}_short"
            _conv(nodes, layers, acts, f"{p}_conv2", f"{p}_conv1", w, w, 3, 1, 1, act_bits, calib_steps,
                  res=short, keep_dead_bias=True, dual=dual(act_bits, "block"))
            x, cin = f"{p}_conv2", w
    nodes.append(Node("pool", "avgpool", x, bits=act_bits))
    acts["pool"] = act_quant(act_bits, calib_steps, relu=False)
    nodes.append(Node("fc", "fc", "pool", logits=True))
    layers["fc"] = CIMConv2d(cin, num_classes, 1, bn=False, per_tensor_scale=True)
    return CIMNet(arch, nodes, layers, acts, num_classes, image_hw, act_bits)


def cnv(widths=(64, 128, 256), fc_width: int = 512, act_bits: int = 4, num_classes: int = 10,
        calib_steps: int = 30, image_hw: int = 32, arch: str = "cnv") -> CIMNet:
    """FINN/Brevitas CNV: 2x(conv3x3) + maxpool, twice, 2x conv3x3 (no padding), then 3 fc layers."""
    nodes: list[Node] = []
    layers: dict = {}
    acts: dict = {}
    x, cin, i = INPUT, 3, 0
    for s, w in enumerate(widths):
        for _ in range(2):
            i += 1
            _conv(nodes, layers, acts, f"conv{i}", x, cin, w, 3, 1, 0, act_bits, calib_steps)
            x, cin = f"conv{i}", w
        if s < len(widths) - 1:
            nodes.append(Node(f"pool{s + 1}", "maxpool", x, k=2, stride=2))
            x = f"pool{s + 1}"
    for j in (1, 2):
        nodes.append(Node(f"fc{j}", "fc", x, bits=act_bits))
        layers[f"fc{j}"] = CIMConv2d(cin, fc_width, 1)
        acts[f"fc{j}"] = act_quant(act_bits, calib_steps)
        x, cin = f"fc{j}", fc_width
    nodes.append(Node("fc3", "fc", x, logits=True))
    layers["fc3"] = CIMConv2d(cin, num_classes, 1, bn=False, per_tensor_scale=True)
    return CIMNet(arch, nodes, layers, acts, num_classes, image_hw, act_bits)


ARCHS = {"resnet20": resnet, "resnet": resnet, "cnv": cnv}


def build_model(arch: str, **kw) -> CIMNet:
    """Build ``arch`` (resnet20, resnet, cnv) with keyword options; asserts realized bit widths.

    ``float_resnet20`` / ``float_resnet`` build a float teacher (float_models.py) instead.
    """
    from .float_models import FLOAT_ARCHS, build_float_model
    if arch in FLOAT_ARCHS:
        return build_float_model(arch, **kw)
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; known: {sorted(ARCHS) + list(FLOAT_ARCHS)}")
    if arch == "resnet20":
        kw = dict(kw, blocks=(3, 3, 3), widths=kw.get("widths", (16, 32, 64)))
    m = ARCHS[arch](arch=arch, **kw)
    m.assert_bit_widths()
    return m
