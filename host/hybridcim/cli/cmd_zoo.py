"""``hybridcim zoo NAME -o FILE``: write a ready-made (random-weight) program image."""
from __future__ import annotations


def register(sub) -> None:
    from ..zoo import ZOO
    p = sub.add_parser("zoo", help="write a ready-made random-weight program (benchmarks, demos)")
    from ..spec.hardware import DEFAULT_PRESET, PRESETS
    from .options import non_negative_int
    p.add_argument("name", choices=sorted(ZOO), help="network to build: " + ", ".join(sorted(ZOO)))
    p.add_argument("-o", "--output", required=True, help="program image to write (.cim); a .cim.json manifest goes beside it")
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=sorted(PRESETS),
                   help=f"hardware preset the program is built for (see hybridcim info; default: {DEFAULT_PRESET})")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the random weights and pruning (same seed, same program; default: 0)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..fileio import check_output
    from ..program import write_program
    from ..zoo import ZOO
    check_output(args.output, "--output", make_parents=False)  # before building anything
    check_output(args.output + ".json", "--output's manifest", make_parents=False)
    prog = ZOO[args.name](preset=args.preset, seed=args.seed)
    path = write_program(prog, args.output)
    print(f"wrote {path} ({path.stat().st_size} bytes), {len(prog.layers)} layers, preset {prog.preset.name}")
    return 0
