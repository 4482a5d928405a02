"""``hybridcim train CONFIG --out DIR [--resume]``: CIM-aware QAT (needs torch + brevitas)."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("train", help="train a CIM-aware quantized, pruned model from a YAML config")
    p.add_argument("config", help="YAML config (see host/hybridcim/train/configs/)")
    p.add_argument("--out", required=True, help="run folder: checkpoint.safetensors, metrics.csv, model/")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.safetensors")
    p.add_argument("--data", help="CIFAR-10 folder (overrides data.root; default $CIFAR10_DIR)")
    p.add_argument("--epochs", type=int, help="override optim.epochs")
    p.add_argument("--stop-after", type=int, metavar="N",
                   help="stop after N more epochs (the schedule is unchanged; --resume continues)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    import dataclasses
    import json

    from ..train.config import load_config
    from ..train.trainer import Trainer
    cfg = load_config(args.config)
    if args.data:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=args.data))
    if args.epochs:
        cfg = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, epochs=args.epochs)).validate()
    if args.stop_after is not None and args.stop_after < 1:
        raise ValueError(f"--stop-after {args.stop_after}: must be >= 1")
    final = Trainer(cfg, args.out, resume=args.resume, progress=not args.no_progress,
                    stop_after_epochs=args.stop_after).run()
    print(json.dumps(final))
    return 0
