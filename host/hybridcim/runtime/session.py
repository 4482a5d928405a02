"""Session: stream images through a device, compare every output with a reference executor.

The report counts accuracy (argmax vs labels), agreement (images whose outputs equal the
reference's exactly, integer for integer), device throughput (images/s of ``device.run``
alone) and the device's activity counters (architecture.md §7): emulated CIM cycles per
image, and whether every counter equals the reference's when the reference is a Device
(``run`` resets both devices' counters first; a device whose kernel has no counter block
reports neither). On the first disagreeing image both sides are traced and compared tensor
by tensor in program order (:func:`first_mismatch`): the report names the first layer whose
output differs, the NHWC index, the expected and the got value.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from ..program.model import Program
from .device import Device


@dataclass(frozen=True)
class Mismatch:
    """The first differing value of one image: layer (program order), tensor, NHWC index."""

    image: int
    layer: str
    tensor: str
    index: tuple[int, ...]
    expected: int
    got: int

    def __str__(self) -> str:
        return (f"image {self.image}: first differing layer {self.layer!r} (tensor {self.tensor!r}) at NHWC index "
                f"{self.index}: expected {self.expected}, got {self.got}")


def first_mismatch(program: Program, expected: dict[str, np.ndarray], got: dict[str, np.ndarray],
                   image: int = 0) -> Mismatch | None:
    """Compare two traces of one batch in program order; the first differing tensor value, or None.

    ``image`` is added to the batch index so the result names the image in the whole run.
    """
    order = [(program.input.name, "input")] + [(program.tensors[l.out_tensor].name, l.name) for l in program.layers]
    for tensor, layer in order:
        e, g = np.asarray(expected[tensor]), np.asarray(got[tensor])
        if e.shape != g.shape:
            return Mismatch(image, layer, tensor, (), -1, -1)
        diff = np.argwhere(e != g)
        if len(diff):
            idx = tuple(int(v) for v in diff[0])
            return Mismatch(image + idx[0], layer, tensor, idx, int(e[idx]), int(g[idx]))
    return None


def first_counter_mismatch(expected, got) -> str | None:
    """'layer L counter C: expected E, got G' for the first differing counter of two lists, or None."""
    for e, g in zip(expected, got):
        ed, gd = e.as_dict(), g.as_dict()
        for k in ed:
            if ed[k] != gd.get(k):
                return f"layer {e.layer!r} counter {k!r}: expected {ed[k]}, got {gd.get(k)}"
    if len(expected) != len(got):
        return f"{len(expected)} layers of counters expected, got {len(got)}"
    return None


@dataclass
class SessionReport:
    backend: str
    model: str
    reference: str
    images: int = 0
    correct: int | None = 0
    agree: int | None = 0
    device_seconds: float = 0.0
    mismatches: list[int] = field(default_factory=list)  # image indices whose outputs differ (first 100)
    first_mismatch: Mismatch | None = None
    mismatch_note: str | None = None  # why the first mismatch could not be located in a layer
    cycles: int | None = 0  # emulated CIM cycles of the counted images (device counters; None: not reported)
    counted_images: int = 0  # images the counters cover: the run's, plus any traced to locate a mismatch
    counters_agree: bool | None = None  # every layer's counters == the reference device's (None: not compared)
    counter_mismatch: str | None = None  # the first differing (layer, counter): expected vs got

    @property
    def accuracy(self) -> float | None:
        return None if self.correct is None or not self.images else self.correct / self.images

    @property
    def images_per_s(self) -> float:
        return self.images / self.device_seconds if self.device_seconds > 0 else 0.0

    @property
    def cycles_per_image(self) -> float | None:
        return None if self.cycles is None else (self.cycles / self.counted_images if self.counted_images else 0.0)

    @property
    def ok(self) -> bool:
        """True when every image and every counter agreed with the reference (or there was none)."""
        return (self.agree is None or self.agree == self.images) and self.counters_agree is not False

    def as_dict(self) -> dict:
        return {"backend": self.backend, "model": self.model, "reference": self.reference, "images": self.images,
                "accuracy": self.accuracy, "agree": self.agree, "images_per_s": round(self.images_per_s, 2),
                "device_seconds": round(self.device_seconds, 4), "cycles_per_image": self.cycles_per_image,
                "counters_agree": self.counters_agree, "counter_mismatch": self.counter_mismatch,
                "mismatched_images": self.mismatches[:100],
                "first_mismatch": None if self.first_mismatch is None else {
                    "image": self.first_mismatch.image, "layer": self.first_mismatch.layer,
                    "tensor": self.first_mismatch.tensor, "index": list(self.first_mismatch.index),
                    "expected": self.first_mismatch.expected, "got": self.first_mismatch.got},
                "mismatch_note": self.mismatch_note}

    def summary(self) -> str:
        acc = "n/a" if self.accuracy is None else f"{self.accuracy:.2%}"
        agree = "n/a (no reference)" if self.agree is None else f"{self.agree}/{self.images} agree with {self.reference}"
        line = f"{self.backend} {self.model}: {self.images} images, accuracy {acc}, {agree}, {self.images_per_s:.1f} images/s"
        if self.images and self.cycles is not None:
            line += f", {self.cycles_per_image:,.0f} CIM cycles/image"
        if self.counters_agree is not None:
            line += ", counters " + ("agree" if self.counters_agree else "DIFFER")
        if self.counter_mismatch:
            line += f"\n  COUNTER MISMATCH {self.counter_mismatch}"
        if self.first_mismatch is not None:
            line += f"\n  MISMATCH {self.first_mismatch}"
        elif self.mismatches:
            line += f"\n  MISMATCH outputs of images {self.mismatches[:10]} differ ({self.mismatch_note or 'reference has no per-layer trace'})"
        return line


def _call_at(fn, images: np.ndarray, image_base: int):
    """``fn(images, image_base=...)`` when ``fn`` takes the global index of the first image (the
    analog noise of hybrid layers depends on it, architecture.md §9.6), else ``fn(images)``."""
    import inspect
    try:
        takes = "image_base" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        takes = False
    return fn(images, image_base=image_base) if takes else fn(images)


class Session:
    """Runs a loaded device over batches; ``reference`` is a Device, an object with ``run(images)``
    (optionally ``trace(images)``), or None for no comparison. Image k of the run (over all
    batches) is global image k: devices and references that take ``image_base`` get it."""

    def __init__(self, device: Device, reference=None, reference_name: str = "emulator", model: str = "",
                 show_progress: bool = True):
        self.device, self.reference = device, reference
        self.reference_name = reference_name if reference is not None else "none"
        self.model = model or device.program.name
        self.show_progress = show_progress

    def run(self, batches: Iterable[tuple[np.ndarray, np.ndarray | None]], total: int | None = None) -> SessionReport:
        from ..progress import progress
        rep = SessionReport(self.device.name, self.model, self.reference_name)
        rep.agree = 0 if self.reference is not None else None
        measured = self.device.reports_counters
        ref_counts = measured and isinstance(self.reference, Device) and self.reference.reports_counters
        self.device.reset_counters()
        if ref_counts:
            self.reference.reset_counters()
        bar = progress(total, f"{self.device.name}", disable=not self.show_progress)
        try:
            for images, labels in batches:
                self._batch(rep, np.asarray(images), labels)
                bar.update(len(images))
                if rep.agree is not None:
                    bar.set_postfix_str(f"agree {rep.agree}/{rep.images}")
        finally:
            bar.close()
        got = self.device.counters
        rep.cycles = sum(c.cycles for c in got) if measured else None
        rep.counted_images = got[0].images if got else 0
        if ref_counts:
            rep.counter_mismatch = first_counter_mismatch(self.reference.counters, got)
            rep.counters_agree = rep.counter_mismatch is None
        return rep

    def run_cifar10(self, root, limit: int | None = None, batch_size: int = 256) -> SessionReport:
        """The CIFAR-10 test set (first ``limit`` images) from ``root`` (hybridcim.data.Cifar10)."""
        from ..data import Cifar10
        ds = Cifar10(root, "test")
        total = len(ds) if limit is None else min(limit, len(ds))
        return self.run(ds.batches(batch_size, limit), total)

    def _batch(self, rep: SessionReport, images: np.ndarray, labels) -> None:
        t0 = time.perf_counter()
        out = _call_at(self.device.run, images, rep.images)
        rep.device_seconds += time.perf_counter() - t0
        if labels is not None and rep.correct is not None and out.ndim == 2:
            rep.correct += int((out.argmax(axis=1) == np.asarray(labels)).sum())
        elif labels is None or out.ndim != 2:
            rep.correct = None
        if self.reference is not None:
            ref = np.asarray(_call_at(self.reference.run, images, rep.images))
            same = (ref.reshape(len(images), -1) == out.reshape(len(images), -1)).all(axis=1)
            rep.agree += int(same.sum())
            bad = np.nonzero(~same)[0]
            rep.mismatches.extend(int(rep.images + i) for i in bad[:max(0, 100 - len(rep.mismatches))])
            if len(bad) and rep.first_mismatch is None and rep.mismatch_note is None and hasattr(self.reference, "trace"):
                one, at = images[bad[0]:bad[0] + 1], rep.images + int(bad[0])
                rep.first_mismatch = first_mismatch(self.device.program, _call_at(self.reference.trace, one, at),
                                                    _call_at(self.device.trace, one, at), image=at)
                if rep.first_mismatch is None:
                    rep.mismatch_note = (f"image {rep.images + int(bad[0])}: traced alone, every tensor agrees, so "
                                         "the difference arises after the last layer (output buffer or its "
                                         "transfer) or depends on the batch")
        rep.images += len(images)
