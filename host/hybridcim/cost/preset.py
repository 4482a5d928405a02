"""Cost presets: the technology constants of the cost model, as versioned JSON data files.

A cost preset is separate from the hardware preset (architecture.md §1): the hardware
preset fixes the array geometry a program is compiled for (and its fingerprint); the cost
preset says what one event on such an array costs in a given technology (pJ, ns, mm²).
Every constant carries its source (paper, table/figure), its basis (``published``,
``derived`` from published figures, or ``assumption``) and, when it came from one of the
seed papers, which one (``seed``), so that a reproduced seed figure can be checked for
independence. File layout (``version`` 1)::

    {"format": "hybridcim-cost-preset", "version": 1, "name": "dcim-28nm",
     "description": "...", "technology_nm": 28,
     "params": {"clock_mhz": {"value": 200, "unit": "MHz", "basis": "published",
                              "source": "...", "seed": null}, ...}}
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

FORMAT = "hybridcim-cost-preset"
VERSION = 1
BASES = ("published", "derived", "assumption")
SEEDS = ("SUN", "MARS", "DualNet", "OSA-HCIM")


class CostPresetError(ValueError):
    """An invalid or unknown cost preset file (the message names the field)."""


@dataclass(frozen=True)
class ParamSpec:
    """One constant a cost preset must define: unit, meaning, whether it may be null."""

    name: str
    unit: str
    meaning: str
    reserved: bool = False  # null allowed: "not in this preset" (an event the preset's macro lacks)


PARAMS: tuple[ParamSpec, ...] = (
    # timing and bandwidth
    ParamSpec("clock_mhz", "MHz", "macro clock: one row-block activation (one input bit plane) per cycle"),
    ParamSpec("macro_write_bits_per_cycle", "bit/cycle", "weight write bandwidth into one macro"),
    ParamSpec("dram_gbytes_per_s", "GB/s", "off-chip (DRAM) bandwidth"),
    # capacity
    ParamSpec("act_buffer_kib", "KiB", "on-chip activation buffer: a layer whose activation working set (input, "
              "residual, output and one round's partial sums of one image) fits keeps that traffic on chip; 0 = "
              "every activation crosses DRAM as the dram_bytes counter says"),
    # dynamic energy per event
    ParamSpec("rowblock_activation_pj", "pJ", "fixed cost of activating one row block of one macro for one input bit plane "
              "(decoder, input drivers enable, adder-tree clocking), independent of data"),
    ParamSpec("input_one_pj_per_col", "pJ", "one input 1 bit driven on a word line, per macro column it reaches "
              "(wire + the column's 1-bit multiplier gate); × input_ones × cols"),
    ParamSpec("adder_tree_pj_per_input", "pJ", "adder tree of one column per input row (inside K) per column read; "
              "× bit_ops"),
    ParamSpec("shift_add_pj", "pJ", "shift-and-add of one column result into its filter's partial sum"),
    ParamSpec("accumulate_pj", "pJ", "one acc_bits accumulator update (per filter, row block, input bit plane)"),
    ParamSpec("requant_pj", "pJ", "one requant operation (add bias/residual, shift, round, clamp)"),
    ParamSpec("weight_write_pj_per_bit", "pJ", "writing one weight bit into a macro"),
    ParamSpec("act_buffer_pj_per_bit", "pJ", "reading or writing one activation-buffer bit"),
    ParamSpec("dram_pj_per_byte", "pJ", "one byte moved to or from DRAM"),
    # static
    ParamSpec("leakage_uw_per_macro", "uW", "static power of one macro"),
    ParamSpec("leakage_uw_periphery", "uW", "static power of everything outside the macros"),
    # area
    ParamSpec("macro_area_mm2_per_kb", "mm2", "macro area per Kb (1024 bit cells) including its adder trees and drivers"),
    ParamSpec("periphery_area_mm2", "mm2", "controller, activation buffer, requant units"),
    # reserved events (null = not in this preset)
    ParamSpec("analog_column_read_pj", "pJ", "one analog column read (OSA-HCIM analog path)", reserved=True),
    ParamSpec("adc_conversion_pj", "pJ", "one ADC conversion at 5 bits; a conversion of the hardware preset's adc_bits "
              "costs this x 2^(adc_bits - 5) (Walden figure of merit)", reserved=True),
    ParamSpec("skipped_bitplane_pj", "pJ", "one skipped column read of a hybrid layer (the column is neither sensed "
              "nor converted; what gating it costs)", reserved=True),
    ParamSpec("saliency_pj_per_row", "pJ", "saliency unit of a hybrid layer: one input row of one saliency popcount "
              "(x saliency_ops x rows_active)", reserved=True),
    ParamSpec("macro2_bit_op_pj", "pJ", "one 1-bit operation of the second (eDRAM-like) macro type", reserved=True),
    ParamSpec("edram_refresh_uw_per_kb", "uW", "eDRAM refresh power per Kb of the second macro type", reserved=True),
    # the second (eDRAM-like ternary) macro type of architecture.md §10, priced only for a hardware preset that has it
    ParamSpec("macro2_area_mm2_per_kb", "mm2", "second macro type: area per Kb (1024 cells) including its adder trees",
              reserved=True),
    ParamSpec("macro2_refresh_pj_per_bit", "pJ", "second macro type: refreshing one cell; a refresh event (counter "
              "refresh_events) rewrites one row of tern_cols cells", reserved=True),
    ParamSpec("macro2_retention_us", "us", "second macro type: data retention time of a cell; a hardware preset's "
              "refresh period (tern_refresh_cycles / clock) must not exceed it", reserved=True),
)
PARAM_BY_NAME = {p.name: p for p in PARAMS}
TOP_FIELDS = ("format", "version", "name", "description", "technology_nm", "params")
ENTRY_FIELDS = ("value", "unit", "basis", "source", "seed", "note")


@dataclass(frozen=True)
class ParamInfo:
    """Provenance of one constant: basis (published/derived/assumption), source text, seed paper or None."""

    unit: str
    basis: str
    source: str
    seed: str | None = None
    note: str = ""


@dataclass(frozen=True)
class CostPreset:
    """A validated cost preset. ``values[name]`` is a float in the unit of PARAM_BY_NAME[name]
    (None for a reserved event the preset's macro lacks); ``info[name]`` its provenance."""

    name: str
    description: str
    technology_nm: float
    values: dict
    info: dict
    version: int = VERSION
    path: str | None = None

    def __getitem__(self, name: str) -> float | None:
        if name not in PARAM_BY_NAME:
            raise KeyError(f"unknown cost parameter {name!r}; known: {sorted(PARAM_BY_NAME)}")
        return self.values[name]

    def replace(self, **values: float | None) -> "CostPreset":
        """A copy with some constants changed (for sensitivity studies); validated like a file."""
        new = dict(self.values)
        for k, v in values.items():
            if k not in PARAM_BY_NAME:
                raise CostPresetError(f"cost preset {self.name!r}: unknown parameter {k!r}")
            new[k] = _check_value(self.name, k, v)
        return dataclasses.replace(self, values=new)

    def sources(self) -> list[dict]:
        """One row per constant: name, value, unit, basis, source, seed (for docs and the seeds table)."""
        return [{"name": p.name, "value": self.values[p.name], "unit": p.unit, "basis": self.info[p.name].basis,
                 "source": self.info[p.name].source, "seed": self.info[p.name].seed} for p in PARAMS]

    def seed_dependencies(self) -> dict[str, list[str]]:
        """Seed paper -> constants of this preset taken from or fitted to it (empty lists omitted)."""
        out: dict[str, list[str]] = {}
        for p in PARAMS:
            s = self.info[p.name].seed
            if s:
                out.setdefault(s, []).append(p.name)
        return out

    def as_dict(self) -> dict:
        """The preset in its file layout (round-trips through :func:`parse_cost_preset`)."""
        params = {}
        for p in PARAMS:
            i = self.info[p.name]
            e = {"value": self.values[p.name], "unit": i.unit, "basis": i.basis, "source": i.source, "seed": i.seed}
            if i.note:
                e["note"] = i.note
            params[p.name] = e
        return {"format": FORMAT, "version": self.version, "name": self.name, "description": self.description,
                "technology_nm": self.technology_nm, "params": params}


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_value(preset: str, name: str, v):
    spec = PARAM_BY_NAME[name]
    if v is None:
        if spec.reserved:
            return None
        raise CostPresetError(f"cost preset {preset!r}: params.{name}.value is null; only reserved events may be null")
    if not _is_number(v):
        raise CostPresetError(f"cost preset {preset!r}: params.{name}.value must be a number, got {v!r}")
    if not math.isfinite(v):
        raise CostPresetError(f"cost preset {preset!r}: params.{name}.value must be finite, got {v!r}")
    if v < 0:
        raise CostPresetError(f"cost preset {preset!r}: params.{name}.value must be >= 0, got {v!r}")
    if name in ("clock_mhz", "macro_write_bits_per_cycle", "dram_gbytes_per_s") and v == 0:
        raise CostPresetError(f"cost preset {preset!r}: params.{name}.value must be > 0 (it divides)")
    return float(v)


def parse_cost_preset(data: dict, path: str | None = None) -> CostPreset:
    """Validate a decoded preset file; raise CostPresetError naming the first bad field."""
    where = path or "<dict>"
    if not isinstance(data, dict):
        raise CostPresetError(f"cost preset {where}: top level must be a JSON object")
    name = data.get("name", where)
    for k in data:
        if k not in TOP_FIELDS:
            raise CostPresetError(f"cost preset {name!r}: unknown field {k!r}; allowed: {list(TOP_FIELDS)}")
    for k in TOP_FIELDS:
        if k not in data:
            raise CostPresetError(f"cost preset {name!r}: missing field {k!r}")
    if data["format"] != FORMAT:
        raise CostPresetError(f"cost preset {name!r}: format must be {FORMAT!r}, got {data['format']!r}")
    if data["version"] != VERSION or not isinstance(data["version"], int) or isinstance(data["version"], bool):
        raise CostPresetError(f"cost preset {name!r}: version {data['version']!r} is not supported (this reader: {VERSION})")
    if not isinstance(name, str) or not name:
        raise CostPresetError(f"cost preset {where}: name must be a non-empty string")
    if not isinstance(data["description"], str):
        raise CostPresetError(f"cost preset {name!r}: description must be a string")
    tech = data["technology_nm"]
    if not _is_number(tech) or not tech > 0:
        raise CostPresetError(f"cost preset {name!r}: technology_nm must be a positive number, got {tech!r}")
    params = data["params"]
    if not isinstance(params, dict):
        raise CostPresetError(f"cost preset {name!r}: params must be an object")
    for k in params:
        if k not in PARAM_BY_NAME:
            raise CostPresetError(f"cost preset {name!r}: unknown parameter params.{k}; known: {sorted(PARAM_BY_NAME)}")
    values, info = {}, {}
    for spec in PARAMS:
        if spec.name not in params:
            raise CostPresetError(f"cost preset {name!r}: missing parameter params.{spec.name} ({spec.unit}: {spec.meaning})")
        e = params[spec.name]
        f = f"params.{spec.name}"
        if not isinstance(e, dict):
            raise CostPresetError(f"cost preset {name!r}: {f} must be an object with value, unit, basis, source")
        for k in e:
            if k not in ENTRY_FIELDS:
                raise CostPresetError(f"cost preset {name!r}: unknown field {f}.{k}; allowed: {list(ENTRY_FIELDS)}")
        for k in ("value", "unit", "basis", "source"):
            if k not in e:
                raise CostPresetError(f"cost preset {name!r}: missing field {f}.{k}")
        if e["unit"] != spec.unit:
            raise CostPresetError(f"cost preset {name!r}: {f}.unit must be {spec.unit!r}, got {e['unit']!r}")
        if e["basis"] not in BASES:
            raise CostPresetError(f"cost preset {name!r}: {f}.basis must be one of {list(BASES)}, got {e['basis']!r}")
        if not isinstance(e["source"], str) or not e["source"].strip():
            raise CostPresetError(f"cost preset {name!r}: {f}.source must name where the number comes from")
        seed = e.get("seed")
        if seed is not None and seed not in SEEDS:
            raise CostPresetError(f"cost preset {name!r}: {f}.seed must be null or one of {list(SEEDS)}, got {seed!r}")
        values[spec.name] = _check_value(name, spec.name, e["value"])
        info[spec.name] = ParamInfo(spec.unit, e["basis"], e["source"], seed, str(e.get("note", "")))
    return CostPreset(name, data["description"], float(tech), values, info, data["version"], path)


def _preset_dir():
    return resources.files("hybridcim.cost") / "presets"


def list_cost_presets() -> list[str]:
    """Names of the shipped cost presets (the JSON files in hybridcim/cost/presets/)."""
    return sorted(p.name[:-5] for p in _preset_dir().iterdir() if p.name.endswith(".json"))


def load_cost_preset(name_or_path: "str | Path | CostPreset") -> CostPreset:
    """A shipped preset by name (``dcim-28nm``) or a preset JSON file by path; validated."""
    if isinstance(name_or_path, CostPreset):
        return name_or_path
    s = str(name_or_path)
    p = Path(s)
    if s.endswith(".json") or p.exists():
        if not p.is_file():
            raise CostPresetError(f"cost preset file {s} does not exist")
        text, where = p.read_text(encoding="utf-8"), str(p)
    else:
        f = _preset_dir() / f"{s}.json"
        if not f.is_file():
            raise CostPresetError(f"unknown cost preset {s!r}; shipped: {list_cost_presets()} (or give a .json path)")
        text, where = f.read_text(encoding="utf-8"), f"{s}.json"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CostPresetError(f"cost preset {where}: not valid JSON ({e})") from None
    return parse_cost_preset(data, where)
