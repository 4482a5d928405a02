"""Figures (need matplotlib; everything else in the package runs without it).

Each function draws on an Agg canvas of its own (the process's matplotlib backend is left
alone) and writes its PNG atomically: a reader never sees half a file.
"""
from __future__ import annotations

from pathlib import Path


def new_figure(width_in: float, height_in: float):
    """A matplotlib Figure (size in inches) on its own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width_in, height_in))
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, out_png: str | Path, dpi: int = 110) -> Path:
    """Lay out ``fig`` and write it to ``out_png`` (PNG) atomically; returns the path."""
    import io

    from .fileio import atomic_write_bytes, check_output
    fig.tight_layout()
    out = check_output(out_png, "figure")  # a folder or a path under a file: refused before drawing
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return atomic_write_bytes(out, buf.getvalue(), "figure")


def plot_training_curve(metrics_csv: str | Path, out_png: str | Path, title: str = "",
                        target: float | None = None) -> Path:
    """PNG of test and train accuracy, average weight bits and structural sparsity per epoch of a
    trainer's metrics.csv; ``target``: an accuracy goal drawn as a dotted line; where the CSV has a
    ``stage`` column, the start of each later stage as a dashed line."""
    import csv

    with open(metrics_csv) as f:
        rows = list(csv.DictReader(f))
    ep = [int(r["epoch"]) for r in rows]
    fig = new_figure(10, 3.4)
    ax = fig.subplots(1, 2)
    ax[0].plot(ep, [float(r["test_acc"]) for r in rows], "o-", label="test (exact integer model)")
    ax[0].plot(ep, [float(r["train_acc"]) for r in rows], "s--", label="train")
    if target is not None:
        ax[0].axhline(target, color="k", ls=":", lw=1, label=f"target {target:.0%}")
    starts = [e for e, r, prev in zip(ep[1:], rows[1:], rows) if r.get("stage") != prev.get("stage")]
    for i, e in enumerate(starts):  # a model trained in stages (packaging.stage_history)
        for a in ax:
            a.axvline(e - 0.5, color="0.5", ls="--", lw=1, label="stage start" if i == 0 and a is ax[0] else None)
    ax[0].set_xlabel("epoch"); ax[0].set_ylabel("CIFAR-10 accuracy"); ax[0].legend(); ax[0].grid(alpha=0.3)
    bits = [float(r["avg_bits"]) for r in rows]
    ax[1].plot(ep, bits, "o-", color="C2", label="avg weight bits")
    ax[1].set_xlabel("epoch"); ax[1].set_ylabel("bits"); ax[1].grid(alpha=0.3)
    ax[1].set_ylim(0, max(bits, default=8.0) + 0.5)
    twin = ax[1].twinx()
    twin.plot(ep, [float(r["sparsity"]) for r in rows], "s-", color="C3", label="structurally pruned")
    twin.set_ylabel("pruned fraction"); twin.set_ylim(0, 1)
    handles = [h for a in (ax[1], twin) for h in a.get_legend_handles_labels()[0]]
    twin.legend(handles, [h.get_label() for h in handles], loc="lower right")  # both lines sit mid-height
    fig.suptitle(title)
    return save_figure(fig, out_png)


def headroom(top: float, frac: float = 0.25) -> float:
    """Upper axis limit leaving ``frac`` of the tallest bar free above it (for the legend)."""
    return top * (1 + frac) if top > 0 else 1.0


def plot_layer_report(rows: list[dict], out_png: str | Path, title: str = "") -> Path:
    """PNG of :func:`layer_report_figure`."""
    return save_figure(layer_report_figure(rows, title), out_png)


def layer_report_figure(rows: list[dict], title: str = ""):
    """Figure of a compile report (:func:`hybridcim.compiler.report.layer_report` rows), one bar
    per CIM layer in five panels: filters by weight precision (stacked; 0 = pruned), macro
    utilization, fraction of the layer's weights pruned (stacked: by whole filters, then by
    absent row block x column group units of the stored filters), tiles of the macro map
    (macro loads; more tiles than macros means weight reloads) and CIM cycles per image.
    Naive packing (one filter per column group) is drawn beside paired when the rows carry it."""
    import numpy as np
    names = [r["layer"] for r in rows]
    x = np.arange(len(rows))
    fig = new_figure(max(8.0, 0.42 * len(rows) + 3), 9.0)
    ax = fig.subplots(5, 1, sharex=True)
    bottom = np.zeros(len(rows))
    precs = sorted({int(p) for r in rows for p in r["precision"]}, reverse=True)
    for p in precs:
        n = np.array([r["precision"].get(p, 0) for r in rows], dtype=float)
        ax[0].bar(x, n, bottom=bottom, label="pruned" if p == 0 else f"{p}-bit",
                  color="0.8" if p == 0 else None)
        bottom += n
    ax[0].set_ylabel("filters"); ax[0].legend(ncol=len(precs), fontsize=8, loc="upper left")
    ax[0].set_ylim(0, headroom(max((r["filters"] for r in rows), default=1)))

    def paired_vs_naive(a, key, naive_key, label):
        w = 0.4
        if all(naive_key in r for r in rows):
            a.bar(x - w / 2, [r[naive_key] for r in rows], w, label="naive (1 filter/group)", color="C7")
            a.bar(x + w / 2, [r[key] for r in rows], w, label="paired", color="C0")
            a.legend(fontsize=8)
        else:
            a.bar(x, [r[key] for r in rows], color="C0")
        a.set_ylabel(label)
        a.set_ylim(0, headroom(max((max(r[key], r.get(naive_key, 0)) for r in rows), default=1)))

    paired_vs_naive(ax[1], "util_paired", "util_naive", "macro util.")
    ax[1].set_ylim(0, 1.25)
    if all("weights_pruned" in r and "filters_pruned" in r for r in rows):
        whole = np.array([r["filters_pruned"] / r["filters"] if r["filters"] else 0.0 for r in rows])
        ax[2].bar(x, whole, color="0.6", label="whole filters")
        ax[2].bar(x, np.array([r["weights_pruned"] for r in rows]) - whole, bottom=whole, color="C3",
                  label="absent units (row block × group)")
        ax[2].set_ylabel("weights pruned"); ax[2].legend(ncol=2, fontsize=8, loc="upper left")
        ax[2].set_ylim(0, 1.25)
    else:  # a report written before whole-filter pruning was counted: units of stored filters only
        ax[2].bar(x, [r["unit_sparsity"] for r in rows], color="C3")
        ax[2].set_ylabel("units pruned"); ax[2].set_ylim(0, 1)
    paired_vs_naive(ax[3], "tiles", "tiles_naive", "tiles")
    paired_vs_naive(ax[4], "cycles", "cycles_naive", "cycles / image")
    ax[4].set_xticks(x, names, rotation=60, ha="right", fontsize=8)
    for a in ax:
        a.grid(axis="y", alpha=0.3)
    fig.suptitle(title or f"{len(rows)} CIM layers")
    return fig
