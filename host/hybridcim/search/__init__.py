"""Evolutionary search of DualNet's per-layer ratios (Optuna's NSGA-II), resumable and scalable.

``hybridcim search CONFIG --out DIR`` (cli/cmd_search.py) runs it; docs/dualnet.md describes it.
Modules: ``config`` (the strict config schema), ``evaluators`` (the candidate-evaluator interface
and the built-in evaluators), ``supernet`` (DualNet's evaluator ``dual-supernet``: a trained
supernet per candidate; torch only when it is built), ``storage`` (journal file or database;
dead-worker recovery), ``runner`` (the worker loop and the outputs), ``pareto`` (front, CSV, plot),
``finetune`` and ``kendall`` (``hybridcim finetune``: the chosen candidates fine-tuned, Kendall τ of
supernet vs fine-tuned accuracy), ``runstatus`` (where a training run stands, from its files). Optuna
is imported only when a search runs (the optional extra ``search``).
"""
from .config import SearchConfig, SearchConfigError, load_config, parse_config
from .evaluators import EVALUATORS, EvaluatorError, EvaluatorNotAvailableError, make_evaluator
from .pareto import dominates, pareto_front, read_front_csv
from .storage import SearchStorageError

__all__ = ["EVALUATORS", "EvaluatorError", "EvaluatorNotAvailableError", "SearchConfig", "SearchConfigError",
           "SearchStorageError", "dominates", "load_config", "make_evaluator", "pareto_front", "parse_config",
           "read_front_csv"]
