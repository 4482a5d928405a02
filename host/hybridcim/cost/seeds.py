"""The seed papers' headline comparisons, recomputed by hybridcim under each paper's own comparison.

Two programs are derived from a compiled one so the papers' baselines run on *the same network*:

* :func:`repack` — the same weights and precisions packed ``naive`` (one filter per column
  group, architecture.md §5) instead of ``paired``: SUN's unpaired mapping.
* :func:`dense_counterpart` — the same function with every filter stored at 8 bits and every
  (row block × column group) unit stored: SUN's dense 8-bit baseline. A ``p``-bit filter's
  weights, bias and residual shift are scaled by 2^(8−p) and its requant shift raised by
  8 − p, which is exact (rshift_rne of v·2^k by s+k equals rshift_rne of v by s), so the dense
  program computes the *same logits* bit for bit; pruned filters become all-zero 8-bit filters.
  Its activations are therefore identical to the compressed program's, and data-dependent
  counters (the 1 bits of the streamed input planes) are counted on the same images for both.

:func:`seed_rows` builds the table; :func:`format_seeds` prints it as Markdown.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ..program.model import Layer, Program
from ..program.packing import column_map, pack_filters
from ..program.validate import validate
from ..program.weights import decode_weight_matrix, encode_words
from .model import DRAM_KINDS


def layer_weights(layer: Layer, program: Program) -> np.ndarray:
    """The integer weight matrix W int64 (F, K) (HWC reduction order) of a conv/fc layer."""
    return decode_weight_matrix(layer.precision, layer.col_filter, layer.col_plane, layer.present,
                                layer.words, layer.k_rows, program.preset.rows_active)


def _map_cim_layers(program: Program, remap, name: str, **meta) -> Program:
    """``program`` with every conv/fc layer ``l`` replaced by ``remap(l, W, precision)`` (W int64
    (F, K), precision int64 (F,)), named ``name``, metadata extended by ``meta``; validated."""
    layers = [remap(l, layer_weights(l, program), l.precision.astype(np.int64)) if l.op.is_cim else l
              for l in program.layers]
    out = Program(program.preset, list(program.tensors), layers, program.input_tensor, program.output_tensor,
                  name, dict(program.metadata, **meta))
    return validate(out)


def repack(program: Program, packing: str = "naive") -> Program:
    """``program`` with every conv/fc layer's filters re-packed by ``packing`` (same weights and
    precisions; all-zero units dropped as the compiler does). Computes the same outputs."""
    pr = program.preset

    def remap(l: Layer, w: np.ndarray, prec: np.ndarray) -> Layer:
        col_filter, col_plane = column_map(pack_filters(prec, pr.group_width, packing), prec, pr.group_width)
        present, words = encode_words(w, prec, col_filter, col_plane, pr.rows_active)
        return dataclasses.replace(l, col_filter=col_filter, col_plane=col_plane, present=present, words=words)
    return _map_cim_layers(program, remap, f"{program.name}-{packing}", packing=packing)


def dense_counterpart(program: Program, bits: int = 8) -> Program:
    """The same function as ``program`` with every filter at ``bits`` bits and every unit stored.

    Raises ValueError when ``bits`` is not a preset precision or a rescaled shift, residual
    shift or bias leaves its range (shift ≤ 31, res_shift ≤ 31, bias int32).
    """
    pr = program.preset
    if bits not in pr.precisions:
        raise ValueError(f"{bits}-bit filters are not a precision of preset {pr.name!r} {pr.precisions}")

    def remap(l: Layer, w: np.ndarray, prec: np.ndarray) -> Layer:
        k = np.where(prec > 0, bits - prec, 0)
        if (k < 0).any():
            raise ValueError(f"layer {l.name!r} has filters wider than {bits} bits")
        w8 = w << k[:, None]
        shift = l.shift.astype(np.int64) + k
        res_shift = l.res_shift.astype(np.int64) + np.where(l.res_tensor is not None, k, 0)
        bias = l.bias.astype(np.int64) << k
        if shift.max(initial=0) > 31 or res_shift.max(initial=0) > 31 or np.abs(bias).max(initial=0) >= 2**31:
            raise ValueError(f"layer {l.name!r}: its shifts or bias leave their range at {bits} bits")
        prec8 = np.full(l.n_filters, bits, dtype=np.int64)
        col_filter, col_plane = column_map(pack_filters(prec8, pr.group_width, "paired"), prec8, pr.group_width)
        present, words = encode_words(w8, prec8, col_filter, col_plane, pr.rows_active)
        full = np.zeros((present.size, pr.group_width), dtype=np.uint64)
        full[present.ravel()] = words  # units are stored in (group, row block) order
        return dataclasses.replace(
            l, precision=prec8.astype(np.uint8), shift=shift.astype(np.int8), res_shift=res_shift.astype(np.int8),
            bias=bias.astype(np.int32), col_filter=col_filter, col_plane=col_plane,
            present=np.ones_like(present), words=full)
    return _map_cim_layers(program, remap, f"{program.name}-dense{bits}", dense_bits=bits)


# ---------------------------------------------------------------- the seeds' headline figures

SUN_SOURCE = ("SUN, IEEE TCAD 43(7):2163-2176, 2024, abstract (seed file 000_2698e5a253e1fe85.txt): "
              "\"428.2 TOPS/mm2 and throughput of 792.2 GOPS on the CIFAR-10 dataset\"")
MARS_SOURCE = ("MARS, IEEE TCAD, 2022 (doi 10.1109/TCAD.2021.3082107), abstract: \"over 700 and 400 FPS for "
               "CIFAR-10 and CIFAR-100 ... 52.3 and 88.2 TOPs/W in VGG16 and ResNet18\" (the seed file 001 holds "
               "the arXiv abstract, which states no figure)")
NOT_IN_ABSTRACT = "not stated in the seed abstract (SUN reports it in the paper body, which is not available here)"

TIMING = ("clock_mhz", "macro_write_bits_per_cycle", "dram_gbytes_per_s", "act_buffer_kib")
ENERGY = ("rowblock_activation_pj", "input_one_pj_per_col", "adder_tree_pj_per_input", "shift_add_pj",
          "accumulate_pj", "requant_pj", "weight_write_pj_per_bit", "act_buffer_pj_per_bit", "dram_pj_per_byte",
          "leakage_uw_per_macro", "leakage_uw_periphery")
AREA = ("macro_area_mm2_per_kb", "periphery_area_mm2")
TOLERANCE = 0.10
"""The goal for hybridcim / paper ratios (not a gate)."""


@dataclass
class SeedRow:
    """One headline comparison. paper: the paper's figure (None when the available source
    does not state one); hybridcim: the same quantity computed by hybridcim; depends_on: the
    cost-preset constants the hybridcim figure depends on; from_seed: those of them the preset
    took from, or fitted to, this seed paper (a row is *independent* only when that is empty)."""

    seed: str
    quantity: str
    unit: str
    paper: float | None
    paper_text: str
    source: str
    hybridcim: float
    assumptions: str
    depends_on: tuple[str, ...] = ()
    from_seed: tuple[str, ...] = ()
    explanation: str = ""
    paper_is_lower_bound: bool = False

    @property
    def ratio(self) -> float | None:
        """hybridcim / paper (None without a paper figure)."""
        return None if self.paper in (None, 0) else self.hybridcim / self.paper

    @property
    def independent(self) -> bool:
        return not self.from_seed

    @property
    def within_goal(self) -> bool | None:
        """Whether the ratio is within ±10 % (for a lower bound: at least 0.9); None without a paper figure."""
        r = self.ratio
        if r is None:
            return None
        return r >= 1 - TOLERANCE if self.paper_is_lower_bound else abs(r - 1) <= TOLERANCE

    @property
    def verdict(self) -> str:
        w = self.within_goal
        if w is None:
            return "no paper figure"
        if not self.independent:
            return "not independent (" + ", ".join(self.from_seed) + f" from {self.seed})"
        if self.paper_is_lower_bound:
            return "above the paper's lower bound (independent)" if w else "below the paper's lower bound (independent)"
        return "reproduced (independent)" if w else "missed (independent)"

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.update(ratio=self.ratio, independent=self.independent, within_goal=self.within_goal, verdict=self.verdict)
        return d


@dataclass
class SeedReport:
    rows: list[SeedRow]
    program: str
    cost_preset: str
    workload: str
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"program": self.program, "cost_preset": self.cost_preset, "workload": self.workload,
                "notes": list(self.notes), "rows": [r.as_dict() for r in self.rows]}


def _from_seed(preset, seed: str, depends_on: tuple[str, ...]) -> tuple[str, ...]:
    taken = set(preset.seed_dependencies().get(seed, ()))
    return tuple(p for p in depends_on if p in taken)


def network_utilization(program: Program) -> float:
    """Macro utilization of the whole program: Σ weight_bits / Σ cells_allocated (architecture.md §7)."""
    from ..emulator.counters import static_counters
    cs = [static_counters(l, program, 1) for l in program.layers]
    cells = sum(c.cells_allocated for c in cs)
    return sum(c.weight_bits for c in cs) / cells if cells else 0.0


def _latency_split(c) -> str:
    """'compute X %, weight loads Y %, DRAM Z %' of a Cost's CIM chip latency."""
    clock = c.layers and c.latency_ns
    if not clock:
        return "no latency"
    comp = load = dram = 0.0
    for l in c.layers:
        dram += l.dram_ns
        rest = l.latency_ns - l.dram_ns
        cyc = l.compute_cycles + l.load_cycles
        if cyc:
            comp += rest * l.compute_cycles / cyc
            load += rest * l.load_cycles / cyc
    t = c.latency_ns
    return f"compute {comp / t:.0%}, weight loads {load / t:.0%}, DRAM {dram / t:.0%} of the latency"


def _energy_split(c, top: int = 3, exclude: tuple[str, ...] = ()) -> str:
    """'k1 X %, k2 Y %, k3 Z % of the energy' (the largest event kinds), leaving out ``exclude``."""
    parts = {k: v for k, v in c.energy_by_kind.items() if v and k not in exclude}
    kinds = sorted(((v, k) for k, v in parts.items()), reverse=True)[:top]
    tot = sum(parts.values()) or 1.0
    return ", ".join(f"{k} {v / tot:.0%}" for v, k in kinds) + (" of the on-chip energy" if exclude else " of the energy")


def macro_occupancy(counters, n_macros: int) -> float:
    """Fraction of macro-cycles in which a macro activates a row block: Σ rowblock_activations /
    (n_macros × Σ cycles). 1.0 means every macro is busy in every cycle of the CIM layers."""
    cyc = sum(c.cycles for c in counters)
    return sum(c.rowblock_activations for c in counters) / (n_macros * cyc) if cyc else 0.0


def _datapath_share(c) -> float:
    """CIM datapath energy (macros + accumulators) / on-chip energy (everything but DRAM)."""
    on_chip = c.energy_pj - c.energy_dram_pj
    return getattr(c, "energy_macro_pj", 0.0) / on_chip if on_chip else 0.0


def _on_chip_tops_per_w(c) -> float:
    """Dense-equivalent TOPS/W counting every energy but the DRAM transfers."""
    on_chip = c.energy_pj - c.energy_dram_pj
    return c.ops / on_chip if on_chip else 0.0


def bit_ops_per_s(c, counters) -> float:
    """Attained 1b×1b operations per second (2 per 1-bit AND+count of ``bit_ops``) over the CIM chip latency."""
    bits = sum(x.bit_ops for x in counters)
    return 2 * bits / c.latency_ns * 1e9 if c.latency_ns else 0.0


def seed_comparisons(program: Program, preset="dcim-28nm", images: np.ndarray | None = None,
                     what: str = "CIFAR-10 test images", workload=None) -> SeedReport:
    """The SUN and MARS headline comparisons for ``program`` (a CIFAR-10 network compiled for a
    4-macro preset, e.g. the shipped ``resnet20-w4a4-p50``) under cost preset ``preset``.

    ``images`` (uint8 NCHW): the counters of the program and of its dense 8-bit counterpart are
    measured on these same images; None: 50 % of the word-line inputs are assumed to be 1.
    ``workload``: the program's counters already measured on ``images`` (a report.workload.Workload).
    """
    from ..report.workload import measure
    from .model import cost
    from .preset import load_cost_preset
    preset = load_cost_preset(preset)
    hw = program.preset
    dense = dense_counterpart(program)
    naive = repack(program, "naive")
    wl = workload if workload is not None else measure(program, images, what=what)
    wd = measure(dense, images, what=what)
    c, cd = cost(program, wl.counters, preset), cost(dense, wd.counters, preset)
    u_p, u_n = network_utilization(program), network_utilization(naive)
    occ = macro_occupancy(wl.counters, hw.n_macros)
    idle = (f"the macro map (architecture.md §5) runs a layer's tiles on macro t mod {hw.n_macros}, so a layer "
            f"with fewer tiles than macros leaves macros idle: the {hw.n_macros} macros are busy in {occ:.0%} of "
            f"the macro-cycles")
    clock = preset["clock_mhz"]
    machine = (f"{hw.n_macros} macros of {hw.rows}x{hw.cols} cells, {hw.rows_active} word lines at once, "
               f"{clock:g} MHz ({preset.name})")
    net = f"{program.name} ({sum(l.op.is_cim for l in program.layers)} CIM layers, {c.ops / c.images / 2e6:.1f} M MACs/image)"
    rows = []
    rows.append(SeedRow(
        "SUN", "macro utilization, paired / naive mapping", "x", None, "n/a", NOT_IN_ABSTRACT, u_p / u_n,
        f"{net}: used weight bits / allocated cells of present units (architecture.md §7), paired first-fit "
        f"{u_p:.1%} vs one filter per column group {u_n:.1%}; mapping only, no cost constant",
        explanation="SUN's abstract claims high macro utilization from pairing but gives no figure here"))
    speed = c.images_per_s / cd.images_per_s if cd.images_per_s else 0.0
    rows.append(SeedRow(
        "SUN", "speed-up of sparse + mixed precision over dense 8-bit (same network)", "x", None, "n/a",
        NOT_IN_ABSTRACT, speed,
        f"{net} vs the same function at 8 bits with every unit stored (dense_counterpart: identical logits and "
        f"activations; input_ones {'measured on the same images' if wl.measured else 'assumed alike'} for both); "
        f"{machine}. Compressed: "
        f"{_latency_split(c)}; dense: {_latency_split(cd)}",
        depends_on=TIMING, from_seed=_from_seed(preset, "SUN", TIMING),
        explanation="bit-serial inputs make cycles depend on activated row blocks, not on weight bits: mixed "
                    "precision saves columns (energy, weight traffic) but not cycles; only whole pruned row "
                    "blocks and fewer weight reloads save time"))
    rows.append(SeedRow(
        "SUN", "energy gain of sparse + mixed precision over dense 8-bit (same network)", "x", None, "n/a",
        NOT_IN_ABSTRACT, cd.energy_pj / c.energy_pj if c.energy_pj else 0.0,
        f"same pair as above; compressed {c.energy_uj_per_image:.3f} uJ/image ({_energy_split(c)}), dense "
        f"{cd.energy_uj_per_image:.3f} uJ/image ({_energy_split(cd)})",
        depends_on=TIMING + ENERGY, from_seed=_from_seed(preset, "SUN", TIMING + ENERGY)))
    rows.append(SeedRow(
        "SUN", "throughput on CIFAR-10", "GOPS", 792.2, "792.2 GOPS", SUN_SOURCE, c.gops,
        f"{net}; {machine}; dense-equivalent ops (2 per MAC of the unpruned network) / CIM chip latency; "
        f"{_latency_split(c)}",
        depends_on=TIMING, from_seed=_from_seed(preset, "SUN", TIMING),
        explanation=f"{idle} (all busy would give about {c.gops / occ if occ else 0:.0f} GOPS); SUN's CIFAR-10 network, "
                    f"activation precision and clock are not in the abstract and may differ"))
    bops = bit_ops_per_s(c, wl.counters)
    area = c.area_total_mm2
    peak = 2 * hw.n_macros * hw.rows_active * hw.cols * clock * 1e6  # 1b ops/s, every macro busy
    macro_area = c.area_mm2.get("macros", 0.0)
    rows.append(SeedRow(
        "SUN", "system area efficiency", "TOPS/mm2", 428.2, "428.2 TOPS/mm2", SUN_SOURCE, bops / 1e12 / area,
        f"1b x 1b-normalized ops actually performed (2 x bit_ops: the stored weight bits x input bit planes) "
        f"per second of CIM chip latency over the whole chip area {area:.3f} mm2 (macros "
        f"{macro_area:.3f}, periphery {c.area_mm2.get('periphery', 0):.3f}); dense-equivalent "
        f"(multi-bit ops) it is {c.tops_per_mm2:.3g} TOPS/mm2; the macros' 1b peak (every macro activating "
        f"{hw.rows_active}x{hw.cols} cells each cycle) over the macro area alone is "
        f"{peak / 1e12 / macro_area if macro_area else 0:.3g} TOPS/mm2",
        depends_on=TIMING + AREA, from_seed=_from_seed(preset, "SUN", TIMING + AREA),
        explanation=f"SUN's two headline figures imply 792.2 GOPS / 428.2 TOPS/mm2 = "
                    f"{792.2e9 / 428.2e12 * 1e3:.2f} 10^-3 mm2, far below one 64 Kb macro, so the paper's TOPS/mm2 "
                    f"is normalized differently from its GOPS (bit-level ops, macro area only, or peak); the "
                    f"normalization is not stated in the abstract"))
    rows.append(SeedRow(
        "MARS", f"images/s on CIFAR-10 with {hw.n_macros} macros", "images/s", 700.0, "> 700 FPS", MARS_SOURCE,
        c.images_per_s,
        f"{net}; {machine}; one image at a time, layers in sequence; {_latency_split(c)}",
        depends_on=TIMING, from_seed=_from_seed(preset, "MARS", TIMING), paper_is_lower_bound=True,
        explanation="MARS's abstract does not name the CIFAR-10 network of its FPS figure (it reports VGG16 and "
                    f"ResNet18) nor its clock; hybridcim runs ResNet-20; {idle}"))
    macro = getattr(c, "tops_per_w_macro", None)
    rows.append(SeedRow(
        "MARS", "energy efficiency (on chip)", "TOPS/W", 88.2, "88.2 TOPS/W (ResNet18; 52.3 for VGG16)",
        MARS_SOURCE, _on_chip_tops_per_w(c),
        f"{net}; dense-equivalent ops / on-chip energy (macros, accumulators, requant, buffers, weight writes, "
        f"leakage; DRAM transfers excluded, as an accelerator's TOPS/W usually is); with DRAM "
        f"{c.tops_per_w:.3g} TOPS/W ({_energy_split(c)})"
        + (f"; CIM datapath alone {macro:.3g} TOPS/W" if macro else ""),
        depends_on=TIMING + ENERGY, from_seed=_from_seed(preset, "MARS", TIMING + ENERGY),
        explanation=f"{_energy_split(c, 3, DRAM_KINDS)}; the CIM datapath is "
                    f"{_datapath_share(c):.0%} of the on-chip energy, the rest is buffers, requant, weight writes and "
                    f"leakage; MARS's figures are for ResNet18 and VGG16 (hybridcim runs ResNet-20) and the abstract "
                    f"does not say which energies its TOPS/W counts (the assumptions give hybridcim's figure with DRAM "
                    f"and for the CIM datapath alone)"))
    notes = [wl.source + (f"; dense counterpart: {wd.source}" if wd.source != wl.source else ""),
             "DualNet's headline figures (energy, memory and latency vs uniform INT4) need a trained dual-path model "
             "and its INT4 baseline (the cost model prices dual-path layers: docs/cost-model.md, \"Dual-path "
             "layers\"); OSA-HCIM's need the hybrid model under a cost preset with the analog events; neither is "
             "compared here"]
    return SeedReport(rows, program.name, preset.name, wl.source, notes)


def _fmt(v: float | None) -> str:
    if v is None:
        return "n/a"
    a = abs(v)
    return f"{v:#.3g}" if a < 10 else f"{v:,.1f}"


def seeds_table(report: SeedReport) -> tuple[list[str], list[list[str]]]:
    """(headers, rows of strings) of the seeds table."""
    headers = ["seed", "comparison", "paper", "hybridcim", "ratio", "verdict", "assumptions", "note / why it differs"]
    rows = []
    for r in report.rows:
        ratio = "n/a" if r.ratio is None else f"{r.ratio:#.3g}"
        why = r.explanation if r.within_goal is not True else ""
        rows.append([r.seed, f"{r.quantity} ({r.unit})", r.paper_text, _fmt(r.hybridcim), ratio, r.verdict,
                     r.assumptions, why])
    return headers, rows


def format_seeds(report: SeedReport) -> str:
    """The seeds table as Markdown: the program, cost preset and workload, a compact table (seed,
    comparison, paper, hybridcim, ratio, verdict), then per row its assumptions and, for a row
    not within the goal, why it differs; then the sources."""
    esc = lambda s: s.replace("|", "\\|")  # noqa: E731
    out = [f"Program `{report.program}`, cost preset `{report.cost_preset}`; {report.workload}.", "",
           "| # | seed | comparison | paper | hybridcim | ratio | verdict |", "|---|---|---|---|---:|---:|---|"]
    for i, r in enumerate(report.rows, 1):
        ratio = "n/a" if r.ratio is None else f"{r.ratio:#.3g}"
        out.append(f"| {i} | {r.seed} | {esc(r.quantity)} ({r.unit}) | {esc(r.paper_text)} | {_fmt(r.hybridcim)} | "
                   f"{ratio} | {r.verdict} |")
    out.append("")
    for i, r in enumerate(report.rows, 1):
        out.append(f"{i}. *Assumptions:* {r.assumptions}.")
        if r.within_goal is not True and r.explanation:
            out.append(f"   *{'Note' if r.within_goal is None else 'Why it differs'}:* {r.explanation}.")
    out.append("")
    out += [f"- {n}." for n in report.notes[1:]]
    out += [f"- Source ({s}): {src}." for s, src in (("SUN", SUN_SOURCE), ("MARS", MARS_SOURCE))]
    return "\n".join(out) + "\n"
