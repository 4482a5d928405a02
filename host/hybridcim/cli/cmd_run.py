"""``hybridcim run``: run a model on CIFAR-10 on a backend, checked against a reference.

    hybridcim run --backend emulator|csim|pynq [--model NAME_OR_PATH|zoo:NAME] --data DIR [--limit N]
                  [--batch-size B] [--reference emulator|brevitas|qonnx|none] [--cost-preset P] [--json]

Reports accuracy, agreement (images whose logits equal the reference's exactly) and images/s;
on a disagreement, the first differing layer. The default reference is the fast emulator for
csim and pynq, and the Brevitas model (needs torch + brevitas) for the emulator backend.
``--reference qonnx`` runs the exported ``model.onnx`` beside the program through
``qonnx.execute_onnx`` (32 images per call through a batched copy of the graph; a check of the
export, not a benchmark).
``--model zoo:NAME`` runs a random-weight zoo network (a board or kernel smoke test: its
accuracy is chance, its agreement is what counts); its reference is the emulator.
A hybrid program (architecture.md §9) has no Brevitas or QONNX reference (neither models the
ADC): its reference is the emulator. csim and pynq are checked against the fast emulator; the
emulator backend (the fast emulator) against the reference emulator, which runs the literal
per-pair datapath (slow: without --limit only the first 8 images are checked, and the output
says so). The output names the reference used, the mode and the boundary histogram (decisions
per level, from the device's counters). ``--offset N`` starts at test image N; every executor
is given the global image index (the analog noise key), so a slice gives the whole run's bits.
Exit status 1 when some image disagrees; with --json the last stdout line is one JSON object.
The JSON object also gives energy_uj_per_image and latency_us_per_image (the CIM chip's, from the
device's activity counters under --cost-preset, default dcim-28nm; null where the device reports none).
With --backend csim it also gives est_board_images_per_s and kernel_cycles (per layer): the FPGA
kernel cycle model's estimate of the overlay on --board (pynq-z2 or kv260) at --pl-mhz (default
100), from the loop counts of the last kernel call; an estimate, not checked by csynth.
"""
from __future__ import annotations

import json
import os
import sys


def register(sub) -> None:
    p = sub.add_parser("run", help="run a model on CIFAR-10 on a backend and check it against a reference")
    from .options import add_batch_options, add_data_options, add_offset_option
    p.add_argument("--backend", choices=("emulator", "csim", "pynq"), default="emulator",
                   help="where the program runs: emulator (the fast bit-exact emulator, default), csim (the HLS "
                        "kernel compiled for this CPU; needs g++) or pynq (the FPGA overlay; on the board)")
    p.add_argument("--model", default=None, help="shipped model name, model folder, .cim path, or zoo:NAME "
                                                 "(default: the best shipped model)")
    add_data_options(p)
    add_batch_options(p, 256)
    add_offset_option(p, "test images")
    p.add_argument("--reference", choices=("emulator", "reference-emulator", "brevitas", "qonnx", "none"),
                   default=None,
                   help="reference executor: emulator (the fast one), reference-emulator (the literal, slow one), "
                        "brevitas, qonnx or none (default: brevitas for --backend emulator, else emulator; for a "
                        "hybrid program, which has no Brevitas model: reference-emulator for --backend emulator)")
    p.add_argument("--board", default="pynq-z2",
                   help="--backend pynq: a board name, looked up as <board>/ in $HYBRIDCIM_BITSTREAMS, the "
                        "checkout's bitstreams/, then the installed package's bitstreams/; or a folder holding "
                        "manifest.json, the .bit and the .hwh (a path with a '/', e.g. ./my-board); "
                        "--backend csim: the board of the FPGA kernel cycle model (pynq-z2 or kv260) whose "
                        "est_board_images_per_s is reported (an estimate, not checked by csynth)")
    p.add_argument("--pl-mhz", type=_pl_mhz, default=None, metavar="MHZ",
                   help="--backend csim: PL clock of the kernel cycle model in MHz (default: the board's, 100)")
    p.add_argument("--cost-preset", default=None, metavar="P",
                   help="cost preset (name or .json) of energy_uj_per_image and latency_us_per_image (default: "
                        "dcim-28nm; dcim-65nm for a hybrid program, whose analog path it prices)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON line")
    p.set_defaults(func=run)


def _pl_mhz(text: str) -> float:
    import argparse
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not 0 < v < 10_000:
        raise argparse.ArgumentTypeError(f"must be a clock in MHz, 0 < MHZ < 10000, got {text!r}")
    return v


def _reference(kind: str, program, model_path):
    if kind == "none":
        return None
    if kind == "emulator":
        from ..runtime.emulator_device import EmulatorDevice
        dev = EmulatorDevice()
        dev.load(program)
        return dev
    if kind == "reference-emulator":
        from ._runs import ReferenceEmulatorDevice
        dev = ReferenceEmulatorDevice()
        dev.load(program)
        return dev
    if kind == "qonnx":
        return _qonnx_reference(program, model_path)
    try:
        from ..train.reference import load_brevitas_reference
    except ImportError as e:
        raise ReferenceUnavailable(
            f"the brevitas reference needs torch and brevitas ({e}); install them (pip install -e '.[train]'), "
            "or pass --reference emulator or --reference none") from None
    model_dir = model_path.parent
    try:
        return load_brevitas_reference(model_dir)
    except FileNotFoundError as e:
        raise ReferenceUnavailable(f"no exported Brevitas model beside {model_path} ({e}); "
                                   "pass --reference emulator or --reference none") from None


def _qonnx_reference(program, model_path):
    onnx_path = model_path.parent / "model.onnx"
    if not onnx_path.is_file():
        raise ReferenceUnavailable(f"no exported QONNX model beside {model_path} (want {onnx_path}); "
                                   "export it with hybridcim export, or pass another --reference")
    try:
        from ..train.qonnx_export import QonnxReference
    except ImportError as e:
        raise ReferenceUnavailable(f"the qonnx reference needs torch and qonnx ({e}); install them "
                                   "(pip install -e '.[train]'), or pass another --reference") from None
    if "logit_exponent" not in program.metadata:
        raise ReferenceUnavailable(f"{model_path} records no logit_exponent (not compiled from a trained model)")
    return QonnxReference(onnx_path, program.metadata["logit_exponent"])


REFERENCE_WHY = {
    "reference-emulator": "the reference emulator (literal per-pair datapath of architecture.md §9; a hybrid "
                          "program has no Brevitas model: Brevitas has no ADC)",
    "emulator": "the fast emulator (a hybrid program has no Brevitas model: Brevitas has no ADC)",
    "none": "none (nothing compared)",
}
"""How the text output of a hybrid program's run names its reference."""


class ReferenceUnavailable(ValueError):
    """The requested reference executor cannot be built here."""


def run(args) -> int:
    from ..models import default_model, resolve_model
    from ..program import read_program
    from ..runtime import open_device
    from ..runtime.session import Session
    from ..cost import load_cost_preset
    if args.cost_preset is not None:
        load_cost_preset(args.cost_preset)  # a bad preset fails before any work
    from ..runtime import kernel_cycles
    if args.backend == "csim" and args.board not in kernel_cycles.BOARDS:
        print(f"hybridcim run: error: --board {args.board!r}: the kernel cycle model knows "
              f"{', '.join(kernel_cycles.BOARDS)}", file=sys.stderr)
        return 2
    from ..fileio import check_input
    if args.data is not None:
        check_input(args.data, "--data", "dir")
    model = args.model or default_model()
    if str(model).startswith("zoo:"):  # random weights: no Brevitas model exists for it
        from ..zoo import load_program
        try:
            program, path = load_program(str(model)), None
        except ValueError as e:
            print(f"hybridcim run: error: {e}", file=sys.stderr)
            return 2
        if args.reference in ("brevitas", "qonnx"):
            what = {"brevitas": "Brevitas", "qonnx": "QONNX"}[args.reference]
            print(f"hybridcim run: error: {model} has no {what} model (random weights); "
                  "use --reference emulator or --reference none", file=sys.stderr)
            return 2
        kind = args.reference or "emulator"
    else:
        if os.path.lexists(model):  # a path (not a shipped model's name): a file or a model folder
            check_input(model, "--model", "any")
        path = resolve_model(model)
        program = read_program(path)
        kind = args.reference or ("brevitas" if args.backend == "emulator" else "emulator")
    from ._hybrid import cost_preset_for, histogram_text, hybrid_summary, program_mode
    from ._runs import REFERENCE_DEFAULT_LIMIT, cifar10_slice, index_runs
    cost_preset = cost_preset_for(program, args.cost_preset)
    hybrid = program_mode(program) == "hybrid"
    if hybrid and kind in ("brevitas", "qonnx"):
        if args.reference is not None:
            what = {"brevitas": "Brevitas", "qonnx": "QONNX"}[kind]
            print(f"hybridcim run: error: {model} is a hybrid program: {what} has no ADC, so it is no reference; "
                  "use --reference reference-emulator (the fast emulator checked against the literal one), "
                  "--reference emulator (for --backend csim or pynq) or --reference none", file=sys.stderr)
            return 2
        kind = "reference-emulator"
    limit = args.limit
    if kind == "reference-emulator" and limit is None:
        limit = REFERENCE_DEFAULT_LIMIT
        print(f"hybridcim run: the reference emulator runs the literal per-pair datapath (slow): checking "
              f"test images {args.offset}..{args.offset + limit - 1} only; --limit N checks N", file=sys.stderr)
    reference = _reference(kind, program, path)
    from ..runtime.errors import DeviceError
    kw = {"board": args.board} if args.backend == "pynq" else {}
    try:
        with open_device(args.backend, program.preset, **kw) as dev:
            dev.load(program)
            session = Session(dev, reference, kind, model=str(model), show_progress=True)
            index_runs(dev, args.offset)  # every call gets the global index of its first image
            if reference is not None:
                index_runs(reference, args.offset)
            batches, total = cifar10_slice(args.data, args.offset, limit, args.batch_size)
            rep = session.run(batches, total)
            from ..report.workload import cost_fields
            counted = dev.counters if dev.reports_counters else None
            costed = cost_fields(program, counted, cost_preset)
            board_est = (kernel_cycles.estimate_device(dev, args.board, args.pl_mhz)
                         if args.backend == "csim" and hasattr(dev, "kernel_profile") else None)
    except DeviceError as e:  # no board, no compiler, a kernel refusal: one line, no traceback
        print(f"hybridcim run: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({**rep.as_dict(), "offset": args.offset, **hybrid_summary(program, counted), **costed,
                          **kernel_cycles.json_fields(board_est)}))
    else:
        print(rep.summary())
        if hybrid:
            print(f"reference: {REFERENCE_WHY.get(kind, kind)}")
        print(histogram_text(program, counted))
        if board_est is not None:
            print(board_est.summary())
    return 0 if rep.ok else 1
