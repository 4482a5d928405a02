"""``hybridcim search CONFIG --out DIR``: evolutionary search of per-layer dual-path ratios (NSGA-II).

    hybridcim search CONFIG.yaml --out runs/s [--storage URL] [--trials N] [--workers K] [--data DIR]

Trials live in ``DIR/search.journal`` (or the database at ``--storage``): rerunning the same command
continues the search, and a trial whose worker was killed is failed and evaluated again. Writes
``DIR/pareto.csv`` (the front), ``DIR/trials.csv`` (every complete trial), ``DIR/pareto.png`` and
prints a summary line. docs/dualnet.md describes the config and the evaluators.
"""
from __future__ import annotations

import os
import sys


def register(sub) -> None:
    from .options import add_data_options, int_range
    p = sub.add_parser("search", help="search per-layer dual-path ratios (NSGA-II; resumable, several workers)")
    p.add_argument("config", help="search config (YAML or JSON; docs/dualnet.md)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder: the journal file (unless --storage), pareto.csv, trials.csv, pareto.png")
    p.add_argument("--storage", default=None, metavar="URL",
                   help="database URL (postgresql://user:pw@host/db) shared by workers on several machines "
                        "(default: the journal file DIR/search.journal)")
    p.add_argument("--heartbeat", type=int_range(1, 3600), default=60, metavar="S",
                   help="with --storage: a running trial's heartbeat period in seconds; a trial silent for 3*S "
                        "seconds (its worker died) is failed and re-queued (default 60)")
    p.add_argument("--trials", type=int_range(1), default=None, metavar="N",
                   help="complete evaluations the search should hold in all (default: the config's 'trials')")
    p.add_argument("--workers", type=int_range(1, 256), default=1, metavar="K",
                   help="worker processes on this machine, this one included (default 1)")
    add_data_options(p)
    p.add_argument("--worker-only", action="store_true",
                   help="join the search as one more worker: evaluate trials until the target, write no outputs "
                        "(what --workers starts; also for extra workers started by hand)")
    p.set_defaults(func=run)


def share_cores(workers: int) -> int | None:
    """Split this machine's cores between ``workers`` worker processes: each one's thread pools (torch,
    OpenMP, BLAS) get ``cpu_count // workers`` threads, through the environment the spawned workers
    inherit and, when torch is already imported, ``torch.set_num_threads``. K workers that each start
    one thread per core oversubscribe the machine (2 workers on 2 cores measured slower than 1).
    An ``OMP_NUM_THREADS`` the user set wins. Returns the threads per worker, or None if unchanged."""
    if workers <= 1 or "OMP_NUM_THREADS" in os.environ:
        return None
    per = max(1, (os.cpu_count() or 1) // workers)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(per)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(per)
    return per


def _fmt(v: float, k: str) -> str:
    return f"{100 * v:.2f} %" if k == "accuracy" else f"{v:.4g}"


def run(args) -> int:
    from ..fileio import check_output_dir
    from ..progress import progress
    from ..search.config import load_config
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise ValueError("hybridcim search needs Optuna: pip install 'hybridcim[search]'") from None
    from ..search.evaluators import make_evaluator
    from ..search.runner import SearchError, prepare, run_worker, spawn_workers, write_outputs

    cfg = load_config(args.config)
    n_trials = args.trials if args.trials is not None else cfg.trials
    out = check_output_dir(args.out, "--out folder")
    out.mkdir(parents=True, exist_ok=True)
    children = []
    data = args.data or os.environ.get("CIFAR10_DIR")
    if not args.worker_only:
        share_cores(args.workers)
    ev = make_evaluator(cfg.evaluator, cfg.evaluator_options, data)
    study, free, lock, desc = prepare(cfg, ev, args.storage, out, salt=os.getpid() if args.worker_only else 0,
                                      heartbeat_s=args.heartbeat)
    if not args.worker_only and args.workers > 1:  # after the checks above: a bad config fails once, here
        argv = [args.config, "--out", str(out), "--trials", str(n_trials), "--workers", "1"]
        argv += ["--storage", args.storage, "--heartbeat", str(args.heartbeat)] if args.storage else []
        argv += ["--data", args.data] if args.data else []
        children = spawn_workers(argv, args.workers - 1)
    try:
        if args.worker_only:
            run_worker(cfg, study, ev, free, n_trials, lock if args.storage is None else None)
            return 0
        from ..search.runner import _counts
        done, _ = _counts(study)
        print(f"search {cfg.name!r}: {desc}; evaluator {ev.name}; {len(free)} layers x ratios {list(cfg.ratios)}; "
              f"{done} of {n_trials} trials complete; {args.workers} worker(s)", file=sys.stderr)
        with progress(n_trials, f"search {cfg.name}", unit="trial", initial=min(done, n_trials)) as bar:
            stats = run_worker(cfg, study, ev, free, n_trials, lock if args.storage is None else None, bar=bar)
    except SearchError as e:
        print(f"hybridcim search: error: {e}", file=sys.stderr)
        return 1
    finally:
        bad = []
        for c in children:
            rc = c.wait()
            if rc:
                bad.append(rc)
    if stats.recovered:
        print(f"re-queued trials {stats.recovered} of dead workers", file=sys.stderr)
    s = write_outputs(study, cfg, ev.objectives, ev.layers(), out)
    best = s["best"]
    tail = ""
    if best is not None:
        tail = f"; most accurate: trial {best['trial']}, " + ", ".join(f"{k} {_fmt(best[k], k)}" for k in ev.objectives
                                                                      if k in best)
    if getattr(ev, "notes", ""):
        print(f"note: {ev.notes}", file=sys.stderr)
    print(f"search {cfg.name}: {s['complete']} complete trials ({s['failed']} failed), {s['front']} on the Pareto front"
          f"{tail}; wrote {out / 'pareto.csv'}, {out / 'trials.csv'}"
          + (f", {s['plot']}" if s["plot"] else " (no plot: matplotlib is not installed)"))
    if bad:
        print(f"hybridcim search: error: {len(bad)} worker process(es) exited with status {bad}", file=sys.stderr)
        return 1
    return 0
