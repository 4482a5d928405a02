"""Candidate evaluators of the ratio search: per-layer ratios in, objective values out.

An evaluator is any object with

- ``name`` (str) and ``objectives`` (dict objective name -> "maximize" | "minimize", in order);
- ``layers()`` -> list of the layer names it accepts a ratio for;
- ``evaluate(ratios)`` -> dict objective name -> float, ``ratios`` = {layer name: q} with q the
  ternary share in eighths (0…8, architecture.md §10.2) for every name ``layers()`` returns;
- ``notes`` (str): what its figures mean and do not mean (printed with the search summary).

It is built by a factory ``make(options: dict, data: str | None) -> evaluator`` (``options``: the
config's ``evaluator.options`` mapping; ``data``: the CIFAR-10 folder). The built-in factories are
in :data:`EVALUATORS`; a config may also name a plug-in as ``"package.module:factory"``.
Objective names and units: ``accuracy`` (top-1 fraction, 0…1, on the calibration split of
*training* images, never the test set), ``energy_uj`` (µJ per image), ``memory_kib`` (KiB stored
on chip), ``latency_us`` (CIM chip latency, µs per image).
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import math
from typing import Callable

import numpy as np

OBJECTIVES = {"accuracy": "maximize", "energy_uj": "minimize", "memory_kib": "minimize", "latency_us": "minimize"}
"""The objectives the built-in evaluators report, with their directions."""


class EvaluatorError(ValueError):
    """An evaluator that cannot be built from the config (bad option, missing model, not available)."""


class EvaluatorNotAvailableError(EvaluatorError):
    """The evaluator exists as an extension point but what it needs does not exist yet."""


def _check_options(options: dict, allowed: dict, where: str) -> dict:
    """``options`` with defaults filled from ``allowed`` (name -> default); an unknown key is an error naming it."""
    if not isinstance(options, dict):
        raise EvaluatorError(f"{where}: options must be a mapping, got {type(options).__name__}")
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise EvaluatorError(f"{where}: unknown option {unknown[0]!r} (known: {', '.join(sorted(allowed))})")
    return {**allowed, **options}


def program_objectives(program, logits: np.ndarray, counters: list, labels: np.ndarray, cost_preset) -> dict:
    """The four objectives of a program run: top-1 accuracy of ``logits`` against ``labels``, and the cost
    model's energy, latency and memory for its ``counters`` (memory adds the ternary cells, 2 bits per
    ternary weight, while the cost model does not count them)."""
    from ..cost import cost
    acc = float((np.asarray(logits).argmax(axis=1) == np.asarray(labels)).mean())
    c = cost(program, counters, cost_preset)
    bits = c.memory_total_bits
    if not any("tern" in k for k in c.memory_bits):  # the cost model does not count ternary cells yet
        bits += sum(int(k.tern_weight_bits) for k in counters)
    return {"accuracy": acc, "energy_uj": float(c.energy_uj_per_image), "memory_kib": bits / 8192,
            "latency_us": float(c.latency_us_per_image)}


# ------------------------------------------------------------------------------------------------
# (a) DualNet's own evaluator: a trained weight-sharing supernet (search/supernet.py; torch)

def make_supernet(options: dict, data: str | None):
    """DualNet's evaluator ``dual-supernet``: a trained dual-path supernet evaluated at each candidate's
    ratios, BN recalibrated, compiled and run as a format-1.2 program (hybridcim.search.supernet)."""
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("brevitas") is None:
        raise EvaluatorNotAvailableError("evaluator 'dual-supernet' needs torch and brevitas (the training extra: "
                                         "pip install 'hybridcim[train]') to load the supernet")
    from .supernet import make_supernet as make
    return make(options, data)


# ------------------------------------------------------------------------------------------------
# (b) a working evaluator: dual-path programs from a shipped model by ternarizing its integer weights

TERNARIZED_OPTIONS = {"model": "resnet8-w4a4-p50-quick", "preset": "sun-mars-256-dual", "images": 16,
                      "cost_preset": "dcim-28nm", "bin_threshold": None, "layers": None, "executor": "reference"}
"""Options of 'dual-ternarized' and their defaults: the shipped model (name, folder or .cim), the
hardware preset with the second macro type, the first N calibration images, the cost preset, the
binary-input threshold θ (None: the MSB of each layer's input, 2^(X−1)), the conv/fc layers searched
(None: all) and the executor (only the reference emulator implements dual-path layers, §10.6)."""


def ternarize(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-filter ternary weights of the integer matrix ``w`` (F, K) (TWN rule: Δ = 0.7 · mean|w_f|,
    T = sign(w) where |w| > Δ, else 0) and each filter's scale α_f = mean |w| over its non-zero T
    (1.0 for an all-zero filter). Returns (T int64 (F, K) in {−1, 0, 1}, α float64 (F,))."""
    w = np.asarray(w, dtype=np.float64)
    a = np.abs(w)
    delta = 0.7 * a.mean(axis=1, keepdims=True)
    t = np.where(a > delta, np.sign(w), 0).astype(np.int64)
    nz = np.abs(t).sum(axis=1)
    alpha = np.where(nz > 0, (a * np.abs(t)).sum(axis=1) / np.maximum(nz, 1), 1.0)
    return t, alpha


class TernarizedDualEvaluator:
    """Dual-path versions of a shipped integer model: layer l with ratio q moves its last ⌊F·q/8⌋
    filters to the ternary path with weights ternarized from its integer weights (:func:`ternarize`)
    and a binary input b = x ≥ θ; each moved filter's bias, shift and res_shift are re-derived so
    that the ternary accumulator lands on the layer's output scale: acc_w ≈ s · acc_t + c with
    s = α_f · β (β: mean of the layer's inputs ≥ θ), c = μ_lo · Σ_k w[f, k] (μ_lo: mean of the
    inputs below θ, over all input values), s rounded to 2^e (e ≤ res_shift on residual layers).
    β and μ_lo are measured once on the evaluation images through the original program.

    **Untrained**: nothing is fine-tuned, so the accuracy it reports is a mechanics check of the
    search (how ternarizing a trained INT4 model degrades it), not DualNet's accuracy.
    Each candidate runs through the reference emulator (the only executor of dual-path layers)
    on the first ``images`` images of the calibration split, and the cost model prices its counters.
    """

    name = "dual-ternarized"
    objectives = dict(OBJECTIVES)

    def __init__(self, options: dict, data: str | None):
        from ..cost import load_cost_preset
        from ..data import calibration_split
        from ..emulator import FastEmulator
        from ..models import resolve_model
        from ..program import read_program
        from ..program.weights import decode_weight_matrix
        from ..spec.hardware import get_preset
        opts = _check_options(options, TERNARIZED_OPTIONS, f"evaluator {self.name!r}")
        images = opts["images"]
        if isinstance(images, bool) or not isinstance(images, int) or not 1 <= images <= 5000:
            raise EvaluatorError(f"evaluator {self.name!r}: option 'images' must be an integer 1..5000, got {images!r}")
        if opts["executor"] != "reference":
            raise EvaluatorError(f"evaluator {self.name!r}: option 'executor' must be 'reference' (the only executor "
                                 f"of dual-path layers), got {opts['executor']!r}")
        try:
            preset = get_preset(opts["preset"])
        except Exception as e:
            raise EvaluatorError(f"evaluator {self.name!r}: option 'preset': {e}") from None
        if not preset.has_tern:
            raise EvaluatorError(f"evaluator {self.name!r}: preset {preset.name!r} has no second macro type (tern_* "
                                 "fields): dual-path layers need one, e.g. sun-mars-256-dual")
        self.cost_preset = load_cost_preset(opts["cost_preset"])
        base = read_program(resolve_model(str(opts["model"])))
        if (base.preset.rows, base.preset.cols, base.preset.rows_active, base.preset.group_width,
                base.preset.n_macros, base.preset.precisions) != (preset.rows, preset.cols, preset.rows_active,
                                                                  preset.group_width, preset.n_macros, preset.precisions):
            raise EvaluatorError(f"evaluator {self.name!r}: model {opts['model']!r} is compiled for {base.preset.name!r}, "
                                 f"whose SRAM macros differ from preset {preset.name!r}'s")
        cim = [l.name for l in base.layers if l.op.is_cim]
        want = opts["layers"]
        if want is None:
            want = cim
        elif not isinstance(want, list) or not all(isinstance(n, str) for n in want) or not want:
            raise EvaluatorError(f"evaluator {self.name!r}: option 'layers' must be a non-empty list of layer names")
        bad = [n for n in want if n not in cim]
        if bad:
            raise EvaluatorError(f"evaluator {self.name!r}: option 'layers': {bad[0]!r} is not a conv/fc layer of "
                                 f"{base.name!r} (its conv/fc layers: {', '.join(cim)})")
        self._layers = list(want)
        self.images, self.labels = calibration_split(data, limit=images)
        self.base = dataclasses.replace(base, preset=preset)
        thr = opts["bin_threshold"]
        trace = FastEmulator(base, "numpy").run(self.images, trace=True).tensors  # inputs of every layer, once
        self._tern = {}
        for l in self.base.layers:
            if l.name not in self._layers:
                continue
            t_in = self.base.tensors[l.in_tensor]
            theta = (1 << (t_in.bits - 1)) if thr is None else thr
            if isinstance(theta, bool) or not isinstance(theta, int) or not 1 <= theta <= (1 << t_in.bits) - 1:
                raise EvaluatorError(f"evaluator {self.name!r}: option 'bin_threshold' {theta!r} is outside "
                                     f"1..{(1 << t_in.bits) - 1} for layer {l.name!r} ({t_in.bits}-bit input)")
            x = trace[t_in.name].astype(np.float64)
            hi = x >= theta
            beta = float(x[hi].mean()) if hi.any() else float(theta)
            mu_lo = float(np.where(hi, 0.0, x).mean())
            w = decode_weight_matrix(l.precision, l.col_filter, l.col_plane, l.present, l.words, l.k_rows,
                                     preset.rows_active)
            t, alpha = ternarize(w)
            e = np.rint(np.log2(np.maximum(alpha * beta, 1.0))).astype(np.int64)
            if l.res_tensor is not None:
                e = np.minimum(e, l.res_shift.astype(np.int64))
            e = np.minimum(e, l.shift.astype(np.int64) + 31)
            c = mu_lo * w.astype(np.float64).sum(axis=1)
            bias = np.rint((l.bias.astype(np.float64) + c) / np.exp2(e)).astype(np.int64)
            self._tern[l.name] = (theta, t, bias, l.shift.astype(np.int64) - e,
                                  None if l.res_tensor is None else l.res_shift.astype(np.int64) - e)
        self.notes = (f"untrained: ternary weights derived from the integer weights of {base.name} (no fine-tuning), "
                      f"accuracy on the first {images} calibration images (training split) through the reference "
                      f"emulator; energy/latency/memory of both paths from cost preset {self.cost_preset.name!r}")

    def layers(self) -> list[str]:
        return list(self._layers)

    def program(self, ratios: dict):
        """The dual-path program of ``ratios`` ({layer: q}; q = 0 leaves a layer plain INT4)."""
        from ..program.builder import make_dual
        from ..program.dualpath import DualPathParams
        unknown = sorted(set(ratios) - set(self._layers))
        if unknown:
            raise EvaluatorError(f"no searchable layer {unknown[0]!r}")
        layers, params = [], {}
        for l in self.base.layers:
            q = int(ratios.get(l.name, 0))
            if l.name in self._tern and q:
                if not 0 <= q <= 8:
                    raise EvaluatorError(f"layer {l.name!r}: ratio {q} is outside 0..8")
                theta, t, bias, shift, res_shift = self._tern[l.name]
                dual = DualPathParams(q, theta)
                f0 = dual.first_tern(l.n_filters)
                nb, ns = l.bias.astype(np.int64).copy(), l.shift.astype(np.int64).copy()
                nb[f0:], ns[f0:] = bias[f0:], shift[f0:]
                repl = {"bias": nb.astype(l.bias.dtype), "shift": ns.astype(l.shift.dtype)}
                if res_shift is not None:
                    nr = l.res_shift.astype(np.int64).copy()
                    nr[f0:] = res_shift[f0:]
                    repl["res_shift"] = nr.astype(l.res_shift.dtype)
                l = dataclasses.replace(l, **repl)
                params[l.name] = (dual, t[f0:])
            layers.append(l)
        return make_dual(dataclasses.replace(self.base, layers=layers), params)

    def evaluate(self, ratios: dict) -> dict:
        from ..emulator import ReferenceEmulator
        prog = self.program(ratios)
        res = ReferenceEmulator(prog).run(self.images)
        return program_objectives(prog, res.outputs, res.counters, self.labels, self.cost_preset)


EVALUATORS: dict[str, Callable] = {"dual-ternarized": TernarizedDualEvaluator, "dual-supernet": make_supernet}
"""Built-in evaluator factories by config name."""


def make_evaluator(kind: str, options: dict | None = None, data: str | None = None):
    """The evaluator named ``kind`` (a key of :data:`EVALUATORS` or "module:factory") built with ``options``."""
    options = {} if options is None else options
    if kind in EVALUATORS:
        ev = EVALUATORS[kind](options, data)
    elif ":" in kind:
        mod, _, attr = kind.partition(":")
        try:
            factory = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as e:
            raise EvaluatorError(f"evaluator {kind!r} cannot be imported: {e}") from None
        ev = factory(options, data)
    else:
        raise EvaluatorError(f"unknown evaluator {kind!r} (built in: {', '.join(EVALUATORS)}; or 'module:factory')")
    check_evaluator(ev)
    return ev


def check_evaluator(ev) -> None:
    """Refuse an object that does not follow the evaluator interface (module doc)."""
    for attr in ("name", "objectives", "layers", "evaluate"):
        if not hasattr(ev, attr):
            raise EvaluatorError(f"evaluator {type(ev).__name__} has no {attr!r} (see hybridcim.search.evaluators)")
    bad = {k: v for k, v in ev.objectives.items() if v not in ("maximize", "minimize")}
    if bad or not ev.objectives:
        raise EvaluatorError(f"evaluator {ev.name!r}: objective directions must be 'maximize' or 'minimize', got {bad}")


def check_values(ev, values: dict) -> list[float]:
    """The evaluator's result as a list in objective order; an error names a missing or non-finite value."""
    out = []
    for k in ev.objectives:
        v = values.get(k) if isinstance(values, dict) else None
        if v is None or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(float(v)):
            raise EvaluatorError(f"evaluator {ev.name!r} returned {k}={v!r}: every objective must be a finite number")
        out.append(float(v))
    return out
