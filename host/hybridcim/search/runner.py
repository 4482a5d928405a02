"""The search loop: workers that ask Optuna (NSGA-II) for per-layer ratios, evaluate them and tell the
results; the outputs (Pareto front CSV, all trials CSV, plot, summary line).

Counting: ``trials`` is the number of COMPLETE evaluations the study should hold, over every worker
and every run; a worker stops asking when the complete ones reach it, and waits (polling) while the
complete plus running ones reach it, in case a running one dies and is re-queued. Two workers that
ask at the same moment may finish up to ``workers − 1`` trials past the target (none is lost).
"""
from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .config import SearchConfig, check_against_evaluator
from .storage import (REQUEUED_ATTR, STUDY_ATTR, WORKER_ATTR, SearchStorageError, open_storage, recover_dead_trials,
                      worker_record)

LOCK_NAME = "search.lock"
OBJ_ATTR = "objectives"
"""User attr of a complete trial: every objective the evaluator reported (name -> value)."""
MAX_CONSECUTIVE_FAILURES = 3
POLL_S = 2.0


class SearchError(RuntimeError):
    """The search cannot go on (an evaluator that keeps failing, a worker that exited with an error)."""


@dataclass
class WorkerStats:
    completed: int = 0
    failed: int = 0
    recovered: list = field(default_factory=list)


def make_sampler(cfg: SearchConfig, salt: int):
    """NSGA-II with the config's settings; the seed mixed with ``salt`` (worker index, trials so far) so
    workers and resumed runs do not replay one another's random draws."""
    import optuna
    seed = None if cfg.seed is None else (cfg.seed * 1_000_003 + salt) % (2**32)
    return optuna.samplers.NSGAIISampler(population_size=cfg.population_size, mutation_prob=cfg.mutation_prob,
                                         crossover_prob=cfg.crossover_prob, seed=seed)


def open_study(cfg: SearchConfig, storage, directions: list[str], salt: int = 0, journal: bool = True,
               identity: str | None = None):
    """Create or load the config's study in ``storage``; refuse a study of another config (its
    fingerprint), one whose evaluator had another ``identity`` (an evaluator's optional attribute naming
    what its figures come from beyond its options, e.g. the supernet checkpoint's sha256) and, in a
    journal file, any study not made by ``hybridcim search``."""
    import optuna
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a failed candidate is reported by the search
    try:
        summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    except Exception as e:
        raise SearchStorageError(f"search storage cannot be read: {' '.join(str(e).split())[:300]}") from None
    for s in summaries:
        mine = s.user_attrs.get(STUDY_ATTR)
        if s.study_name == cfg.name or journal:
            if mine is None and (s.n_trials or s.study_name == cfg.name):
                raise SearchStorageError(f"search storage holds study {s.study_name!r}, which hybridcim search did not "
                                         "create (a foreign storage): use another --out or --storage")
            if s.study_name == cfg.name and mine is not None and mine.get("fingerprint") != cfg.fingerprint():
                raise SearchStorageError(
                    f"search storage holds study {cfg.name!r} of another config (fingerprint {mine.get('fingerprint')}, "
                    f"this config {cfg.fingerprint()}: evaluator, options, space, objectives or sampler differ): use "
                    "another --out, or another name in the config")
            if s.study_name == cfg.name and mine is not None and mine.get("identity") != identity:
                raise SearchStorageError(
                    f"search storage holds study {cfg.name!r} evaluated with {mine.get('identity') or 'no identity'}, "
                    f"this evaluator has {identity or 'none'} (e.g. the supernet checkpoint changed since the search "
                    "started): use another --out, or search a fixed copy of the checkpoint")
    study = optuna.create_study(storage=storage, study_name=cfg.name, directions=directions,
                                sampler=make_sampler(cfg, salt), load_if_exists=True)
    if STUDY_ATTR not in study.user_attrs:
        study.set_user_attr(STUDY_ATTR, {"fingerprint": cfg.fingerprint(), "evaluator": cfg.evaluator,
                                         "objectives": list(cfg.objectives), "identity": identity})
    return study


def _counts(study) -> tuple[int, int]:
    """(complete, running) trials; WAITING (enqueued) ones are neither: the next ask takes them."""
    from optuna.trial import TrialState
    ts = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
    done = sum(t.state == TrialState.COMPLETE for t in ts)
    return done, len(ts) - done


def enqueue_baselines(study, cfg: SearchConfig, free: list[str]) -> None:
    """Enqueue each ratio baseline once (a trial whose user attr ``baseline`` names it)."""
    have = {t.user_attrs.get("baseline") for t in study.get_trials(deepcopy=False)}
    for b in cfg.baselines:
        if b.ratio is not None and b.name not in have:
            study.enqueue_trial(b.ratios_for(free), user_attrs={"baseline": b.name})


def run_worker(cfg: SearchConfig, study, ev, free: list[str], n_trials: int, lock_path: Path | None,
               bar=None) -> WorkerStats:
    """Evaluate one trial after another until the study holds ``n_trials`` complete trials (module doc); a
    candidate whose evaluation raises is a FAILED trial with the error in its user attr ``error``, and
    :data:`MAX_CONSECUTIVE_FAILURES` of them in a row stop the worker (:class:`SearchError`)."""
    from optuna.trial import TrialState
    from .evaluators import check_values
    stats = WorkerStats()
    streak, last_error = 0, ""
    shown = bar.n if bar is not None else 0  # a resumed search's bar starts at the trials already complete
    while True:
        stats.recovered += recover_dead_trials(study, lock_path)
        done, pending = _counts(study)
        if bar is not None and done > shown:
            bar.update(done - shown)
            shown = done
        if done >= n_trials:
            return stats
        if done + pending >= n_trials:  # the others' running trials may reach the target: wait and see
            if lock_path is None:  # a database: fail (and re-queue) trials whose heartbeat stopped
                import warnings
                import optuna
                with warnings.catch_warnings():  # "experimental" in Optuna's words since 2.9
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(study)
            time.sleep(POLL_S)
            continue
        box = {}

        def objective(trial):
            box["trial"] = trial
            study._storage.set_trial_system_attr(trial._trial_id, WORKER_ATTR, worker_record())
            ratios = {l: trial.suggest_categorical(l, list(cfg.ratios)) for l in free}
            try:
                values = ev.evaluate({**cfg.fixed, **{l: int(q) for l, q in ratios.items()}})
                vec = check_values(ev, values)
            except Exception as e:  # this candidate failed (invalid program, evaluator error): recorded, not retried
                trial.set_user_attr("error", f"{type(e).__name__}: {' '.join(str(e).split())}"[:500])
                raise
            trial.set_user_attr(OBJ_ATTR, {k: float(values[k]) for k in ev.objectives})
            keep = dict(zip(ev.objectives, vec))
            return [keep[o] for o in cfg.objectives]

        try:  # optimize, not ask/tell: an RDB storage's heartbeat runs only inside optimize
            study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=False)
        except KeyboardInterrupt:  # optuna failed the trial: a clean stop puts it back in the queue
            t = box.get("trial")
            if t is not None:
                study.enqueue_trial(dict(t.params), user_attrs={**t.user_attrs, REQUEUED_ATTR: t.number})
            raise
        t = box.get("trial")
        if t is None:
            continue
        state = study._storage.get_trial(t._trial_id).state
        if state == TrialState.COMPLETE:
            streak = 0
            stats.completed += 1
            continue
        stats.failed += 1
        streak += 1
        last_error = study._storage.get_trial_user_attrs(t._trial_id).get("error") or f"trial ended {state.name}"
        if streak >= MAX_CONSECUTIVE_FAILURES:
            raise SearchError(f"{streak} candidates in a row failed to evaluate; last: {last_error}")


def trial_rows(study, cfg: SearchConfig) -> list[dict]:
    """Every complete trial as {trial, baseline, ratios, <objective>: value, ...}, by trial number."""
    from optuna.trial import TrialState
    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        vals = dict(t.user_attrs.get(OBJ_ATTR) or dict(zip(cfg.objectives, t.values)))
        rows.append({"trial": t.number, "baseline": t.user_attrs.get("baseline", ""),
                     "ratios": {**cfg.fixed, **{k: int(v) for k, v in t.params.items()}}, **vals})
    return sorted(rows, key=lambda r: r["trial"])


def write_outputs(study, cfg: SearchConfig, ev_objectives: dict, layers: list[str], out: Path) -> dict:
    """pareto.csv, trials.csv and pareto.png (when matplotlib is installed) under ``out``; a summary dict."""
    from optuna.trial import TrialState
    from ..fileio import atomic_write_text
    from .pareto import front_csv, pareto_front, plot_front
    rows = trial_rows(study, cfg)
    dirs = [ev_objectives[o] for o in cfg.objectives]
    front = pareto_front(rows, list(cfg.objectives), dirs)
    allobj = [o for o in ev_objectives if all(o in r for r in rows)]
    atomic_write_text(out / "pareto.csv", front_csv(front, allobj, layers))
    atomic_write_text(out / "trials.csv", front_csv(rows, allobj, layers))
    baselines = [{"name": b.name, **b.values} for b in cfg.baselines if b.ratio is None]
    for r in rows:
        if r["baseline"]:
            baselines.append({"name": r["baseline"], **{o: r[o] for o in allobj}})
    plot = out / "pareto.png"
    try:
        plot_front(plot, rows, front, baselines, f"{cfg.name}: {len(rows)} trials, {len(front)} on the front "
                                                 f"({', '.join(cfg.objectives)})")
    except ImportError:
        plot = None
    failed = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
    best = max(rows, key=lambda r: r["accuracy"]) if rows and "accuracy" in rows[0] else None
    return {"complete": len(rows), "failed": failed, "front": len(front), "best": best, "plot": plot,
            "front_rows": front}


def spawn_workers(argv: list[str], k: int) -> list[subprocess.Popen]:
    """Start ``k`` worker processes running ``hybridcim search ... --worker-only`` (same config and storage)."""
    cmd = [sys.executable, "-m", "hybridcim.cli.main", "search", *argv, "--worker-only"]
    return [subprocess.Popen(cmd, stdout=subprocess.DEVNULL) for _ in range(k)]


def directions_of(cfg: SearchConfig, ev) -> list[str]:
    return [ev.objectives[o] for o in cfg.objectives]


def prepare(cfg: SearchConfig, ev, storage_url: str | None, out: Path, salt: int, heartbeat_s: int = 60):
    """(study, free layers, lock path, storage description) for this process."""
    free = check_against_evaluator(cfg, ev)
    storage, desc = open_storage(storage_url, out, heartbeat_s)
    study = open_study(cfg, storage, directions_of(cfg, ev), salt=salt, journal=storage_url is None,
                       identity=getattr(ev, "identity", None))
    study.sampler = make_sampler(cfg, salt * 7919 + len(study.get_trials(deepcopy=False)))
    lock = out / LOCK_NAME
    from .storage import _flock
    with _flock(lock):
        enqueue_baselines(study, cfg, free)
    return study, free, lock, desc
