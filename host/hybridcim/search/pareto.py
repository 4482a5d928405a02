"""The Pareto front of the finished trials, as CSV (written atomically) and as a plot."""
from __future__ import annotations

import csv
import io
from pathlib import Path


def dominates(a, b, directions) -> bool:
    """True if value vector ``a`` is at least as good as ``b`` in every objective and better in one
    (directions: "maximize" / "minimize" per objective).

    >>> dominates([0.9, 2.0], [0.8, 3.0], ["maximize", "minimize"])
    True
    >>> dominates([0.9, 4.0], [0.8, 3.0], ["maximize", "minimize"])  # a trade-off
    False
    """
    better = False
    for x, y, d in zip(a, b, directions):
        if d == "maximize":
            x, y = -x, -y
        if x > y:
            return False
        if x < y:
            better = True
    return better


def pareto_front(rows: list[dict], objectives: list[str], directions: list[str]) -> list[dict]:
    """The rows (dicts with every objective) no other row dominates, sorted by the first objective
    (best first) then the rest; rows with identical values are all kept.

    >>> rows = [{"trial": 0, "acc": 0.9, "e": 5.0}, {"trial": 1, "acc": 0.8, "e": 6.0}, {"trial": 2, "acc": 0.7, "e": 1.0}]
    >>> [r["trial"] for r in pareto_front(rows, ["acc", "e"], ["maximize", "minimize"])]
    [0, 2]
    """
    vals = [[r[o] for o in objectives] for r in rows]
    front = [r for i, r in enumerate(rows)
             if not any(dominates(vals[j], vals[i], directions) for j in range(len(rows)) if j != i)]
    sign = [-1 if d == "maximize" else 1 for d in directions]
    return sorted(front, key=lambda r: tuple(s * r[o] for s, o in zip(sign, objectives)) + (r.get("trial", 0),))


def front_csv(front: list[dict], objectives: list[str], layers: list[str]) -> str:
    """CSV text: trial, baseline, the objectives, then one column per layer (its ratio q in eighths)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["trial", "baseline", *objectives, *[f"q_{l}" for l in layers]])
    for r in front:
        w.writerow([r["trial"], r.get("baseline", ""), *[repr(float(r[o])) for o in objectives],
                    *[r["ratios"].get(l, "") for l in layers]])
    return buf.getvalue()


def read_front_csv(path) -> list[dict]:
    """Rows of a front CSV as dicts (numbers parsed), for tests and notebooks."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        d = {}
        for k, v in r.items():
            if k == "baseline":
                d[k] = v
            elif k == "trial" or k.startswith("q_"):
                d[k] = int(v)
            else:
                d[k] = float(v)
        out.append(d)
    return out


LABELS = {"accuracy": "accuracy (calibration split)", "energy_uj": "energy (uJ/image)",
          "memory_kib": "memory (KiB stored)", "latency_us": "latency (us/image)"}


def plot_front(path: Path, rows: list[dict], front: list[dict], baselines: list[dict], title: str) -> None:
    """PNG: accuracy (y) vs every other objective the rows have (one panel each): all trials grey, the
    front in colour, baselines as labelled stars. Needs matplotlib."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    xs = [k for k in ("energy_uj", "memory_kib", "latency_us") if rows and k in rows[0]]
    fig, axes = plt.subplots(1, max(1, len(xs)), figsize=(4.2 * max(1, len(xs)), 3.6), squeeze=False)
    for ax, x in zip(axes[0], xs):
        ax.scatter([r[x] for r in rows], [r["accuracy"] for r in rows], s=10, c="0.7", label="trials")
        ax.scatter([r[x] for r in front], [r["accuracy"] for r in front], s=22, c="C0", label="Pareto front")
        for i, b in enumerate(baselines):
            if x in b and "accuracy" in b:
                ax.scatter([b[x]], [b["accuracy"]], marker="*", s=140, c=f"C{(i + 1) % 10}", label=b["name"],
                           edgecolors="k", linewidths=0.5, zorder=3)
        ax.set_xlabel(LABELS[x])
        ax.set_ylabel(LABELS["accuracy"])
        ax.grid(alpha=0.3)
    save_panels(fig, axes[0], path, title, ncol=6, bottom=0.1)


def save_panels(fig, axes, path: Path, title: str, ncol: int, bottom: float) -> None:
    """Finish a row of panels: the title (wrapped), one legend under the panels (it never hides a point;
    each label once) in ``ncol`` columns, then the PNG written atomically and the figure closed."""
    import textwrap

    import matplotlib.pyplot as plt

    from ..fileio import atomic_write_bytes
    seen = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    fig.suptitle(textwrap.fill(title, 150), fontsize=9)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.legend(list(seen.values()), list(seen), loc="lower center", ncol=min(len(seen), ncol), fontsize=8,
               frameon=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
