"""``hybridcim report``: what a program costs on the emulated SRAM-CIM chip, as one web page.

    hybridcim report PROGRAM [--cost-preset P] [-o report.html] [--data DIR] [--limit N]
    hybridcim report --seeds [PROGRAM] [--cost-preset P] [--data DIR] [--limit N] [--json]

PROGRAM is a .cim image, a shipped model name or folder, or zoo:NAME. The page (one HTML file,
figures embedded) shows per-layer energy and latency, the macro × tile utilization, the
pruning and precision map, a roofline-style bound per layer, the seeds' headline
comparisons and the cost preset's constants (and, for a program with dual-path layers, each dual
layer's ratio, both paths' time and both macro types' utilization); a Markdown twin ``<stem>.md`` (figures in
``<stem>_files/``) is written beside it. The page needs matplotlib; ``--seeds`` alone does not.

Data-dependent counters: the 1 bits driven on the word lines (``input_ones``) are measured by
the fast emulator on the first ``--limit`` (default 32) CIFAR-10 test images when a CIFAR-10
folder is known (``--data`` or $CIFAR10_DIR); otherwise, or with ``--limit 0``, 50 % of them
are assumed to be 1 (ZigZag's assumption) and the page says so.
"""
from __future__ import annotations

import dataclasses
import json
import os

DEFAULT_LIMIT = 32


def register(sub) -> None:
    p = sub.add_parser("report", help="cost a program (energy, latency, area, memory) and write an HTML report")
    p.add_argument("program", nargs="?", default=None,
                   help="program image (.cim), shipped model name or folder, or zoo:NAME "
                        "(default with --seeds: the best shipped model)")
    from .options import add_data_options, non_negative_int
    p.add_argument("--cost-preset", default="dcim-28nm", metavar="P",
                   help="cost preset name or .json file (default: dcim-28nm)")
    p.add_argument("-o", "--output", default=None, metavar="HTML",
                   help="page to write (default: report.html; a Markdown twin is written beside it)")
    p.add_argument("--seeds", action="store_true",
                   help="print the seed papers' headline comparisons as a Markdown table (no page unless -o)")
    add_data_options(p)
    p.add_argument("--limit", type=non_negative_int, default=DEFAULT_LIMIT, metavar="N",
                   help=f"CIFAR-10 test images the counters are measured on (default {DEFAULT_LIMIT}; "
                        "0: assume 50 %% ones on the word lines)")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last stdout line")
    p.set_defaults(func=run)


def _load(spec: str | None):
    """(program, label) of a .cim path, shipped model name/folder, or zoo:NAME."""
    from ..models import default_model, resolve_model
    from ..program import read_program
    from .cmd_info import model_name
    spec = spec or default_model()
    if str(spec).startswith("zoo:"):
        from ..zoo import load_program
        return load_program(spec), spec
    path = resolve_model(spec)
    prog = read_program(path)
    return dataclasses.replace(prog, name=model_name(prog, path)), str(spec)  # a shipped model's own name


def _images(program, args):
    """(uint8 NCHW images or None, why None)."""
    if args.limit == 0:
        return None, "--limit 0"
    if args.data is None and not os.environ.get("CIFAR10_DIR"):
        return None, "no CIFAR-10 folder (--data or $CIFAR10_DIR)"
    t = program.input
    if (t.channels, t.height, t.width) != (3, 32, 32):
        return None, f"the program input is {t.channels}x{t.height}x{t.width}, not a CIFAR-10 image"
    from ..data import Cifar10
    data = Cifar10(args.data, "test")
    return data.images(0, min(args.limit, len(data))), ""


def run(args) -> int:
    from ..cost import cost, load_cost_preset
    from ..cost.seeds import format_seeds, seed_comparisons
    from ..report.workload import measure
    if args.program is None and not args.seeds:
        raise ValueError("give a PROGRAM (a .cim image, shipped model name or zoo:NAME), or --seeds")
    page = args.output or (None if args.seeds else "report.html")
    if page is not None:
        from ._plot import require_matplotlib
        require_matplotlib("hybridcim report (the HTML page)")
        if not str(page).lower().endswith((".html", ".htm")):
            raise ValueError(f"-o must name an .html file, got {page!r}")
        from ..fileio import check_output
        check_output(page, "report page", make_parents=False)  # a bad path fails before any work
    preset = load_cost_preset(args.cost_preset)
    program, label = _load(args.program)
    images, why = _images(program, args)
    workload = measure(program, images, what="CIFAR-10 test images")
    if not workload.measured and why:
        workload.source += f" [why: {why}]"
    try:
        seeds, seeds_error = seed_comparisons(program, preset, images, workload=workload), ""
    except ValueError as e:  # e.g. no exact dense 8-bit counterpart: the page still shows the program
        if args.seeds:
            raise
        seeds, seeds_error = None, str(e)
    c = cost(program, workload.counters, preset)
    summary = {"program": label, "cost_preset": preset.name, "images": workload.images,
               "counters": "measured" if workload.measured else "input_ones assumed",
               "energy_uj_per_image": c.energy_uj_per_image, "latency_us_per_image": c.latency_us_per_image,
               "images_per_s": c.images_per_s, "gops": c.gops, "tops_per_w": c.tops_per_w,
               "area_mm2": c.area_total_mm2, "memory_bits": c.memory_total_bits,
               "memory_bits_by_kind": dict(c.memory_bits), "macro_utilization": c.macro_utilization}
    if args.seeds and seeds is not None:
        print(format_seeds(seeds))
        summary["seeds"] = seeds.as_dict()["rows"]
    if page is not None:
        from ..report.build import program_document
        from ..report.render import write
        doc = program_document(program, workload, preset, seeds=seeds, source=label, seeds_error=seeds_error)
        html_path, md_path = write(doc, page)
        summary.update(html=str(html_path), markdown=str(md_path))
        print(c.summary())
        print(f"wrote {html_path} (figures embedded) and {md_path}; open it in a browser, e.g. "
              f"xdg-open {html_path}  (macOS: open {html_path})")
    if args.json:
        print(json.dumps(summary))
    return 0
