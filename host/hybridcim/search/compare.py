"""Programs side by side against a baseline: accuracy on CIFAR-10 and the cost model's energy,
memory and latency, with each one's change relative to the baseline (DualNet's comparison).

Every program runs through the fast emulator (bit-exact with the reference emulator, dual-path
layers included) on the same images; the counters summed over those images are priced by the cost
model exactly as a search candidate is (:func:`hybridcim.search.evaluators.program_objectives`):

- ``accuracy``: top-1 fraction on the images;
- ``energy_uj``: µJ per image (the cost model's whole chip: CIM datapath, buffers, requant, weight
  writes, eDRAM refresh, leakage and DRAM transfers);
- ``memory_kib``: KiB of weights and tables stored on chip (ternary weights as two cells);
- ``latency_us``: µs per image of the CIM chip (a dual-path layer takes the longer of its paths).

A change is ``(x − x_baseline) / x_baseline`` (negative: a reduction); accuracy's is in percentage
points. DualNet's headline reductions (abstract of the seed paper, quoted, never fitted) are
:data:`DUALNET_PAPER`. Numpy only.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np

COST_OBJECTIVES = ("energy_uj", "memory_kib", "latency_us")
"""The cost objectives compared, in table order."""

DUALNET_PAPER = {"energy_uj": -0.290, "memory_kib": -0.495, "latency_us": -0.473}
"""DualNet's reductions against single-precision quantized networks, averaged over CIFAR-10/100 and
ImageNet (fractions; negative = less)."""

DUALNET_SOURCE = ("DualNet, S. Jung et al., IEEE TCAS-I 71(12), 2024, abstract (seed file 002_2938dd8300f4ae15.txt): "
                  "\"DualNet reduces the energy consumption, memory footprint, and latency by 29.0%, 49.5%, 47.3% "
                  "on average, respectively, for CIFAR-10/100 and ImageNet datasets\" (28 nm test chip, against "
                  "quantized networks of a single bit precision)")

@dataclasses.dataclass(frozen=True)
class Measured:
    """One program's figures on ``images`` images (units in the module docstring)."""
    label: str
    program: str
    images: int
    accuracy: float
    energy_uj: float
    memory_kib: float
    latency_us: float
    dual_layers: int

    def change(self, base: "Measured") -> dict:
        """{objective: relative change vs ``base``} and ``accuracy_pp`` (percentage points)."""
        out = {"accuracy_pp": 100.0 * (self.accuracy - base.accuracy)}
        for k in COST_OBJECTIVES:
            b = getattr(base, k)
            out[k] = (getattr(self, k) - b) / b if b else float("nan")
        return out


def measure(label: str, program, images: np.ndarray, labels: np.ndarray, cost_preset, backend: str = "auto",
            bar=None, source: str = "") -> Measured:
    """Run ``program`` on uint8 NCHW ``images`` through the fast emulator and price its counters."""
    from .evaluators import program_objectives
    from .supernet import run_program
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"{len(images)} images and {len(labels)} labels: need the same, at least one")
    logits, counters, _ = run_program(program, images, "fast", backend, bar)
    obj = program_objectives(program, logits, counters, labels, cost_preset)
    n_dual = sum(1 for layer in program.layers if getattr(layer, "flags", 0))
    return Measured(label, source or program.name, len(images), obj["accuracy"], obj["energy_uj"],
                    obj["memory_kib"], obj["latency_us"], n_dual)


def comparison(rows: list[Measured], baseline: str) -> dict:
    """The JSON record: every row's figures and change vs the row labelled ``baseline``, and the paper's."""
    base = [r for r in rows if r.label == baseline]
    if len(base) != 1:
        raise ValueError(f"baseline {baseline!r} must name exactly one of {[r.label for r in rows]}")
    if len({r.images for r in rows}) != 1:
        raise ValueError("every program must run on the same images")
    return {"baseline": baseline, "images": rows[0].images,
            "rows": [{**dataclasses.asdict(r), "change": r.change(base[0])} for r in rows],
            "paper": {"change": DUALNET_PAPER, "source": DUALNET_SOURCE}}


def _pct(v: float) -> str:
    return f"{100 * v:+.1f} %"


def markdown_table(record: dict) -> str:
    """The comparison as a Markdown table, the paper's reductions as its last row."""
    head = ["model", "accuracy", "Δ accuracy", "energy (µJ/img)", "Δ energy", "memory (KiB)", "Δ memory",
            "latency (µs/img)", "Δ latency"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in record["rows"]:
        c = r["change"]
        base = r["label"] == record["baseline"]
        cells = [r["label"] + (" (baseline)" if base else ""), f"{100 * r['accuracy']:.2f} %",
                 "–" if base else f"{c['accuracy_pp']:+.2f} pp"]
        for k in COST_OBJECTIVES:
            cells += [f"{r[k]:,.3f}" if r[k] < 100 else f"{r[k]:,.1f}", "–" if base else _pct(c[k])]
        lines.append("| " + " | ".join(cells) + " |")
    p = record["paper"]["change"]
    lines.append("| DualNet paper (abstract; average over CIFAR-10/100 and ImageNet) | not stated | | | "
                 + " | | ".join(_pct(p[k]) for k in COST_OBJECTIVES) + " |")
    return "\n".join(lines) + "\n"


def write_outputs(record: dict, json_path=None, markdown_path=None) -> None:
    """Write the record (JSON) and its table (Markdown) atomically where asked."""
    from ..fileio import atomic_write_text
    if json_path:
        atomic_write_text(json_path, json.dumps(record, indent=1) + "\n", "--json")
    if markdown_path:
        atomic_write_text(markdown_path, markdown_table(record), "--markdown")


__all__ = ["COST_OBJECTIVES", "DUALNET_PAPER", "DUALNET_SOURCE", "Measured", "comparison", "markdown_table",
           "measure", "write_outputs"]
