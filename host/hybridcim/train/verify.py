"""Bit-exactness check: Brevitas model == compiled program on the emulator == QONNX.

Per-layer integer tensors are compared in program order, so a mismatch names the first
layer whose output differs (and how many values, where, expected vs got).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..compiler import compile_model, load_integer_model
from ..emulator import FastEmulator, ReferenceEmulator
from .reference import BrevitasReference


class MismatchError(AssertionError):
    """Two executors disagree; the message names the first differing layer."""


def first_mismatch(expected: dict[str, np.ndarray], got: dict[str, np.ndarray], order: list[str]) -> str | None:
    """Description of the first tensor (in ``order``) that differs, or None if all are equal."""
    for name in order:
        a, b = expected.get(name), got.get(name)
        if a is None or b is None:
            return f"layer {name!r}: missing in {'expected' if a is None else 'got'}"
        if a.shape != b.shape:
            return f"layer {name!r}: shape {a.shape} != {b.shape}"
        diff = np.argwhere(a != b)
        if len(diff):
            i = tuple(diff[0])
            return (f"layer {name!r}: {len(diff)} of {a.size} values differ; first at {i}: "
                    f"expected {a[i]}, got {b[i]}")
    return None


def verify_exact(model_dir: str | Path, images: np.ndarray, trained=None, qonnx_images: int = 0,
                 preset=None) -> dict:
    """Check every executor on uint8 NCHW ``images``; raises MismatchError, returns a summary.

    ``trained``: the training CIMNet (its eval-mode logits must match too). ``qonnx_images``:
    how many images to run through qonnx.execute_onnx on ``model_dir/model.onnx``.
    """
    im = load_integer_model(model_dir)
    prog = compile_model(im, preset)
    dual = any(l.flags for l in prog.layers)  # dual-path layers (§10): both emulators and the QONNX export run them
    emu = FastEmulator(prog).run(images, trace=True)
    if dual:  # the newest path of the fast emulator: the reference emulator on the first image too
        lit = ReferenceEmulator(prog).run(images[:1])
        if not np.array_equal(lit.outputs, emu.outputs[:1]):
            raise MismatchError("fast vs reference emulator on a dual-path program: logits of image 0 differ")
    ref = BrevitasReference(im)
    ref_t = ref.trace(images)
    order = [im.desc["input"]["name"]] + [l["name"] for l in im.layers]
    msg = first_mismatch(ref_t, emu.tensors, order)
    if msg:
        raise MismatchError(f"Brevitas reference vs emulator: {msg}")
    logits = ref.run(images)
    if not np.array_equal(logits, emu.outputs):
        raise MismatchError("Brevitas reference vs emulator: logits differ")
    if trained is not None:
        trained.eval()
        with torch.no_grad():
            y = trained(torch.from_numpy(np.asarray(images)).float() / 256.0).double().numpy()
        t = y * np.ldexp(1.0, ref.logit_exponent)
        if not np.array_equal(t, np.round(t)) or not np.array_equal(np.round(t).astype(np.int64), logits):
            raise MismatchError("training model (eval) vs Brevitas reference: logits differ")
    if qonnx_images:
        from .qonnx_export import run_qonnx
        q = run_qonnx(Path(im.path).parent / "model.onnx", images[:qonnx_images], ref.logit_exponent)
        if not np.array_equal(q, logits[:qonnx_images]):
            raise MismatchError("QONNX execute_onnx vs Brevitas reference: logits differ")
    return {"images": len(images), "layers": len(order) - 1, "logit_exponent": ref.logit_exponent,
            "qonnx_images": qonnx_images}
