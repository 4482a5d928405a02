"""``hybridcim finetune SEARCH_CONFIG --search DIR --out FT``: fine-tune the chosen candidates of a finished
``dual-supernet`` ratio search at their fixed ratios and report Kendall's τ_b between the supernet's
accuracy estimates and the fine-tuned accuracies (the same calibration images, the compiled programs).

    hybridcim finetune SEARCH.yaml --search runs/s --out runs/s-ft [--train-config FT.yaml] [--epochs N]
                       [--candidates pareto|all] [--top K] [--data DIR]

Each candidate trains in ``FT/trial-NNNN/`` and resumes there: rerun the same command after a kill.
Writes ``FT/finetune.csv`` and ``FT/kendall.json``; docs/dualnet.md describes the step.
"""
from __future__ import annotations

import os


def register(sub) -> None:
    from .options import add_data_options, positive_int
    p = sub.add_parser("finetune", help="fine-tune a dual-path ratio search's candidates and rank-correlate them "
                                        "with the supernet's estimates (Kendall tau)")
    p.add_argument("config", help="the search config (evaluator dual-supernet; docs/dualnet.md)")
    p.add_argument("--search", required=True, metavar="DIR", help="the finished search's --out folder (pareto.csv, "
                                                                  "trials.csv)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder: one run folder per candidate (trial-NNNN/), finetune.csv, kendall.json")
    p.add_argument("--train-config", default=None, metavar="YAML",
                   help="training config of the fine-tune (schedule, distillation, data); its dual ratios and "
                        "init_from are set per candidate (default: the supernet's own config)")
    p.add_argument("--epochs", type=positive_int, default=None, metavar="N", help="override optim.epochs")
    p.add_argument("--candidates", choices=["pareto", "all"], default="pareto",
                   help="the search's Pareto front (default) or every complete trial")
    p.add_argument("--top", type=positive_int, default=None, metavar="K",
                   help="only the K candidates the supernet estimates most accurate (default: all chosen)")
    add_data_options(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar while training")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..fileio import check_input, check_output_dir
    check_input(args.config, "search config", "file")
    check_input(args.search, "--search", "dir")
    check_output_dir(args.out, "--out")
    if args.train_config is not None:
        check_input(args.train_config, "--train-config", "file")
    from ..search.finetune import finetune_candidates
    data = args.data or os.environ.get("CIFAR10_DIR")
    s = finetune_candidates(args.config, args.search, args.out, args.train_config, args.epochs, args.candidates,
                            args.top, data, progress=not args.no_progress)
    tau = "undefined (fewer than two candidates, or constant accuracies)" if s["tau_b"] is None else f"{s['tau_b']:.3f}"
    print(f"fine-tuned {s['n']} candidate(s) of {args.search} from supernet epoch {s['supernet_epoch']}; Kendall tau_b "
          f"of supernet vs fine-tuned accuracy on {s['images']} calibration images: {tau} ({s['implementation']}); "
          f"wrote {os.path.join(args.out, 'finetune.csv')}, {os.path.join(args.out, 'kendall.json')}")
    return 0
