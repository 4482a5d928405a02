"""Ratio-search throughput: candidate evaluations per hour with 1 and 2 worker processes on one machine.

Two evaluators: by default 'dual-ternarized' (a dual-path program ternarized from the shipped
ResNet-8, run by the reference emulator on the first ``--images`` calibration images, then costed);
with ``--supernet RUN`` DualNet's own 'dual-supernet' at the real search's settings (a trained
dual-path ResNet-20 supernet: BN recalibration on ``--bn-images`` calibration images, compile, the
fast emulator on ``--images`` of them, then costed; the checkpoint is copied first, so a run that is
still training can be measured).

Each worker count runs ``hybridcim search`` on a fresh journal for ``--trials`` trials. The rate is
complete trials / (last completion − first start), from the trials' own timestamps, so the evaluator's
start-up (reading the model, one traced run, ~10 s per worker) is excluded; the wall time of the whole
command is printed too. Last line: ``evals_per_hour_1=<x> evals_per_hour_2=<y>``.

    CIFAR10_DIR=/path python bench/search_throughput.py [--trials 8] [--images 16] [--model resnet8-w4a4-p50-quick]
    CIFAR10_DIR=/path python bench/search_throughput.py --supernet runs/dual-supernet [--images 1000] [--bn-images 512]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path


def run(workers: int, args, tmp: Path) -> tuple[float, float, int]:
    """(evals per hour, wall seconds, complete trials) of one search with ``workers`` workers."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    if args.supernet:
        evaluator = {"kind": "dual-supernet", "options": {"run": str(tmp / "supernet"), "images": args.images,
                                                          "bn_images": args.bn_images, "bn_batch": 128}}
    else:
        evaluator = {"kind": "dual-ternarized", "options": {"model": args.model, "images": args.images}}
    cfg = {"name": f"bench{workers}", "evaluator": evaluator,
           "space": {"ratios": [0, 2, 4, 6, 8]}, "sampler": {"population_size": 8, "seed": workers},
           "trials": args.trials}
    path = tmp / f"bench{workers}.json"
    path.write_text(json.dumps(cfg))
    out = tmp / f"out{workers}"
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "hybridcim.cli.main", "search", str(path), "--out", str(out),
                        "--workers", str(workers)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode:
        sys.exit(f"hybridcim search failed ({r.returncode}): {r.stderr[-2000:]}")
    wall = time.perf_counter() - t0
    st = JournalStorage(JournalFileBackend(str(out / "search.journal")))
    done = [t for t in optuna.load_study(study_name=cfg["name"], storage=st).trials if t.state.name == "COMPLETE"]
    span = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
    return len(done) / span * 3600.0, wall, len(done)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=8, help="complete trials per run (default 8)")
    ap.add_argument("--images", type=int, default=None,
                    help="calibration images per evaluation (default 16; 1000 with --supernet)")
    ap.add_argument("--model", default="resnet8-w4a4-p50-quick", help="shipped model the candidates come from")
    ap.add_argument("--supernet", default=None, metavar="RUN",
                    help="a dual-path supernet run folder (or its checkpoint.safetensors): time 'dual-supernet'")
    ap.add_argument("--bn-images", type=int, default=512,
                    help="with --supernet: BN recalibration images per evaluation (default 512)")
    args = ap.parse_args()
    if args.images is None:
        args.images = 1000 if args.supernet else 16
    if not os.environ.get("CIFAR10_DIR"):
        sys.exit("set CIFAR10_DIR to the CIFAR-10 folder")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python "
          f"{platform.python_version()}; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rates = {}
    with tempfile.TemporaryDirectory() as d:
        if args.supernet:
            src = Path(args.supernet)
            src = src / "checkpoint.safetensors" if src.is_dir() else src
            (Path(d) / "supernet").mkdir()
            shutil.copyfile(src, Path(d) / "supernet" / "checkpoint.safetensors")
            print(f"evaluator: dual-supernet on a copy of {src}, {args.images} images, {args.bn_images} BN images")
        else:
            print(f"evaluator: dual-ternarized on {args.model}, {args.images} images")
        for k in (1, 2):
            rate, wall, n = run(k, args, Path(d))
            rates[k] = rate
            print(f"workers={k}: {n} evaluations, {rate:,.0f} evals/hour ({3600 / rate:.1f} s each), whole command "
                  f"{wall:.0f} s; load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"evals_per_hour_1={rates[1]:.0f} evals_per_hour_2={rates[2]:.0f}")


if __name__ == "__main__":
    main()
