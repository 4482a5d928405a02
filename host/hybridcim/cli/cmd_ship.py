"""``hybridcim ship RUN --name NAME --config CONFIG --data DIR``: a finished run becomes a shipped model.

Compiles the run's exported integer model, measures its accuracy through the emulator on the
whole CIFAR-10 test set, and writes ``models/<NAME>/`` (program, integer model, QONNX,
config, metrics, card.json), built beside and swapped in for a folder of that name (its
training/ state included). ``--curve PNG`` also plots the training curve (needs matplotlib).
A model trained in stages (a fine-tune with ``init_from``) names its earlier stages with
``--earlier-stage CONFIG METRICS`` (repeatable, oldest first): one history over all epochs,
every config shipped; ``--keep-training FILE`` keeps a recipe input (a stage's starting
checkpoint, a teacher) in the model's ``training/`` folder. ``--verify`` first checks, on
the whole test set, emulator == Brevitas and csim == emulator (logits and counters), records
it in the card and ships nothing on a disagreement (needs torch, brevitas, g++);
``--verify-qonnx`` also runs the exported ``model.onnx`` through ``qonnx.execute_onnx`` on every
test image (one image per call: about 30 minutes for a ResNet-20). Numpy only otherwise.
"""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("ship", help="ship a finished training run as a package model (compile, measure, card)")
    p.add_argument("run_dir", help="training run folder (holds model/integer_model.json and metrics.csv)")
    p.add_argument("--name", required=True, help="model name, e.g. resnet20-w4a4-p50")
    p.add_argument("--config", required=True, help="the run's training config (copied as config.yaml)")
    p.add_argument("--data", help="CIFAR-10 folder (default $CIFAR10_DIR)")
    p.add_argument("--models-dir", help="where model folders live (default: the package's models/)")
    p.add_argument("--curve", metavar="PNG", help="also plot the training curve to this PNG (needs matplotlib)")
    p.add_argument("--earlier-stage", nargs=2, action="append", metavar=("CONFIG", "METRICS"), default=[],
                   help="a stage this run fine-tuned from (init_from), oldest first: its config and metrics.csv "
                        "(shipped as config-stage<i>.yaml; the metrics become one history)")
    p.add_argument("--keep-training", action="append", metavar="FILE", default=[],
                   help="copy FILE into the model's training/ folder (a recipe input such as a stage's starting "
                        "checkpoint or a distillation teacher; repeatable; not installed as package data)")
    p.add_argument("--verify", action="store_true",
                   help="check emulator == Brevitas and csim == emulator on the whole test set first")
    p.add_argument("--verify-qonnx", action="store_true",
                   help="--verify, and emulator == QONNX (execute_onnx on model.onnx) on the whole test set too (slow)")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    import os

    from ..models import MODELS_DIR
    from ..models.packaging import ship
    from ..plots import plot_training_curve
    from pathlib import Path
    from ..fileio import check_input, check_output_dir
    data = args.data or os.environ.get("CIFAR10_DIR")
    if not data:
        raise ValueError("no CIFAR-10 folder: pass --data DIR or set CIFAR10_DIR")
    # every path checked before any work (nothing is compiled or measured for a bad one)
    check_input(args.run_dir, "run folder", "dir")
    check_input(args.config, "--config", "file")
    check_input(data, "--data" if args.data else "$CIFAR10_DIR", "dir")
    if args.models_dir:
        check_output_dir(args.models_dir, "--models-dir")
    for config, metrics in args.earlier_stage:
        check_input(config, "--earlier-stage CONFIG", "file")
        check_input(metrics, "--earlier-stage METRICS", "file")
    for f in args.keep_training:
        check_input(f, "--keep-training", "file")
    if args.curve:  # check before shipping, not after
        from ._plot import check_plot_output
        check_plot_output(args.curve, "--curve")
        check_input(Path(args.run_dir) / "metrics.csv", "--curve: the run's metrics", "file")
    dest = ship(args.run_dir, args.name, args.config, data, models_dir=args.models_dir or MODELS_DIR,
                verify=args.verify, verify_qonnx=args.verify_qonnx, show_progress=True, earlier_stages=args.earlier_stage,
                keep_training=args.keep_training)
    card = json.loads((dest / "card.json").read_text())
    if args.curve:
        plot_training_curve(dest / "metrics.csv", args.curve, title=args.name)
    acc = card["cifar10_test"]
    print(f"shipped {args.name} to {dest}: {acc['accuracy']:.2%} on {acc['images']} CIFAR-10 test images "
          f"(emulator), {card['avg_bits']:.2f} avg weight bits, {card['structural_sparsity']:.1%} pruned"
          + (f", {card['ternary_fraction']:.1%} of the weights ternary" if card.get("ternary_fraction") else ""))
    for check, r in card.get("verified", {}).items():
        print(f"  verified {check.replace('_', ' ')}: {r['agree']}/{r['images']} images agree")
    return 0
