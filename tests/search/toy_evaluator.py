"""A cheap, deterministic plug-in evaluator for the search tests (``toy_evaluator:make``).

Options: layers (int, default 4), sleep_s (seconds per evaluation), log_dir (one file per evaluation
start, ``<pid>-<n>.start``, and per finish, ``.done``, so a test can see a trial running and kill
its worker), fail (always raise). Objectives: accuracy falls and energy_uj falls as ratios grow.
"""
import os
import time
from pathlib import Path


class Toy:
    name = "toy"
    objectives = {"accuracy": "maximize", "energy_uj": "minimize", "memory_kib": "minimize"}
    notes = "toy evaluator of the tests"

    def __init__(self, options, data):
        unknown = set(options) - {"layers", "sleep_s", "log_dir", "fail"}
        if unknown:
            raise ValueError(f"toy: unknown option {sorted(unknown)[0]!r}")
        self.n = int(options.get("layers", 4))
        self.sleep_s = float(options.get("sleep_s", 0.0))
        self.log_dir = Path(options["log_dir"]) if options.get("log_dir") else None
        self.fail = bool(options.get("fail", False))
        self.count = 0

    def layers(self):
        return [f"L{i}" for i in range(self.n)]

    def evaluate(self, ratios):
        self.count += 1
        tag = f"{os.getpid()}-{self.count}"
        key = ",".join(str(ratios[l]) for l in self.layers())
        if self.log_dir is not None:
            (self.log_dir / f"{tag}.start").write_text(key)
        if self.fail:
            raise RuntimeError("toy evaluator told to fail")
        time.sleep(self.sleep_s)
        qs = [ratios[l] for l in self.layers()]
        w = list(range(1, self.n + 1))
        acc = 1.0 - sum(wi * q * q for wi, q in zip(w, qs)) / (64.0 * sum(w))
        energy = 10.0 - sum(wi * q for wi, q in zip(w, qs)) / 8.0
        mem = 4.0 * self.n - sum(qs) / 4.0
        if self.log_dir is not None:
            (self.log_dir / f"{tag}.done").write_text(key)
        return {"accuracy": acc, "energy_uj": energy, "memory_kib": mem}


def make(options, data):
    return Toy(options, data)
