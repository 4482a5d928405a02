"""``hybridcim info [PROGRAM]``: the hardware presets, or a program's summary."""
from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("info", help="list hardware presets, or summarize a program image")
    p.add_argument("program", nargs="?", help="program image (.cim)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--plot", metavar="PNG", help="draw the program's per-layer precision, utilization, "
                                                 "pruned units, tiles and cycles (needs matplotlib)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..emulator.counters import static_counters
    from ..program import manifest, read_program
    from ..program.codec import encode
    from ..spec.hardware import PRESETS
    if args.program is None:
        if args.json:
            print(json.dumps({n: dict(p.to_dict(), fingerprint=f"{p.fingerprint:08x}") for n, p in PRESETS.items()}))
        else:
            for p in PRESETS.values():
                print(f"{p.name:<14s} {p.fingerprint:08x}  {p.canonical()}")
        return 0
    if args.plot:
        from ._plot import require_matplotlib
        require_matplotlib("--plot")
    prog = read_program(args.program)
    if args.plot:
        from ..compiler.report import layer_report
        from ._plot import write_layer_plot
        write_layer_plot(layer_report(prog), args.plot, f"{prog.name}: {args.program}")
    counters = [static_counters(l, prog, 1) for l in prog.layers]
    if args.json:
        m = manifest(prog, encode(prog))
        m["counters_per_image"] = [c.as_dict() for c in counters]
        print(json.dumps(m))
        return 0
    print(prog.summary())
    print(f"  {'layer':<20s} {'cycles/img':>11s} {'util':>6s} {'units':>11s} {'tiles':>5s}")
    for c in counters:
        if c.units_total:
            print(f"  {c.layer:<20s} {c.cycles:>11d} {c.utilization:>6.1%} {c.units_present:>5d}/{c.units_total:<5d} {c.tiles:>5d}")
    print(f"  total cycles/image: {sum(c.cycles for c in counters)}")
    return 0
