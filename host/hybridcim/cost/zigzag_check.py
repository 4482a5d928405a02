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
                   "ports": [_port("r_port_1", "read", 1024, ["I1, tl", "O, tl", "O, th"]),
                             _port("w_port_1", "write", 1024, ["I1, fh", "O, fh", "O, fl"]),
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


def run_zigzag_layer(layer: Layer, program: Program, wbits: int, abits: int, write_bits_per_cycle: int) -> dict:
    """ZigZag's estimate for one layer: mac energy breakdown (pJ), cycles, its own clock period (ns)."""
    import yaml
    from zigzag import api
    logging.disable(logging.WARNING)
    try:
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            (d / "acc.yaml").write_text(yaml.safe_dump(zigzag_accelerator(program.preset, wbits, abits,
                                                                           write_bits_per_cycle)))
            (d / "wl.yaml").write_text(yaml.safe_dump(zigzag_workload(layer, program, wbits, abits)))
            (d / "map.yaml").write_text(yaml.safe_dump(MAPPING))
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
                done[key] = run_zigzag_layer(l, prog, wbits, abits, int(preset["macro_write_bits_per_cycle"]))
            rows.append({**done[key], "layer": l.name})
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
    """One layer: CIM-datapath energy (pJ, one image) and macro cycles of both models."""

    case: str
    layer: str
    hybridcim_pj: float
    zigzag_pj: float
    hybridcim_cycles: float
    zigzag_cycles: float
    terms: dict  # term -> (hybridcim pJ, ZigZag pJ)
    explained: dict  # step -> energy ratio after making that term (and the ones before) equal

    @property
    def energy_ratio(self) -> float:
        return self.hybridcim_pj / self.zigzag_pj

    @property
    def cycle_ratio(self) -> float:
        return self.hybridcim_cycles / self.zigzag_cycles


def compare(fixture: dict, preset: "CostPreset | str" = "dcim-28nm") -> list[Row]:
    """hybridcim vs the ZigZag results in ``fixture`` (from :func:`run_zigzag`), layer by layer."""
    preset = load_cost_preset(preset)
    rows = []
    for (wbits, abits) in CASES:
        case = f"w{wbits}a{abits}"
        prog = comparison_program(wbits, abits)
        zz = {r["layer"]: r for r in fixture["cases"][case]}
        eq = zigzag_equivalents(prog.preset, wbits, abits)
        for layer in comparable_layers(prog, abits):
            c = assume_input_ones(prog, [static_counters(layer, prog, 1)], 0.5)[0]
            z = zz[layer.name]
            lc = layer_cost(layer, c, prog, preset)
            terms = {}
            for term, consts, zkeys in TERMS:
                kinds = term.split("+")
                terms[term] = (sum(lc.energy_pj[k] for k in kinds), sum(z["breakdown_pj"].get(k, 0.0) for k in zkeys))
            explained, p = {}, preset
            for term, consts, _ in TERMS:
                p = p.replace(**{k: eq[k] for k in consts})
                explained[term] = layer_cost(layer, c, prog, p).energy_macro_pj / z["mac_energy_pj"]
            rows.append(Row(case, layer.name, lc.energy_macro_pj, z["mac_energy_pj"], lc.cycles, z["cycles"],
                            terms, explained))
    return rows


def markdown(rows: list[Row]) -> str:
    """The docs table: per layer energy and cycles of both models, and the ratio after each term is made equal."""
    head = ("| case | layer | hybridcim pJ | ZigZag pJ | ratio | hybridcim cycles | ZigZag cycles | ratio | "
            + " | ".join(f"ratio with {t} equal" for t, _, _ in TERMS) + " |\n"
            + "|---" * (8 + len(TERMS)) + "|\n")
    body = "".join(
        f"| {r.case} | {r.layer} | {r.hybridcim_pj:,.0f} | {r.zigzag_pj:,.0f} | {r.energy_ratio:.2f} | "
        f"{r.hybridcim_cycles:,.0f} | {r.zigzag_cycles:,.0f} | {r.cycle_ratio:.2f} | "
        + " | ".join(f"{r.explained[t]:.2f}" for t, _, _ in TERMS) + " |\n" for r in rows)
    return head + body


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
