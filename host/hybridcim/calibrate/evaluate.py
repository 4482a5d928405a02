"""Run a program with a given set of hybrid level tables on a fixed image set and measure it.

An *assignment* maps CIM layer names to a level table ``(thresholds, digital_depth, keep_depth)``
(architecture.md §9.4; tuples of ints) or leaves a layer out (digital mode). :class:`Evaluator`
turns an assignment into a hybrid program (``make_hybrid``), runs it in batches through an
emulator and returns an :class:`Evaluation`: accuracy, agreement with the digital program's top-1,
mean KL divergence of its softmax from the digital program's (the loss proxy of the search), and
the summed per-layer counters, which the cost model prices (:meth:`Evaluation.cost`). Numpy only.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np

from ..emulator.counters import LayerCounters
from ..program.builder import make_hybrid
from ..program.hybrid import HybridParams
from ..program.model import Program

Table = tuple  # (thresholds, digital_depth, keep_depth), each a tuple of ints


def table_key(table: Table | None) -> str:
    """Canonical text of one table ("digital" for None): 't=..;D=..;E=..'."""
    if table is None:
        return "digital"
    t, d, e = table
    return f"t={','.join(map(str, t))};D={','.join(map(str, d))};E={','.join(map(str, e))}"


def assignment_key(assignment: dict) -> str:
    """Canonical text of an assignment (layers in name order; digital layers left out)."""
    return "|".join(f"{name}:{table_key(t)}" for name, t in sorted(assignment.items()) if t is not None) or "digital"


def hybrid_program(program: Program, assignment: dict, sal_planes: int, noise: tuple = (0, 0, 0)) -> Program:
    """``program`` with the layers of ``assignment`` in hybrid mode (others digital), saliency
    reading ``sal_planes`` input planes (capped at each layer's bits_in); ``noise`` =
    (noise_pairs, noise_shift, noise_seed) of §9.6 on every hybrid layer."""
    pairs, shift, seed = noise
    params = {}
    for layer in program.layers:
        if not layer.op.is_cim:
            continue
        t = assignment.get(layer.name)
        if t is None:
            params[layer.name] = None
            continue
        h = min(sal_planes, program.tensors[layer.in_tensor].bits)
        params[layer.name] = HybridParams(tuple(t[1]), tuple(t[2]), tuple(t[0]), sal_planes=h, noise_pairs=pairs,
                                          noise_shift=shift, noise_seed=seed)
    return make_hybrid(program, params)


def _softmax_log(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


@dataclass
class Evaluation:
    """Measured on ``images`` images: ``correct`` top-1 hits, ``agree`` top-1 equal to the digital
    program's, ``kl`` mean KL(digital ‖ this) of the softmax over the real-valued logits (nats),
    ``counters`` one summed LayerCounters per program layer; ``bias``: the bias correction the run
    had (layer name -> int per filter, :mod:`hybridcim.calibrate.bias`), None without."""

    images: int
    correct: int
    agree: int
    kl: float
    counters: list
    bias: dict | None = None

    @property
    def accuracy(self) -> float:
        return self.correct / self.images if self.images else float("nan")

    def as_dict(self) -> dict:
        d = {"images": self.images, "correct": self.correct, "agree": self.agree, "kl": self.kl,
             "counters": [[getattr(c, f) for f in _COUNTER_FIELDS] for c in self.counters],
             "layers": [c.layer for c in self.counters]}
        if self.bias is not None:
            d["bias"] = {k: [int(v) for v in vals] for k, vals in sorted(self.bias.items())}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Evaluation":
        counters = [LayerCounters(name, **dict(zip(_COUNTER_FIELDS[1:], row[1:])))
                    for name, row in zip(d["layers"], d["counters"])]
        bias = d.get("bias")
        return cls(int(d["images"]), int(d["correct"]), int(d["agree"]), float(d["kl"]), counters,
                   None if bias is None else {k: [int(v) for v in vals] for k, vals in bias.items()})

    def cost(self, program: Program, preset):
        """The cost model's Cost of this run (``program``: the program that ran, for its tables)."""
        from ..cost import cost
        return cost(program, self.counters, preset)


_COUNTER_FIELDS = tuple(f for f in LayerCounters.__dataclass_fields__)
assert _COUNTER_FIELDS[0] == "layer"


def make_emulator(program: Program, kind: str = "auto"):
    """An emulator for ``program``: 'fast' (FastEmulator), 'reference' (ReferenceEmulator) or
    'auto' (the fast one when it runs this program's layers, else the reference one)."""
    from ..emulator import FastEmulator, ReferenceEmulator
    if kind == "reference":
        return ReferenceEmulator(program)
    if kind == "fast":
        return FastEmulator(program)
    if kind != "auto":
        raise ValueError(f"emulator {kind!r} unknown; choose 'auto', 'fast' or 'reference'")
    try:
        return FastEmulator(program)
    except Exception as e:  # UnsupportedModeError of a fast emulator without hybrid mode
        if type(e).__name__ != "UnsupportedModeError":
            raise
        return ReferenceEmulator(program)


def run_logits(emulator, images: np.ndarray, batch: int = 500, image_base: int = 0, bar=None):
    """Logits (int64 (N, classes)) and summed counters of ``emulator`` over ``images`` in batches;
    image i has global index ``image_base + i`` (the analog noise key, §9.6)."""
    takes_base = "image_base" in inspect.signature(emulator.run).parameters
    outs, counters = [], None
    for s in range(0, len(images), batch):
        kw = {"image_base": image_base + s} if takes_base else {}
        if not takes_base and any(l.mode != 0 for l in emulator.program.layers):
            raise ValueError("this emulator's run() takes no image_base: it cannot run a hybrid program")
        r = emulator.run(images[s:s + batch], **kw)
        outs.append(np.asarray(r.outputs))
        counters = list(r.counters) if counters is None else [a + b for a, b in zip(counters, r.counters)]
        if bar is not None:
            bar.update(len(images[s:s + batch]))
    return np.concatenate(outs), counters


class Evaluator:
    """Measures assignments of one program on one image set against its digital run.

    ``program``: the digital program (mode 0 everywhere); ``images`` uint8 NCHW, ``labels``;
    ``image_base``: the global index of the first image; ``emulator``: see :func:`make_emulator`."""

    def __init__(self, program: Program, images: np.ndarray, labels: np.ndarray, sal_planes: int = 2,
                 emulator: str = "auto", image_base: int = 0, batch: int = 500):
        self.program, self.images, self.labels = program, images, np.asarray(labels)
        self.sal_planes, self.emulator, self.image_base, self.batch = sal_planes, emulator, image_base, batch
        self.scale = 2.0 ** -program.output.exponent
        self.ref_logits, counters = run_logits(make_emulator(program, emulator), images, batch, image_base)
        self.ref_top = self.ref_logits.argmax(axis=1)
        self.ref_logp = _softmax_log(self.ref_logits * self.scale)
        self.digital = Evaluation(len(images), int((self.ref_top == self.labels).sum()), len(images), 0.0, counters)

    def program_for(self, assignment: dict, noise: tuple = (0, 0, 0)) -> Program:
        return hybrid_program(self.program, assignment, self.sal_planes, noise)

    def __call__(self, assignment: dict, noise: tuple = (0, 0, 0), bar=None, bias_images: int = 0) -> Evaluation:
        """Measure ``assignment``; ``bias_images`` > 0: with the bias correction of skipped work
        (:mod:`hybridcim.calibrate.bias`) measured on the first ``bias_images`` images, noise-free."""
        if not any(t is not None for t in assignment.values()) and noise == (0, 0, 0):
            return self.digital
        prog = self.program_for(assignment, noise)
        bias = None
        if bias_images > 0:
            from .bias import apply_bias_correction, measure_bias_correction
            n = min(int(bias_images), len(self.images))
            plain = prog if noise == (0, 0, 0) else self.program_for(assignment)
            prog, applied = apply_bias_correction(prog, measure_bias_correction(plain, self.images[:n],
                                                                                self.image_base))
            bias = {k: v.tolist() for k, v in applied.items()}
        return self.run_program(prog, bar, bias)

    def run_program(self, prog: Program, bar=None, bias: dict | None = None) -> Evaluation:
        """Measure a ready program (same layers as the digital one) against the digital run."""
        logits, counters = run_logits(make_emulator(prog, self.emulator), self.images, self.batch,
                                      self.image_base, bar)
        top = logits.argmax(axis=1)
        logp = _softmax_log(logits * self.scale)
        kl = float((np.exp(self.ref_logp) * (self.ref_logp - logp)).sum(axis=1).mean())
        return Evaluation(len(self.images), int((top == self.labels).sum()), int((top == self.ref_top).sum()),
                          max(kl, 0.0), counters, bias)
