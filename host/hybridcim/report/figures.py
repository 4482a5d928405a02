"""The report's figures (matplotlib, Agg canvas of their own), each returned as PNG bytes.

Inputs are plain arrays so the figures do not depend on how the numbers were obtained:
energies in pJ per image, times in µs per image, utilizations as fractions 0…1.
"""
from __future__ import annotations

import io

import numpy as np

DPI = 100


def png_bytes(fig, dpi: int = DPI, **margins) -> bytes:
    """``fig`` encoded as PNG; ``margins`` (left, right, bottom, top, hspace, wspace as figure
    fractions) place the axes directly, which is much cheaper than a tight layout (an extra draw)."""
    if margins:
        fig.subplots_adjust(**margins)
    else:
        fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _figure(w: float, h: float):
    from ..plots import new_figure
    return new_figure(w, h)


def _stacked(ax, x, parts: dict[str, np.ndarray], ylabel: str) -> None:
    bottom = np.zeros(len(x))
    colors = _cmap("tab20")
    for i, (name, v) in enumerate(parts.items()):
        v = np.asarray(v, dtype=float)
        if not v.any():
            continue
        ax.bar(x, v, bottom=bottom, label=name, color=colors((2 * i) % 20 + (i // 10) % 2))  # dark hues first
        bottom += v
    if bottom.any():
        ax.set_ylim(0, bottom.max() * 1.3)  # room for the legend
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, ncol=min(4, len(parts)), loc="upper right")


def breakdown_png(layers: list[str], energy_pj: dict[str, np.ndarray], latency_us: dict[str, np.ndarray],
                  title: str = "") -> bytes:
    """Two stacked-bar panels per layer: energy per image by event kind (nJ) and latency per
    image by component (µs)."""
    x = np.arange(len(layers))
    fig = _figure(max(8.0, 0.38 * len(layers) + 3), 6.8)
    ax = fig.subplots(2, 1, sharex=True)
    _stacked(ax[0], x, {k: np.asarray(v, float) / 1e3 for k, v in energy_pj.items()}, "energy / image (nJ)")
    _stacked(ax[1], x, latency_us, "latency / image (µs)")
    ax[1].set_xticks(x, layers, rotation=60, ha="right", fontsize=7)
    fig.suptitle(title or "per-layer energy and latency")
    w = fig.get_figwidth()
    return png_bytes(fig, left=0.8 / w, right=1 - 0.2 / w, bottom=0.16, top=0.93, hspace=0.06)


def tile_heatmap_png(util: np.ndarray, spans: list[tuple[str, int, int]], title: str = "") -> bytes:
    """Macro utilization heatmap: rows are macros, columns the tile loads in schedule order
    (``util`` float (n_macros, n_slots), NaN where a macro is idle); ``spans`` (layer, first
    slot, end slot) label which layer each column belongs to."""
    m, s = util.shape
    fig = _figure(max(8.0, min(18.0, 0.12 * s + 3)), 1.2 + 0.45 * m + 1.4)
    ax = fig.subplots()
    cmap = _cmap("viridis").with_extremes(bad="0.92")
    im = ax.imshow(np.ma.masked_invalid(util), aspect="auto", cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks(range(m), [f"macro {i}" for i in range(m)], fontsize=8)
    ax.set_xlabel("tile load (schedule order)")
    for i, (name, a, b) in enumerate(spans):
        if a:
            ax.axvline(a - 0.5, color="w", lw=0.8)
        if b - a >= max(1, s // 40):
            ax.text((a + b - 1) / 2, -0.6, name, rotation=60, fontsize=6, ha="left", va="bottom")
    cb = fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
    cb.set_label("used weight bits / macro cells")
    fig.suptitle(title or "macro utilization per tile", y=0.99)
    return png_bytes(fig)


def precision_map_png(layers: list[str], precision: list[np.ndarray], unit_density: np.ndarray,
                      precisions: tuple[int, ...], title: str = "") -> bytes:
    """Pruning and precision map: one row per layer, one cell per filter coloured by its weight
    precision (0 = pruned), beside the fraction of (row block × column group) units stored."""
    fmax = max((len(p) for p in precision), default=1)
    grid = np.full((len(layers), fmax), np.nan)
    for i, p in enumerate(precision):
        grid[i, :len(p)] = p
    levels = [0, *sorted(precisions)]
    index = {v: i for i, v in enumerate(levels)}
    coded = np.full(grid.shape, np.nan)
    for v, i in index.items():
        coded[grid == v] = i
    from matplotlib.colors import ListedColormap
    colors = ["#d9d9d9", "#fdae61", "#66c2a5", "#3288bd", "#5e4fa2", "#9e0142"][:len(levels)]
    cmap = ListedColormap(colors).with_extremes(bad="white")
    fig = _figure(11.0, 1.4 + 0.26 * len(layers))
    ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [4, 1]}, sharey=True)
    ax[0].imshow(np.ma.masked_invalid(coded), aspect="auto", cmap=cmap, vmin=-0.5, vmax=len(levels) - 0.5,
                 interpolation="nearest")
    ax[0].set_yticks(range(len(layers)), layers, fontsize=7)
    ax[0].set_xlabel("filter")
    from matplotlib.patches import Patch
    fig.legend([Patch(color=c) for c in colors], ["pruned" if v == 0 else f"{v}-bit" for v in levels],
               fontsize=7, ncol=len(levels), loc="upper right")
    ax[1].barh(range(len(layers)), unit_density, color="C2")
    ax[1].set_xlim(0, 1)
    ax[1].set_xlabel("units stored")
    ax[1].grid(axis="x", alpha=0.3)
    fig.suptitle(title or "pruning and precision map", x=0.02, ha="left")
    return png_bytes(fig)


def roofline_png(layers: list[str], intensity: np.ndarray, attained: np.ndarray, peak: float,
                 bandwidth: float, title: str = "", xlabel: str = "ops / byte", ylabel: str = "GOPS") -> bytes:
    """Roofline-style bound: each layer's attained throughput against its operational intensity,
    under the compute roof ``peak`` and the bandwidth slope ``bandwidth`` (y-units per x-unit)."""
    intensity = np.asarray(intensity, float)
    attained = np.asarray(attained, float)
    ok = (intensity > 0) & (attained > 0)
    fig = _figure(8.0, 5.0)
    ax = fig.subplots()
    lo = float(intensity[ok].min()) / 4 if ok.any() else 0.1
    hi = float(intensity[ok].max()) * 4 if ok.any() else 1e3
    ridge = peak / bandwidth if bandwidth > 0 else hi
    xs = np.geomspace(min(lo, ridge / 4), max(hi, ridge * 4), 200)
    ax.plot(xs, np.minimum(peak, bandwidth * xs), "k-", lw=1.5, label="roof (compute / bandwidth)")
    ax.scatter(intensity[ok], attained[ok], c=np.arange(ok.sum()), cmap=_cmap("plasma"), s=28, zorder=3)
    for name, x, y in zip(np.asarray(layers)[ok], intensity[ok], attained[ok]):
        ax.annotate(name, (x, y), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(title or "roofline-style bound per layer")
    return png_bytes(fig)


def _cmap(name: str):
    import matplotlib
    return matplotlib.colormaps[name].copy()
