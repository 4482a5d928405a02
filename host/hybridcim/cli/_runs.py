"""Pieces of ``hybridcim run`` for hybrid programs: the reference emulator behind the Device
interface, global image indices (``image_base``) for every executor, and a slice of CIFAR-10.

The analog noise of a hybrid layer is keyed by the *global* image index (architecture.md §9.6):
an executor given images ``[offset, offset + n)`` of the test set must be told that
``images[0]`` is image ``offset``. :func:`index_runs` makes a device (or a reference device)
count the images it has run from a start index and pass that index to each ``run`` call.
"""
from __future__ import annotations

import inspect
import os

import numpy as np

from ..runtime.device import Device

REFERENCE_DEFAULT_LIMIT = 8
"""Images ``run`` checks against the reference emulator when no ``--limit`` is given: it runs the
literal per-pair datapath, about 40 s per hybrid ResNet-20 image on one shared core."""


class ReferenceEmulatorDevice(Device):
    """:class:`~hybridcim.emulator.ReferenceEmulator` as a Device (any program, hybrid included), so a
    Session compares its outputs *and* counters with the device under test."""

    name = "reference-emulator"

    def __init__(self) -> None:
        super().__init__()
        self._emu = None

    @property
    def preset(self):
        return self._program.preset if self._program is not None else None

    def load(self, program: "object | bytes | str | os.PathLike") -> None:
        from ..emulator import ReferenceEmulator
        from ..program import read_program
        from ..program.codec import decode
        from ..program.model import Program
        self._check_open()
        if isinstance(program, Program):
            prog = program
        elif isinstance(program, (bytes, bytearray, memoryview)):
            prog = decode(bytes(program))
        else:
            prog = read_program(program)
        self._emu = ReferenceEmulator(prog)
        self._set_program(prog)

    def run(self, images: np.ndarray, image_base: int = 0) -> np.ndarray:
        _ = self.program
        res = self._emu.run(images, image_base=image_base)
        self._add_counters(res.counters)
        return res.outputs

    def trace(self, images: np.ndarray, image_base: int = 0) -> dict[str, np.ndarray]:
        _ = self.program
        res = self._emu.run(images, trace=True, image_base=image_base)
        self._add_counters(res.counters)
        return res.tensors


def _takes_image_base(fn) -> bool:
    try:
        return "image_base" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def index_runs(executor, start: int):
    """Make ``executor.run`` / ``executor.trace`` (on this instance) pass ``image_base``: the global
    index of the first image of each call, ``start`` + its position in the run. A caller that gives
    ``image_base`` gives that position (a Session counts its run's images from 0); one that does not
    gets the images counted over its calls in order, and a trace of one image of the last batch
    (locating a mismatch) gets that image's index. An executor whose run takes no ``image_base`` is
    left as it is. Returns ``executor``."""
    run, trace = executor.run, getattr(executor, "trace", None)
    if not _takes_image_base(run):
        return executor
    state = {"next": start, "last": None, "last_base": start}

    def run_indexed(images, image_base=None):
        base = state["next"] if image_base is None else start + image_base
        out = run(images, image_base=base)
        state["last"], state["last_base"] = np.asarray(images), base
        state["next"] = base + len(images)
        return out

    def trace_indexed(images, image_base=None):
        if image_base is not None:
            image_base = start + image_base
        else:
            image_base = state["next"]
            last = state["last"]
            if last is not None and len(images) == 1:
                hit = np.nonzero((last.reshape(len(last), -1) == np.asarray(images).reshape(1, -1)).all(axis=1))[0]
                if len(hit):
                    image_base = state["last_base"] + int(hit[0])
        return trace(images, image_base=image_base)

    executor.run = run_indexed
    if trace is not None and _takes_image_base(trace):
        executor.trace = trace_indexed
    return executor


def cifar10_slice(root, offset: int, limit: int | None, batch_size: int):
    """(batches of (images, labels) over test images [offset, offset + n), n): the slice a run covers."""
    from ..data import Cifar10
    ds = Cifar10(root, "test")
    if offset > len(ds):
        raise ValueError(f"--offset {offset} is past the {len(ds)} test images")
    n = len(ds) - offset if limit is None else min(limit, len(ds) - offset)
    return (ds.read(s, min(s + batch_size, offset + n)) for s in range(offset, offset + n, batch_size)), n
