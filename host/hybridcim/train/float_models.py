"""Float (unquantized) CIFAR ResNets: distillation teachers, trained by the same trainer.

``FloatResNet`` is the ResNet of models.py (6n+2 layers, option-B 1x1 conv + BN
shortcuts, same layers and shapes) in plain float32 ``nn.Conv2d`` + ``nn.BatchNorm2d`` + ReLU, with
the same input (pixel / 256, NCHW). It has no CIM semantics: it cannot be exported or
compiled, and the trainer skips precision assignment and pruning for it. Its only use is
``distill.teacher`` for a compressed model: about 3x cheaper per step than the QAT model on
a CPU (bench/train_step.py), and the accuracy a compressed student is distilled towards.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FLOAT_ARCHS = ("float_resnet20", "float_resnet")


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.short is None else self.short(x)))


class FloatResNet(nn.Module):
    """Float CIFAR ResNet; ``forward(pixel / 256 NCHW float)`` -> float logits (N, classes)."""

    def __init__(self, blocks=(3, 3, 3), widths=(16, 32, 64), num_classes: int = 10, arch: str = "float_resnet20"):
        super().__init__()
        self.arch = arch
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        layers, cin = [], widths[0]
        for s, (nb, w) in enumerate(zip(blocks, widths)):
            for b in range(nb):
                layers.append(_Block(cin, w, 2 if (s > 0 and b == 0) else 1))
                cin = w
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.blocks(self.stem(x)).mean(dim=(2, 3)))


def build_float_model(arch: str, blocks=(3, 3, 3), widths=(16, 32, 64), **_quantization_kwargs) -> FloatResNet:
    """``float_resnet20`` (blocks (3,3,3)) or ``float_resnet`` (``blocks`` given). Quantization
    options of the model config (act_bits, calib_steps) do not apply to a float model."""
    if arch == "float_resnet20":
        blocks = (3, 3, 3)
    return FloatResNet(tuple(blocks), tuple(widths), arch=arch)
