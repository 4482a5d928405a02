"""What the CLI shows of hybrid mode (architecture.md §9): a layer's mode, its level table and the
boundary histogram (the ``decisions_level0..7`` counters), as text and as JSON-ready dicts; and a
program's mode line, which names dual-path layers (architecture.md §10) too."""
from __future__ import annotations

import math

from ..emulator.counters import DATA_DEPENDENT_HYBRID
from ..table import format_table

__all__ = ["DATA_DEPENDENT_HYBRID", "MODES", "boundary_histogram", "dual_layers", "histogram_text", "hybrid_layers",
           "hybrid_summary", "layer_hybrid_dict", "level_tables", "mode_name", "program_mode", "uses_noise"]

MODES = {0: "digital", 1: "hybrid"}


def mode_name(mode: int) -> str:
    """'digital' (mode 0), 'hybrid' (mode 1), else 'mode N'."""
    return MODES.get(int(mode), f"mode {int(mode)}")


def hybrid_layers(prog) -> list[int]:
    """Indices of the program's layers in hybrid mode (mode != 0)."""
    return [i for i, l in enumerate(prog.layers) if l.mode != 0]


def dual_layers(prog) -> list[int]:
    """Indices of the program's dual-path layers (flags bit 0, architecture.md §10)."""
    return [i for i, l in enumerate(prog.layers) if getattr(l, "dual", None) is not None]


def program_mode(prog) -> str:
    """'hybrid' when any layer runs in hybrid mode, else 'dual-path' when any layer is dual-path
    (architecture.md §10), else 'digital'."""
    return "hybrid" if hybrid_layers(prog) else "dual-path" if dual_layers(prog) else "digital"


def uses_noise(prog) -> bool:
    """Whether some hybrid layer adds analog noise (§9.6: then the global image index matters)."""
    return any(l.hybrid is not None and l.hybrid.noise_pairs > 0 for l in prog.layers)


def noise_text(hp) -> str:
    """'off', or 'pairs m, shift s, seed k (sigma x counts)' (σ = √(m/2)·2^shift/16 counts, §9.6)."""
    if hp.noise_pairs == 0:
        return "off"
    sigma = math.sqrt(hp.noise_pairs / 2) * 2 ** hp.noise_shift / 16
    return f"pairs {hp.noise_pairs}, shift {hp.noise_shift}, seed {hp.noise_seed} (sigma {sigma:.3g} counts)"


def _pair_paths(precision: int, bits_in: int, d: int, e: int) -> tuple[int, int, int]:
    """(digital, analog, skipped) pair counts of a filter of ``precision`` bits at level (D, E) (§9.1)."""
    counts = [0, 0, 0]
    for j in range(precision):
        for i in range(bits_in):
            depth = (precision - 1 - j) + (bits_in - 1 - i)
            counts[0 if depth < d else 1 if depth < e else 2] += 1
    return counts[0], counts[1], counts[2]


def level_rows(layer, bits_in: int) -> list[dict]:
    """One dict per level: level, saliency range [lo, hi] (hi None: unbounded), D, E and, per filter
    precision stored in the layer, the (digital, analog, skipped) pairs of one MAC's filter."""
    hp = layer.hybrid
    t = list(hp.thresholds)
    precs = sorted({int(p) for p in layer.precision if p > 0})
    rows = []
    for k in range(hp.n_levels):
        lo = 0 if k == 0 else t[k - 1]
        hi = t[k] - 1 if k < len(t) else None
        d, e = hp.digital_depth[k], hp.keep_depth[k]
        rows.append({"level": k, "saliency_min": lo, "saliency_max": hi, "digital_depth": d, "keep_depth": e,
                     "pairs": {str(p): dict(zip(("digital", "analog", "skipped"), _pair_paths(p, bits_in, d, e)))
                               for p in precs}})
    return rows


def layer_hybrid_dict(prog, index: int) -> dict:
    """JSON of one hybrid layer: its parameters and level table."""
    layer = prog.layers[index]
    hp = layer.hybrid
    bits_in = prog.tensors[layer.in_tensor].bits
    return {"index": index, "layer": layer.name, "n_levels": hp.n_levels, "sal_planes": hp.sal_planes,
            "thresholds": list(hp.thresholds), "noise_pairs": hp.noise_pairs, "noise_shift": hp.noise_shift,
            "noise_seed": hp.noise_seed, "levels": level_rows(layer, bits_in)}


def level_tables(prog) -> str:
    """Text: for each hybrid layer a title line (levels, saliency planes, noise) and its level table."""
    out = []
    for i in hybrid_layers(prog):
        layer = prog.layers[i]
        hp = layer.hybrid
        bits_in = prog.tensors[layer.in_tensor].bits
        out.append(f"  layer {i} {layer.name!r}: hybrid, {hp.n_levels} level{'s' * (hp.n_levels != 1)}, "
                   f"saliency of the top {hp.sal_planes} of {bits_in} input planes, noise {noise_text(hp)}")
        rows = []
        for r in level_rows(layer, bits_in):
            sal = (f">= {r['saliency_min']}" if r["saliency_max"] is None else
                   f"{r['saliency_min']}..{r['saliency_max']}")
            pairs = "  ".join(f"{p}b {v['digital']}/{v['analog']}/{v['skipped']}" for p, v in r["pairs"].items())
            rows.append([r["level"], sal if hp.n_levels > 1 else "any", r["digital_depth"], r["keep_depth"], pairs])
        out.append(format_table(["level", "saliency", "D", "E", "pairs digital/analog/skipped per filter"],
                                rows, "><>><", indent="    "))
    return "\n".join(out)


def boundary_histogram(prog, counters) -> dict:
    """{"layers": {name: [decisions at level 0..T-1]}, "total": [decisions at level 0..7 over the
    hybrid layers]} from per-layer counters (architecture.md §9.7)."""
    layers, total = {}, [0] * 8
    for i in hybrid_layers(prog):
        h = counters[i].boundary_histogram
        layers[prog.layers[i].name] = h[:prog.layers[i].hybrid.n_levels]
        total = [a + b for a, b in zip(total, h)]
    return {"layers": layers, "total": total}


def hybrid_summary(prog, counters) -> dict:
    """JSON fields of a run: mode (:func:`program_mode`), the hybrid and the dual-path layers and the
    boundary histogram (None without hybrid layers)."""
    dual = [prog.layers[i].name for i in dual_layers(prog)]
    if not hybrid_layers(prog):
        return {"mode": program_mode(prog), "hybrid_layers": [], "dual_layers": dual, "boundary_histogram": None}
    return {"mode": "hybrid", "hybrid_layers": [prog.layers[i].name for i in hybrid_layers(prog)], "dual_layers": dual,
            "boundary_histogram": None if counters is None else boundary_histogram(prog, counters)}


def histogram_text(prog, counters) -> str:
    """Text: the mode line (with the dual-path layers, if any) and, for a hybrid program, the boundary
    histogram per layer and in total (decisions = pixels x images x column groups with a present unit;
    share of each level)."""
    idx = hybrid_layers(prog)
    n_cim = sum(1 for l in prog.layers if l.op.is_cim)
    n_dual = len(dual_layers(prog))
    dual = f"dual-path ({n_dual} of {n_cim} CIM layers)" if n_dual else ""
    if not idx:
        return f"mode: {dual}" if dual else f"mode: digital (all {n_cim} CIM layers)"
    head = f"mode: hybrid ({len(idx)} of {n_cim} CIM layers)" + (f", {dual}" if dual else "")
    if counters is None:
        return head + "; boundary histogram: not reported by this device"
    hist = boundary_histogram(prog, counters)
    width = max(prog.layers[i].hybrid.n_levels for i in idx)
    rows = []

    def row(name, h):
        n = sum(h)
        cells = [(f"{h[k]} ({h[k] / n:.0%})" if n else str(h[k])) if k < len(h) else "" for k in range(width)]
        return [name] + cells + [n]

    for i in idx:
        rows.append(row(prog.layers[i].name, hist["layers"][prog.layers[i].name]))
    rows.append(row("total", hist["total"][:width]))
    table = format_table(["layer"] + [f"level {k}" for k in range(width)] + ["decisions"], rows,
                         "<" + ">" * (width + 1), indent="  ")
    return head + "; boundary histogram (decisions per level, level 0 = least salient):\n" + table


DIGITAL_COST_PRESET = "dcim-28nm"
HYBRID_COST_PRESET = "dcim-65nm"
"""Default cost presets of ``run`` / ``emulate``: a hybrid program needs one that prices the analog path."""
HYBRID_COST_EVENTS = ("analog_column_read_pj", "adc_conversion_pj", "skipped_bitplane_pj", "saliency_pj_per_row")


def cost_preset_for(prog, name):
    """The cost preset of a run's energy fields, checked before any work: ``name`` (a name or .json),
    or by default dcim-28nm for a digital program and dcim-65nm (it prices the analog path) for a
    hybrid one. ValueError when a hybrid program's preset leaves a hybrid event unpriced."""
    from ..cost import load_cost_preset
    hybrid = bool(hybrid_layers(prog))
    preset = load_cost_preset(name or (HYBRID_COST_PRESET if hybrid else DIGITAL_COST_PRESET))
    missing = [e for e in HYBRID_COST_EVENTS if preset[e] is None] if hybrid else []
    if missing:
        raise ValueError(f"--cost-preset {preset.name!r} has no price for {', '.join(missing)}, which a hybrid "
                         f"program's counters need: use --cost-preset {HYBRID_COST_PRESET}")
    return preset
