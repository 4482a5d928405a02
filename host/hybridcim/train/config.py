"""Training configuration: frozen dataclasses loaded from YAML; unknown keys are rejected.

Every knob of ``hybridcim train`` lives here (see configs/*.yaml for commented examples).
A config file is an input: it is read only if it is a regular file of at most
:data:`CONFIG_MAX_BYTES`, parsed by yaml's safe loader (no Python tags; nesting limited), and every value is
checked against its field's type (int, float, bool, str, tuple of ints, optional) and range
before use, so a truncated, corrupted or hostile file (anchors/aliases repeated a million
times, deep nesting, huge numbers) is refused with a one-line :class:`ConfigError` within
about a second on a laptop: the file's size cap bounds the work.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional


class ConfigError(ValueError):
    """An invalid training configuration (names the key)."""


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "resnet20"              # resnet20 | resnet | cnv | float_resnet20 | float_resnet (teachers)
    act_bits: int = 4                   # activation bits (the input is always 8-bit pixels)
    widths: Optional[tuple] = None      # channel widths per stage (default: the arch's)
    blocks: Optional[tuple] = None      # resnet only: blocks per stage
    fc_width: int = 512                 # cnv only
    calib_steps: int = 30               # steps of runtime-stats collection for activation scales

    def kwargs(self) -> dict:
        kw: dict = {"act_bits": self.act_bits, "calib_steps": self.calib_steps}
        if self.widths is not None:
            kw["widths"] = tuple(self.widths)
        if self.blocks is not None and self.arch in ("resnet", "float_resnet"):
            kw["blocks"] = tuple(self.blocks)
        if self.arch == "cnv":
            kw["fc_width"] = self.fc_width
        return kw


@dataclass(frozen=True)
class PrecisionConfig:
    precisions: tuple = (2, 4, 8)       # per-filter weight precisions (must be the preset's)
    avg_bits: float = 4.0               # budget: Σ p_f K / Σ K over stored filters
    assign_epoch: int = 1               # epoch (0-based) at whose start precision is assigned
    sensitivity_batches: int = 8        # batches for the Fisher estimate
    fixed_first_last: bool = True       # keep the first conv and the logits layer at the top precision


@dataclass(frozen=True)
class PruningConfig:
    target: float = 0.5                 # fraction of all CIM weights masked at the end
    start_epoch: int = 2
    end_epoch: int = 10
    exclude_first_last: bool = True


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = 200
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    warmup_epochs: int = 1
    bn_freeze_epoch: Optional[int] = None  # from this epoch on, fold BN with running stats only
    label_smoothing: float = 0.0


@dataclass(frozen=True)
class DataConfig:
    root: Optional[str] = None          # CIFAR-10 folder (default $CIFAR10_DIR)
    train_limit: Optional[int] = None   # use the first N training images
    test_limit: Optional[int] = None
    augment: bool = True                # random crop (4-px zero padding) + horizontal flip
    eval_batch_size: int = 500


@dataclass(frozen=True)
class DistillConfig:
    teacher: Optional[str] = None       # a run folder or checkpoint.safetensors (any arch); None: no distillation
    alpha: float = 0.5                  # loss = (1 - alpha) * CE(labels) + alpha * T^2 * KL(teacher || student)
    temperature: float = 4.0            # T, softens both distributions


@dataclass(frozen=True)
class DualConfig:
    layers: str = "none"                # dual-path convs (DualNet): none | blocks (the residual blocks' 3x3 convs) | all (+ stem, shortcuts)
    mode: str = "fixed"                 # fixed: train at the ratios below | supernet: sample a ratio per layer per batch from ``ratios``
    ratios: tuple = (0, 1, 2, 3, 4, 5, 6, 7, 8)  # the discrete set of ratios q (ternary share q/8 of a layer's output channels)
    ratio: int = 4                      # q of every dual layer (fixed mode; the supernet's evaluation/export ratio)
    layer_ratios: Optional[tuple] = None  # q per dual layer in network order (overrides ``ratio``)
    bin_threshold: Optional[int] = None   # θ of the binary input b = x >= θ; null: 2^(bits_in - 1), the input's MSB
    tern_delta: float = 0.7             # initial ternary threshold ratio Δ_f / mean|W_f| (learned)
    int4_init: Optional[str] = None     # after init_from: every tensor of this run (or checkpoint) of the same network without dual-path layers (e.g. the uniform INT4 baseline) replaces the model's: INT4 paths, stem, shortcuts, fc, activation scales; the ternary paths keep init_from's

    def model_kwargs(self) -> dict:
        """Keyword options of the model builder (structure only: ratios are set by dualpath.configure_dual)."""
        if self.layers == "none":
            return {}
        return {"dual_layers": self.layers, "bin_threshold": self.bin_threshold, "tern_delta": self.tern_delta}

    def check(self, preset) -> None:
        """ConfigError naming the key unless the section is consistent (architecture.md §10.2 ratios 0..8)."""
        if self.layers not in ("none", "blocks", "all"):
            raise ConfigError(f"dual.layers={self.layers!r} must be none, blocks or all")
        if self.mode not in ("fixed", "supernet"):
            raise ConfigError(f"dual.mode={self.mode!r} must be fixed or supernet")
        if not self.ratios or len(set(self.ratios)) != len(self.ratios) or not all(0 <= q <= 8 for q in self.ratios):
            raise ConfigError(f"dual.ratios={list(self.ratios)} must be distinct ratios q in 0..8 (q/8 of the channels)")
        for q in (self.ratio, *(self.layer_ratios or ())):
            if q not in self.ratios:
                raise ConfigError(f"dual ratio {q} is outside the allowed set dual.ratios={list(self.ratios)}")
        if self.mode == "supernet" and len(self.ratios) < 2:
            raise ConfigError("dual.mode=supernet needs at least two dual.ratios to sample from")
        if self.bin_threshold is not None and not 1 <= self.bin_threshold <= 255:
            raise ConfigError(f"dual.bin_threshold={self.bin_threshold} must be in 1..255 (or null: the input's MSB)")
        if not 0 < self.tern_delta < 2:
            raise ConfigError(f"dual.tern_delta={self.tern_delta} must be in (0, 2)")
        if self.int4_init is not None and (self.layers == "none" or not isinstance(self.int4_init, str)
                                           or not self.int4_init):
            raise ConfigError("dual.int4_init names a run whose INT4 weights a dual-path model starts from: it needs "
                              f"dual.layers blocks or all and a path (got layers={self.layers!r}, "
                              f"int4_init={self.int4_init!r})")
        if self.layers != "none" and not preset.has_tern:
            raise ConfigError(f"dual.layers={self.layers!r} needs a preset with the second macro type "
                              f"(e.g. sun-mars-256-dual); preset {preset.name!r} has none")


@dataclass(frozen=True)
class TrainConfig:
    name: str = "model"
    seed: int = 0
    preset: str = "sun-mars-256"
    threads: Optional[int] = None       # torch.set_num_threads (None: torch's default)
    device: str = "auto"                # auto (cuda if available, per LOCAL_RANK) | cpu | cuda
    init_from: Optional[str] = None     # fine-tune: start from this run's checkpoint.safetensors (its
                                        # weights, scales, precision and masks; fresh optimizer and schedule)
    model: ModelConfig = field(default_factory=ModelConfig)
    precision: PrecisionConfig = field(default_factory=PrecisionConfig)
    pruning: PruningConfig = field(default_factory=PruningConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    dual: DualConfig = field(default_factory=DualConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def model_kwargs(self) -> dict:
        """Keyword options of ``build_model``: the model section's plus the dual section's structure."""
        return {**self.model.kwargs(), **self.dual.model_kwargs()}

    def validate(self) -> "TrainConfig":
        from ..spec.hardware import get_preset
        pr = get_preset(self.preset)
        bad = set(self.precision.precisions) - set(pr.precisions)
        if bad:
            raise ConfigError(f"precision.precisions {sorted(bad)} not in preset {pr.name!r} {pr.precisions}")
        if not min(self.precision.precisions) <= self.precision.avg_bits <= max(self.precision.precisions):
            raise ConfigError(f"precision.avg_bits={self.precision.avg_bits} outside the precision set")
        if not 0 <= self.pruning.target < 1:
            raise ConfigError(f"pruning.target={self.pruning.target} must be in [0, 1)")
        if self.pruning.target > 0 and self.pruning.start_epoch < self.precision.assign_epoch:
            raise ConfigError("pruning.start_epoch must be >= precision.assign_epoch (units follow the packing)")
        if self.model.arch.startswith("float_") and self.pruning.target > 0:
            raise ConfigError(f"model.arch={self.model.arch!r} is a float teacher: pruning.target must be 0")
        if not 1 <= self.model.act_bits <= 8:
            raise ConfigError(f"model.act_bits={self.model.act_bits} must be in 1..8")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device={self.device!r} must be auto, cpu or cuda")
        if not 0 <= self.distill.alpha <= 1 or self.distill.temperature <= 0:
            raise ConfigError(f"distill.alpha={self.distill.alpha} must be in [0, 1] and "
                              f"distill.temperature={self.distill.temperature} > 0")
        if self.optim.epochs < 1 or self.optim.batch_size < 1:
            raise ConfigError("optim.epochs and optim.batch_size must be >= 1")
        self.dual.check(pr)
        if self.dual.layers != "none" and (self.pruning.target > 0 or not self.model.arch.startswith("resnet")):
            raise ConfigError("dual.layers needs a resnet arch with pruning.target 0 (the dual paths are dense)")
        return self


CONFIG_MAX_BYTES = 64 << 10
"""A config is a few KB; the cap bounds the parse (libyaml: milliseconds; pure-Python PyYAML: < 0.5 s)."""
MAX_DEPTH = 32
_INT_LIMIT = 1 << 62
_SCALARS = {"int": int, "float": float, "bool": bool, "str": str, "tuple": tuple}


def _check_value(key: str, annotation: str, v: Any) -> Any:
    """``v`` checked against a field annotation ("int", "Optional[tuple]", ...); lists become tuples."""
    optional = annotation.startswith("Optional[")
    base = annotation[9:-1] if optional else annotation
    if v is None:
        if optional:
            return None
        raise ConfigError(f"{key} must be a {base}, got null")
    want = _SCALARS[base]
    if want is float and isinstance(v, str) and len(v) <= 40:  # PyYAML reads 5e-4 (no dot) as a string
        try:
            v = float(v)
        except ValueError:
            pass
    ok = (type(v) is want or (want is float and type(v) is int)
          or (want is tuple and isinstance(v, (list, tuple))))
    if not ok:
        raise ConfigError(f"{key} must be a {'list' if want is tuple else base}"
                          f"{' or null' if optional else ''}, got {type(v).__name__}")
    if want is tuple:
        if len(v) > 64 or not all(type(x) is int and abs(x) < _INT_LIMIT for x in v):
            raise ConfigError(f"{key} must be a list of at most 64 integers")
        return tuple(v)
    if want is int and abs(v) >= _INT_LIMIT:
        raise ConfigError(f"{key} is out of range")
    if want is float:
        if (type(v) is int and abs(v) >= _INT_LIMIT) or not math.isfinite(v):
            raise ConfigError(f"{key} must be a finite number, got {str(v)[:20]}")
        return float(v)
    if want is str and len(v) > 4096:
        raise ConfigError(f"{key} is longer than 4096 characters")
    return v


def _build(cls, d: Any, where: str):
    if not isinstance(d, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(repr(k)[:40] for k in set(d) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown[:10])} in {where or 'config'} (known: {sorted(fields)})")
    kw = {}
    for k, v in d.items():
        f = fields[k]
        key = f"{where}.{k}" if where else k
        sub = f.default_factory if f.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]
        if sub is not None and dataclasses.is_dataclass(sub):
            kw[k] = _build(sub, v, key)
        else:
            kw[k] = _check_value(key, str(f.type), v)
    return cls(**kw)


def config_from_dict(d: dict) -> TrainConfig:
    """A validated TrainConfig from a plain mapping."""
    return _build(TrainConfig, d or {}, "").validate()


def _safe_loader():
    """yaml's safe loader (libyaml's when built in: it limits nesting itself), else a pure-Python
    SafeLoader that refuses nesting deeper than :data:`MAX_DEPTH` (no RecursionError)."""
    import yaml
    if getattr(yaml, "__with_libyaml__", False):
        return yaml.CSafeLoader

    class DepthLimitedSafeLoader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent, index):  # noqa: D102 (the composer recurses per level)
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    raise ConfigError(f"YAML nested deeper than {MAX_DEPTH} levels")
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1
    return DepthLimitedSafeLoader


def load_config(path: str | Path) -> TrainConfig:
    """Load a YAML config file (bounds and checks: the module docstring); ConfigError on any defect,
    FileNotFoundError when it is missing."""
    import yaml

    from ..fileio import FileError, read_regular_file
    try:
        raw = read_regular_file(path, CONFIG_MAX_BYTES, "training config")
    except FileError as e:
        raise ConfigError(str(e)) from None
    try:
        text = raw.decode("utf-8")
        d = yaml.load(text, Loader=_safe_loader())
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(e).split())[:200]})") from None
    except (RecursionError, ValueError, OverflowError) as e:
        raise ConfigError(f"{path}: not a readable YAML config ({type(e).__name__}: {str(e)[:120]})") from None
    try:
        return config_from_dict(d or {})
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
