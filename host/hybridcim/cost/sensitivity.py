"""How much each cost result moves when one preset constant changes by a factor (default 2×)."""
from __future__ import annotations

from dataclasses import dataclass

from ..program.model import Program
from .model import cost
from .preset import PARAMS, CostPreset, load_cost_preset

RESULTS = ("energy_pj", "latency_ns", "area_total_mm2", "energy_macro_pj")


@dataclass(frozen=True)
class SensitivityRow:
    """Relative change (fraction, +1.0 = doubled) of energy, CIM-datapath energy (MACRO_KINDS),
    CIM chip latency and area when ``param`` is multiplied (``up``) or divided (``down``) by ``factor``."""

    param: str
    basis: str
    value: float
    factor: float
    energy_up: float
    energy_down: float
    latency_up: float
    latency_down: float
    area_up: float
    area_down: float
    macro_up: float = 0.0
    macro_down: float = 0.0

    @property
    def max_abs(self) -> float:
        return max(abs(self.energy_up), abs(self.energy_down), abs(self.latency_up), abs(self.latency_down),
                   abs(self.area_up), abs(self.area_down), abs(self.macro_up), abs(self.macro_down))


def _results(program, counters, preset) -> tuple[float, float, float, float]:
    c = cost(program, counters, preset)
    return c.energy_pj, c.latency_ns, c.area_total_mm2, c.energy_macro_pj


def _rel(new: float, base: float) -> float:
    return new / base - 1.0 if base else 0.0


def sensitivity(program: Program, counters: list, preset: "CostPreset | str" = "dcim-28nm",
                factor: float = 2.0) -> list[SensitivityRow]:
    """One row per non-null constant of ``preset``, largest effect first."""
    if not factor > 1:
        raise ValueError(f"factor must be > 1, got {factor}")
    preset = load_cost_preset(preset)
    base = _results(program, counters, preset)
    rows = []
    for p in PARAMS:
        v = preset.values[p.name]
        if v is None or v == 0:
            continue
        up = _results(program, counters, preset.replace(**{p.name: v * factor}))
        down = _results(program, counters, preset.replace(**{p.name: v / factor}))
        rows.append(SensitivityRow(p.name, preset.info[p.name].basis, v, factor,
                                   _rel(up[0], base[0]), _rel(down[0], base[0]),
                                   _rel(up[1], base[1]), _rel(down[1], base[1]),
                                   _rel(up[2], base[2]), _rel(down[2], base[2]),
                                   _rel(up[3], base[3]), _rel(down[3], base[3])))
    rows.sort(key=lambda r: -r.max_abs)
    return rows


def sensitivity_markdown(rows: list[SensitivityRow]) -> str:
    """A Markdown table of the rows (percent changes, ×factor / ÷factor)."""
    f = rows[0].factor if rows else 2.0
    head = (f"| constant | basis | energy ×{f:g} | energy ÷{f:g} | datapath energy ×{f:g} | datapath energy ÷{f:g} | "
            f"latency ×{f:g} | latency ÷{f:g} | area ×{f:g} | area ÷{f:g} |\n|---|---|---|---|---|---|---|---|---|---|\n")
    pct = lambda x: f"{100 * x:+.1f} %"  # noqa: E731
    return head + "".join(
        f"| `{r.param}` | {r.basis} | {pct(r.energy_up)} | {pct(r.energy_down)} | {pct(r.macro_up)} | "
        f"{pct(r.macro_down)} | {pct(r.latency_up)} | "
        f"{pct(r.latency_down)} | {pct(r.area_up)} | {pct(r.area_down)} |\n" for r in rows)
