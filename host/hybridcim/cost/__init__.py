"""What a program costs on the emulated SRAM-CIM chip: energy, latency, area and memory.

Numpy only (runs on a board). An event-based model (docs/cost-model.md): per layer, the
activity counters of architecture.md §7 × per-event energies of a *cost preset* (a
versioned JSON data file whose every constant names its source), plus leakage × time.

    from hybridcim.cost import cost, load_cost_preset
    c = cost(program, result.counters, load_cost_preset("dcim-28nm"))
    c.energy_uj_per_image, c.latency_us_per_image, c.as_dict()

Public API:
- ``load_cost_preset(name_or_path) -> CostPreset``; ``list_cost_presets() -> list[str]``;
  ``parse_cost_preset(dict)``; ``CostPresetError`` names the bad field.
- ``cost(program, counters, preset) -> Cost``: ``Cost.layers`` (``LayerCost``: energy_pj by
  event kind (EVENT_KINDS), compute_cycles, load_cycles, cycles, dram_ns, latency_ns, bound,
  ops, memory_bits), totals ``energy_pj``, ``energy_by_kind``, ``latency_ns`` (the *CIM chip
  latency*, not the FPGA overlay's throughput), ``area_mm2`` (macros, periphery),
  ``memory_bits`` (weights, index, requant), ``images``, ``energy_uj_per_image``,
  ``latency_us_per_image``, ``images_per_s``, ``gops``, ``tops_per_w``, ``tops_per_mm2``,
  ``energy_macro_pj`` / ``tops_per_w_macro`` (CIM datapath only, MACRO_KINDS),
  ``energy_dram_pj`` (DRAM_KINDS; activations cross DRAM only where a layer's working set
  exceeds the preset's on-chip ``act_buffer_kib``: ``activation_traffic``),
  ``as_dict()`` for JSON. ``CostError`` for counters that cannot be costed.
- ``sensitivity(program, counters, preset, factor=2) -> list[SensitivityRow]``.
- ``assume_input_ones(program, counters, fraction=0.5)``: counters with a fixed 1-bit density.
- Dual-path layers (architecture.md §10): the ternary path's events (``macro2``, ``tern_accumulate``,
  ``tern_weight_load``, ``edram_refresh``), the two paths in parallel (``LayerCost.sram_path_cycles``,
  ``tern_path_cycles``, ``critical_path``), ``memory_bits["tern_weights"]``, ``memory_area_mm2``,
  ``area_mm2["tern_macros"]``, ``Cost.macro_utilization``; a cost preset without ``MACRO2_PARAMS``
  refuses a program for a hardware preset with the second macro type.
"""
from .model import (DRAM_KINDS, EVENT_KINDS, LATENCY_KIND, MACRO2_PARAMS, MACRO_KINDS, NEW_COUNTERS, Cost, CostError,
                    LayerCost, activation_traffic, assume_input_ones, chip_area_mm2, cost, layer_cost, layer_memory_bits,
                    memory_area_mm2, program_memory_bits, wordline_slots)
from .preset import (PARAMS, CostPreset, CostPresetError, ParamInfo, ParamSpec, list_cost_presets,
                     load_cost_preset, parse_cost_preset)
from .sensitivity import SensitivityRow, sensitivity, sensitivity_markdown

__all__ = ["DRAM_KINDS", "EVENT_KINDS", "LATENCY_KIND", "MACRO2_PARAMS", "MACRO_KINDS", "NEW_COUNTERS", "PARAMS", "Cost", "CostError",
           "CostPreset", "CostPresetError", "LayerCost", "ParamInfo", "ParamSpec", "SensitivityRow", "activation_traffic",
           "assume_input_ones", "chip_area_mm2", "cost", "layer_cost", "layer_memory_bits", "list_cost_presets",
           "load_cost_preset", "memory_area_mm2", "parse_cost_preset", "program_memory_bits", "sensitivity", "sensitivity_markdown",
           "wordline_slots"]
