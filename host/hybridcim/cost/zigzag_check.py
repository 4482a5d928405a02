"""Cross-check of the CIM-datapath energy and latency against ZigZag's IMC cost model.

ZigZag (``zigzag-dse`` 3.9.1, KU Leuven, MIT; optional extra ``hybridcim[zigzag]``, never
needed on a board) estimates a digital in-memory-computing macro from gate-level formulas
(1-bit multipliers, ripple-carry adder trees, accumulators; 28 nm gate capacitances). Both
models are run on the same dense, uniform-precision layers with the same macro: one macro
(``n_macros`` = 1) of ``rows`` × ``cols`` cells, ``rows_active`` adder-tree inputs,
bit-serial ``abits`` inputs, ``wbits`` weights; 50 % input ones (ZigZag's assumption).

Compared per layer: energy of the CIM datapath (hybridcim MACRO_KINDS vs ZigZag's
``mac_energy``: memories are excluded, their models differ) and latency in macro cycles
(hybridcim compute + weight-load cycles vs ZigZag ``latency_total2``). ``explain`` reruns
hybridcim with one term at a time made equal to ZigZag's formula (see docs/cost-model.md).

``python -m hybridcim.cost.zigzag_check OUT.json`` reruns ZigZag and writes the fixture.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import sys
import tempfile
from pathlib import Path

from ..emulator.counters import static_counters
from ..program.model import Layer, Program
from ..spec.hardware import HardwarePreset, get_preset
from .model import assume_input_ones, layer_cost
from .preset import CostPreset, load_cost_preset

ZIGZAG_VERSION = "3.9.1"
LPF_LIMIT = 4
"""ZigZag temporal-mapping search depth (its default 6 takes minutes per layer on 2 cores)."""
CASES = ((4, 4), (8, 8))
"""(wbits, abits) of the compared networks: the zoo ResNet-20 built dense at 4 and at 8 bits."""

# ZigZag 3.9.1's 28 nm technology constants (zigzag/hardware/architecture/imc_unit.py TECH_PARAM_28NM).
ZZ_VDD = 0.9
ZZ_ND2_CAP_PF = 0.7e-3
ZZ_XOR2_CAP_PF = 0.7e-3 * 1.5
ZZ_DFF_CAP_PF = 0.7e-3 * 3
ZZ_FA_PJ = (3 * ZZ_ND2_CAP_PF + 2 * ZZ_XOR2_CAP_PF) * ZZ_VDD ** 2
ZZ_MULT_PJ = 0.5 * ZZ_ND2_CAP_PF * ZZ_VDD ** 2
ZZ_REG_PJ = ZZ_DFF_CAP_PF * ZZ_VDD ** 2


def comparison_preset() -> HardwarePreset:
    """sun-mars-256's macro with one macro, so both models map a layer onto the same array."""
    return dataclasses.replace(get_preset("sun-mars-256"), name="sun-mars-256-1macro", n_macros=1)


def comparison_program(wbits: int, abits: int) -> Program:
    """The zoo ResNet-20 built dense (no pruned filters or units) at ``wbits``/``abits``."""
    from ..zoo import random_resnet20
    return random_resnet20(preset=comparison_preset(), wbits=wbits, abits=abits, sparsity=0.0, filter_sparsity=0.0)


def comparable_layers(program: Program, abits: int) -> list[Layer]:
    """Conv layers with ``abits`` inputs (the 8-bit-pixel stem and the fc are left out)."""
    return [l for l in program.layers
            if l.op.name == "CONV" and program.tensors[l.in_tensor].bits == abits and (l.precision > 0).all()]


# ------------------------------------------------------------------ ZigZag (optional dependency)


def _port(name, typ, bw, alloc):
    return {"name": name, "type": typ, "bandwidth_min": bw, "bandwidth_max": bw, "allocation": alloc}


def zigzag_accelerator(hw: HardwarePreset, wbits: int, abits: int, write_bits_per_cycle: int) -> dict:
    """ZigZag accelerator description of one hybridcim macro: D1 = cols / wbits weight columns,
    D2 = rows_active adder-tree inputs; memories cost 0. Each cell group holds one weight: ZigZag
    3.9.1 fails in its local-bitline precharge model for deeper groups (AttributeError
    'data_elem_move_count'), so the rows / rows_active row blocks a hybridcim macro stores are
    ZigZag weight reloads (free in energy, charged in cycles at the preset's write bandwidth)."""
    free = {"r_cost": 0, "w_cost": 0, "area": 0, "latency": 1}
    return {"name": "hybridcim_macro", "memories": {
        "cells": {"size": wbits, **free, "latency": 0, "operands": ["I2"],
                  "ports": [_port("rw_port_1", "read_write", wbits, ["I2, fh", "I2, tl"])], "served_dimensions": []},
        "rf_in": {"size": abits, **free, "operands": ["I1"],
                  "ports": [_port("r_port_1", "read", abits, ["I1, tl"]), _port("w_port_1", "write", abits, ["I1, fh"])],
                  "served_dimensions": ["D1"]},
        "rf_out": {"size": 32, **free, "operands": ["O"],
                   "ports": [_port("r_port_1", "read", 32, ["O, tl"]), _port("r_port_2", "read", 32, ["O, th"]),
                             _port("w_port_1", "write", 32, ["O, fh"]), _port("w_port_2", "write", 32, ["O, fl"])],
                   "served_dimensions": ["D2"]},
        "buffer": {"size": 4 * 8 * 2 ** 20, **free, "operands": ["I1", "I2", "O"],
                   "ports": [_port("r_port_1", "read", 4096, ["I1, tl", "O, tl", "O, th"]),
                             _port("w_port_1", "write", 4096, ["I1, fh", "O, fh", "O, fl"]),
                             _port("rw_port_1", "read_write", write_bits_per_cycle, ["I2, fh", "I2, tl"])],
                   "served_dimensions": ["D1", "D2"]},
        "dram": {"size": 10 ** 10, **free, "operands": ["I1", "I2", "O"],
                 "ports": [_port("rw_port_1", "read_write", write_bits_per_cycle,
                                 ["I1, fh", "I1, tl", "I2, fh", "I2, tl", "O, fh", "O, tl", "O, fl", "O, th"])],
                 "served_dimensions": ["D1", "D2"]}},
        "operational_array": {"is_imc": True, "imc_type": "digital", "input_precision": [abits, wbits],
                              "bit_serial_precision": 1, "dimensions": ["D1", "D2"],
                              "sizes": [hw.cols // wbits, hw.rows_active]}}


def zigzag_workload(layer: Layer, program: Program, wbits: int, abits: int) -> list[dict]:
    """One conv layer in ZigZag's workload format (batch 1)."""
    t_in, t_out = program.tensors[layer.in_tensor], program.tensors[layer.out_tensor]
    s = layer.stride
    return [{"id": 0, "name": layer.name, "operator_type": "Conv",
             "equation": "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]",
             "dimension_relations": [f"ix={s}*ox+1*fx", f"iy={s}*oy+1*fy"],
             "loop_dims": ["B", "K", "C", "OY", "OX", "FY", "FX"],
             "loop_sizes": [1, layer.n_filters, t_in.channels, t_out.height, t_out.width, layer.kh, layer.kw],
             "operand_precision": {"W": wbits, "I": abits, "O": 32, "O_final": abits},
             "pr_loop_dims": ["IX", "IY"], "pr_loop_sizes": [t_in.width + 2 * layer.pad, t_in.height + 2 * layer.pad],
             "padding": [[layer.pad, layer.pad], [layer.pad, layer.pad]]}]


MAPPING = [{"name": "default", "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"},
            "spatial_mapping_hint": {"D1": ["K"], "D2": ["C", "FX", "FY"]}}]


def matched_spatial_mapping(layer: Layer, program: Program, wbits: int) -> dict:
    """The ZigZag spatial mapping closest to hybridcim's: as many filters as the macro's columns
    hold (D1) and as many reduction rows as rows_active (D2), channels first, then kernel
    columns and rows. ZigZag unrolls loop dimensions, so it cannot pack the flattened
    (ky, kx, c) rows into full row blocks as hybridcim does (16 channels × 3 = 48 of 64 rows)."""
    hw = program.preset
    c = program.tensors[layer.in_tensor].channels
    a = hw.rows_active
    cu = min(c, a)
    fxu = max(1, min(layer.kw, a // cu))
    fyu = max(1, min(layer.kh, a // (cu * fxu)))
    d2 = [f"C, {cu}"] + ([f"FX, {fxu}"] if fxu > 1 else []) + ([f"FY, {fyu}"] if fyu > 1 else [])
    return {"D1": [f"K, {min(layer.n_filters, hw.cols // wbits)}"], "D2": d2}


def run_zigzag_layer(layer: Layer, program: Program, wbits: int, abits: int, write_bits_per_cycle: int,
                     spatial_mapping: dict | None = None) -> dict:
    """ZigZag's estimate for one layer: mac energy breakdown (pJ), cycles, its own clock period (ns).
    ``spatial_mapping`` None lets ZigZag search (hint: K on D1, C/FX/FY on D2)."""
    import yaml
    from zigzag import api
    logging.disable(logging.WARNING)
    try:
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            (d / "acc.yaml").write_text(yaml.safe_dump(zigzag_accelerator(program.preset, wbits, abits,
                                                                           write_bits_per_cycle)))
            (d / "wl.yaml").write_text(yaml.safe_dump(zigzag_workload(layer, program, wbits, abits)))
            mapping = MAPPING if spatial_mapping is None else [
                {"name": "default", "memory_operand_links": MAPPING[0]["memory_operand_links"],
                 "spatial_mapping": spatial_mapping}]
            (d / "map.yaml").write_text(yaml.safe_dump(mapping))
            res = api.get_hardware_performance_zigzag(str(d / "wl.yaml"), str(d / "acc.yaml"), str(d / "map.yaml"),
                                                      opt="energy", dump_folder=str(d / "out"), in_memory_compute=True,
                                                      enable_mix_spatial_mapping=True, loma_show_progress_bar=False,
                                                      lpf_limit=LPF_LIMIT)
    finally:
        logging.disable(logging.NOTSET)
    cme = res[-1][0][1][0][0]
    oa = cme.accelerator.operational_array
    return {"layer": layer.name, "mac_energy_pj": float(cme.mac_energy),
            "breakdown_pj": {k: float(v) for k, v in cme.mac_energy_breakdown.items()},
            "cycles": float(cme.latency_total2), "ideal_cycles": float(cme.ideal_temporal_cycle),
            "tclk_ns": float(oa.tclk),
            "spatial_mapping": {str(k): {str(d): float(u) for d, u in v.items()} for k, v in cme.layer.spatial_mapping.items()}}


def run_zigzag(preset: "CostPreset | str" = "dcim-28nm") -> dict:
    """ZigZag on every comparable layer of every case: the fixture's content."""
    preset = load_cost_preset(preset)
    import zigzag  # noqa: F401  (fail early with ImportError when the extra is missing)
    out = {"zigzag_version": ZIGZAG_VERSION, "hardware_preset": comparison_preset().canonical(), "cases": {}}
    for wbits, abits in CASES:
        prog = comparison_program(wbits, abits)
        done: dict = {}  # layers of the same shape give the same ZigZag result: run each shape once
        rows = []
        for l in comparable_layers(prog, abits):
            key = layer_shape(l, prog)
            if key not in done:
                bw = int(preset["macro_write_bits_per_cycle"])
                # matched: hybridcim's unrolling; ZigZag shrinks the unrolling until its weight port can
                # refill the array, so that port gets a whole macro per cycle there (hybridcim charges
                # weight loads as separate cycles, compared on their own)
                done[key] = {"search": run_zigzag_layer(l, prog, wbits, abits, bw),
                             "matched": run_zigzag_layer(l, prog, wbits, abits, prog.preset.rows * prog.preset.cols,
                                                         matched_spatial_mapping(l, prog, wbits))}
            rows.append({"layer": l.name, **done[key]})
        out["cases"][f"w{wbits}a{abits}"] = rows
    return out


def layer_shape(layer: Layer, program: Program) -> tuple:
    """(filters, channels, input height, input width, kernel, stride, pad): all ZigZag sees of a layer."""
    t = program.tensors[layer.in_tensor]
    return (layer.n_filters, t.channels, t.height, t.width, layer.kh, layer.stride, layer.pad)


# ------------------------------------------------------------------ the comparison


def zigzag_equivalents(hw: HardwarePreset, wbits: int, abits: int) -> dict:
    """hybridcim per-event constants that reproduce ZigZag's formulas for a fully mapped macro
    (used only to explain differences; no preset constant is taken from them)."""
    a = hw.rows_active
    depth = int(math.log2(a))
    tree_fas = a * (wbits + 1) - (wbits + depth + 1)  # one ZigZag adder tree of a wbits-bit inputs
    acc_bits = abits + depth + wbits
    return {
        "input_one_pj_per_col": ZZ_MULT_PJ / 0.5,           # every 1-bit multiplier every cycle = cols x A at 50 % ones
        "adder_tree_pj_per_input": tree_fas * ZZ_FA_PJ / (wbits * a),  # per bit-plane column and input row
        "shift_add_pj": (ZZ_FA_PJ + ZZ_REG_PJ) * acc_bits / wbits,     # ZigZag's accumulator per filter, per column read
        "accumulate_pj": 0.0,
        "rowblock_activation_pj": 0.0,                     # ZigZag has no per-activation control energy
    }


TERMS = (("adder_tree", ("adder_tree_pj_per_input",), ("adders_regular", "adders_pv")),
         ("input_lines", ("input_one_pj_per_col",), ("mults",)),
         ("shift_add+accumulate", ("shift_add_pj", "accumulate_pj"), ("accumulators",)),
         ("rowblock", ("rowblock_activation_pj",), ("local_bl_precharging",)))
"""(term, hybridcim constants, ZigZag breakdown keys) matched between the two models."""


@dataclasses.dataclass
class Row:
    """One layer shape (``layers``: the layers that have it): CIM-datapath energy (pJ, one image)
    and macro cycles of hybridcim and of ZigZag with the matched spatial mapping (``zz_*``) and
    with its own mapping search (``search_*``)."""

    case: str
    layers: list
    hybridcim_pj: float
    zz_pj: float
    search_pj: float
    compute_cycles: float
    load_cycles: float
    zz_cycles: float
    search_cycles: float
    terms: dict  # term -> (hybridcim pJ, ZigZag matched pJ)
    explained: dict  # term -> energy ratio once that term and the ones listed before it are made equal

    @property
    def energy_ratio(self) -> float:
        """hybridcim / ZigZag (matched mapping), CIM-datapath energy."""
        return self.hybridcim_pj / self.zz_pj

    @property
    def cycle_ratio(self) -> float:
        """hybridcim (compute + weight-load cycles) / ZigZag (matched mapping) cycles."""
        return (self.compute_cycles + self.load_cycles) / self.zz_cycles

    @property
    def compute_cycle_ratio(self) -> float:
        """As cycle_ratio with hybridcim's weight-load cycles left out (ZigZag hides weight loads)."""
        return self.compute_cycles / self.zz_cycles


def compare(fixture: dict, preset: "CostPreset | str" = "dcim-28nm") -> list[Row]:
    """hybridcim vs the ZigZag results in ``fixture`` (from :func:`run_zigzag`), one row per layer shape."""
    preset = load_cost_preset(preset)
    rows = []
    for (wbits, abits) in CASES:
        case = f"w{wbits}a{abits}"
        prog = comparison_program(wbits, abits)
        zz = {r["layer"]: r for r in fixture["cases"][case]}
        eq = zigzag_equivalents(prog.preset, wbits, abits)
        by_shape: dict = {}
        for layer in comparable_layers(prog, abits):
            key = layer_shape(layer, prog)
            if key in by_shape:
                by_shape[key].layers.append(layer.name)
                continue
            c = assume_input_ones(prog, [static_counters(layer, prog, 1)], 0.5)[0]
            z, zs = zz[layer.name]["matched"], zz[layer.name]["search"]
            lc = layer_cost(layer, c, prog, preset)
            terms = {}
            for term, consts, zkeys in TERMS:
                kinds = term.split("+")
                terms[term] = (sum(lc.energy_pj[k] for k in kinds), sum(z["breakdown_pj"].get(k, 0.0) for k in zkeys))
            explained, p = {}, preset
            for term, consts, _ in TERMS:
                p = p.replace(**{k: eq[k] for k in consts})
                explained[term] = layer_cost(layer, c, prog, p).energy_macro_pj / z["mac_energy_pj"]
            by_shape[key] = Row(case, [layer.name], lc.energy_macro_pj, z["mac_energy_pj"], zs["mac_energy_pj"],
                                lc.compute_cycles, lc.load_cycles, z["cycles"], zs["cycles"], terms, explained)
        rows.extend(by_shape.values())
    return rows


def markdown(rows: list[Row]) -> str:
    """The docs tables: energy (with the ratio after each term is made equal) and cycles, per layer shape."""
    names = lambda r: r.layers[0] + (f" (+{len(r.layers) - 1} alike)" if len(r.layers) > 1 else "")  # noqa: E731
    e = ("| case | layer | hybridcim pJ | ZigZag pJ | ratio | "
         + " | ".join(f"ratio, {t} equal" for t, _, _ in TERMS)
         + " | ZigZag own mapping pJ |\n" + "|---" * (6 + len(TERMS)) + "|\n")
    e += "".join(f"| {r.case} | {names(r)} | {r.hybridcim_pj:,.0f} | {r.zz_pj:,.0f} | {r.energy_ratio:.2f} | "
                 + " | ".join(f"{r.explained[t]:.2f}" for t, _, _ in TERMS)
                 + f" | {r.search_pj:,.0f} |\n" for r in rows)
    c = ("| case | layer | hybridcim cycles (compute + load) | ZigZag cycles | ratio | ratio, loads left out | "
         "ZigZag own mapping cycles |\n|---|---|---|---|---|---|---|\n")
    c += "".join(f"| {r.case} | {names(r)} | {r.compute_cycles:,.0f} + {r.load_cycles:,.0f} | {r.zz_cycles:,.0f} | "
                 f"{r.cycle_ratio:.2f} | {r.compute_cycle_ratio:.2f} | {r.search_cycles:,.0f} |\n" for r in rows)
    return e + "\n" + c


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m hybridcim.cost.zigzag_check OUT.json  (reruns ZigZag; needs hybridcim[zigzag])",
              file=sys.stderr)
        return 2
    data = run_zigzag()
    out = Path(argv[0])
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(out)
    print(markdown(compare(data)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
