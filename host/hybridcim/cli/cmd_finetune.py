"""``hybridcim finetune SEARCH_CONFIG --search DIR --out FT``: fine-tune the chosen candidates of a finished
``dual-supernet`` ratio search at their fixed ratios and report Kendall's τ_b between the supernet's
accuracy estimates and the fine-tuned accuracies (the same calibration images, the compiled programs).

    hybridcim finetune SEARCH.yaml --search runs/s --out runs/s-ft [--train-config FT.yaml] [--epochs N]
                       [--candidates pareto|all] [--top K] [--spread] [--within PP] [--trials N ...] [--data DIR]
                       [--choose-against PROGRAM [--max-loss-pp 1.0] [--minimize energy_uj]]

Each candidate trains in ``FT/trial-NNNN/`` and resumes there: rerun the same command after a kill.
Writes ``FT/finetune.csv`` and ``FT/kendall.json``; with ``--choose-against`` also ``FT/chosen.json`` (the
candidate to ship: the cheapest within ``--max-loss-pp`` of that program's accuracy on the same
calibration images) and ``FT/finetune.png``. docs/dualnet.md describes the step.
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
    p.add_argument("--spread", action="store_true",
                   help="with --top K: K candidates at evenly spaced ranks of supernet accuracy (the most and the "
                        "least accurate included) instead of the K most accurate")
    p.add_argument("--within", type=float, default=None, metavar="PP",
                   help="only candidates the supernet rates within PP percentage points of its most accurate one")
    p.add_argument("--trials", type=int, nargs="+", default=None, metavar="N",
                   help="exactly these trial numbers of the search (instead of --top/--spread/--within)")
    p.add_argument("--choose-against", default=None, metavar="PROGRAM",
                   help="a baseline program (.cim, shipped model name or folder) measured on the same calibration "
                        "images: choose the candidate to ship (FT/chosen.json, FT/finetune.png)")
    p.add_argument("--max-loss-pp", type=float, default=1.0, metavar="PP",
                   help="with --choose-against: the most accuracy a chosen candidate may lose against it, in "
                        "percentage points (default 1.0)")
    p.add_argument("--minimize", choices=["energy_uj", "memory_kib", "latency_us"], default="energy_uj",
                   help="with --choose-against: the cost the chosen candidate has least of (default energy_uj)")
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
                            args.top, data, progress=not args.no_progress, spread=args.spread,
                            within_pp=args.within, trials=args.trials,
                            choose_against=args.choose_against, max_loss_pp=args.max_loss_pp, minimize=args.minimize)
    tau = "undefined (fewer than two candidates, or constant accuracies)" if s["tau_b"] is None else f"{s['tau_b']:.3f}"
    print(f"fine-tuned {s['n']} candidate(s) of {args.search} from supernet epoch {s['supernet_epoch']}; Kendall tau_b "
          f"of supernet vs fine-tuned accuracy on {s['images']} calibration images: {tau} ({s['implementation']}); "
          f"wrote {os.path.join(args.out, 'finetune.csv')}, {os.path.join(args.out, 'kendall.json')}")
    if args.choose_against is not None:
        b, c = s["baseline"], s["chosen"]
        head = (f"baseline {args.choose_against}: {100 * b['accuracy']:.2f} % on the same images; ")
        if c is None:
            print(head + f"no candidate within {args.max_loss_pp:g} pp of it; wrote {os.path.join(args.out, 'chosen.json')}")
        else:
            f = c["finetuned"]
            print(head + f"chosen: trial {c['trial']} ({100 * f['accuracy']:.2f} %, energy {f['energy_uj']:.4g} µJ, "
                  f"memory {f['memory_kib']:.4g} KiB, latency {f['latency_us']:.4g} µs) in {c['run']}; "
                  f"wrote {os.path.join(args.out, 'chosen.json')}")
    return 0
