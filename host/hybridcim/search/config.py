"""The search config (YAML or JSON): a strict schema, every key checked.

    name: demo                      # study name in the storage (letters, digits, - _ .)
    evaluator:
      kind: dual-ternarized         # hybridcim.search.evaluators.EVALUATORS, or "module:factory"
      options: {model: resnet8-w4a4-p50-quick, images: 16}
    space:
      ratios: [0, 2, 4, 6, 8]       # allowed ratio_eighths q (ternary share q/8), a subset of 0..8
      fixed: {stem: 0, fc: 0}       # layers held at one ratio (from the set), not searched
    objectives: [accuracy, energy_uj, memory_kib, latency_us]   # a subset of the evaluator's, >= 2
    sampler: {population_size: 8, seed: 0, mutation_prob: null, crossover_prob: 0.9}
    trials: 40                      # complete evaluations to reach (--trials overrides)
    baselines:                      # marked in the plot
      - {name: all INT4, ratio: 0}  # a uniform ratio: evaluated once by the search itself
      - {name: stage 3 at 2/8, ratio: 0, layers: {s3b1_conv1: 2, s3b1_conv2: 2}}  # ratio, some layers overridden
      - {name: paper, accuracy: 0.9, energy_uj: 4.0}   # or given figures

An unknown or misspelled key, a wrong type or a ratio outside the set is a
:class:`SearchConfigError` naming the key; nothing falls back to a silent default.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

RATIO_MAX = 8
"""ratio_eighths lies in 0..RATIO_MAX (architecture.md §10.2)."""

MAX_CONFIG_BYTES = 1 << 20


class SearchConfigError(ValueError):
    """A search config that breaks the schema; the message names the key."""


@dataclass(frozen=True)
class Baseline:
    """A reference point of the plot: a ratio for every searched layer, ``layers`` overriding it per layer
    (a candidate the search evaluates once, e.g. to seed the search with a design of your own), or given
    objective figures."""

    name: str
    ratio: int | None = None
    values: dict = field(default_factory=dict)
    layers: dict = field(default_factory=dict)

    def ratios_for(self, free: list[str]) -> dict:
        """{layer: ratio_eighths} of this candidate over the searched layers."""
        return {l: self.layers.get(l, self.ratio) for l in free}


@dataclass(frozen=True)
class SearchConfig:
    name: str
    evaluator: str
    evaluator_options: dict
    ratios: tuple
    fixed: dict
    objectives: tuple
    population_size: int = 8
    seed: int | None = 0
    mutation_prob: float | None = None
    crossover_prob: float = 0.9
    trials: int = 40
    baselines: tuple = ()

    def fingerprint(self) -> str:
        """sha256 of what defines the search (evaluator, options, space, objectives, sampler): a storage
        holding a study of the same name but another fingerprint is refused. ``trials`` and baselines
        are not part of it (a rerun may ask for more trials)."""
        d = {"evaluator": self.evaluator, "options": self.evaluator_options, "ratios": list(self.ratios),
             "fixed": self.fixed, "objectives": list(self.objectives), "population_size": self.population_size,
             "seed": self.seed, "mutation_prob": self.mutation_prob, "crossover_prob": self.crossover_prob}
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=repr).encode()).hexdigest()[:16]


TOP = {"name", "evaluator", "space", "objectives", "sampler", "trials", "baselines"}
EVALUATOR = {"kind", "options"}
SPACE = {"ratios", "fixed"}
SAMPLER = {"population_size", "seed", "mutation_prob", "crossover_prob"}
BASELINE = {"name", "ratio", "layers", "accuracy", "energy_uj", "memory_kib", "latency_us"}


def _keys(d, allowed: set, where: str, required: tuple = ()) -> dict:
    if not isinstance(d, dict):
        raise SearchConfigError(f"{where}: must be a mapping, got {type(d).__name__}")
    for k in d:
        if k not in allowed:
            import difflib
            near = difflib.get_close_matches(str(k), sorted(allowed), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else f" (known: {', '.join(sorted(allowed))})"
            raise SearchConfigError(f"{where}: unknown key {k!r}{hint}")
    for k in required:
        if k not in d:
            raise SearchConfigError(f"{where}: missing key {k!r}")
    return d


def _int(v, where: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise SearchConfigError(f"{where}: must be an integer, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise SearchConfigError(f"{where}: {v} is outside {lo}..{'' if hi is None else hi}")
    return v


def _prob(v, where: str, allow_none: bool) -> float | None:
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
        raise SearchConfigError(f"{where}: must be a number in 0..1{' or null' if allow_none else ''}, got {v!r}")
    return float(v)


def _ratio(v, where: str, allowed) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise SearchConfigError(f"{where}: ratio must be an integer q (ternary share q/{RATIO_MAX}), got {v!r}")
    if v not in allowed:
        raise SearchConfigError(f"{where}: ratio {v} is outside the allowed set {list(allowed)}")
    return v


def parse_config(d) -> SearchConfig:
    """A :class:`SearchConfig` from a parsed YAML/JSON mapping (strict)."""
    from .evaluators import OBJECTIVES
    _keys(d, TOP, "config", required=("name", "evaluator", "space"))
    name = d["name"]
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        raise SearchConfigError(f"config: name must be 1..64 letters, digits, '-', '_' or '.', got {name!r}")
    ev = _keys(d["evaluator"], EVALUATOR, "evaluator", required=("kind",))
    kind = ev["kind"]
    if not isinstance(kind, str) or not kind:
        raise SearchConfigError(f"evaluator.kind: must be a name, got {kind!r}")
    options = ev.get("options", {}) or {}
    if not isinstance(options, dict):
        raise SearchConfigError(f"evaluator.options: must be a mapping, got {type(options).__name__}")
    sp = _keys(d["space"], SPACE, "space", required=("ratios",))
    rs = sp["ratios"]
    if not isinstance(rs, list) or not rs:
        raise SearchConfigError(f"space.ratios: must be a non-empty list of integers 0..{RATIO_MAX}, got {rs!r}")
    ratios = tuple(_ratio(r, f"space.ratios[{i}]", range(RATIO_MAX + 1)) for i, r in enumerate(rs))
    if len(set(ratios)) != len(ratios):
        raise SearchConfigError(f"space.ratios: {list(ratios)} repeats a value")
    ratios = tuple(sorted(ratios))
    fixed = sp.get("fixed", {}) or {}
    if not isinstance(fixed, dict):
        raise SearchConfigError("space.fixed: must be a mapping layer -> ratio")
    fixed = {str(k): _ratio(v, f"space.fixed.{k}", ratios) for k, v in fixed.items()}
    objs = d.get("objectives", list(OBJECTIVES))
    if not isinstance(objs, list) or len(objs) < 2 or not all(isinstance(o, str) for o in objs):
        raise SearchConfigError(f"objectives: must be a list of at least 2 objective names, got {objs!r}")
    if len(set(objs)) != len(objs):
        raise SearchConfigError(f"objectives: {objs} repeats a name")
    sm = _keys(d.get("sampler", {}) or {}, SAMPLER, "sampler")
    seed = sm.get("seed", 0)
    if seed is not None:
        seed = _int(seed, "sampler.seed", 0, 2**32 - 1)
    cfg = SearchConfig(
        name=name, evaluator=kind, evaluator_options=options, ratios=ratios, fixed=fixed, objectives=tuple(objs),
        population_size=_int(sm.get("population_size", 8), "sampler.population_size", 2, 10000),
        seed=seed, mutation_prob=_prob(sm.get("mutation_prob"), "sampler.mutation_prob", True),
        crossover_prob=_prob(sm.get("crossover_prob", 0.9), "sampler.crossover_prob", False),
        trials=_int(d.get("trials", 40), "trials", 1, 10**6), baselines=())
    bl = d.get("baselines", []) or []
    if not isinstance(bl, list):
        raise SearchConfigError("baselines: must be a list")
    out = []
    for i, b in enumerate(bl):
        where = f"baselines[{i}]"
        _keys(b, BASELINE, where, required=("name",))
        if not isinstance(b["name"], str) or not b["name"]:
            raise SearchConfigError(f"{where}.name: must be a non-empty string")
        vals = {k: b[k] for k in ("accuracy", "energy_uj", "memory_kib", "latency_us") if k in b}
        for k, v in vals.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise SearchConfigError(f"{where}.{k}: must be a number, got {v!r}")
        if ("ratio" in b) == bool(vals):
            raise SearchConfigError(f"{where}: give either 'ratio' (a uniform ratio the search evaluates) or objective "
                                    "figures (accuracy, energy_uj, memory_kib, latency_us), not both or neither")
        ratio = _ratio(b["ratio"], f"{where}.ratio", ratios) if "ratio" in b else None
        layers = {}
        if "layers" in b:
            if ratio is None:
                raise SearchConfigError(f"{where}.layers: needs 'ratio' too (the ratio of the layers not listed)")
            if not isinstance(b["layers"], dict) or not b["layers"]:
                raise SearchConfigError(f"{where}.layers: must be a non-empty mapping {{layer: ratio}}, "
                                        f"got {b['layers']!r}")
            layers = {str(k): _ratio(v, f"{where}.layers.{k}", ratios) for k, v in b["layers"].items()}
        out.append(Baseline(b["name"], ratio, vals, layers))
    return SearchConfig(**{**cfg.__dict__, "baselines": tuple(out)})


def check_against_evaluator(cfg: SearchConfig, ev) -> list[str]:
    """The layers searched (the evaluator's minus ``fixed``); errors for objectives the evaluator does not
    report and fixed layers it does not know."""
    for o in cfg.objectives:
        if o not in ev.objectives:
            raise SearchConfigError(f"objectives: {o!r} is not reported by evaluator {ev.name!r} "
                                    f"(it reports: {', '.join(ev.objectives)})")
    layers = ev.layers()
    for k in cfg.fixed:
        if k not in layers:
            raise SearchConfigError(f"space.fixed: {k!r} is not a layer of evaluator {ev.name!r} "
                                    f"(layers: {', '.join(layers)})")
    free = [l for l in layers if l not in cfg.fixed]
    if not free:
        raise SearchConfigError("space.fixed: every layer is fixed, nothing to search")
    for i, b in enumerate(cfg.baselines):
        for k in b.layers:
            if k not in free:
                why = "is held by space.fixed" if k in cfg.fixed else f"is not a layer of evaluator {ev.name!r}"
                raise SearchConfigError(f"baselines[{i}].layers: {k!r} {why} (searched layers: {', '.join(free)})")
    return free


def load_config(path) -> SearchConfig:
    """Read and parse a YAML (or JSON) search config file."""
    from ..fileio import read_regular_file
    raw = read_regular_file(path, MAX_CONFIG_BYTES, "search config")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SearchConfigError(f"search config {str(path)!r} is not UTF-8 text") from None
    if Path(path).suffix.lower() == ".json":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise SearchConfigError(f"search config {str(path)!r} is not valid JSON: {e}") from None
    else:
        try:
            import yaml
        except ImportError:
            raise SearchConfigError("reading a YAML search config needs PyYAML (pip install pyyaml), or give a "
                                    ".json config") from None
        class NoAliasLoader(yaml.SafeLoader):
            """safe_load without aliases (*name): an alias bomb would expand exponentially when hashed."""

            def compose_node(self, parent, index):
                if self.check_event(yaml.AliasEvent):
                    mark = self.peek_event().start_mark
                    raise SearchConfigError(f"search config {str(path)!r} line {mark.line + 1}: YAML aliases "
                                            "(*name) are not allowed in a search config")
                return super().compose_node(parent, index)

        try:
            d = yaml.load(text, Loader=NoAliasLoader)  # noqa: S506 (a SafeLoader subclass)
        except yaml.YAMLError as e:
            raise SearchConfigError(f"search config {str(path)!r} is not valid YAML: {' '.join(str(e).split())}") from None
    return parse_config(d)
