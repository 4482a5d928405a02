"""``hybridcim calibrate PROGRAM --max-loss 1.0 -o OUT.cim``: choose every CIM layer's hybrid level
table (architecture.md §9) to minimise estimated energy under an accuracy-loss budget.

The budget is in percentage points of top-1 accuracy vs the same program in digital mode, on the
calibration split (the last 5,000 CIFAR-10 training images, ``hybridcim.data.calibration_split``;
``--images N``: its first N). Energy comes from the cost model with ``--cost-preset``. The search
is resumable (``--state``, written after every evaluation) and shows a progress bar; it writes the
hybrid program image (OUT.cim + OUT.cim.json, atomically) and prints the operating point.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def _budget(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of percentage points, got {text!r}") from None
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0 (percentage points), got {text!r}")
    return v


def register(sub) -> None:
    from .options import add_data_options, batch_size, int_range
    p = sub.add_parser("calibrate", help="choose a program's hybrid-mode thresholds for least energy within an "
                                         "accuracy budget")
    p.add_argument("program", help="program image (.cim); calibrated from its digital version")
    p.add_argument("--max-loss", type=_budget, required=True, metavar="PP",
                   help="largest top-1 accuracy loss vs digital mode on the calibration images, percentage points")
    p.add_argument("-o", "--output", required=True, help="hybrid program image to write (OUT.cim + OUT.cim.json)")
    p.add_argument("--cost-preset", default="dcim-65nm", metavar="P",
                   help="cost preset (name or .json) with the hybrid energies (default: dcim-65nm)")
    p.add_argument("--images", type=int_range(1, 5000), default=5000, metavar="N",
                   help="the first N images of the calibration split, 1..5000 (default: all 5,000)")
    p.add_argument("--sens-images", type=int_range(1), default=500, metavar="N",
                   help="images of the per-layer sensitivity runs: the first N of the calibration images (default 500)")
    p.add_argument("--no-skip", action="store_true", help="no skip levels: every pair is digital or analog")
    p.add_argument("--static", action="store_true",
                   help="static boundary only: one level per layer (no saliency decision), the baseline")
    p.add_argument("--sal-planes", type=int_range(1, 8), default=2, metavar="H",
                   help="input planes (from the MSB) the saliency reads, capped at each layer's input bits (default 2)")
    p.add_argument("--bias-correction", action=argparse.BooleanOptionalAction, default=False,
                   help="fold the mean lost (skipped) accumulator per filter, measured on the sensitivity images "
                        "layer by layer in network order, into the requant bias of every evaluated table and of "
                        "the result (default: off; it helped uniform static skipping but not the calibrated "
                        "dynamic points, docs/hybrid.md)")
    p.add_argument("--refine", type=int_range(0), default=8, metavar="N",
                   help="full-network checks of the greedy pass after the bisection (default 8; 0: none)")
    p.add_argument("--keep-digital", default="", metavar="NAMES",
                   help="comma-separated conv/fc layers to leave in digital mode (e.g. the first layer)")
    p.add_argument("--state", default=None, metavar="FILE",
                   help="resumable state: every evaluation so far (default: OUT.cim.calib-state.json); a rerun "
                        "continues from it, and runs with other budgets or modes reuse it")
    p.add_argument("--report-json", default=None, metavar="FILE", help="also write the operating point as JSON")
    p.add_argument("--emulator", default="auto", choices=["auto", "fast", "reference"],
                   help="executor of the evaluations (default auto: the fast emulator)")
    p.add_argument("--batch-size", type=batch_size, default=250, metavar="B", help="images per batch (default 250)")
    add_data_options(p)
    p.set_defaults(func=run)


def format_point(res, preset_name: str) -> str:
    """The operating point as text: accuracy, energy and gain, then one line per hybrid layer."""
    d = res.as_dict()
    lines = [f"calibration images: {d['images']}; digital accuracy {100 * d['accuracy_digital']:.2f} %, hybrid "
             f"{100 * d['accuracy']:.2f} % (loss {d['loss_pp']:+.2f} pp, top-1 agreement "
             f"{100 * d['agree_with_digital']:.2f} %)",
             f"energy ({preset_name}): {d['energy_uj_per_image']:.4f} uJ/image vs {d['energy_digital_uj_per_image']:.4f}"
             f" digital: {d['gain']:.3f}x; CIM datapath {d['macro_energy_uj_per_image']:.4f} vs "
             f"{d['macro_energy_digital_uj_per_image']:.4f} uJ/image: {d['macro_gain']:.3f}x"]
    if not d["layers"]:
        lines.append("no hybrid table saves energy within the budget: every layer stays digital")
    for name, t in d["layers"].items():
        levels = ", ".join(f"(D={dd}, E={e})" for dd, e in zip(t["digital_depth"], t["keep_depth"]))
        thr = f" thresholds {t['thresholds']}" if t["thresholds"] else " static"
        bc = d.get("bias_delta", {}).get(name)
        corr = f"; bias correction mean {sum(bc) / len(bc):+.1f}, range [{min(bc)}, {max(bc)}]" if bc else ""
        lines.append(f"  {name}:{thr} levels {levels}{corr}")
    return "\n".join(lines)


def run(args) -> int:
    from ..calibrate import Calibrator
    from ..cost import load_cost_preset
    from ..data import calibration_split
    from ..fileio import atomic_write_text, check_input, check_output
    from ..program import read_program, write_program
    src = check_input(args.program, "program")
    out = check_output(args.output, "--output", make_parents=False)
    check_output(out.with_name(out.name + ".json"), "--output's manifest", make_parents=False)
    state = Path(args.state) if args.state else out.with_name(out.name + ".calib-state.json")
    check_output(state, "--state", make_parents=False)
    if args.report_json:
        check_output(args.report_json, "--report-json", make_parents=False)
    if args.data is not None:
        check_input(args.data, "--data", "dir")
    preset = load_cost_preset(args.cost_preset)
    program = read_program(src)
    images, labels = calibration_split(args.data, limit=args.images)
    cal = Calibrator(program, images, labels, preset, sal_planes=args.sal_planes, sens_images=args.sens_images,
                     state_path=state, emulator=args.emulator, batch=args.batch_size, show_progress=True,
                     log=lambda m: print(m, flush=True),
                     keep_digital=[n for n in args.keep_digital.split(",") if n],
                     bias_correction=args.bias_correction)
    if cal.state.loaded:
        print(f"resuming from {state}: {cal.state.loaded} evaluations cached", flush=True)
    try:
        res = cal.run(args.max_loss, skip=not args.no_skip, static=args.static, refine=args.refine)
    except KeyboardInterrupt:
        print(f"interrupted: {len(cal.state.evals)} evaluations kept in {state}; rerun to continue")
        raise
    write_program(res.program, out)
    mode = "static" if args.static else "dynamic"
    print(f"{mode} boundary, skipping {'off' if args.no_skip else 'on'}, bias correction "
          f"{'on' if args.bias_correction else 'off'}, budget {args.max_loss:g} pp")
    print(format_point(res, preset.name))
    print(f"evaluations: {cal.n_evals} run, {cal.n_cached} from {state}")
    if args.report_json:
        d = res.as_dict()
        d.update({"program": str(src), "output": str(out), "cost_preset": preset.name, "max_loss_pp": args.max_loss,
                  "mode": mode, "skip": not args.no_skip,
                  "bias_correction": bool(args.bias_correction), "sal_planes": args.sal_planes,
                  "sens_images": min(args.sens_images, len(images)), "images_split": "calibration",
                  "keep_digital": sorted(cal.keep_digital)})
        atomic_write_text(args.report_json, json.dumps(d, indent=1) + "\n", "--report-json")
    print(f"wrote {out}")
    return 0
