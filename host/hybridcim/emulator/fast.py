"""Fast emulator: the same integers and counters as the reference, by exact float products.

The work is planned once per program (plan.py: decoded weights of computed filters only,
provably-zero channels dropped, float32/float64 chosen so every partial sum is exact) and
run by a backend: ``torch`` (used when importable; channels-last convolutions by the
*int8* engine, oneDNN int8 x int8 -> int32, wherever it is available and provably exact,
else the *float* engine, exact float32/float64 conv2d) or ``numpy`` (im2col + BLAS float
matmul in bounded-memory chunks; the PYNQ board path). Counters come from
:func:`counters.dual_static_counters` (digital mode is data independent) except ``input_ones``,
which :class:`counters.InputOnesCounter` counts from every CIM layer's input as it runs
(numpy; in torch with :data:`INPUT_ONES_IN_TORCH`), a dual-path layer's ``tern_input_ones``
(:class:`counters.TernOnesCounter`, from the same input), and
the data-dependent counters of hybrid layers (architecture.md §9), which their engine
(hybrid_engine.py; torch_hybrid.py on the torch backend) counts as it runs them.

Dual-path layers (DualNet, architecture.md §10) run on both backends: the plan splits such a
layer's computed filters into two weight sets, its SRAM (INT4) filters on the input x and its
ternary filters (T in {-1, 0, 1}) on the binary input z = [x >= bin_threshold], convolved
separately (both exact: |T z| <= K) and requantized together per filter (§6).
"""
from __future__ import annotations

import importlib.util

import numpy as np

from ..program.errors import UnsupportedModeError
from ..program.format import FLAG_DUAL, MODE_DIGITAL, MODE_HYBRID
from .counters import InputOnesCounter, LayerCounters, TernOnesCounter, dual_static_counters
from .numpy_backend import run_numpy
from .plan import ExecPlan
from .result import ExecutionResult, check_images, final_output


INPUT_ONES_IN_TORCH = False
"""Count ``input_ones`` in torch on the torch backend (``torch_backend.input_ones_torch``, exact) instead
of numpy's SWAR popcount. Off: on the 2-core development machine the torch count was slower (98 vs
135 ms per batch of 250 with 1 thread, far slower with 2 threads on a loaded machine; docs/performance.md)."""


def available_backends() -> list[str]:
    """Backends usable here, best first (checks for torch without importing it)."""
    return ["torch", "numpy"] if importlib.util.find_spec("torch") is not None else ["numpy"]


class FastEmulator:
    """Vectorized exact executor; ``backend`` is 'auto', 'torch' or 'numpy'; ``engine`` (torch
    backend) is 'auto', 'int8' or 'float' (torch_backend.py); the numpy backend is float only."""

    name = "fast"

    def __init__(self, program, backend: str = "auto", engine: str = "auto"):
        if backend == "auto":
            backend = available_backends()[0]
        if backend not in available_backends():
            raise ValueError(f"backend {backend!r} not available here; available: {available_backends()}")
        if engine not in ("auto", "int8", "float"):
            raise ValueError(f"engine {engine!r} unknown; choose 'auto', 'int8' or 'float'")
        if backend == "numpy" and engine == "int8":
            raise ValueError("engine 'int8' needs the torch backend (the numpy backend computes in float)")
        unknown = [f"{i} ({l.name!r}) mode {l.mode}" for i, l in enumerate(program.layers)
                   if l.mode not in (MODE_DIGITAL, MODE_HYBRID) or (l.mode == MODE_HYBRID and not l.op.is_cim)]
        if unknown:  # the validator refuses these too; a hand-made Program may still carry one
            raise UnsupportedModeError(f"layer {unknown[0]} is not a mode the fast emulator implements "
                                       "(0 = digital, 1 = hybrid conv/fc)")
        odd = [f"{i} ({l.name!r}) flags {l.flags} mode {l.mode}" for i, l in enumerate(program.layers)
               if l.flags not in (0, FLAG_DUAL) or (l.flags and (l.mode != MODE_DIGITAL or l.dual is None))]
        if odd:  # §10.5: a dual-path layer is flags 1 in mode 0 with its dual section; the validator refuses others
            raise UnsupportedModeError(f"layer {odd[0]} is not a layer the fast emulator implements (flags 0, or "
                                       "flags 1 = dual-path in digital mode 0)")
        self.program, self.backend, self.engine = program, backend, engine
        self.plan = ExecPlan(program)
        self._per_image = [dual_static_counters(l, program, 1) for l in program.layers]
        self._ones = {i: InputOnesCounter(l, program) for i, l in enumerate(program.layers) if l.op.is_cim}
        self._tern_ones = {i: TernOnesCounter(l, program) for i, l in enumerate(program.layers)
                           if l.flags & FLAG_DUAL and l.dual.n_tern(l.n_filters)}
        self._torch = None

    def run(self, images: np.ndarray, trace: bool = False, image_base: int = 0) -> ExecutionResult:
        """Run the program on uint8 NCHW images; see ExecutionResult for the layout.

        ``image_base``: global index of ``images[0]`` (u32; keys the analog noise of hybrid layers,
        architecture.md §9.6, so a batch split gives the same bits as one call)."""
        p = self.program
        if not (0 <= image_base and image_base + max(len(images), 1) - 1 <= 0xFFFFFFFF):
            raise ValueError(f"image_base {image_base}: global image indices must fit a u32")
        x0 = check_images(p, images)
        while True:  # once, unless the torch plan's check of a later batch switched a layer to float
            counters = self.counters(x0.shape[0])

            in_torch = self.backend == "torch" and INPUT_ONES_IN_TORCH

            def observe(i: int, x: np.ndarray) -> None:  # CIM layer i's stored NHWC input
                if not in_torch:
                    counters[i].input_ones += self._ones[i](x, self.plan.stored[p.layers[i].in_tensor])
                if i in self._tern_ones:  # §10.4; missing (provably 0) channels give z = 0: the stored ones suffice
                    counters[i].tern_input_ones += self._tern_ones[i](x)

            def hybrid(i: int, x: np.ndarray, first: int) -> np.ndarray:  # hybrid layer i's accumulators (numpy)
                return self.plan.hybrid[i].run_numpy(x, image_base + first, counters[i])

            if self.backend != "torch":
                env = run_numpy(self.plan, x0, keep_all=trace, observe=observe, hybrid=hybrid)
                break
            if self._torch is None:
                from .torch_backend import TorchPlan
                self._torch = TorchPlan(self.plan, self.engine)
            from .torch_backend import Int8Mismatch
            try:
                env = self._torch.run(x0, keep_all=trace, observe=observe, counters=counters, image_base=image_base,
                                      ones=self._ones if in_torch else None)
                break
            except Int8Mismatch:  # that layer is float now (a warning said so): run the batch again
                continue
        tensors = {p.tensors[t].name: v for t, v in env.items()} if trace else None
        return ExecutionResult(final_output(p, env[p.output_tensor]), counters, tensors)

    @property
    def engines(self) -> dict[str, str]:
        """Engine of every CIM layer by name: 'int8', 'int8-split' (8-bit input as two int8
        convolutions) or 'float' (decided when the torch plan is built; numpy: all 'float')."""
        if self.backend == "torch":
            if self._torch is None:
                from .torch_backend import TorchPlan
                self._torch = TorchPlan(self.plan, self.engine)
            return dict(self._torch.engines)
        return {l.name: "float" for l in self.program.layers if l.op.is_cim}

    def counters(self, images: int) -> list[LayerCounters]:
        """Per-layer data-independent counters for ``images`` images (``input_ones`` is 0: ``run`` counts it)."""
        return [c.times(images) for c in self._per_image]
