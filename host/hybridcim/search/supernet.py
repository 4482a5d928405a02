"""DualNet's own candidate evaluator, ``dual-supernet``: a trained weight-sharing dual-path supernet
(``hybridcim train`` with ``dual.mode: supernet``, docs/training.md) evaluated at a candidate's ratios.

Per candidate (``evaluate({layer: q})``):

1. the supernet's trained state is restored (so a candidate never sees another one's statistics);
2. ``dualpath.set_ratios`` sets each dual layer's ratio q;
3. ``dualpath.recalibrate_bn`` re-estimates every batch norm at those ratios on a fixed subset of the
   calibration split, the *last* ``bn_images`` images in file order, in batches of ``bn_batch``, no
   augmentation (the supernet's running statistics are averaged over the ratios it sampled);
4. the model is exported (``train.export.integer_model``, BN folded) and compiled
   (``compiler.compile_model``) for the supernet's hardware preset, a format-1.2 program; a dual layer
   at q = 0 is written as a plain INT4 layer (architecture.md §10.2: q = 0 *is* a plain INT4 layer;
   it needs no dual section, so the hardware pays no dual-path overhead for it);
5. the program runs on the first ``images`` images of the calibration split through
   :func:`run_program` (the fast emulator when it accepts the program, else the reference one: the
   same integers, architecture.md §10.6) and the cost model prices its counters.

Everything is deterministic: a candidate gives the same accuracy and costs in any order, process or
resumed search. The checkpoint is read once, as bytes (safetensors: no pickles), hashed, and parsed
from a private copy, so a training run that replaces the file meanwhile cannot mix two epochs; the
hash is the evaluator's ``identity``, and a search resumed against another checkpoint is refused.

Torch is imported only when this evaluator is built (the package outside ``hybridcim.train`` runs
with numpy alone).
"""
from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np

from .evaluators import OBJECTIVES, EvaluatorError, _check_options, program_objectives

SUPERNET_OPTIONS = {"run": None, "images": 500, "bn_images": 512, "bn_batch": 128, "cost_preset": "dcim-28nm",
                    "executor": "auto"}
"""Options of 'dual-supernet' and their defaults: ``run`` (required: the supernet's run folder or its
checkpoint.safetensors), ``images`` (accuracy on the first N calibration images, 1..5000),
``bn_images`` (BN recalibration on the last N calibration images, 0..5000; 0: keep the checkpoint's
statistics, e.g. for a model fine-tuned at its ratios), ``bn_batch`` (images per recalibration batch,
a divisor of ``bn_images``), ``cost_preset``, ``executor`` ('auto': the fast emulator when it runs
dual-path layers, else the reference one; 'reference'; 'fast')."""

EMULATOR_BATCH = 250
"""Images per emulator call (memory bounded; counters are summed over the calls)."""


def run_program(program, images: np.ndarray, executor: str = "auto", backend: str = "auto", bar=None):
    """(logits int64 (N, classes), counters per layer, executor name) of ``program`` on uint8 NCHW
    ``images``: through :class:`~hybridcim.emulator.FastEmulator` (array library ``backend``: auto,
    torch or numpy) when ``executor`` is 'fast', or 'auto' and the fast emulator accepts the program,
    else through the reference emulator (the golden model). Both are bit-exact. ``bar``: a progress
    bar updated with each batch's images."""
    from ..emulator import FastEmulator, ReferenceEmulator
    from ..program.errors import UnsupportedModeError
    if executor not in ("auto", "fast", "reference"):
        raise EvaluatorError(f"executor {executor!r} must be 'auto', 'fast' or 'reference'")
    emu, name = None, "reference"
    if executor != "reference":
        try:
            emu, name = FastEmulator(program, backend), "fast"
        except UnsupportedModeError:
            if executor == "fast":
                raise
    if emu is None:
        emu = ReferenceEmulator(program)
    outs, counters = [], None
    for i in range(0, len(images), EMULATOR_BATCH):
        res = emu.run(images[i:i + EMULATOR_BATCH])
        outs.append(np.asarray(res.outputs))
        counters = list(res.counters) if counters is None else [a + b for a, b in zip(counters, res.counters)]
        if bar is not None:
            bar.update(len(res.outputs))
    return np.concatenate(outs), counters, name


def read_supernet(path) -> tuple[object, dict, str]:
    """(model in eval mode, checkpoint metadata, sha256 of the checkpoint file) of a dual-path run.

    The file is read once (size-capped) and parsed from a private copy; errors name the file."""
    from ..train.checkpoint import CHECKPOINT_MAX_BYTES, CheckpointError, run_checkpoint
    from ..train.export import model_from_checkpoint
    try:
        ck = run_checkpoint(path)
    except FileNotFoundError as e:
        raise EvaluatorError(f"evaluator 'dual-supernet': option 'run': {e}") from None
    with open(ck, "rb") as f:
        raw = f.read(CHECKPOINT_MAX_BYTES + 1)
    if len(raw) > CHECKPOINT_MAX_BYTES:
        raise EvaluatorError(f"{ck}: over the {CHECKPOINT_MAX_BYTES:,}-byte checkpoint limit")
    sha = hashlib.sha256(raw).hexdigest()
    with tempfile.TemporaryDirectory(prefix="hybridcim-supernet-") as tmp:
        copy = Path(tmp) / "checkpoint.safetensors"
        copy.write_bytes(raw)
        try:
            model, meta = model_from_checkpoint(copy)
        except (CheckpointError, ValueError) as e:
            raise EvaluatorError(str(e).replace(str(copy), str(ck))) from None
    import torch
    for name, t in model.state_dict().items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise EvaluatorError(f"{ck}: tensor {name!r} holds NaN or infinite values (epoch {meta['epoch']}): the "
                                 "training diverged; no candidate of it can be evaluated")
    return model, meta, sha


class SupernetEvaluator:
    """``dual-supernet``: candidates of a trained dual-path supernet, BN-recalibrated, compiled and run
    as format-1.2 programs on the calibration split (module docstring)."""

    name = "dual-supernet"
    objectives = dict(OBJECTIVES)

    def __init__(self, options: dict, data: str | None):
        from ..cost import load_cost_preset
        from ..data import calibration_split
        from ..data.cifar10 import CALIBRATION_SIZE
        opts = _check_options(options, SUPERNET_OPTIONS, f"evaluator {self.name!r}")
        where = f"evaluator {self.name!r}: option"
        if not isinstance(opts["run"], str) or not opts["run"]:
            raise EvaluatorError(f"{where} 'run' is required: the supernet's run folder or checkpoint.safetensors "
                                 "(hybridcim train with dual.mode: supernet)")
        for key, lo in (("images", 1), ("bn_images", 0), ("bn_batch", 1)):
            v = opts[key]
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= CALIBRATION_SIZE:
                raise EvaluatorError(f"{where} {key!r} must be an integer {lo}..{CALIBRATION_SIZE}, got {v!r}")
        if opts["bn_images"] % opts["bn_batch"]:
            raise EvaluatorError(f"{where} 'bn_images' ({opts['bn_images']}) must be a multiple of 'bn_batch' "
                                 f"({opts['bn_batch']}): the recalibration averages the batches' statistics with equal "
                                 "weights")
        if opts["executor"] not in ("auto", "fast", "reference"):
            raise EvaluatorError(f"{where} 'executor' must be 'auto', 'fast' or 'reference', got {opts['executor']!r}")
        try:
            self.cost_preset = load_cost_preset(opts["cost_preset"])
        except Exception as e:
            raise EvaluatorError(f"{where} 'cost_preset': {e}") from None
        self.opts = opts
        self.model, self.meta, self.sha256 = read_supernet(opts["run"])
        from ..train.config import config_from_dict
        from ..train.dualpath import dual_layers
        self.train_cfg = config_from_dict(self.meta["config"])
        self._layers = [n for n, _ in dual_layers(self.model)]
        if not self._layers:
            raise EvaluatorError(f"{where} 'run': {opts['run']} has no dual-path layers (dual.layers: none)")
        self.allowed = tuple(sorted(self.train_cfg.dual.ratios))
        self._state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.images, self.labels = calibration_split(data, limit=opts["images"])
        self.bn_batches = []
        if opts["bn_images"]:
            x, _ = calibration_split(data)
            x = x[len(x) - opts["bn_images"]:]
            from ..train.trainer import as_input
            import torch
            self.bn_batches = [as_input(torch.from_numpy(np.ascontiguousarray(x[i:i + opts["bn_batch"]])))
                               for i in range(0, len(x), opts["bn_batch"])]
        self.identity = f"checkpoint sha256 {self.sha256}"
        self.executor_used = None
        self.notes = (f"supernet {opts['run']} (epoch {self.meta['epoch']} of {self.train_cfg.optim.epochs}, sha256 "
                      f"{self.sha256[:12]}); BN recalibrated per candidate on the last {opts['bn_images']} calibration "
                      f"images; accuracy on the first {opts['images']} calibration images (training split) through "
                      f"the compiled program; energy/latency/memory from cost preset {self.cost_preset.name!r}")

    def layers(self) -> list[str]:
        return list(self._layers)

    def _check(self, ratios: dict) -> dict:
        unknown = sorted(set(ratios) - set(self._layers))
        if unknown:
            raise EvaluatorError(f"evaluator {self.name!r}: no dual-path layer {unknown[0]!r} "
                                 f"(layers: {', '.join(self._layers)})")
        missing = [n for n in self._layers if n not in ratios]
        if missing:
            raise EvaluatorError(f"evaluator {self.name!r}: no ratio for layer {missing[0]!r}")
        for n in self._layers:
            q = ratios[n]
            if isinstance(q, bool) or not isinstance(q, (int, np.integer)) or int(q) not in self.allowed:
                raise EvaluatorError(f"evaluator {self.name!r}: layer {n!r}: ratio {q!r} is outside the ratios the "
                                     f"supernet was trained on (dual.ratios {list(self.allowed)})")
        return {n: int(ratios[n]) for n in self._layers}

    def model_at(self, ratios: dict):
        """The supernet at ``ratios`` with its BN statistics recalibrated there (eval mode)."""
        from ..train.dualpath import recalibrate_bn, set_ratios
        ratios = self._check(ratios)
        self.model.load_state_dict(self._state, strict=True)
        set_ratios(self.model, ratios)
        if self.bn_batches:
            recalibrate_bn(self.model, self.bn_batches)
        return self.model.eval()

    def program(self, ratios: dict):
        """The compiled format-1.2 program of the supernet at ``ratios`` (steps 1–4 of the module doc)."""
        return compile_dual(self.model_at(ratios), self.train_cfg.preset, self.train_cfg.name)

    def evaluate(self, ratios: dict) -> dict:
        prog = self.program(ratios)
        logits, counters, self.executor_used = run_program(prog, self.images, self.opts["executor"])
        return program_objectives(prog, logits, counters, self.labels, self.cost_preset)


def compile_dual(model, preset: str, name: str):
    """The program of a trained (dual-path) CIMNet: export to an integer model, dual layers at q = 0
    written as plain INT4 layers, checked by ``load_integer_model`` and compiled for ``preset``."""
    from ..compiler import compile_model, load_integer_model
    from ..train.export import VERSION, integer_model, save_integer_model
    desc, arrays = integer_model(model, preset, name)
    for layer in desc["layers"]:
        if layer.get("dual") is not None and int(layer["dual"]["ratio_eighths"]) == 0:
            del layer["dual"]
            del arrays[f"{layer['name']}/tern_weight"]
    if not any("dual" in l for l in desc["layers"]):
        desc["version"] = VERSION
    with tempfile.TemporaryDirectory(prefix="hybridcim-candidate-") as tmp:
        save_integer_model(desc, arrays, tmp)
        im = load_integer_model(tmp)  # the arrays are read into memory
    return compile_model(im)


def make_supernet(options: dict, data: str | None) -> SupernetEvaluator:
    """The factory of ``dual-supernet`` (the config's ``evaluator.options``; ``data``: the CIFAR-10 folder)."""
    return SupernetEvaluator(options, data)


__all__ = ["SUPERNET_OPTIONS", "SupernetEvaluator", "compile_dual", "make_supernet", "read_supernet", "run_program"]
