"""Event-based cost model: per-layer activity counters × per-event energies (docs/cost-model.md).

Units: energy pJ, time ns, area mm², memory bits. Everything here is linear in the
per-image counters (images, cycles, activations, ...), so a cost is additive over layers
and over batches of images. The latency is the **CIM chip latency** of the emulated
SRAM-CIM accelerator (macro cycles at the preset clock, weight loads, DRAM transfers),
not the FPGA overlay's throughput.

Dual-path layers (architecture.md §10): the ternary path's events, its two paths in parallel, its
cells and the second macro type's area and leakage come from :mod:`.dualpath`
(docs/cost-model.md, "Dual-path layers").

DRAM: the ``dram_bytes`` counter sends every layer's activations through DRAM (architecture.md
§7). The model splits it into weights + tables (always from DRAM) and activation traffic,
which stays in the on-chip activation buffer (``act_onchip``, priced per bit like the buffer)
when the layer's working set of one image fits ``act_buffer_kib`` and crosses DRAM
(``dram_activations``) when it does not (:func:`activation_traffic`).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from ..emulator.counters import LayerCounters, tensor_bytes, tile_of_units
from ..program.model import Layer, Program
from . import dualpath as dp
from .dualpath import MACRO2_PARAMS  # noqa: F401  (re-exported)
from .errors import CostError, priced
from .preset import CostPreset, load_cost_preset

EVENT_KINDS = ("rowblock", "input_lines", "adder_tree", "shift_add", "accumulate", "requant", "weight_load",
               "act_buffer", "act_onchip", "dram_weights", "dram_activations", "analog_column_read", "adc_conversion", "skipped_bitplane",
               "saliency", "macro2", "tern_accumulate", "tern_weight_load", "edram_refresh", "leakage")
"""Energy breakdown keys of LayerCost.energy_pj, in report order (docs/cost-model.md, "Events"); ``macro2``,
``tern_accumulate``, ``tern_weight_load`` and ``edram_refresh`` are the ternary path of a dual-path layer
(architecture.md §10; docs/cost-model.md, "Dual-path layers")."""

DRAM_KINDS = ("dram_weights", "dram_activations")
"""Event kinds that are off-chip (DRAM) transfers: everything else is on-chip energy."""

MACRO_KINDS = ("rowblock", "input_lines", "adder_tree", "shift_add", "accumulate", "analog_column_read", "adc_conversion",
               "skipped_bitplane", "saliency", "macro2", "tern_accumulate")
"""Event kinds inside the CIM datapath (macro + accumulators, in hybrid mode the analog path, its ADC
and the saliency unit, in a dual-path layer the ternary macros and their accumulators; those six are 0
in a digital layer): what a macro-level TOPS/W counts."""


ADC_REFERENCE_BITS = 5
"""Resolution at which a cost preset prices ``adc_conversion_pj``; a conversion of the hardware
preset's ``adc_bits`` costs that × 2^(adc_bits − 5) (Walden figure of merit: energy ∝ 2^bits)."""

NEW_COUNTERS = ("weight_load_bits", "dram_bytes", "act_buffer_bits", "requant_ops", "input_ones")
"""Counters (architecture.md §7) the model needs beyond the mapping counters."""

REQUANT_ENTRY_BITS = {"bias": 32, "shift": 6, "res_shift": 5}
"""Bits per kept filter of the requant table (bias int32, shift −31…31, res_shift 0…31 if the layer has a residual)."""
CLAMP_BITS = 64
"""Per conv/fc/avgpool layer: clamp lo and hi (2 × 32 bits)."""

LATENCY_KIND = "CIM chip latency"


@dataclass
class LayerCost:
    """Cost of one layer over ``images`` images.

    energy_pj: pJ by event kind (EVENT_KINDS). compute_cycles: macro cycles (counters.cycles);
    load_cycles: cycles spent writing weights into the macros (weight_load_bits over the
    macros' write bandwidth); cycles = compute_cycles + load_cycles. dram_ns: DRAM transfer
    time (not overlapped). latency_ns: CIM chip latency = cycles / clock + dram_ns.
    bound: which of compute / weight_load / dram dominates. ops: dense ops (2 × macs).
    memory_bits: weights / index / requant bits this layer stores (independent of images).
    input_ones_fraction: measured 1-bit density on the driven word lines (None if no slots).
    act_working_set_bits: activation working set of one image (activation_traffic);
    activations_on_chip: whether it fits the preset's act_buffer_kib; dram_bytes: bytes that
    actually cross DRAM (weights and tables, plus the activation traffic when it does not fit).
    Dual-path layer (architecture.md §10): dual_ratio q (eighths; None in a layer without a dual
    section), n_tern_filters F_t; sram_path_cycles and tern_path_cycles (compute + weight loads of
    each path; the layer takes the longer, critical_path "sram" or "ternary", and compute_cycles /
    load_cycles are that path's); weight_bits / cells_allocated and tern_weight_bits /
    tern_cells_allocated: used weight bits and allocated cells of each macro type (utilizations).
    """

    layer: str
    op: str
    images: int
    energy_pj: dict
    compute_cycles: float
    load_cycles: float
    dram_ns: float
    latency_ns: float
    bound: str
    ops: int
    memory_bits: dict
    input_ones_fraction: float | None = None
    act_working_set_bits: int = 0
    activations_on_chip: bool = False
    dram_bytes: int = 0
    dual_ratio: int | None = None
    n_tern_filters: int = 0
    sram_path_cycles: float = 0.0
    tern_path_cycles: float = 0.0
    critical_path: str = "sram"
    weight_bits: int = 0
    cells_allocated: int = 0
    tern_weight_bits: int = 0
    tern_cells_allocated: int = 0
    tern_input_ones_fraction: float | None = None

    @property
    def sram_utilization(self) -> float | None:
        """Used weight bits / allocated cells of the SRAM macros (None: the layer stores no SRAM weights)."""
        return self.weight_bits / self.cells_allocated if self.cells_allocated else None

    @property
    def tern_utilization(self) -> float | None:
        """Ternary weight cells (2 per weight) / allocated ternary cells (None: no ternary path)."""
        return self.tern_weight_bits / self.tern_cells_allocated if self.tern_cells_allocated else None

    @property
    def cycles(self) -> float:
        """Macro cycles including weight loads."""
        return self.compute_cycles + self.load_cycles

    @property
    def energy_total_pj(self) -> float:
        return float(sum(self.energy_pj.values()))

    @property
    def energy_macro_pj(self) -> float:
        """Energy of the CIM datapath only (MACRO_KINDS), pJ."""
        return float(sum(self.energy_pj[k] for k in MACRO_KINDS))

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["cycles"] = self.cycles
        d["energy_total_pj"] = self.energy_total_pj
        d["energy_macro_pj"] = self.energy_macro_pj
        d["sram_utilization"] = self.sram_utilization
        d["tern_utilization"] = self.tern_utilization
        return d


@dataclass
class Cost:
    """Cost of a program run: per-layer costs plus chip-level area and memory.

    area_mm2: {"macros", "periphery"} (+ "tern_macros" on a hardware preset with the second macro
    type); memory_bits: {"weights", "index", "requant"} (+ "tern_weights") summed over layers;
    memory_area_mm2: the weight cells of each macro type at its density. Layers run one after
    another, so latency_ns sums the layers'.
    """

    program: str
    hardware_preset: str
    cost_preset: str
    cost_preset_version: int
    images: int
    layers: list[LayerCost]
    area_mm2: dict
    memory_bits: dict
    latency_kind: str = LATENCY_KIND
    assumptions: list = field(default_factory=list)
    memory_area_mm2: dict = field(default_factory=dict)

    @property
    def macro_utilization(self) -> dict:
        """Used weight bits / allocated cells over all layers, per macro type: {"sram": ...} and, when
        the program has a ternary path, "ternary" (2 cells per ternary weight / allocated ternary cells)."""
        out = {}
        cells = sum(l.cells_allocated for l in self.layers)
        out["sram"] = sum(l.weight_bits for l in self.layers) / cells if cells else None
        tcells = sum(l.tern_cells_allocated for l in self.layers)
        if tcells:
            out["ternary"] = sum(l.tern_weight_bits for l in self.layers) / tcells
        return out

    @property
    def energy_pj(self) -> float:
        """Total energy (pJ) over all layers and images."""
        return float(sum(l.energy_total_pj for l in self.layers))

    @property
    def energy_by_kind(self) -> dict:
        """pJ per event kind, summed over layers."""
        return {k: float(sum(l.energy_pj.get(k, 0.0) for l in self.layers)) for k in EVENT_KINDS}

    @property
    def energy_macro_pj(self) -> float:
        """Energy of the CIM datapath only (MACRO_KINDS: macros and accumulators), pJ."""
        return float(sum(l.energy_macro_pj for l in self.layers))

    @property
    def energy_dram_pj(self) -> float:
        """Energy of the DRAM transfers (DRAM_KINDS: weights and tables, spilled activations), pJ."""
        return float(sum(l.energy_pj.get(k, 0.0) for l in self.layers for k in DRAM_KINDS))

    @property
    def latency_ns(self) -> float:
        """CIM chip latency (ns) of all images, layers in sequence."""
        return float(sum(l.latency_ns for l in self.layers))

    @property
    def cycles(self) -> float:
        return float(sum(l.cycles for l in self.layers))

    @property
    def ops(self) -> int:
        """Dense-equivalent operations (2 per multiply-accumulate)."""
        return int(sum(l.ops for l in self.layers))

    @property
    def area_total_mm2(self) -> float:
        return float(sum(self.area_mm2.values()))

    @property
    def memory_total_bits(self) -> int:
        return int(sum(self.memory_bits.values()))

    @property
    def energy_uj_per_image(self) -> float:
        return self.energy_pj / self.images / 1e6 if self.images else 0.0

    @property
    def latency_us_per_image(self) -> float:
        """CIM chip latency per image in µs (images run one after another)."""
        return self.latency_ns / self.images / 1e3 if self.images else 0.0

    @property
    def images_per_s(self) -> float:
        return self.images / self.latency_ns * 1e9 if self.latency_ns else 0.0

    @property
    def gops(self) -> float:
        """Dense-equivalent throughput in GOPS (ops per ns)."""
        return self.ops / self.latency_ns if self.latency_ns else 0.0

    @property
    def tops_per_w(self) -> float:
        """Dense-equivalent energy efficiency (ops per pJ = TOPS/W)."""
        return self.ops / self.energy_pj if self.energy_pj else 0.0

    @property
    def tops_per_w_macro(self) -> float:
        """Dense-equivalent ops per pJ of the CIM datapath alone (no buffers, DRAM, requant, leakage)."""
        return self.ops / self.energy_macro_pj if self.energy_macro_pj else 0.0

    @property
    def tops_per_mm2(self) -> float:
        """Dense-equivalent area efficiency: TOPS over total chip area."""
        return self.gops / 1e3 / self.area_total_mm2 if self.area_total_mm2 else 0.0

    def summary(self) -> str:
        """One line: energy and CIM chip latency per image, efficiency, area, memory."""
        return (f"{self.program}: {self.energy_uj_per_image:.3f} uJ/image, {self.latency_kind} "
                f"{self.latency_us_per_image:.2f} us/image, {self.tops_per_w:.1f} TOPS/W, "
                f"{self.gops:.1f} GOPS, {self.area_total_mm2:.3f} mm2, "
                f"{self.memory_total_bits / 8192:.1f} KiB stored (cost preset {self.cost_preset})")

    def as_dict(self) -> dict:
        """JSON-ready dict: totals, per-image figures, breakdowns and every layer."""
        return {
            "program": self.program, "hardware_preset": self.hardware_preset, "cost_preset": self.cost_preset,
            "cost_preset_version": self.cost_preset_version, "images": self.images,
            "latency_kind": self.latency_kind,
            "energy_pj": self.energy_pj, "energy_by_kind_pj": self.energy_by_kind,
            "latency_ns": self.latency_ns, "cycles": self.cycles, "ops": self.ops,
            "energy_uj_per_image": self.energy_uj_per_image, "latency_us_per_image": self.latency_us_per_image,
            "images_per_s": self.images_per_s, "gops": self.gops, "tops_per_w": self.tops_per_w,
            "energy_macro_pj": self.energy_macro_pj, "tops_per_w_macro": self.tops_per_w_macro,
            "energy_dram_pj": self.energy_dram_pj,
            "tops_per_mm2": self.tops_per_mm2,
            "area_mm2": dict(self.area_mm2), "area_total_mm2": self.area_total_mm2,
            "memory_bits": dict(self.memory_bits), "memory_total_bits": self.memory_total_bits,
            "memory_area_mm2": dict(self.memory_area_mm2), "macro_utilization": self.macro_utilization,
            "assumptions": list(self.assumptions),
            "layers": [l.as_dict() for l in self.layers],
        }


# ---------------------------------------------------------------- static structure of a layer


def _bits_in(layer: Layer, program: Program) -> int:
    return program.tensors[layer.in_tensor].bits


def wordline_slots(layer: Layer, program: Program) -> int:
    """Word lines driven per input bit plane and output pixel: Σ over tiles of the real rows
    (≤ rows_active) of each activated row block. input_ones / (slots × bits_in × pixels × images)
    is the measured 1-bit density (ZigZag assumes 0.5)."""
    if not layer.op.is_cim:
        return 0
    a = program.preset.rows_active
    r = layer.present.shape[1]
    rows_real = np.minimum(a, layer.k_rows - np.arange(r) * a)
    tile, _, n_tiles = tile_of_units(layer, program)
    g, b = np.nonzero(layer.present)
    active = np.zeros((n_tiles, r), dtype=bool)  # tile t activates row block b
    active[tile[g, b], b] = True
    return int((active.sum(axis=0) * rows_real).sum())


def accumulator_updates_per_step(layer: Layer) -> int:
    """Accumulator updates per input bit plane and output pixel: Σ over present units of the
    number of filters stored in the unit's group (each filter's partial sum is updated once)."""
    if not layer.op.is_cim:
        return 0
    cf = layer.col_filter
    prev = np.concatenate([np.full((cf.shape[0], 1), -1, dtype=cf.dtype), cf[:, :-1]], axis=1)
    filters_per_group = ((cf >= 0) & (cf != prev)).sum(axis=1)  # a filter's columns are contiguous (§4)
    return int((layer.present.sum(axis=1) * filters_per_group).sum())


def activation_traffic(layer: Layer, program: Program) -> tuple[int, int]:
    """Per image, statically from the tensor shapes: (activation bytes that §7's dram_bytes sends
    through DRAM, activation working set in bits).

    Traffic: the input, residual and output tensors packed at their bit widths (⌈H·W·C·bits / 8⌉
    bytes each, as tensor_bytes) plus 2 · (rounds − 1) · pixels · F · acc_bits / 8 bytes of partial
    sums between rounds, exactly the activation terms of dram_bytes (architecture.md §7); the rest
    of dram_bytes is tables and weights. Working set: 8 × (input + residual + output bytes + one
    round's partial sums, pixels · F · acc_bits / 8, when the layer has more than one round).

    Dual-path layer (architecture.md §10.4): the SRAM path's partial sums count its F − F_t filters
    over its rounds, the ternary path's its F_t filters over the ternary rounds, and the working set
    adds the binary input plane the comparator writes (H·W·C bits) and each path's one round of
    partial sums when that path has more than one round."""
    t_in, out_t = program.tensors[layer.in_tensor], program.tensors[layer.out_tensor]
    tensors = tensor_bytes(t_in) + tensor_bytes(out_t)
    if layer.res_tensor is not None:
        tensors += tensor_bytes(program.tensors[layer.res_tensor])
    psum = 0
    rounds = 1
    if layer.op.is_cim:
        pr = program.preset
        _, _, n_tiles = tile_of_units(layer, program)
        rounds = max(1, -(-n_tiles // pr.n_macros))
        psum = out_t.height * out_t.width * (layer.n_filters - dp.n_tern(layer)) * (pr.acc_bits // 8)
    tern_traffic, tern_round = dp.tern_psum_bytes(layer, program)
    traffic = tensors + 2 * (rounds - 1) * psum + tern_traffic
    working_set = 8 * (tensors + (psum if rounds > 1 else 0) + tern_round) + dp.binary_plane_bits(layer, program)
    return traffic, working_set


def layer_memory_bits(layer: Layer, program: Program) -> dict:
    """Bits this layer stores on chip: weights (present units × G × rows_active cells),
    index (skip bitmap + column map + precision codes) and requant table (kept filters, the
    ternary-path filters of a dual-path layer included); on a hardware preset with the second
    macro type also tern_weights (2 cells per ternary weight, whole ternary row blocks: no index,
    the ternary path is dense)."""
    out = {"weights": 0, "index": 0, "requant": 0}
    if program.preset.has_tern:
        out["tern_weights"] = dp.tern_cells(layer, program)
    if layer.op.name == "AVGPOOL":
        out["requant"] = CLAMP_BITS + 8
    if not layer.op.is_cim:
        return out
    pr = program.preset
    ng, r = layer.present.shape
    f = layer.n_filters
    kept = int((layer.precision > 0).sum()) + dp.n_tern(layer)  # ternary filters have SRAM precision 0
    out["weights"] = int(layer.present.sum()) * pr.group_width * pr.rows_active
    filt_bits = max(1, math.ceil(math.log2(max(f, 2))))
    plane_bits = max(1, math.ceil(math.log2(max(pr.precisions))))
    prec_bits = max(1, math.ceil(math.log2(len(pr.precisions) + 1)))
    out["index"] = ng * r + ng * pr.group_width * (filt_bits + plane_bits + 1) + f * prec_bits
    per_filter = REQUANT_ENTRY_BITS["bias"] + REQUANT_ENTRY_BITS["shift"]
    if layer.res_tensor is not None:
        per_filter += REQUANT_ENTRY_BITS["res_shift"]
    out["requant"] = kept * per_filter + CLAMP_BITS
    return out


def program_memory_bits(program: Program) -> dict:
    """Stored bits of the whole program by kind (weights, index, requant)."""
    tot = {"weights": 0, "index": 0, "requant": 0}
    if program.preset.has_tern:
        tot["tern_weights"] = 0
    for layer in program.layers:
        for k, v in layer_memory_bits(layer, program).items():
            tot[k] += v
    return tot


def chip_area_mm2(program: Program, preset: CostPreset) -> dict:
    """Area: n_macros macros of rows × cols bit cells at macro_area_mm2_per_kb, plus periphery, plus
    (second macro type, architecture.md §10.1) tern_n_macros macros of tern_rows × tern_cols cells at
    macro2_area_mm2_per_kb."""
    hw = program.preset
    out = {"macros": hw.n_macros * hw.rows * hw.cols / 1024 * preset["macro_area_mm2_per_kb"],
           "periphery": preset["periphery_area_mm2"]}
    if hw.has_tern:
        dp.check_preset(program, preset)
        out["tern_macros"] = dp.tern_macro_area_mm2(program, preset)
    return out


def memory_area_mm2(memory_bits: dict, preset: CostPreset) -> dict:
    """Area of the stored weights at each macro type's density: weights (SRAM cells) at
    macro_area_mm2_per_kb, tern_weights (ternary cells) at macro2_area_mm2_per_kb (bits / 1024 × density)."""
    out = {"weights": memory_bits.get("weights", 0) / 1024 * preset["macro_area_mm2_per_kb"]}
    if "tern_weights" in memory_bits:
        d = preset["macro2_area_mm2_per_kb"]
        if d is None and memory_bits["tern_weights"]:
            raise CostError(f"cost preset {preset.name!r} has no macro2_area_mm2_per_kb (null): the ternary cells "
                            "cannot be given an area")
        out["tern_weights"] = memory_bits["tern_weights"] / 1024 * (d or 0.0)
    return out


# ---------------------------------------------------------------- the model


def _counter(c: LayerCounters, name: str) -> int:
    v = getattr(c, name, None)
    if v is None:
        raise CostError(f"counters of layer {c.layer!r} have no {name!r}: the cost model needs the counters "
                        f"{list(NEW_COUNTERS)} (architecture.md §7); rerun with an executor that reports them")
    return v


def _priced(preset: CostPreset, param: str, count: float, layer: str, counter: str) -> float:
    return priced(preset, param, count, layer, counter, "use a preset with that event")


def layer_cost(layer: Layer, c: LayerCounters, program: Program, preset: CostPreset) -> LayerCost:
    """Cost of one layer from its counters (see module doc and docs/cost-model.md)."""
    if c.layer != layer.name:
        raise CostError(f"counters are for layer {c.layer!r}, program layer is {layer.name!r}")
    hw = program.preset
    vals = {n: _counter(c, n) for n in NEW_COUNTERS}
    e = dict.fromkeys(EVENT_KINDS, 0.0)
    steps = 0  # output pixels × images × input bit planes
    if layer.op.is_cim:
        steps = c.pixels * c.images * _bits_in(layer, program)
    e["rowblock"] = c.rowblock_activations * preset["rowblock_activation_pj"]
    e["input_lines"] = vals["input_ones"] * hw.cols * preset["input_one_pj_per_col"]
    reads = c.digital_column_reads + c.analog_column_reads + c.skipped_bitplanes
    digital_share = c.digital_column_reads / reads if reads else 1.0  # hybrid mode: only digital reads use the tree
    e["adder_tree"] = c.bit_ops * digital_share * preset["adder_tree_pj_per_input"]  # padding rows excluded
    # a digital count and an analog code both enter the shift-add (§9.3); a skipped pair does not
    e["shift_add"] = (c.digital_column_reads + c.analog_column_reads) * preset["shift_add_pj"]
    e["accumulate"] = accumulator_updates_per_step(layer) * steps * preset["accumulate_pj"]
    e["requant"] = vals["requant_ops"] * preset["requant_pj"]
    e["weight_load"] = vals["weight_load_bits"] * preset["weight_write_pj_per_bit"]
    e["act_buffer"] = vals["act_buffer_bits"] * preset["act_buffer_pj_per_bit"]
    act_per_image, working_set = activation_traffic(layer, program)
    act_bytes = act_per_image * c.images
    weight_bytes = vals["dram_bytes"] - act_bytes  # tables + weights (+ nothing else, §7)
    if weight_bytes < 0:
        raise CostError(f"layer {c.layer!r}: dram_bytes={vals['dram_bytes']} is less than its activation traffic "
                        f"({act_bytes} bytes for {c.images} images, architecture.md §7): the counters do not match "
                        "the program")
    on_chip = working_set <= preset["act_buffer_kib"] * 8192
    spilled = 0 if on_chip else act_bytes
    e["act_onchip"] = (act_bytes - spilled) * 8 * preset["act_buffer_pj_per_bit"]
    e["dram_weights"] = weight_bytes * preset["dram_pj_per_byte"]
    e["dram_activations"] = spilled * preset["dram_pj_per_byte"]
    e["analog_column_read"] = _priced(preset, "analog_column_read_pj", c.analog_column_reads, c.layer,
                                      "analog_column_reads")
    e["adc_conversion"] = _priced(preset, "adc_conversion_pj", c.adc_conversions, c.layer, "adc_conversions") \
        * 2.0 ** (hw.adc_bits - ADC_REFERENCE_BITS)
    e["skipped_bitplane"] = _priced(preset, "skipped_bitplane_pj", c.skipped_bitplanes, c.layer, "skipped_bitplanes")
    # one saliency op = one popcount over rows_active rows; a one-level (static) table takes no decision, so its
    # saliency unit is gated off and costs nothing although the counter (§9.7) counts it
    decides = getattr(layer, "hybrid", None) is not None and layer.hybrid.n_levels > 1
    e["saliency"] = _priced(preset, "saliency_pj_per_row", getattr(c, "saliency_ops", 0) * hw.rows_active, c.layer,
                            "saliency_ops") if decides else 0.0
    e.update(dp.tern_energy_pj(c, program, preset))  # the ternary path of a dual-path layer (§10.4), else 0

    paths = dp.path_cycles(layer, c, program, preset)  # the two paths in parallel (§10.3)
    critical = paths.critical
    compute_cycles, load_cycles = ((paths.tern_compute, paths.tern_load) if critical == "ternary"
                                   else (paths.sram_compute, paths.sram_load))
    compute_ns = compute_cycles * 1e3 / preset["clock_mhz"]
    load_ns = load_cycles * 1e3 / preset["clock_mhz"]
    dram_ns = (weight_bytes + spilled) / preset["dram_gbytes_per_s"]  # 1 GB/s = 1 byte/ns
    latency = compute_ns + load_ns + dram_ns
    bound = max((("compute", compute_ns), ("weight_load", load_ns), ("dram", dram_ns)), key=lambda t: t[1])[0]
    edram_kb = getattr(c, "edram_bits", 0) / 1024
    e["edram_refresh"] += _priced(preset, "edram_refresh_uw_per_kb", edram_kb * latency, c.layer, "edram_bits") * 1e-3
    static_uw = (hw.n_macros * preset["leakage_uw_per_macro"] + preset["leakage_uw_periphery"]
                 + dp.tern_leakage_uw(program, preset))
    e["leakage"] = static_uw * latency * 1e-3  # µW × ns = fJ
    slots = wordline_slots(layer, program) * steps
    tern_slots = dp.tern_wordline_slots(layer, program) * c.pixels * c.images
    return LayerCost(layer=layer.name, op=layer.op.name.lower(), images=c.images, energy_pj=e,
                     compute_cycles=float(compute_cycles), load_cycles=float(load_cycles), dram_ns=float(dram_ns),
                     latency_ns=float(latency), bound=bound if latency else "none", ops=2 * int(c.macs),
                     memory_bits=layer_memory_bits(layer, program),
                     input_ones_fraction=vals["input_ones"] / slots if slots else None,
                     act_working_set_bits=int(working_set), activations_on_chip=bool(on_chip),
                     dram_bytes=int(weight_bytes + spilled),
                     dual_ratio=layer.dual.ratio_eighths if getattr(layer, "dual", None) is not None else None,
                     n_tern_filters=dp.n_tern(layer), sram_path_cycles=paths.sram, tern_path_cycles=paths.tern,
                     critical_path=critical, weight_bits=int(c.weight_bits), cells_allocated=int(c.cells_allocated),
                     tern_weight_bits=int(getattr(c, "tern_weight_bits", 0)),
                     tern_cells_allocated=int(getattr(c, "tern_cells_allocated", 0)),
                     tern_input_ones_fraction=getattr(c, "tern_input_ones", 0) / tern_slots if tern_slots else None)


def cost(program: Program, counters: "list[LayerCounters]", preset: "CostPreset | str" = "dcim-28nm") -> Cost:
    """Cost of running ``program`` as recorded by ``counters`` (one LayerCounters per layer, in
    program order, e.g. ExecutionResult.counters) under a cost preset (name, path or CostPreset)."""
    preset = load_cost_preset(preset)
    dp.check_preset(program, preset)
    if len(counters) != len(program.layers):
        raise CostError(f"{len(counters)} counter records for {len(program.layers)} layers of program {program.name!r}")
    layers = [layer_cost(l, c, program, preset) for l, c in zip(program.layers, counters)]
    images = max((c.images for c in counters), default=0)
    memory = program_memory_bits(program)
    assumptions = []
    if program.preset.has_tern:
        assumptions.append("dual-path layers: the SRAM and ternary paths run in parallel, each its compute and "
                           "weight-load cycles, the layer takes the longer; the ternary macros leak like the SRAM "
                           "macro per cell, and their refresh costs macro2_refresh_pj_per_bit per cell refreshed")
    return Cost(program=program.name, hardware_preset=program.preset.name, cost_preset=preset.name,
                cost_preset_version=preset.version, images=images, layers=layers,
                area_mm2=chip_area_mm2(program, preset), memory_bits=memory,
                memory_area_mm2=memory_area_mm2(memory, preset),
                assumptions=[f"{LATENCY_KIND}: layers run in sequence; weight loads and DRAM transfers are not "
                             "overlapped with compute; pools cost buffer/requant energy but no cycles",
                             f"activations stay in a {preset['act_buffer_kib']:g} KiB on-chip buffer in the layers "
                             "whose working set of one image fits it (act_onchip); the others move them through DRAM "
                             "(dram_activations); weights and tables always come from DRAM (dram_weights)",
                             "ops are dense-equivalent (2 per multiply-accumulate of the unpruned network)"]
                + assumptions)


def assume_input_ones(program: Program, counters: "list[LayerCounters]", fraction: float = 0.5) -> list:
    """Copies of ``counters`` whose input_ones is ``fraction`` of the driven word-line slots
    (ZigZag's 50 % assumption by default), for comparing against a measured density; in a
    dual-path layer tern_input_ones too (of the ternary word-line slots)."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    out = []
    for layer, c in zip(program.layers, counters):
        d = dataclasses.replace(c)
        steps = c.pixels * c.images * _bits_in(layer, program) if layer.op.is_cim else 0
        d.input_ones = int(round(fraction * wordline_slots(layer, program) * steps))
        if dp.n_tern(layer):
            d.tern_input_ones = int(round(fraction * dp.tern_wordline_slots(layer, program) * c.pixels * c.images))
        out.append(d)
    return out
