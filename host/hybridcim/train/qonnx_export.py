"""QONNX export (brevitas.export.export_qonnx) of the Brevitas reference and its execution by qonnx.

qonnx's Quant node takes one scalar bit width, so per-filter precisions are exported as
8-bit Quant nodes with per-filter power-of-two scales: the integers are identical.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..compiler.integer_model import load_integer_model
from .reference import DeployNet, uint8_nchw


def export_qonnx_model(model_dir: str | os.PathLike, onnx_path: str | os.PathLike) -> Path:
    """Export the model in ``model_dir`` to QONNX at ``onnx_path`` (batch 1, input pixel/256 NCHW)."""
    from brevitas.export import export_qonnx
    im = load_integer_model(model_dir)
    net = DeployNet(im).eval()
    t = im.desc["input"]
    import tempfile

    import onnx
    out = Path(onnx_path)
    with tempfile.TemporaryDirectory(dir=out.parent) as d:
        raw = Path(d) / "raw.onnx"
        export_qonnx(net, torch.zeros(1, t["channels"], t["height"], t["width"]), str(raw))
        m = onnx.load(str(raw))  # pulls in any external data: the result is one self-contained file
        single = Path(d) / "model.onnx"
        onnx.save(m, str(single), save_as_external_data=False)
        os.replace(single, out)
    return out


class QonnxReference:
    """``run(images uint8 NCHW) -> int64 logits (N, classes)`` of ``qonnx.execute_onnx`` on an
    exported ``model.onnx``, at the program's logit scale (``logit_exponent``: logits are
    value * 2^exponent). Input: pixel/256 in float32, one image per call (the export has
    batch 1), so it is slow: about 5 images/s for ResNet-20 on one CPU core."""

    def __init__(self, onnx_path: str | os.PathLike, logit_exponent: int):
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.transformation.infer_shapes import InferShapes
        self.model = ModelWrapper(str(onnx_path)).transform(InferShapes())
        self.logit_exponent = int(logit_exponent)
        self.iname, self.oname = self.model.graph.input[0].name, self.model.graph.output[0].name

    def run(self, images: np.ndarray) -> np.ndarray:
        from qonnx.core.onnx_exec import execute_onnx
        outs = []
        for img in uint8_nchw(images):
            x = img[None].astype(np.float32) / np.float32(256.0)
            y = execute_onnx(self.model, {self.iname: x})[self.oname].astype(np.float64).reshape(1, -1)
            y = y * np.ldexp(1.0, self.logit_exponent)
            if not np.array_equal(y, np.round(y)):
                raise AssertionError("QONNX logits are not exact multiples of the logit scale")
            outs.append(np.round(y).astype(np.int64))
        return np.concatenate(outs)


def run_qonnx(onnx_path: str | os.PathLike, images: np.ndarray, logit_exponent: int) -> np.ndarray:
    """int64 logits of qonnx.execute_onnx on uint8 NCHW images (see ``QonnxReference``)."""
    return QonnxReference(onnx_path, logit_exponent).run(images)
