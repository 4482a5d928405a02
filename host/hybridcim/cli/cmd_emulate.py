"""``hybridcim emulate PROGRAM --data DIR``: run a program through an emulator on CIFAR-10.

Streams the data in batches (memory stays bounded), shows a progress bar on stderr, and
prints accuracy (when the program has as many outputs as there are classes), images/s,
cycles per image and peak RSS, then the program's mode: for a hybrid program (architecture.md
§9) the boundary histogram, the decisions per level summed per hybrid layer and in total.
With ``--json`` the last stdout line is one JSON object, which also gives mode,
boundary_histogram, energy_uj_per_image and latency_us_per_image (the CIM chip's, under
``--cost-preset``, default dcim-28nm). ``--offset N`` starts at image N of the split, and the
global image index that keys hybrid analog noise starts at N with it (``image_base``).
"""
from __future__ import annotations

import json
import resource
import time


def register(sub) -> None:
    p = sub.add_parser("emulate", help="run a program image through the bit-exact emulator on CIFAR-10")
    from .options import add_batch_options, add_data_options, add_offset_option
    p.add_argument("program", help="program image (.cim) or zoo:NAME (a random-weight network, see hybridcim zoo)")
    add_data_options(p, split=True)
    add_batch_options(p, 250, "images of the split")
    add_offset_option(p)
    p.add_argument("--emulator", default="fast", choices=["fast", "reference"],
                   help="fast: vectorized, bit-exact (default); reference: the literal row-block by column-group "
                        "loop of architecture.md, slow, for checking")
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "numpy"],
                   help="array library of the fast emulator (default auto: torch when installed, else numpy; "
                        "both give the same integers)")
    p.add_argument("--cost-preset", default=None, metavar="P",
                   help="cost preset (name or .json) of energy_uj_per_image and latency_us_per_image (default: "
                        "dcim-28nm; dcim-65nm for a hybrid program, whose analog path it prices)")
    p.add_argument("--json", action="store_true", help="last stdout line: a JSON summary")
    p.set_defaults(func=run)


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(args) -> int:
    from ..data import Cifar10
    from ..emulator import FastEmulator, ReferenceEmulator
    from ..zoo import load_program
    from ..progress import progress
    from ..cost import load_cost_preset
    if args.cost_preset is not None:
        load_cost_preset(args.cost_preset)  # a bad preset fails before any work
    if args.data is not None:
        from ..fileio import check_input
        check_input(args.data, "--data", "dir")
    prog = load_program(args.program)
    from ._hybrid import cost_preset_for
    cost_preset = cost_preset_for(prog, args.cost_preset)
    data = Cifar10(args.data, args.split)
    from ..program.errors import UnsupportedModeError
    try:
        emu = ReferenceEmulator(prog) if args.emulator == "reference" else FastEmulator(prog, args.backend)
    except UnsupportedModeError as e:
        raise UnsupportedModeError(f"{e}; run it with --emulator reference (slow: use --limit)") from None
    if args.offset > len(data):
        raise ValueError(f"--offset {args.offset} is past the {len(data)} images of the {args.split} split")
    total = len(data) - args.offset if args.limit is None else min(args.limit, len(data) - args.offset)
    n_out = prog.output.channels
    correct = seen = 0
    counters = None
    bar = progress(total, f"emulate {prog.name}")
    t0 = time.perf_counter()
    from .options import run_with_base
    for start in range(args.offset, args.offset + total, args.batch_size):
        images, labels = data.read(start, min(start + args.batch_size, args.offset + total))
        res = run_with_base(emu, images, start)  # start = global index of images[0] (hybrid noise key)
        if n_out == len(data.classes):
            correct += int((res.outputs.argmax(axis=1) == labels).sum())
        counters = res.counters if counters is None else [a + b for a, b in zip(counters, res.counters)]
        seen += len(images)
        bar.update(len(images))
        if n_out == len(data.classes):
            bar.set_postfix_str(f"acc {correct / seen:.2%}")
    bar.close()
    dt = time.perf_counter() - t0
    summary = {
        "program": args.program, "emulator": emu.name, "backend": getattr(emu, "backend", None),
        "images": seen, "offset": args.offset, "accuracy": correct / seen if seen and n_out == len(data.classes) else None,
        "images_per_s": seen / dt if dt > 0 else None, "seconds": dt,
        "cycles_per_image": sum(c.cycles for c in counters) // max(seen, 1) if counters else 0,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    from ..report.workload import cost_fields
    from ._hybrid import histogram_text, hybrid_summary
    summary.update(hybrid_summary(prog, counters))
    summary.update(cost_fields(prog, counters, cost_preset))
    if not args.json:
        acc = "n/a" if summary["accuracy"] is None else f"{summary['accuracy']:.2%}"
        print(f"{seen} images  accuracy {acc}  {summary['images_per_s']:.1f} images/s  "
              f"{summary['cycles_per_image']} CIM cycles/image  peak RSS {summary['peak_rss_mb']} MiB")
        print(histogram_text(prog, counters))
    else:
        print(json.dumps(summary))
    return 0
