"""Accuracy of the shipped W4A4 ResNet-20 in hybrid mode with analog noise (architecture.md §9.6):
an operating point with analog reads, the noise-free run and 5 noise seeds per noise strength.

Operating point: ``uniform-analog-D4`` of ``bench/hybrid_pareto.py``: one static level (D, E) =
(4, 15) on every conv/fc layer but the first: the pairs of depth < 4 digital, every deeper pair
analog (W4A4: 6 of the 16 pairs of a 4-bit filter), saliency 2 planes (unused by a static table).
Noise: ``--noise pairs,shift`` (repeatable), σ = √(pairs/2) · 2^shift / 16 counts (§9.6).

    CIFAR10_DIR=/work/shared/cifar10 .venv/bin/python bench/hybrid_noise.py --work /tmp/hybrid-noise \\
        [--images 10000] [--batch 100] [--seeds 5] [--noise 32,2 --noise 32,3] [--out docs/hybrid-noise.json]

Unattended and resumable: the predicted class of every image of every finished batch of every run
is stored in ``--work``/state.json (atomic writes) and skipped on a rerun; batches run in test-set
order with every run of a batch together, so a stopped study covers the same first N images in
every run. ``--out`` gets the summary of the images every run has (also with ``--report``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

MODEL = "host/hybridcim/models/resnet20-w4a4-p50/model.cim"
LEVEL = (4, 15)  # (D, E): uniform analog boundary below depth 4
SAL_PLANES = 2


def sigma_counts(pairs: int, shift: int) -> float:
    """σ of the §9.6 noise in counts: √(pairs/2) · 2^shift / 16."""
    return float(np.sqrt(pairs / 2) * (1 << shift) / 16)


def study_program(program, pairs: int = 0, shift: int = 0, seed: int = 0):
    """``program`` with (D, E) = LEVEL on every conv/fc layer but the first, noise (pairs, shift, seed)."""
    from hybridcim.calibrate import hybrid_program
    first = next(l.name for l in program.layers if l.op.is_cim)
    assign = {l.name: ((), (LEVEL[0],), (LEVEL[1],)) for l in program.layers if l.op.is_cim and l.name != first}
    return hybrid_program(program, assign, SAL_PLANES, (pairs, shift, seed))


def run_names(noises, seeds: int) -> list[tuple[str, int, int, int]]:
    """(name, pairs, shift, seed) of every run: the noise-free one first."""
    out = [("clean", 0, 0, 0)]
    for pairs, shift in noises:
        out += [(f"noise-{pairs}-{shift}-seed{s}", pairs, shift, s) for s in range(seeds)]
    return out


def load_state(path: Path, config: dict) -> dict:
    if path.exists():
        st = json.loads(path.read_text())
        if st.get("config") != config:
            raise SystemExit(f"{path}: made with another configuration ({st.get('config')}); use another --work")
        return st
    return {"config": config, "runs": {}, "reads": {}}


def summary(st: dict, runs, labels: np.ndarray, batch: int, meta: dict) -> dict:
    """Accuracy of every run over the first N images every run has; per noise strength the seeds'
    mean, std (ddof 1), min and max, and the share of images whose class differs from the clean run."""
    done = [len(st["runs"].get(name, {})) for name, *_ in runs]
    nb = 0
    while all(str(nb) in st["runs"].get(name, {}) for name, *_ in runs):
        nb += 1
    pred = {name: np.concatenate([st["runs"][name][str(b)] for b in range(nb)]).astype(np.int64) if nb else
            np.zeros(0, np.int64) for name, *_ in runs}
    n = len(pred["clean"])
    y = labels[:n]
    out = dict(meta)
    out.update({"images": n, "batches_done": done, "clean": {"accuracy": float((pred["clean"] == y).mean()) if n else None},
                "noise": []})
    for pairs, shift in st["config"]["noise"]:
        names = [name for name, p, s, _ in runs if name != "clean" and (p, s) == (pairs, shift)]
        acc = np.array([(pred[k] == y).mean() for k in names]) if n else np.zeros(0)
        flips = np.array([(pred[k] != pred["clean"]).mean() for k in names]) if n else np.zeros(0)
        out["noise"].append({
            "noise_pairs": pairs, "noise_shift": shift, "sigma_counts": sigma_counts(pairs, shift),
            "sigma_adc_lsb": sigma_counts(pairs, shift) / meta["adc_step_counts"],
            "seeds": {k: float(a) for k, a in zip(names, acc)},
            "mean": float(acc.mean()) if n else None, "std": float(acc.std(ddof=1)) if n and len(acc) > 1 else None,
            "min": float(acc.min()) if n else None, "max": float(acc.max()) if n else None,
            "changed_vs_clean_mean": float(flips.mean()) if n else None})
    reads = st.get("reads", {})
    tot = np.sum(list(reads.values()), axis=0) if reads else np.zeros(3)
    out["column_reads"] = {"digital": float(tot[0] / max(tot.sum(), 1)), "analog": float(tot[1] / max(tot.sum(), 1)),
                           "skipped": float(tot[2] / max(tot.sum(), 1)),
                           "analog_by_layer": {k: float(v[1] / max(sum(v), 1)) for k, v in reads.items()}}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", required=True, help="folder of the resumable state (state.json)")
    ap.add_argument("--model", default=MODEL)
    ap.add_argument("--images", type=int, default=10000, help="first test images (10,000 = all)")
    ap.add_argument("--batch", type=int, default=100, help="images per stored batch")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--noise", action="append", default=None, help="pairs,shift (repeatable; default 32,2)")
    ap.add_argument("--backend", default="auto", help="fast emulator backend: auto, numpy or torch")
    ap.add_argument("--out", default="docs/hybrid-noise.json")
    ap.add_argument("--report", action="store_true", help="only write --out from the stored batches")
    args = ap.parse_args(argv)
    from tqdm import tqdm

    from hybridcim.cim.hybrid import adc_shift
    from hybridcim.data import Cifar10
    from hybridcim.emulator import FastEmulator
    from hybridcim.fileio import atomic_write_text
    from hybridcim.program import read_program

    noises = [tuple(int(v) for v in s.split(",")) for s in (args.noise or ["32,2"])]
    for pairs, shift in noises:
        if not (1 <= pairs <= 64 and 0 <= shift <= 8):
            raise SystemExit(f"--noise {pairs},{shift}: noise_pairs must be 1…64 and noise_shift 0…8 (§9.5)")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    state_path = work / "state.json"
    config = {"model": args.model, "level": list(LEVEL), "sal_planes": SAL_PLANES, "batch": args.batch,
              "noise": [list(v) for v in noises], "seeds": args.seeds}
    st = load_state(state_path, config)
    program = read_program(args.model)
    test = Cifar10(split="test")
    n = min(args.images, len(test))
    runs = run_names(noises, args.seeds)
    pr = program.preset
    meta = {"model": args.model, "operating_point": "uniform-analog-D4: (D, E) = (4, 15) on every conv/fc layer "
            "but the first", "preset": pr.name, "rows_active": pr.rows_active, "adc_bits": pr.adc_bits,
            "adc_step_counts": 1 << adc_shift(pr.rows_active, pr.adc_bits)}
    _, labels = test.read(0, len(test))

    def save():
        atomic_write_text(state_path, json.dumps(st))

    def report():
        res = summary(st, runs, labels, args.batch, meta)
        res.update({"date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
                    "machine": f"{platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cpus",
                    "command": "bench/hybrid_noise.py " + " ".join(argv if argv is not None else sys.argv[1:])})
        atomic_write_text(args.out, json.dumps(res, indent=1) + "\n")
        return res

    if not args.report:
        emus = {}
        todo = [(b, name) for b in range(0, -(-n // args.batch)) for name, *_ in runs
                if str(b) not in st["runs"].get(name, {})]
        bar = tqdm(total=len(todo) * args.batch, unit="img", desc="noise study", smoothing=0.05)
        for b, name in todo:
            if name not in emus:
                _, pairs, shift, seed = next(r for r in runs if r[0] == name)
                emus[name] = FastEmulator(study_program(program, pairs, shift, seed), args.backend)
            x, _ = test.read(b * args.batch, min(n, (b + 1) * args.batch))
            t = time.time()
            r = emus[name].run(x, image_base=b * args.batch)
            st["runs"].setdefault(name, {})[str(b)] = np.asarray(r.outputs).argmax(axis=1).tolist()
            if name == "clean":
                for layer, c in zip(emus[name].program.layers, r.counters):
                    if layer.mode == 1:
                        acc = st["reads"].setdefault(layer.name, [0, 0, 0])
                        for k, v in enumerate((c.digital_column_reads, c.analog_column_reads, c.skipped_bitplanes)):
                            acc[k] += int(v)
            save()
            bar.set_postfix_str(f"{name} batch {b}: {len(x) / (time.time() - t):.1f} img/s")
            bar.update(len(x))
        bar.close()
    res = report()
    print(f"{res['images']} images; clean accuracy {res['clean']['accuracy']}")
    for v in res["noise"]:
        print(f"noise {v['noise_pairs']},{v['noise_shift']} (σ {v['sigma_counts']:.2f} counts): "
              f"mean {v['mean']}, std {v['std']}, min {v['min']}, max {v['max']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
