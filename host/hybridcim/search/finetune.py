"""DualNet's last step: fine-tune the chosen candidates of a finished ``dual-supernet`` search at their
fixed ratios and measure how well the supernet ranked them (Kendall τ_b of supernet-estimated vs
fine-tuned accuracy, both on the same calibration images through the compiled program).

``hybridcim finetune SEARCH_CONFIG --search DIR --out FT`` (cli/cmd_finetune.py) runs
:func:`finetune_candidates`. For each candidate (the search's Pareto front, or every trial; the ``top``
most accurate by the supernet's estimate; one per distinct ratio vector):

- a training config: the fine-tune config (``train_config``, else the supernet's own, read from its
  checkpoint) with ``init_from`` = the supernet run, ``dual.mode: fixed``, ``dual.layer_ratios`` = the
  candidate's ratios in network order, ``optim.epochs`` = ``epochs`` when given; every other knob
  (schedule, distillation, data) is the config's;
- ``FT/trial-NNNN/``: ``hybridcim train`` with ``--resume`` semantics, so a killed fine-tune continues
  where it stopped and a finished one is not trained again (a changed config is refused by the trainer);
- the fine-tuned model is evaluated by the search's own evaluator options (the same ``images``,
  executor and cost preset) with ``bn_images: 0`` (its batch norms were trained at these ratios) and the
  result is kept in ``trial-NNNN/result.json`` with the checkpoint's sha256 (reused while it matches).

Outputs (atomic): ``FT/finetune.csv`` (trial, baseline, supernet and fine-tuned accuracy, the fine-tuned
program's costs, one ``q_<layer>`` column per layer) and ``FT/kendall.json`` (τ_b, n, the pairs).
Torch is imported only inside the functions that train or evaluate.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from pathlib import Path

from .kendall import kendall_tau

RESULT = "result.json"
FINETUNE_CSV = "finetune.csv"
KENDALL_JSON = "kendall.json"


class FinetuneError(ValueError):
    """The fine-tune step cannot run (a search of another evaluator, no candidates, a bad option)."""


def select_candidates(search_dir, which: str = "pareto", top: int | None = None, spread: bool = False,
                      within_pp: float | None = None, trials: list[int] | None = None) -> list[dict]:
    """Rows of the search's ``pareto.csv`` (``which='pareto'``) or ``trials.csv`` (``'all'``), most accurate
    first (ties: lower trial number), one per distinct ratio vector; with ``trials``, exactly those trial
    numbers (each must be in the CSV); else only those within ``within_pp``
    percentage points of the most accurate when given, the first ``top`` of them; with ``spread``, ``top``
    rows at evenly spaced ranks of that list instead (its most and least accurate included), so the
    fine-tunes cover the whole accuracy/cost range (or the band of it ``within_pp`` keeps)."""
    from .pareto import read_front_csv
    if which not in ("pareto", "all"):
        raise FinetuneError(f"candidates {which!r} must be 'pareto' or 'all'")
    path = Path(search_dir) / ("pareto.csv" if which == "pareto" else "trials.csv")
    if not path.is_file():
        raise FileNotFoundError(f"no {path.name} in {search_dir}: run hybridcim search with --out {search_dir} first")
    rows = read_front_csv(path)
    if not rows or "accuracy" not in rows[0]:
        raise FinetuneError(f"{path}: no candidates with an accuracy column")
    if trials is not None:
        if not trials or not all(isinstance(t, int) for t in trials) or len(set(trials)) != len(trials):
            raise FinetuneError(f"trials must be distinct trial numbers, got {trials!r}")
        known, wanted = {int(r["trial"]) for r in rows}, set(trials)
        missing = [t for t in trials if t not in known]
        if missing:
            raise FinetuneError(f"trial(s) {missing} not in {path}" + (" (not on the Pareto front: pass "
                                                                      "--candidates all)" if which == "pareto" else ""))
        if top is not None or spread or within_pp is not None:
            raise FinetuneError("trials names the candidates itself: no top, spread or within_pp with it")
        rows = [r for r in rows if int(r["trial"]) in wanted]
    seen, out = set(), []
    for r in sorted(rows, key=lambda r: (-r["accuracy"], r["trial"])):
        key = tuple(sorted((k, v) for k, v in r.items() if k.startswith("q_")))
        if key not in seen:
            seen.add(key)
            out.append(r)
    if within_pp is not None:
        if not (isinstance(within_pp, (int, float)) and math.isfinite(within_pp) and within_pp >= 0):
            raise FinetuneError(f"within_pp must be a finite number >= 0, got {within_pp!r}")
        out = [r for r in out if r["accuracy"] >= out[0]["accuracy"] - within_pp / 100.0 - 1e-12]
    if top is None or top >= len(out):
        return out
    if spread and top > 1:
        return [out[round(i * (len(out) - 1) / (top - 1))] for i in range(top)]
    return out[:top]


def candidate_config(base, supernet_run, layer_ratios: list[int], epochs: int | None = None, data: str | None = None):
    """The TrainConfig that fine-tunes one candidate (module docstring), validated."""
    import dataclasses
    dual = dataclasses.replace(base.dual, mode="fixed", layer_ratios=tuple(int(q) for q in layer_ratios))
    optim = base.optim if epochs is None else dataclasses.replace(base.optim, epochs=int(epochs))
    dat = base.data if data is None else dataclasses.replace(base.data, root=str(data))
    return dataclasses.replace(base, init_from=str(supernet_run), dual=dual, optim=optim, data=dat).validate()


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


CONFIG_YAML = "config.yaml"


def config_yaml(cfg, trial) -> str:
    """The candidate's training config as YAML (what ``hybridcim train`` and ``hybridcim ship --config`` read)."""
    import yaml
    plain = json.loads(json.dumps(cfg.to_dict()))  # tuples -> lists for the safe dumper
    return (f"# Fine-tune of trial {trial}'s ratios from the supernet (written by hybridcim finetune; "
            "paths relative to the folder it ran in)\n" + yaml.safe_dump(plain, sort_keys=False))


def finetune_one(row: dict, layers: list[str], base, supernet_run, options: dict, out: Path, epochs, data,
                 progress: bool, log) -> dict:
    """Fine-tune (or resume, or reuse) one candidate and evaluate it: its result dict."""
    from ..fileio import atomic_write_text
    from ..train.checkpoint import CHECKPOINT, read_checkpoint
    from ..train.trainer import Trainer
    from .supernet import SupernetEvaluator
    ratios = {l: int(row[f"q_{l}"]) for l in layers}
    folder = out / f"trial-{int(row['trial']):04d}"
    cfg = candidate_config(base, supernet_run, [ratios[l] for l in layers], epochs, data)
    ck = folder / CHECKPOINT
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / CONFIG_YAML, config_yaml(cfg, row["trial"]))
    meta = read_checkpoint(ck)[1] if ck.is_file() else None
    if meta is not None and meta.get("config", {}).get("optim", {}).get("epochs") != cfg.optim.epochs:
        had = meta["config"]["optim"].get("epochs")
        raise FinetuneError(f"{folder} holds a fine-tune of {had} epochs, this one asks "
                            f"for {cfg.optim.epochs}: use the same --epochs, or another --out")
    done = meta is not None and meta["epoch"] >= cfg.optim.epochs
    old = _read_json(folder / RESULT)
    if done and isinstance(old, dict):
        if old.get("checkpoint_sha256") == hashlib.sha256(ck.read_bytes()).hexdigest() and old.get("ratios") == ratios:
            log(f"trial {row['trial']}: fine-tuned before, result reused")
            return old
    if not done:
        log(f"trial {row['trial']}: fine-tuning at ratios {[ratios[l] for l in layers]} for {cfg.optim.epochs} "
            f"epoch(s) in {folder}")
        Trainer(cfg, folder, resume=True, progress=progress).run()
    ev = SupernetEvaluator({**options, "run": str(folder), "bn_images": 0}, data)
    values = ev.evaluate(ratios)
    res = {"trial": int(row["trial"]), "baseline": row.get("baseline", ""), "ratios": ratios,
           "supernet_accuracy": float(row["accuracy"]), "finetuned": values, "epochs": cfg.optim.epochs,
           "images": ev.opts["images"], "checkpoint_sha256": ev.sha256}
    atomic_write_text(folder / RESULT, json.dumps(res, indent=1))
    return res


CHOSEN_JSON = "chosen.json"
FINETUNE_PNG = "finetune.png"
COSTS = ("energy_uj", "memory_kib", "latency_us")


def choose(results: list[dict], baseline_accuracy: float, max_loss_pp: float = 1.0,
           minimize: str = "energy_uj") -> dict | None:
    """The candidate to ship: among the fine-tuned ``results`` whose fine-tuned accuracy is at least
    ``baseline_accuracy`` − ``max_loss_pp`` percentage points (both on the same calibration images), the one
    with the lowest ``minimize`` cost (ties: the other two costs, then the higher accuracy, then the lower
    trial number). None when no candidate is within the loss."""
    if minimize not in COSTS:
        raise FinetuneError(f"minimize {minimize!r} must be one of {list(COSTS)}")
    floor = baseline_accuracy - max_loss_pp / 100.0
    ok = [r for r in results if r["finetuned"]["accuracy"] >= floor - 1e-12]
    if not ok:
        return None
    others = [c for c in COSTS if c != minimize]
    return min(ok, key=lambda r: (r["finetuned"][minimize], *(r["finetuned"][c] for c in others),
                                  -r["finetuned"]["accuracy"], r["trial"]))


def baseline_on_calibration(program_spec: str, images: int, cost_preset: str, data, executor_backend: str = "auto"):
    """A reference program (e.g. the INT4 baseline) measured like the candidates: its accuracy on the first
    ``images`` calibration images and its costs (search.compare.measure); a ``Measured``."""
    from ..cost import load_cost_preset
    from ..data import calibration_split
    from ..models import resolve_model
    from ..program import read_program
    from .compare import measure
    x, y = calibration_split(data, images)
    return measure(str(program_spec), read_program(resolve_model(program_spec)), x, y,
                   load_cost_preset(cost_preset), executor_backend, source=str(program_spec))


def plot_finetune(path: Path, search_rows: list[dict], results: list[dict], chosen: dict | None,
                  baseline: dict | None, max_loss_pp: float, title: str) -> None:
    """PNG: accuracy (y) vs energy, memory and latency (one panel each): the search's trials as the
    supernet rated them (grey), each fine-tuned candidate's supernet estimate (hollow) joined to its
    fine-tuned accuracy (filled), the chosen one starred, the baseline and its accuracy − max loss
    (dashed). Needs matplotlib."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .pareto import LABELS, save_panels
    fig, axes = plt.subplots(1, 3, figsize=(12.6, 3.8), squeeze=False)
    for ax, x in zip(axes[0], COSTS):
        ax.scatter([r[x] for r in search_rows], [100 * r["accuracy"] for r in search_rows], s=8, c="0.75",
                   label="search trials (supernet estimate)")
        for r in results:
            f = r["finetuned"]
            ax.plot([f[x], f[x]], [100 * r["supernet_accuracy"], 100 * f["accuracy"]], c="C0", lw=0.8, alpha=0.6)
        ax.scatter([r["finetuned"][x] for r in results], [100 * r["supernet_accuracy"] for r in results], s=24,
                   facecolors="none", edgecolors="C0", label="candidate, supernet estimate")
        ax.scatter([r["finetuned"][x] for r in results], [100 * r["finetuned"]["accuracy"] for r in results], s=24,
                   c="C0", label="candidate, fine-tuned")
        if baseline is not None:
            ax.scatter([baseline[x]], [100 * baseline["accuracy"]], marker="s", s=50, c="C3", label=baseline["label"],
                       zorder=3)
            ax.axhline(100 * baseline["accuracy"] - max_loss_pp, ls="--", c="C3", lw=0.8,
                       label=f"{baseline['label']} − {max_loss_pp:g} pp")
        if chosen is not None:
            ax.scatter([chosen["finetuned"][x]], [100 * chosen["finetuned"]["accuracy"]], marker="*", s=180,
                       c="C1", edgecolors="k", linewidths=0.5, zorder=4, label=f"chosen (trial {chosen['trial']})")
        ax.set_xlabel(LABELS[x])
        ax.set_ylabel("calibration accuracy (%)")
        ax.grid(alpha=0.3)
    save_panels(fig, axes[0], path, title, ncol=4, bottom=0.12)


def results_csv(results: list[dict], layers: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    objs = ["energy_uj", "memory_kib", "latency_us"]
    w.writerow(["trial", "baseline", "supernet_accuracy", "finetuned_accuracy", *objs, *(f"q_{l}" for l in layers)])
    for r in results:
        f = r["finetuned"]
        w.writerow([r["trial"], r["baseline"], repr(r["supernet_accuracy"]), repr(f["accuracy"]),
                    *(repr(f[o]) for o in objs), *(r["ratios"][l] for l in layers)])
    return buf.getvalue()


def finetune_candidates(search_config, search_dir, out, train_config=None, epochs: int | None = None,
                        which: str = "pareto", top: int | None = None, data: str | None = None,
                        progress: bool = True, log=None, spread: bool = False, within_pp: float | None = None,
                        choose_against: str | None = None,
                        max_loss_pp: float = 1.0, minimize: str = "energy_uj",
                        trials: list[int] | None = None) -> dict:
    """Fine-tune the chosen candidates of a finished search, evaluate them, write ``finetune.csv`` and
    ``kendall.json`` under ``out`` and return the summary {tau_b, n, implementation, results, ...}.

    With ``choose_against`` (a program: .cim, shipped model name or folder) that program is measured on
    the same calibration images, :func:`choose` picks the candidate to ship, and ``chosen.json`` (the
    rule, the baseline, the chosen candidate and its run folder, or null) and ``finetune.png`` (when
    matplotlib is installed) are written too; the summary gets ``chosen`` and ``baseline``."""
    import sys

    from ..fileio import atomic_write_text
    from ..train.checkpoint import read_checkpoint, run_checkpoint
    from ..train.config import config_from_dict, load_config
    from .config import load_config as load_search_config
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    scfg = load_search_config(search_config)
    if scfg.evaluator != "dual-supernet":
        raise FinetuneError(f"search config {str(search_config)!r}: evaluator {scfg.evaluator!r}; fine-tuning needs "
                            "a 'dual-supernet' search (a trained supernet to start from)")
    options = dict(scfg.evaluator_options)
    supernet = options.get("run")
    if not isinstance(supernet, str):
        raise FinetuneError(f"search config {str(search_config)!r}: evaluator.options.run must name the supernet run")
    meta = read_checkpoint(run_checkpoint(supernet))[1]
    sn_cfg = config_from_dict(meta["config"])
    base = load_config(train_config) if train_config is not None else sn_cfg
    from ..train.dualpath import dual_layers
    from ..train.models import build_model
    layers = [n for n, _ in dual_layers(build_model(sn_cfg.model.arch, **sn_cfg.model_kwargs()))]
    if minimize not in COSTS:
        raise FinetuneError(f"minimize {minimize!r} must be one of {list(COSTS)}")
    if not (isinstance(max_loss_pp, (int, float)) and math.isfinite(max_loss_pp) and max_loss_pp >= 0):
        raise FinetuneError(f"max_loss_pp must be a finite number >= 0, got {max_loss_pp!r}")
    if choose_against is not None:  # a missing baseline fails before hours of training
        from ..models import resolve_model
        resolve_model(choose_against)
    rows = select_candidates(search_dir, which, top, spread, within_pp, trials)
    missing = [l for l in layers if f"q_{l}" not in rows[0]]
    if missing:
        raise FinetuneError(f"{search_dir}: the search's CSV has no column q_{missing[0]} "
                            "(a search of another supernet?)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = [finetune_one(r, layers, base, supernet, options, out, epochs, data, progress, log) for r in rows]
    x = [r["supernet_accuracy"] for r in results]
    y = [r["finetuned"]["accuracy"] for r in results]
    tau, impl = kendall_tau(x, y)
    summary = {"tau_b": None if math.isnan(tau) else tau, "n": len(results), "implementation": impl,
               "candidates": which, "top": top, "spread": spread, "within_pp": within_pp,
               "trials": trials, "search": str(search_dir), "supernet": str(supernet),
               "supernet_epoch": int(meta["epoch"]), "images": results[0]["images"] if results else None,
               "pairs": [{"trial": r["trial"], "supernet_accuracy": a, "finetuned_accuracy": b}
                         for r, a, b in zip(results, x, y)]}
    atomic_write_text(out / FINETUNE_CSV, results_csv(results, layers))
    atomic_write_text(out / KENDALL_JSON, json.dumps(summary, indent=1))
    extra = {}
    if choose_against is not None:
        import dataclasses
        m = baseline_on_calibration(choose_against, int(summary["images"]), options.get("cost_preset", "dcim-28nm"),
                                    data)
        base_row = {"label": m.label, **{k: getattr(m, k) for k in ("accuracy", *COSTS)}}
        pick = choose(results, m.accuracy, max_loss_pp, minimize)
        rule = (f"lowest {minimize} among the fine-tuned candidates whose accuracy on the first {summary['images']} "
                f"calibration images is at least the baseline's minus {max_loss_pp:g} pp")
        extra = {"rule": rule, "max_loss_pp": max_loss_pp, "minimize": minimize,
                 "baseline": {**dataclasses.asdict(m), "program": str(choose_against)},
                 "chosen": None if pick is None else {**pick, "run": str(out / f"trial-{pick['trial']:04d}")}}
        atomic_write_text(out / CHOSEN_JSON, json.dumps(extra, indent=1))
        try:
            from .pareto import read_front_csv
            searched = read_front_csv(Path(search_dir) / "trials.csv")
            plot_finetune(out / FINETUNE_PNG, searched, results, pick, base_row, max_loss_pp,
                          f"{len(results)} fine-tuned candidates of the search; "
                          + (f"chosen: the {rule}" if pick is not None else f"none chosen: the rule is the {rule}"))
        except ImportError:
            pass
    return {**summary, **extra, "results": results}
