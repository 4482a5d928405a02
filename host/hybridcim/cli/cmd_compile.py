"""``hybridcim compile MODEL -o MODEL.cim``: integer model (or checkpoint) -> CIM program image + report.

MODEL is an exported model folder (``integer_model.json``), a run folder (its ``model/``),
or a ``checkpoint.safetensors`` (exported on the fly; needs torch).
"""
from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("compile", help="compile a trained model into a CIM program image")
    p.add_argument("model", help="integer model folder / run folder / checkpoint.safetensors")
    p.add_argument("-o", "--output", required=True, help="program image to write (MODEL.cim + MODEL.cim.json)")
    from ..spec.hardware import PRESETS
    p.add_argument("--preset", choices=sorted(PRESETS),
                   help="hardware preset to compile for (see hybridcim info; default: the one the model was trained for)")
    p.add_argument("--packing", choices=("paired", "naive"), default="paired",
                   help="column-group packing: paired (filters of complementary precision share a group, "
                        "default) or naive (one filter per group, for comparison)")
    p.add_argument("--report-json", help="also write the per-layer report as JSON here")
    p.add_argument("--plot", metavar="PNG", help="also draw the per-layer report (needs matplotlib)")
    p.set_defaults(func=run)


def run(args) -> int:
    import tempfile

    from ..compiler import compile_model, format_report, layer_report, load_integer_model, weight_sparsity
    from ..emulator.counters import static_counters
    from ..fileio import atomic_write_text, check_input, check_output
    from ..program import write_program
    from .cmd_info import layer_table
    # every path checked before any work: nothing is half written on a refusal
    src = check_input(args.model, "model", "any")
    from .cmd_info import card_name
    name = card_name(src if src.is_dir() else src.parent)  # a shipped model folder: its name
    check_output(args.output, "--output", make_parents=False)
    check_output(Path(args.output).with_name(Path(args.output).name + ".json"), "--output's manifest",
                 make_parents=False)
    if args.report_json:
        check_output(args.report_json, "--report-json", make_parents=False)
    if args.plot:
        from ._plot import check_plot_output
        check_plot_output(args.plot, "--plot")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = src if src.suffix == ".safetensors" else None
        if ckpt is None and src.is_dir() and not (src / "integer_model.json").exists() \
                and not (src / "model" / "integer_model.json").exists() and (src / "checkpoint.safetensors").exists():
            ckpt = src / "checkpoint.safetensors"
        if ckpt is not None:
            from ..train.export import export_checkpoint
            export_checkpoint(ckpt, tmp, qonnx=False)
            src = Path(tmp)
        im = load_integer_model(src)
    prog = compile_model(im, args.preset, args.packing)
    naive = compile_model(im, args.preset, "naive")
    write_program(prog, args.output)
    rows = layer_report(prog, naive)
    sp = weight_sparsity(im)
    print(layer_table(prog, [static_counters(l, prog, 1) for l in prog.layers]))
    print(format_report(rows, sp))
    if args.report_json:
        atomic_write_text(args.report_json, json.dumps({"layers": rows, "weight_sparsity": sp}, indent=1) + "\n",
                          "--report-json")
    if args.plot:
        from ._plot import write_layer_plot
        write_layer_plot(rows, args.plot, name or prog.name)
    print(f"wrote {args.output}")
    return 0
