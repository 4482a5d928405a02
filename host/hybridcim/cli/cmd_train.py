"""``hybridcim train CONFIG --out DIR [--resume] [--stop-after N] [--time-limit DURATION]``: CIM-aware QAT (needs torch + brevitas)."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("train", help="train a CIM-aware quantized, pruned model from a YAML config")
    p.add_argument("config", help="YAML config (see host/hybridcim/train/configs/)")
    p.add_argument("--out", required=True, help="run folder: checkpoint.safetensors, metrics.csv, model/")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.safetensors")
    p.add_argument("--data", help="CIFAR-10 folder (overrides data.root; default $CIFAR10_DIR)")
    from .options import positive_int
    p.add_argument("--epochs", type=positive_int, metavar="N", help="override optim.epochs (N >= 1)")
    p.add_argument("--stop-after", type=positive_int, metavar="N",
                   help="stop after N more epochs (the schedule is unchanged; --resume continues)")
    p.add_argument("--time-limit", metavar="DURATION",
                   help="stop after the last epoch expected to end within DURATION of the start "
                        "(3600, 90m, 2h, 1h30m; e.g. a batch job's wall time; at least one epoch runs; "
                        "--resume continues)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    import dataclasses
    import json

    from ..fileio import check_input, check_output_dir
    check_input(args.config, "config", "file")  # paths first: no torch import for a bad one
    check_output_dir(args.out, "--out")
    if args.data:
        check_input(args.data, "--data", "dir")
    from ..train.config import load_config
    from ..train.trainer import Trainer, parse_duration
    cfg = load_config(args.config)
    if args.data:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=args.data))
    if args.epochs:
        cfg = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, epochs=args.epochs)).validate()
    limit = parse_duration(args.time_limit) if args.time_limit is not None else None
    final = Trainer(cfg, args.out, resume=args.resume, progress=not args.no_progress,
                    stop_after_epochs=args.stop_after, time_limit_s=limit).run()
    print(json.dumps(final))
    return 0
