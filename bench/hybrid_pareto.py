"""Accuracy vs energy of hybrid mode on a shipped model: calibrated dynamic and static boundaries,
uniform (ASiM-like) static boundaries, noise seeds; results JSON + Pareto plot (docs/hybrid.md).

    CIFAR10_DIR=/work/shared/cifar10 .venv/bin/python bench/hybrid_pareto.py \\
        --work /tmp/hybrid-work --out docs/hybrid-results.json --plot docs/hybrid-pareto.png

Unattended and resumable: every finished step is stored in ``--out`` (atomically) and skipped on a
rerun; calibrations share one resumable state file in ``--work``. Steps run in priority order
(``--steps`` picks some). Calibration: the calibration split (training images); the reported points:
the CIFAR-10 test set (``--test-images`` first images, 10,000 = all; the headline step ``full``
evaluates the chosen point on all 10,000 whatever ``--test-images`` says).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from hybridcim.calibrate import Calibrator, hybrid_program, make_emulator, run_logits
from hybridcim.cim.hybrid import DEPTH_ALL
from hybridcim.cost import cost, load_cost_preset
from hybridcim.data import Cifar10, calibration_split
from hybridcim.fileio import atomic_write_text
from hybridcim.program import read_program, write_program

NOISE = (32, 2)
"""(noise_pairs, noise_shift) of the noise runs: σ = √(32/2) · 2² / 16 = 1.0 count (architecture.md §9.6)."""


def evaluate(program, images, labels, preset, image_base=0, batch=250):
    """Top-1 accuracy and per-image energy (whole chip, CIM datapath) of ``program`` on the images."""
    t = time.time()
    logits, counters = run_logits(make_emulator(program), images, batch, image_base)
    c = cost(program, counters, preset)
    n = len(images)
    hist = {}
    for layer, cnt in zip(program.layers, counters):
        if layer.mode == 1:
            reads = cnt.digital_column_reads + cnt.analog_column_reads + cnt.skipped_bitplanes
            hist[layer.name] = {"digital": cnt.digital_column_reads / reads, "analog": cnt.analog_column_reads / reads,
                                "skipped": cnt.skipped_bitplanes / reads}
    return {"images": n, "correct": int((logits.argmax(1) == labels).sum()),
            "accuracy": float((logits.argmax(1) == labels).mean()), "energy_uj": c.energy_pj / n / 1e6,
            "macro_uj": c.energy_macro_pj / n / 1e6, "seconds": round(time.time() - t, 1), "read_split": hist}


def uniform(program, level, exclude=("stem",)):
    """The same one-level table (D, E) on every conv/fc layer but ``exclude``."""
    return {l.name: ((), (level[0],), (level[1],)) for l in program.layers if l.op.is_cim and l.name not in exclude}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="host/hybridcim/models/resnet20-w4a4-p50/model.cim")
    ap.add_argument("--work", required=True, help="folder for the calibrated programs and the calibration state")
    ap.add_argument("--out", required=True, help="results JSON (resumable)")
    ap.add_argument("--plot", default=None, help="Pareto plot PNG")
    ap.add_argument("--cost-preset", default="dcim-65nm")
    ap.add_argument("--cal-images", type=int, default=500)
    ap.add_argument("--sens-images", type=int, default=100)
    ap.add_argument("--test-images", type=int, default=1000)
    ap.add_argument("--budgets", default="1.0,0.5,2.0")
    ap.add_argument("--keep-digital", default="stem")
    ap.add_argument("--steps", default="all", help="comma-separated step names or prefixes (default: all)")
    ap.add_argument("--plot-only", action="store_true")
    ap.add_argument("--data", default=None)
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    res = json.loads(out.read_text()) if out.exists() else {}
    res.setdefault("steps", {})
    res["config"] = {k: getattr(args, k) for k in ("model", "cost_preset", "cal_images", "sens_images", "test_images",
                                                   "budgets", "keep_digital")}
    res["config"]["noise"] = {"noise_pairs": NOISE[0], "noise_shift": NOISE[1]}

    def save():
        atomic_write_text(out, json.dumps(res, indent=1) + "\n", "--out")

    if args.plot_only:
        plot(res, args.plot)
        return 0
    preset = load_cost_preset(args.cost_preset)
    program = read_program(args.model)
    keep = [n for n in args.keep_digital.split(",") if n]
    test = Cifar10(args.data, "test")
    x_test, y_test = test.read(0, args.test_images)
    budgets = [float(b) for b in args.budgets.split(",")]
    cal = None
    wanted = None if args.steps == "all" else args.steps.split(",")

    def want(name):
        return wanted is None or any(name == w or name.startswith(w) for w in wanted)

    def step(name, fn):
        if name in res["steps"] or not want(name):
            return
        print(f"[{time.strftime('%H:%M:%S')}] {name} ...", flush=True)
        res["steps"][name] = fn()
        save()
        print(f"[{time.strftime('%H:%M:%S')}] {name}: {json.dumps({k: v for k, v in res['steps'][name].items() if k != 'read_split'})}",
              flush=True)

    def calibrator():
        nonlocal cal
        if cal is None:
            xi, yi = calibration_split(args.data, limit=args.cal_images)
            cal = Calibrator(program, xi, yi, preset, sens_images=args.sens_images, state_path=work / "state.json",
                             show_progress=True, log=print, keep_digital=keep)
        return cal

    def calibrated(budget, static, skip=True):
        def fn():
            r = calibrator().run(budget, skip=skip, static=static)
            tag = f"{'static' if static else 'dynamic'}-{'skip' if skip else 'noskip'}-{budget:g}"
            write_program(r.program, work / f"{tag}.cim")
            d = {"calibration": {k: v for k, v in r.as_dict().items() if k != "checks"},
                 "program": str(work / f"{tag}.cim")}
            d["test"] = evaluate(r.program, x_test, y_test, preset)
            return d
        return fn

    step("digital", lambda: {"test": evaluate(program, x_test, y_test, preset)})
    for b in budgets:
        step(f"dynamic-skip-{b:g}", calibrated(b, False))
        if b == budgets[0]:
            step(f"static-skip-{b:g}", calibrated(b, True))
            step(f"dynamic-noskip-{b:g}", calibrated(b, False, skip=False))
    for b in budgets[1:]:
        step(f"static-skip-{b:g}", calibrated(b, True))
    for d in (6, 5, 4, 3):
        step(f"uniform-skip-D{d}", lambda d=d: {"test": evaluate(hybrid_program(program, uniform(program, (d, d), keep), 2),
                                                                x_test, y_test, preset)})
    for d in (4, 2):
        step(f"uniform-analog-D{d}", lambda d=d: {"test": evaluate(
            hybrid_program(program, uniform(program, (d, DEPTH_ALL), keep), 2), x_test, y_test, preset)})
    # noise: the analog path only; the chosen point's analog reads decide whether it matters
    for seed in range(5):
        step(f"noise-analog-D4-seed{seed}", lambda seed=seed: {"test": evaluate(
            hybrid_program(program, uniform(program, (4, DEPTH_ALL), keep), 2, (NOISE[0], NOISE[1], seed)),
            x_test, y_test, preset)})
    head = f"dynamic-skip-{budgets[0]:g}"
    if head in res["steps"]:
        hp = read_program(res["steps"][head]["program"])
        for seed in range(5):
            step(f"noise-{head}-seed{seed}", lambda seed=seed: {"test": evaluate(
                _with_noise(hp, seed), x_test, y_test, preset)})
        xf, yf = test.read(0, len(test))
        step("full-digital", lambda: {"test": evaluate(program, xf, yf, preset)})
        step(f"full-{head}", lambda: {"test": evaluate(hp, xf, yf, preset)})
    if args.plot:
        plot(res, args.plot)
    return 0


def _with_noise(program, seed):
    import dataclasses

    from hybridcim.program.builder import make_hybrid
    params = {l.name: dataclasses.replace(l.hybrid, noise_pairs=NOISE[0], noise_shift=NOISE[1], noise_seed=seed)
              for l in program.layers if l.mode == 1}
    return make_hybrid(program, params)


def plot(res, path):
    """Accuracy (test subset) vs CIM-datapath energy per image of every finished point."""
    if not path:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    steps = res["steps"]
    if "digital" not in steps:
        return
    dig = steps["digital"]["test"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    groups = {"dynamic-skip-": ("o-", "C0", "dynamic (saliency) boundary, calibrated"),
              "static-skip-": ("s-", "C1", "static boundary, calibrated per layer"),
              "uniform-skip-": ("^--", "C2", "uniform static (D, D): ASiM-like split, skip below D"),
              "uniform-analog-": ("v--", "C3", "uniform static (D, 15): ASiM split, analog below D")}
    for prefix, (style, color, label) in groups.items():
        pts = sorted((v["test"]["macro_uj"], 100 * v["test"]["accuracy"], k[len(prefix):]) for k, v in steps.items()
                     if k.startswith(prefix) and "test" in v)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=color, label=label)
            for e, a, tag in pts:
                ax.annotate(tag if not prefix.startswith("uniform") else tag, (e, a), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
    ax.plot([dig["macro_uj"]], [100 * dig["accuracy"]], "k*", ms=12, label="all digital")
    ax.set_xlabel("CIM datapath energy per image (uJ, dcim-65nm)")
    ax.set_ylabel(f"top-1 accuracy on the first {dig['images']:,} test images (%)")
    ax.set_title("ResNet-20 W4A4: hybrid mode, accuracy vs energy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
