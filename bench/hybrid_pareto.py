"""Accuracy vs energy of hybrid mode on a shipped model: calibrated dynamic and static boundaries,
uniform (ASiM-like) static boundaries, noise seeds; results JSON + Pareto plot (docs/hybrid.md).

    CIFAR10_DIR=/work/shared/cifar10 .venv/bin/python bench/hybrid_pareto.py \\
        --work /tmp/hybrid-work --out docs/hybrid-results.json --plot docs/hybrid-pareto.png

Unattended and resumable: every finished step is stored in ``--out`` (atomically) and skipped on a
rerun; calibrations share one resumable state file in ``--work``. Steps run in priority order
(``--steps`` picks some). Calibration: the calibration split (training images); the reported points:
the CIFAR-10 test set (``--test-images`` first images, 10,000 = all; the headline step ``full``
evaluates the chosen point on all 10,000 whatever ``--test-images`` says). ``--bias-correction``:
the calibrations and uniform boundaries with the bias correction of skipped work (measured on the
first ``--sens-images`` calibration images; steps named ``...-bc``, beside the uncorrected ones).
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
            "macro_uj": c.energy_macro_pj / n / 1e6, "seconds": round(time.time() - t, 1), "read_split": hist,
            "by_kind_uj": {k: v / n / 1e6 for k, v in c.energy_by_kind.items() if v}}


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
    ap.add_argument("--ship", default=None, metavar="COMMAND",
                    help="write the first budget's dynamic program beside the model (model-hybrid.cim, hybrid.json); "
                         "COMMAND: the calibrate command line to record")
    ap.add_argument("--bias-correction", action="store_true",
                    help="calibrate and evaluate uniform boundaries with the bias correction (steps '...-bc')")
    ap.add_argument("--data", default=None)
    args = ap.parse_args(argv)
    bc = "-bc" if args.bias_correction else ""
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
        print(markdown(res))
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
        if args.plot:
            plot(res, args.plot)
        print(f"[{time.strftime('%H:%M:%S')}] {name}: {json.dumps({k: v for k, v in res['steps'][name].items() if k != 'read_split'})}",
              flush=True)

    def calibrator():
        nonlocal cal
        if cal is None:
            xi, yi = calibration_split(args.data, limit=args.cal_images)
            cal = Calibrator(program, xi, yi, preset, sens_images=args.sens_images, state_path=work / "state.json",
                             show_progress=True, log=print, keep_digital=keep, bias_correction=args.bias_correction)
        return cal

    def calibrated(budget, static, skip=True):
        def fn():
            r = calibrator().run(budget, skip=skip, static=static)
            tag = f"{'static' if static else 'dynamic'}-{'skip' if skip else 'noskip'}-{budget:g}{bc if skip else ''}"
            write_program(r.program, work / f"{tag}.cim")
            d = {"calibration": {k: v for k, v in r.as_dict().items() if k != "checks"},
                 "program": str(work / f"{tag}.cim")}
            d["test"] = evaluate(r.program, x_test, y_test, preset)
            return d
        return fn

    def uni(level, noise=(0, 0, 0), correct=False):
        def fn():
            hp = hybrid_program(program, uniform(program, level, keep), 2, noise)
            d = {}
            if correct:
                from hybridcim.calibrate.bias import apply_bias_correction, measure_bias_correction
                xi, _ = calibration_split(args.data, limit=args.sens_images)
                plain = hybrid_program(program, uniform(program, level, keep), 2)
                hp, applied = apply_bias_correction(hp, measure_bias_correction(plain, xi))
                d["bias_correction"] = {"images": len(xi), "mean_abs": float(np.mean(np.abs(np.concatenate(
                    list(applied.values())))))}
            d["test"] = evaluate(hp, x_test, y_test, preset)
            return d
        return fn

    head = f"dynamic-skip-{budgets[0]:g}{bc}"
    step("digital", lambda: {"test": evaluate(program, x_test, y_test, preset)})
    step(head, calibrated(budgets[0], False))
    if head in res["steps"]:
        step(f"sensitivity-{head}", lambda: sensitivity_of(calibrator(), res["steps"][head], preset))
    if head in res["steps"]:
        hp = read_program(res["steps"][head]["program"])
        xf, yf = test.read(0, len(test))
        step("full-digital", lambda: {"test": evaluate(program, xf, yf, preset)})
        step(f"full-{head}", lambda: {"test": evaluate(hp, xf, yf, preset)})
        if args.ship:
            res["steps"].pop("ship", None)
            step("ship", lambda: ship(res, head, args.model, preset, x_test, y_test, args.ship))
    step(f"dynamic-noskip-{budgets[0]:g}", calibrated(budgets[0], False, skip=False))
    for d in (5, 6, 4):
        step(f"uniform-skip-D{d}{bc}", uni((d, d), correct=bool(bc)))
    step(f"static-skip-{budgets[0]:g}{bc}", calibrated(budgets[0], True))
    step("uniform-analog-D4", uni((4, DEPTH_ALL)))
    if head in res["steps"]:
        hp = read_program(res["steps"][head]["program"])
        if not any(d < e for l in hp.layers if l.mode == 1 for d, e in zip(l.hybrid.digital_depth, l.hybrid.keep_depth)):
            def check():  # no analog pair anywhere: noise cannot act; checked on a few images
                n = min(100, len(x_test))
                a = run_logits(make_emulator(_with_noise(hp, 0)), x_test[:n], 250, 0)[0]
                b = run_logits(make_emulator(hp), x_test[:n], 250, 0)[0]
                return {"images": n, "analog_levels": 0, "logits_identical": bool(np.array_equal(a, b))}
            step(f"noise-{head}-check", check)
    for b in budgets[1:]:
        step(f"dynamic-skip-{b:g}{bc}", calibrated(b, False))
    for b in budgets[1:]:
        step(f"static-skip-{b:g}{bc}", calibrated(b, True))
    # noise acts on analog reads only: a uniform analog boundary, 5 seeds; and the chosen point
    for seed in range(5):
        step(f"noise-analog-D4-seed{seed}", uni((4, DEPTH_ALL), (NOISE[0], NOISE[1], seed)))
    if head in res["steps"]:
        hp = read_program(res["steps"][head]["program"])
        analog = any(d < e for l in hp.layers if l.mode == 1 for d, e in zip(l.hybrid.digital_depth, l.hybrid.keep_depth))
        if analog:
            for seed in range(5):
                step(f"noise-{head}-seed{seed}", lambda seed=seed: {"test": evaluate(
                    _with_noise(hp, seed), x_test, y_test, preset)})
    step(f"uniform-skip-D3{bc}", uni((3, 3), correct=bool(bc)))
    step("uniform-analog-D2", uni((2, DEPTH_ALL)))
    if args.plot:
        plot(res, args.plot)
    return 0


def ship(res, head, model_path, preset, x, y, command):
    """Write the chosen hybrid program beside the shipped model (model-hybrid.cim + .json, hybrid.json)."""
    folder = Path(model_path).parent
    point = res["steps"][head]
    hp = read_program(point["program"])
    base = read_program(model_path)
    write_program(hp, folder / "model-hybrid.cim")
    n = 20
    r = make_emulator(hp).run(x[:n], image_base=0)
    d = make_emulator(base).run(x[:n])
    top = r.outputs.argmax(axis=1)
    full = res["steps"].get(f"full-{head}", {}).get("test")
    full_dig = res["steps"].get("full-digital", {}).get("test")
    facts = {"program": "model-hybrid.cim", "from": "model.cim", "cost_preset": preset.name, "command": command,
             "made_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
             "calibration": point["calibration"],
             "cifar10_test": {"images": (full or point["test"])["images"],
                              "correct": (full or point["test"])["correct"],
                              "accuracy": (full or point["test"])["accuracy"],
                              "accuracy_digital": (full_dig or res["steps"]["digital"]["test"])["accuracy"],
                              "energy_uj_per_image": (full or point["test"])["energy_uj"],
                              "macro_energy_uj_per_image": (full or point["test"])["macro_uj"]},
             "test_sample": {"images": n, "top1": top.tolist(), "correct": int((top == y[:n]).sum()),
                             "macro_gain": cost(base, d.counters, preset).energy_macro_pj
                             / cost(hp, r.counters, preset).energy_macro_pj}}
    atomic_write_text(folder / "hybrid.json", json.dumps(facts, indent=2) + "\n", "hybrid.json")
    return {"wrote": str(folder / "model-hybrid.cim"), "test_images": facts["cifar10_test"]["images"]}


def sensitivity_of(cal, point, preset):
    """How the chosen point's energy gain over digital moves when each hybrid energy (and the digital
    read's two parts) is doubled or halved, its counters (calibration images) fixed; and whether the
    analog path would be offered (cheaper per read than digital) in at least one layer."""
    from hybridcim.calibrate.search import _rows_eff
    a = {k: ((tuple(v["thresholds"]), tuple(v["digital_depth"]), tuple(v["keep_depth"])))
         for k, v in point["calibration"]["layers"].items()}
    ev = cal.evaluate("full", a)
    prog = hybrid_program(cal.program, a, cal.sal_planes)
    dig = cal.full.digital
    rows = []
    names = ("analog_column_read_pj", "adc_conversion_pj", "skipped_bitplane_pj", "saliency_pj_per_row",
             "adder_tree_pj_per_input", "shift_add_pj")
    for name in names:
        for f in (2.0, 0.5):
            v = preset[name]
            pr = preset.replace(**{name: (v * f) if v else (0.01 if f > 1 else 0.0)}) if name == "skipped_bitplane_pj" \
                else preset.replace(**{name: v * f})
            c, c0 = cost(prog, ev.counters, pr), cost(cal.program, dig.counters, pr)
            p_ana = pr["analog_column_read_pj"] + pr["adc_conversion_pj"] * 2.0 ** (prog.preset.adc_bits - 5) \
                + pr["shift_add_pj"]
            offered = any(p_ana < _rows_eff(prog.layers[l.index], prog) * pr["adder_tree_pj_per_input"] + pr["shift_add_pj"]
                          for l in cal.layers)
            rows.append({"param": name, "factor": f if v else ("0.01 pJ" if f > 1 else "0"),
                         "gain": c0.energy_pj / c.energy_pj, "macro_gain": c0.energy_macro_pj / c.energy_macro_pj,
                         "analog_offered": bool(offered)})
    c, c0 = cost(prog, ev.counters, preset), cost(cal.program, dig.counters, preset)
    return {"base": {"gain": c0.energy_pj / c.energy_pj, "macro_gain": c0.energy_macro_pj / c.energy_macro_pj},
            "rows": rows}


def markdown(res) -> str:
    """The finished steps as Markdown tables (docs/hybrid.md)."""
    st = res["steps"]
    out = []
    dig = st.get("digital", {}).get("test")
    if dig:
        out.append("| point | budget (pp) | calibration: loss (pp) | test acc. (%) | loss vs digital (pp) | "
                   "datapath uJ/img | datapath gain | chip uJ/img | chip gain | reads digital / analog / skipped |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        rows = [("digital", "all digital", "—")]
        for k in st:
            if k.startswith(("dynamic-", "static-", "uniform-")) and "test" in st[k]:
                rows.append((k, k, k.removesuffix("-bc").rsplit("-", 1)[-1] if not k.startswith("uniform") else "—"))
        for k, label, budget in rows:
            t = st[k]["test"]
            cal = st[k].get("calibration")
            split = t.get("read_split") or {}
            tot = [0.0, 0.0, 0.0]
            for v in split.values():
                tot = [tot[0] + v["digital"], tot[1] + v["analog"], tot[2] + v["skipped"]]
            mix = " / ".join(f"{100 * x / len(split):.0f} %" for x in tot) if split else "100 % / 0 / 0"
            out.append(f"| {label} | {budget} | {cal['loss_pp']:+.2f} ({cal['images']} img) | " if cal else f"| {label} | {budget} | — | ")
            out[-1] += (f"{100 * t['accuracy']:.2f} | {100 * (dig['accuracy'] - t['accuracy']):+.2f} | {t['macro_uj']:.4f} | "
                        f"{dig['macro_uj'] / t['macro_uj']:.3f}x | {t['energy_uj']:.3f} | {dig['energy_uj'] / t['energy_uj']:.3f}x | "
                        f"{mix} |")
    for k in st:
        if k.startswith("sensitivity-"):
            out.append("")
            out.append(f"| constant | ×2: datapath gain | ÷2: datapath gain | ×2: chip gain | ÷2: chip gain | analog offered (×2 / ÷2) |")
            out.append("|---|---|---|---|---|---|")
            rows = st[k]["rows"]
            for i in range(0, len(rows), 2):
                u, d = rows[i], rows[i + 1]
                out.append(f"| `{u['param']}` | {u['macro_gain']:.3f}x | {d['macro_gain']:.3f}x | {u['gain']:.4f}x | "
                           f"{d['gain']:.4f}x | {'yes' if u['analog_offered'] else 'no'} / {'yes' if d['analog_offered'] else 'no'} |")
            out.append(f"(base: datapath {st[k]['base']['macro_gain']:.3f}x, chip {st[k]['base']['gain']:.4f}x)")
    noise = [st[k]["test"] for k in st if k.startswith("noise-analog-D4-seed")]
    if noise:
        acc = np.array([100 * t["accuracy"] for t in noise])
        out.append("")
        out.append(f"noise (uniform analog D=4, {len(noise)} seeds, {noise[0]['images']} images): accuracy "
                   f"{acc.mean():.2f} % ± {acc.std(ddof=1) if len(acc) > 1 else 0:.2f} (min {acc.min():.2f}, max {acc.max():.2f})")
    return "\n".join(out)


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
        for corrected in (False, True):
            pts = sorted((v["test"]["macro_uj"], 100 * v["test"]["accuracy"], k[len(prefix):]) for k, v in steps.items()
                         if k.startswith(prefix) and "test" in v and k.endswith("-bc") == corrected)
            if corrected and pts:
                style, label = style[0] + ":", label + ", bias-corrected"
            _plot_group(ax, pts, style, color, label, prefix)
    ax.plot([dig["macro_uj"]], [100 * dig["accuracy"]], "k*", ms=12, label="all digital")
    ax.set_xlabel("CIM datapath energy per image (uJ, dcim-65nm)")
    ax.set_ylabel(f"top-1 accuracy on the first {dig['images']:,} test images (%)")
    ax.set_title("ResNet-20 W4A4: hybrid mode, accuracy vs energy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_group(ax, pts, style, color, label, prefix):
    if not pts:
        return
    ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=color, label=label,
            markerfacecolor="none" if style.endswith(":") else color)
    for e, a, tag in pts:
        ax.annotate(tag if prefix.startswith("uniform") else f"{tag} pp", (e, a), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")


if __name__ == "__main__":
    sys.exit(main())
