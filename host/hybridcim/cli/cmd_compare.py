"""``hybridcim compare BASELINE MODEL ... --data DIR``: programs side by side against a baseline.

Each argument is a program image (.cim), a shipped model name or folder, or ``LABEL=SPEC`` to name
its row. Every program runs through the fast emulator on the same CIFAR-10 test images (all 10,000
unless ``--limit``; ``--split calibration``: the calibration split instead, the last 5,000 training
images the ratio search scores candidates on, for choosing a model without looking at the test
set); the table gives accuracy and the cost model's energy (µJ/image), memory (KiB on
chip) and latency (µs/image), each with its change against the first program (the baseline), and
DualNet's published reductions as a last row (quoted from its abstract). ``--json`` and
``--markdown`` write the record and the table (atomically). Numpy only.
"""
from __future__ import annotations

import sys


def register(sub) -> None:
    p = sub.add_parser("compare", help="accuracy, energy, memory and latency of programs against a baseline")
    from .options import add_data_options, positive_int
    p.add_argument("programs", nargs="+", metavar="[LABEL=]PROGRAM",
                   help="the baseline first, then the programs to compare: .cim images or shipped model names "
                        "or folders, each optionally labelled (int4=models/int4/model.cim)")
    add_data_options(p)
    p.add_argument("--split", choices=["test", "calibration"], default="test",
                   help="the images: the test set (reported figures, default) or the calibration split (the last "
                        "5,000 training images, which the ratio search scores candidates on: for choosing a model)")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="only the first N images of the split (default: all of it)")
    p.add_argument("--cost-preset", default="dcim-28nm", metavar="P",
                   help="cost preset name or .json file (default: dcim-28nm)")
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "numpy"],
                   help="array library of the fast emulator (same integers either way)")
    p.add_argument("--json", metavar="FILE", help="write the comparison record here (JSON)")
    p.add_argument("--markdown", metavar="FILE", help="write the table here (Markdown)")
    p.set_defaults(func=run)


def parse_entry(text: str) -> tuple[str, str]:
    """(label, program spec) of ``LABEL=SPEC`` or ``SPEC`` (label: the spec's file or folder name)."""
    from pathlib import Path
    label, sep, spec = text.partition("=")
    if not sep:
        spec = text
        p = Path(text)
        label = p.parent.name if p.suffix == ".cim" and p.name == "model.cim" else (p.stem or text)
    if not label or not spec:
        raise ValueError(f"{text!r}: expected LABEL=PROGRAM or PROGRAM")
    return label, spec


def run(args) -> int:
    import os

    from ..cost import load_cost_preset
    from ..data import Cifar10, calibration_split
    from ..fileio import check_input, check_output
    from ..models import resolve_model
    from ..program import read_program
    from ..progress import progress
    from ..search.compare import comparison, markdown_table, measure, write_outputs
    entries = [parse_entry(t) for t in args.programs]
    labels = [lab for lab, _ in entries]
    if len(set(labels)) != len(labels):
        raise ValueError(f"row labels must differ: {labels} (name them LABEL=PROGRAM)")
    cost_preset = load_cost_preset(args.cost_preset)  # a bad preset fails before any work
    for path, what in ((args.json, "--json"), (args.markdown, "--markdown")):
        if path:
            check_output(path, what)
    if args.data is not None:
        check_input(args.data, "--data", "dir")
    elif not os.environ.get("CIFAR10_DIR"):
        raise ValueError("no CIFAR-10 folder: pass --data DIR or set CIFAR10_DIR")
    programs = [(lab, spec, read_program(resolve_model(spec))) for lab, spec in entries]  # all read first
    if args.split == "calibration":
        images, truth = calibration_split(args.data, args.limit)
    else:
        data = Cifar10(args.data, "test")
        images, truth = data.read(0, len(data) if args.limit is None else min(args.limit, len(data)))
    n = len(truth)
    rows = []
    with progress(n * len(programs), "compare") as bar:
        for lab, spec, prog in programs:
            bar.set_postfix_str(lab)
            rows.append(measure(lab, prog, images, truth, cost_preset, args.backend, bar, source=spec))
    record = comparison(rows, labels[0])
    record["cost_preset"] = cost_preset.name
    record["split"] = args.split
    write_outputs(record, args.json, args.markdown)
    sys.stdout.write(markdown_table(record))
    return 0
