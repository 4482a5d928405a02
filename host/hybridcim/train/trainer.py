"""The QAT training loop: deterministic, resumable, optionally distributed (torchrun).

Per epoch e (0-based): precision assignment at ``precision.assign_epoch``, a pruning step
while the schedule ramps, BN freeze from ``optim.bn_freeze_epoch``, one pass over the
shuffled, augmented training set, evaluation of the exact integer model on the test set,
then an atomic checkpoint (``OUT/checkpoint.safetensors``) and the metrics CSV
(``OUT/metrics.csv``, rewritten from the history stored in the checkpoint), the training
curve (``OUT/curve.png``, when matplotlib is installed) and one line on stderr (with or
without the progress bar: a background run's log shows where it is). Shuffling and
augmentation draw from generators seeded by (seed, epoch), so a run resumed after a kill
(``resume=True``) continues exactly as the uninterrupted run would have. At the end the
model is exported to ``OUT/model/`` (integer model + QONNX).

Fine-tuning (``init_from``): a fresh run (epoch 0, new optimizer, its own LR schedule) whose
model starts as the given checkpoint's: weights, BN statistics, activation scales
(calibration done), per-filter precision and pruning masks. The precision assignment is
kept when the source run had made it (masks only grow, so the pruning schedule can only
add to the source's sparsity); BN is frozen by the fine-tune's own ``optim.bn_freeze_epoch``, not
the source's. The source must have the same model and preset.

Post-training quantization: ``init_from`` may name a *float* ResNet checkpoint (``model.arch:
float_resnet20``, float_models.py) for a ``resnet`` config of the same shape: its weights and BN
state are copied into the CIM model (ptq.py); precision is assigned at ``precision.assign_epoch``
and the activation scales are calibrated by the first ``model.calib_steps`` steps, as in a fresh
run. With ``optim.lr: 0`` and ``optim.bn_freeze_epoch: 0`` nothing is trained: the run is plain
PTQ (configs/resnet20_w8a8_ptq.yaml).

Distillation (``distill.teacher``): a trained run of any architecture, loaded from its
checkpoint (with the model config stored in it) and frozen in eval mode; the loss becomes
``(1 - alpha) * CE + alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T))`` (Hinton
et al. 2015). The teacher's logits are computed on the same augmented batch. A float
teacher (``model.arch: float_resnet20``, float_models.py) trains with this same loop, without
precision assignment, pruning or export (its metrics report 32 bits, 0 sparsity).
"""
from __future__ import annotations

import csv
import io
import math
import os
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from ..spec.hardware import get_preset
from .checkpoint import (CHECKPOINT, CheckpointError, load_model_state, load_optimizer_state, read_checkpoint,
                         run_checkpoint, save_checkpoint)
from .config import TrainConfig
from .models import CIMNet, build_model
from .precision import assign_precision, average_bits, fisher_diag, sensitivity
from .pruning import prune_model, schedule, sparsity

METRICS = ("epoch", "lr", "train_loss", "train_acc", "test_acc", "avg_bits", "sparsity", "seconds")


def augment(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop with ``pad``-px zero padding + random horizontal flip of uint8 NCHW images."""
    n, c, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    rows = (oy[:, None] + torch.arange(h))[:, :, None]
    cols = ox[:, None] + torch.arange(w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, :]
    out = xp.permute(0, 2, 3, 1)[torch.arange(n)[:, None, None], rows, cols]  # (n, h, w, c)
    return out.permute(0, 3, 1, 2).contiguous()


def format_duration(seconds: float) -> str:
    """'3 h 05 min', '12 min', '40 s'.

    >>> format_duration(11100), format_duration(725), format_duration(40)
    ('3 h 05 min', '12 min', '40 s')
    """
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 60} min" if s >= 60 else f"{s} s"


def parse_duration(text: str) -> float:
    """Seconds in a duration: a number of seconds, or parts with units h, m(in), s.

    >>> parse_duration("5400"), parse_duration("1h30m"), parse_duration("90m"), parse_duration("2.5h"), parse_duration("45 s")
    (5400.0, 5400.0, 5400.0, 9000.0, 45.0)
    """
    import re
    t = text.strip().lower().replace(" ", "")
    try:
        total = float(t)
    except ValueError:
        parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?:in)?)?(?:(\d+(?:\.\d+)?)s)?", t)
        if not t or parts is None:
            raise ValueError(f"{text!r} is not a duration (e.g. 3600, 90m, 2h, 1h30m, 45s)") from None
        h, m, sec = (float(g) if g else 0.0 for g in parts.groups())
        total = 3600 * h + 60 * m + sec
    if not math.isfinite(total) or total <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return total


def lr_at(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Linear warmup then cosine decay to 0, per step."""
    o = cfg.optim
    total = o.epochs * steps_per_epoch
    warm = o.warmup_epochs * steps_per_epoch
    if step < warm:
        return o.lr * (step + 1) / warm
    t = (step - warm) / max(total - warm, 1)
    return 0.5 * o.lr * (1 + math.cos(math.pi * min(t, 1.0)))


def load_data(cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train images uint8, labels int64, test images, test labels) in memory."""
    from ..data import load_cifar10
    xtr, ytr = load_cifar10(cfg.data.root, "train", cfg.data.train_limit)
    xte, yte = load_cifar10(cfg.data.root, "test", cfg.data.test_limit)
    t = lambda a: torch.from_numpy(a)
    return t(xtr), t(ytr).long(), t(xte), t(yte).long()


def as_input(x: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW images -> the model's float input (pixel / 256). On the CPU in channels-last
    memory (oneDNN's convolutions run ~1.2x faster per training step; the values are the same)."""
    x = x.float() / 256.0
    return x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" else x


def evaluate(model: CIMNet, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of the exact integer model (eval mode) on uint8 images."""
    was = model.training
    model.eval()
    correct = 0
    dev = next(model.parameters()).device
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            logits = model(as_input(x[i:i + batch_size].to(dev)))
            correct += int((logits.argmax(1).cpu() == y[i:i + batch_size]).sum())
    model.train(was)
    return correct / max(len(x), 1)


def load_teacher(path: Path, device: torch.device) -> torch.nn.Module:
    """The model of a trained run (rebuilt from the config in its checkpoint), frozen, in eval mode."""
    from .export import model_from_checkpoint
    try:
        teacher, _ = model_from_checkpoint(path)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"distill.teacher: {e}") from None
    return teacher.to(device).eval().requires_grad_(False)


def distill_loss(logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, alpha: float,
                 temperature: float, label_smoothing: float = 0.0) -> torch.Tensor:
    """(1 - alpha) * CE(labels) + alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)), batch mean."""
    ce = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    t = temperature
    kl = F.kl_div(F.log_softmax(logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1),
                  reduction="batchmean", log_target=True)
    return (1 - alpha) * ce + alpha * t * t * kl


def _plain(x):
    """A config value as JSON would give it back (tuples become lists)."""
    import json
    return json.loads(json.dumps(x))


def _with_defaults(saved: dict, defaults: dict) -> dict:
    """``saved`` with every key it lacks (at any depth) taken from ``defaults``."""
    out = dict(defaults)
    for k, v in saved.items():
        out[k] = _with_defaults(v, defaults[k]) if isinstance(v, dict) and isinstance(defaults.get(k), dict) else v
    return out


def _check_same_config(cfg: TrainConfig, saved: dict) -> None:
    """Refuse to resume a run under a different config (machine-local keys may change).

    A key the checkpoint lacks (written before the key existed) counts as its default value.
    """
    local = {"threads", "device"}
    now = _plain(cfg.to_dict())
    saved = _with_defaults(saved, _plain(TrainConfig().to_dict()))
    diff = sorted(k for k in set(now) | set(saved) if k not in local and now.get(k) != saved.get(k)
                  and not (k == "data" and {**now[k], "root": None} == {**saved.get(k, {}), "root": None}))
    if diff:
        raise ValueError(f"--resume: the config differs from the checkpoint's in {diff}; use the run's config")


def _read_source(path: Path, what: str) -> tuple[Path, dict, dict, dict]:
    """(checkpoint path, tensors, metadata, its config dict) of a run another run starts from (``what``: the
    config key naming it, for the error)."""
    try:
        path = run_checkpoint(path)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{what}: {e}") from None
    tensors, meta = read_checkpoint(path)
    return path, tensors, meta, meta.get("config", {})


def _precision_assigned(meta: dict, src: dict) -> bool:
    """Whether a source run had made its per-filter precision assignment (it ran past assign_epoch)."""
    return int(meta.get("epoch", 0)) > int(src.get("precision", {}).get("assign_epoch", 0))


class NonFiniteTrainingError(RuntimeError):
    """The training loss or a gradient became NaN or infinite: the run diverged and was stopped."""


def check_finite_step(loss: torch.Tensor, named_params, epoch: int, step: int, steps: int, lr: float) -> None:
    """Raise NonFiniteTrainingError naming the epoch (1-based), step and the first non-finite value
    (the loss, else the first parameter whose gradient is non-finite); called before the optimizer step,
    so no weight ever takes a non-finite value."""
    where = f"epoch {epoch}, step {step}/{steps} (lr {lr:g})"
    tail = "; training stopped before the optimizer step, no checkpoint written for this epoch"
    value = float(loss.detach())
    if not math.isfinite(value):
        raise NonFiniteTrainingError(f"{where}: the training loss became non-finite ({value}){tail}")
    for name, p in named_params:
        if p.grad is not None and not bool(torch.isfinite(p.grad).all()):
            raise NonFiniteTrainingError(f"{where}: the gradient of {name} became non-finite (loss {value:.4g}){tail}")


class Trainer:
    """``Trainer(cfg, out_dir, resume).run()`` -> final metrics dict."""

    def __init__(self, cfg: TrainConfig, out_dir: str | os.PathLike, resume: bool = False, progress: bool = True,
                 data=None, stop_after_epochs: int | None = None, time_limit_s: float | None = None):
        self.t_start = time.time()
        self.cfg, self.out, self.resume, self.show = cfg, Path(out_dir), resume, progress
        self.stop_after, self.time_limit = stop_after_epochs, time_limit_s
        self.epoch_seconds: list[float] = []  # wall time of each epoch run by this process
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.preset = get_preset(cfg.preset)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg.model.arch, **cfg.model_kwargs())
        self.compressed = isinstance(self.model, CIMNet)  # else a float teacher: no compression, no export
        self.device = self._device()
        self.data = data
        self.epoch, self.history = 0, []
        ckpt = self.out / CHECKPOINT
        loaded = None
        if resume and ckpt.exists():
            # the optimizer must be built after loading: Brevitas replaces its scale Parameters on load
            loaded = read_checkpoint(ckpt)
            _check_same_config(cfg, loaded[1].get("config", {}))
            load_model_state(self.model, loaded[0])
        self.precision_from_init = False
        if cfg.init_from and loaded is None:
            self.precision_from_init = self._init_from(Path(cfg.init_from))
        if cfg.dual.int4_init and loaded is None:
            self.precision_from_init = self._int4_init(Path(cfg.dual.int4_init))
        if cfg.dual.layers != "none":  # DualNet: this config's ratios / supernet sampling (dualpath.py)
            from .dualpath import configure_dual
            configure_dual(self.model, cfg.dual, cfg.seed)
        self.model.to(self.device)
        self.teacher = load_teacher(Path(cfg.distill.teacher), self.device) if cfg.distill.teacher else None
        if self.compressed:
            decay = [p for n, p in self.model.named_parameters() if n.startswith("cim.") and n.endswith(".weight")]
            self.model.inp.requires_grad_(False)  # fixed 2^-8 input scale (a load may re-create the Parameter)
            other = [p for n, p in self.model.named_parameters()
                     if not n.startswith("inp.") and not (n.startswith("cim.") and n.endswith(".weight"))]
        else:  # weight decay on conv and linear weights
            decay = [p for p in self.model.parameters() if p.ndim > 1]
            other = [p for p in self.model.parameters() if p.ndim <= 1]
        o = cfg.optim
        self.opt = torch.optim.SGD([{"params": decay, "weight_decay": o.weight_decay},
                                    {"params": other, "weight_decay": 0.0}],
                                   lr=o.lr, momentum=o.momentum, nesterov=o.nesterov and o.momentum > 0)
        if loaded is not None:
            tensors, meta = loaded
            load_optimizer_state(self.opt, tensors, meta)
            torch.set_rng_state(tensors["rng/torch"])
            self.epoch, self.history = int(meta["epoch"]), list(meta.get("history", []))
            self.precision_from_init = bool(meta.get("precision_from_init", False))

    # ---------------------------------------------------------------- helpers
    def _init_from(self, path: Path) -> bool:
        """Load the fine-tune source's model state; True when its precision was already assigned."""
        path, tensors, meta, src = _read_source(path, "init_from")
        mine = self.cfg.to_dict()
        src_arch = str(src.get("model", {}).get("arch", ""))
        if self.compressed and src_arch.startswith("float_"):  # post-training quantization of a float model
            from .ptq import load_float_into_cim
            blocks = (3, 3, 3) if self.cfg.model.arch == "resnet20" else tuple(self.cfg.model.blocks or (3, 3, 3))
            if not self.cfg.model.arch.startswith("resnet"):
                raise ValueError(f"init_from: {path} is a float {src_arch} model; only a resnet can start from it")
            load_float_into_cim(self.model, {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")},
                                blocks)
            return False  # a float model has no per-filter precision: assigned at precision.assign_epoch
        for key in ("model", "preset"):
            if src.get(key) is not None and _plain(src[key]) != _plain(mine[key]):
                raise ValueError(f"init_from: {path} was trained with {key}={src[key]!r}, this config has "
                                 f"{mine[key]!r}; fine-tune needs the same {key}")
        load_model_state(self.model, tensors)
        return _precision_assigned(meta, src)

    def _int4_init(self, path: Path) -> bool:
        """``dual.int4_init``: load every tensor of a run of the same network without dual-path layers into
        this dual-path model (the INT4 paths and everything else); only the ternary paths and the ratio
        buffers keep what the model had. True when that run's precision was assigned."""
        path, tensors, meta, src = _read_source(path, "dual.int4_init")
        if src.get("dual", {}).get("layers", "none") != "none":
            raise ValueError(f"dual.int4_init: {path} has dual-path layers; it must be a run without them "
                             "(e.g. the uniform INT4 baseline)")
        if src.get("model") is not None and _plain(src["model"]) != _plain(self.cfg.to_dict()["model"]):
            raise ValueError(f"dual.int4_init: {path} was trained with model={src['model']!r}, this config has "
                             f"{self.cfg.to_dict()['model']!r}; it needs the same network")
        state = {k[6:]: v for k, v in tensors.items() if k.startswith("model/")}
        try:  # Brevitas's load hooks take the activation scales even where a fresh model lists none
            res = self.model.load_state_dict(state, strict=False)
        except RuntimeError as e:
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
            raise CheckpointError(f"dual.int4_init: {path} does not fit the model: "
                                  f"{' '.join(lines[1:3] or lines)[:300]}") from None
        dual_only = ("ratio", "allowed", "sample_step", "sample_seed", "sample_salt")
        missing = [k for k in res.missing_keys if ".tern." not in k and k.rsplit(".", 1)[-1] not in dual_only]
        if missing or res.unexpected_keys:
            what = f"lacks {missing[:3]}" if missing else f"has {res.unexpected_keys[:3]}, which the model has not"
            raise CheckpointError(f"dual.int4_init: {path} does not fit the model: it {what}")
        return _precision_assigned(meta, src)

    def _device(self) -> torch.device:
        want = self.cfg.device
        if want == "cpu" or (want == "auto" and not torch.cuda.is_available()):
            return torch.device("cpu")
        if want == "cuda" and not torch.cuda.is_available():
            raise ValueError("device: cuda requested but torch sees no GPU")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))

    def _ddp(self):
        if self.world <= 1:
            return self.model
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel
        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        ids = [self.device.index] if self.device.type == "cuda" else None
        # a dual-path model leaves one path's parameters unused in a step (its ratio puts no channel there)
        return DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=self.cfg.dual.layers != "none")

    def _sync_from_rank0(self) -> None:
        import torch.distributed as dist
        with torch.no_grad():
            for t in list(self.model.parameters()) + list(self.model.buffers()):
                dist.broadcast(t.data, 0)

    def _fixed_layers(self) -> set[str]:
        names = [n for n, _ in self.model.cim_layers()]
        return {names[0], names[-1]}

    def _compression_step(self, e: int, xtr, ytr) -> None:
        if not self.compressed:
            return
        cfg, pc = self.cfg, self.cfg.precision
        if e == pc.assign_epoch and not self.precision_from_init:
            g = torch.Generator().manual_seed(cfg.seed * 7919 + 17)
            idx = torch.randperm(len(xtr), generator=g)[:pc.sensitivity_batches * cfg.optim.batch_size]
            bs = cfg.optim.batch_size
            dev = self.device
            batches = [(as_input(xtr[idx[i:i + bs]].to(dev)), ytr[idx[i:i + bs]].to(dev))
                       for i in range(0, len(idx), bs)]
            omega = sensitivity(self.model, fisher_diag(self.model, batches), pc.precisions)
            fixed = self._fixed_layers() if pc.fixed_first_last else set()
            assign_precision(self.model, omega, pc.precisions, pc.avg_bits, self.preset.group_width, fixed)
        pr = cfg.pruning
        if pr.target > 0 and pr.start_epoch <= e <= pr.end_epoch:
            excl = self._fixed_layers() if pr.exclude_first_last else set()
            prune_model(self.model, schedule(e, pr.target, pr.start_epoch, pr.end_epoch),
                        self.preset.rows_active, self.preset.group_width, excl, avg_bits=pc.avg_bits)
        # BN frozen exactly from this run's bn_freeze_epoch: a fine-tune of a run that had frozen its BN
        # (init_from loads the flag) trains with batch statistics until its own schedule freezes them
        frozen = cfg.optim.bn_freeze_epoch is not None and e >= cfg.optim.bn_freeze_epoch
        for _, l in self.model.cim_layers():
            l.bn_frozen.fill_(frozen)

    def _pace(self) -> float:
        """Seconds per epoch: the mean of this process's last five (a resumed run's history may come
        from another machine)."""
        recent = self.epoch_seconds[-5:]
        return sum(recent) / len(recent)

    def _out_of_time(self, e: int) -> bool:
        """True when epoch ``e`` (0-based) would, at ``_pace()``, end past the time limit (seconds since
        the Trainer was made). Rank 0 decides for all ranks."""
        if self.time_limit is None:
            return False
        pace = self._pace()
        elapsed = time.time() - self.t_start
        stop = elapsed + pace > self.time_limit
        if self.world > 1:
            import torch.distributed as dist
            flag = torch.tensor([int(stop)], device=self.device if self.device.type == "cuda" else "cpu")
            dist.broadcast(flag, 0)
            stop = bool(flag.item())
        if stop and self.rank == 0:
            print(f"stopping after epoch {e}: epoch {e + 1} (about {format_duration(pace)}) would end past the "
                  f"time limit ({format_duration(self.time_limit)}, {format_duration(elapsed)} used); "
                  "--resume continues", file=sys.stderr, flush=True)
        return stop

    def _log_epoch(self, row: dict) -> None:
        """One line per epoch on stderr: metrics and the time left at the recent epochs' pace."""
        left = (self.cfg.optim.epochs - row["epoch"]) * self._pace()
        print(f"epoch {row['epoch']}/{self.cfg.optim.epochs}: loss {row['train_loss']:.4f}, "
              f"train {row['train_acc']:.2%}, test {row['test_acc']:.2%}, {row['avg_bits']:.2f} avg bits, "
              f"{row['sparsity']:.1%} pruned, lr {row['lr']:.4g}, {row['seconds']:.0f} s "
              f"(about {format_duration(left)} left)", file=sys.stderr, flush=True)

    def _plot_curve(self) -> None:
        """OUT/curve.png; a convenience: a missing matplotlib or a failed plot never stops training."""
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            return
        from ..plots import plot_training_curve
        try:
            plot_training_curve(self.out / "metrics.csv", self.out / "curve.png", title=self.cfg.name)
        except Exception as e:  # noqa: BLE001  (disk full, broken fonts, ...): warn and train on
            warnings.warn(f"training curve not written: {type(e).__name__}: {e}")

    def _write_metrics(self) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=METRICS)
        w.writeheader()
        for row in self.history:
            w.writerow(row)
        tmp = self.out / ".metrics.csv.tmp"
        tmp.write_text(buf.getvalue())
        os.replace(tmp, self.out / "metrics.csv")

    # ---------------------------------------------------------------- main loop
    def run(self) -> dict:
        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        xtr, ytr, xte, yte = self.data if self.data is not None else load_data(cfg)
        net = self._ddp()
        bs = cfg.optim.batch_size
        shard = bs // self.world if self.world > 1 else bs
        steps = len(xtr) // bs
        if steps < 1:
            raise ValueError(f"{len(xtr)} training images are fewer than one batch of {bs}")
        if steps <= cfg.model.calib_steps and self.epoch == 0:
            raise ValueError(f"model.calib_steps={cfg.model.calib_steps} must be < steps per epoch ({steps}) so that "
                             "every checkpoint is past activation-scale calibration (exact resume)")
        last = cfg.optim.epochs if self.stop_after is None else min(cfg.optim.epochs, self.epoch + self.stop_after)
        for e in range(self.epoch, last):
            if self.epoch_seconds and self._out_of_time(e):
                break
            t0 = time.time()
            self._compression_step(e, xtr, ytr)
            self.model.train()
            g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + e)
            perm = torch.randperm(len(xtr), generator=g)
            bar = None
            if self.show and self.rank == 0:
                from ..progress import progress
                bar = progress(steps * bs, f"epoch {e + 1}/{cfg.optim.epochs}")
            loss_sum, correct, seen = 0.0, 0, 0
            for s in range(steps):
                idx = perm[s * bs:(s + 1) * bs]
                xb = xtr[idx]
                xb = augment(xb, g) if cfg.data.augment else xb
                yb = ytr[idx]
                if self.world > 1:
                    xb, yb = xb[self.rank * shard:(self.rank + 1) * shard], yb[self.rank * shard:(self.rank + 1) * shard]
                xb, yb = xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True)
                lr = lr_at(cfg, e * steps + s, steps)
                for group in self.opt.param_groups:
                    group["lr"] = lr
                xf = as_input(xb)
                logits = net(xf)
                if self.teacher is None:
                    loss = F.cross_entropy(logits, yb, label_smoothing=cfg.optim.label_smoothing)
                else:
                    with torch.no_grad():
                        t_logits = self.teacher(xf)
                    loss = distill_loss(logits, t_logits, yb, cfg.distill.alpha, cfg.distill.temperature,
                                        cfg.optim.label_smoothing)
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                check_finite_step(loss, self.model.named_parameters(), e + 1, s + 1, steps, lr)
                self.opt.step()
                if self.world > 1 and e == 0 and s == cfg.model.calib_steps:
                    self._sync_from_rank0()  # activation scales were initialized from rank-local statistics
                loss_sum += loss.item() * len(yb)
                correct += int((logits.detach().argmax(1) == yb).sum())
                seen += len(yb)
                if bar is not None:
                    bar.update(bs)
                    if s % 10 == 0:
                        bar.set_postfix_str(f"loss {loss_sum / seen:.3f} acc {correct / seen:.3f} lr {lr:.4f}")
            if bar is not None:
                bar.close()
            acc = evaluate(self.model, xte, yte, cfg.data.eval_batch_size) if len(xte) else float("nan")
            row = {"epoch": e + 1, "lr": lr, "train_loss": loss_sum / seen, "train_acc": correct / seen,
                   "test_acc": acc, "avg_bits": average_bits(self.model) if self.compressed else 32.0,
                   "sparsity": sparsity(self.model) if self.compressed else 0.0,
                   "seconds": round(time.time() - t0, 3)}
            self.epoch_seconds.append(row["seconds"])
            self.history.append(row)
            self.epoch = e + 1
            if self.rank == 0:
                save_checkpoint(self.out / CHECKPOINT, self.model, self.opt,
                                {"epoch": self.epoch, "history": self.history, "config": cfg.to_dict(),
                                 "precision_from_init": self.precision_from_init})
                self._write_metrics()
                self._plot_curve()
                self._log_epoch(row)
        if self.epoch >= cfg.optim.epochs and self.rank == 0 and self.compressed:
            from .export import export_model
            self.model.cpu()
            export_model(self.model, self.out / "model", cfg.preset, cfg.name,
                         {"config": cfg.to_dict(), "epoch": self.epoch, "final": self.history[-1] if self.history else None})
        return self.history[-1] if self.history else {}
