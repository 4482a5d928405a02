"""Ship a trained model as package data: ``models/<name>/`` (numpy only).

A shipped model folder holds what every executor and check needs, and nothing
pickled: ``model.cim`` + ``model.cim.json`` (the program), ``integer_model.json`` +
``integer_model.npz`` (the exported integer model: the Brevitas reference is rebuilt from
it), ``model.onnx`` (its QONNX export), ``config.yaml`` (the training config), ``metrics.csv`` (the training curve) and
``card.json``: the measured facts (accuracy through the emulator on the whole CIFAR-10
test set, average bits, structural sparsity), which the tests check against the program.

    hybridcim ship runs/r8 --name NAME --config CONFIG.yaml --data DIR [--curve PNG] [--verify]
"""
from __future__ import annotations

import datetime
import json
import shutil
import tempfile
from pathlib import Path

from ..compiler import compile_model, load_integer_model
from ..compiler.integer_model import find_model_files
from ..compiler.report import program_compression
from ..program import read_program, write_program
from . import MODELS_DIR


def measure_accuracy(program_path: Path, data_root, batch_size: int = 250, show_progress: bool = False) -> dict:
    """Top-1 accuracy of the program on the CIFAR-10 test set through the fast emulator."""
    from ..data import Cifar10
    from ..emulator import FastEmulator
    from ..progress import progress
    prog = read_program(program_path)
    emu = FastEmulator(prog)
    correct = n = 0
    data = Cifar10(data_root, "test")
    with progress(len(data), f"accuracy of {prog.name}", disable=not show_progress) as bar:
        for images, labels in data.batches(batch_size):
            correct += int((emu.run(images).outputs.argmax(axis=1) == labels).sum())
            n += len(images)
            bar.update(len(images))
    return {"images": n, "correct": correct, "accuracy": correct / n if n else float("nan")}


class ShipVerificationError(ValueError):
    """An executor disagreed with its reference on the model being shipped; nothing was shipped."""


def verify_executors(folder: Path, data_root, show_progress: bool = False, qonnx: bool = False,
                     limit: int | None = None) -> dict:
    """Whole CIFAR-10 test set: emulator == Brevitas reference and csim == emulator, logits and counters;
    with ``qonnx`` also emulator == ``qonnx.execute_onnx`` on the folder's ``model.onnx`` (logits; 32
    images per call, a few minutes for a ResNet-20 on one core). ``limit``: the first N test images
    only (tests; shipping always checks all of them).

    Returns the card's ``verified`` entry; raises ShipVerificationError on any disagreement and
    ValueError when torch/brevitas, qonnx, ``model.onnx`` or the csim toolchain is missing.
    """
    from ..runtime import EmulatorDevice, Session
    from ..runtime.csim_device import CSimDevice
    from ..runtime.errors import DeviceError
    try:
        from ..train.reference import load_brevitas_reference
    except ImportError as e:
        raise ValueError(f"verification needs torch and brevitas (pip install -e '.[train]'): {e}") from None
    prog = read_program(folder / "model.cim")
    out = {}
    with EmulatorDevice() as emu:
        emu.load(prog)
        brevitas = load_brevitas_reference(folder)
        rep = Session(emu, brevitas, "brevitas", show_progress=show_progress).run_cifar10(data_root, limit)
        out["emulator_vs_brevitas"] = {"images": rep.images, "agree": rep.agree, "correct": rep.correct}
        reports = [rep]
        try:
            dev = CSimDevice(prog.preset)
        except DeviceError as e:
            raise ValueError(f"verification needs the csim backend (g++ and hls4ml): {e}") from None
        with dev:
            dev.load(prog)
            rep = Session(dev, emu, "emulator", show_progress=show_progress).run_cifar10(data_root, limit)
        out["csim_vs_emulator"] = {"images": rep.images, "agree": rep.agree, "counters_agree": rep.counters_agree}
        reports.append(rep)
        if qonnx:
            if not (folder / "model.onnx").is_file():
                raise ValueError("--verify-qonnx: the run exported no model.onnx (hybridcim export writes it)")
            try:
                from ..train.qonnx_export import QonnxReference
            except ImportError as e:
                raise ValueError(f"verification against QONNX needs qonnx (pip install -e '.[train]'): {e}") from None
            ref = QonnxReference(folder / "model.onnx", prog.metadata["logit_exponent"])
            rep = Session(emu, ref, "qonnx", show_progress=show_progress).run_cifar10(data_root, limit)
            out["emulator_vs_qonnx"] = {"images": rep.images, "agree": rep.agree}
            reports.append(rep)
    bad = [r.summary() for r in reports if not r.ok]
    if bad:
        raise ShipVerificationError("not shipped: " + " | ".join(bad))
    return out


def stage_history(earlier: list[tuple[str | Path, str | Path]], metrics: Path) -> tuple[str, list[dict]]:
    """One metrics CSV over all stages of a model trained in stages (each a fine-tune of the one
    before): ``earlier`` = [(config, metrics.csv)] in order, ``metrics`` = the final run's. Epochs
    are renumbered continuously and a ``stage`` column (1, 2, ...) is added. Returns (CSV text,
    [{"config": file name in the model folder, "epochs": n}] per stage)."""
    import csv
    import io
    rows, stages = [], []
    sources = [(Path(m), f"config-stage{i + 1}.yaml") for i, (_, m) in enumerate(earlier)]
    for i, (path, config_name) in enumerate(sources + [(metrics, "config.yaml")]):
        if not path.is_file():
            raise FileNotFoundError(f"stage {i + 1}: metrics {path} not found")
        with open(path) as f:
            got = list(csv.DictReader(f))
        if not got or "epoch" not in got[0] or [int(r["epoch"]) for r in got] != list(range(1, len(got) + 1)):
            raise ValueError(f"stage {i + 1}: {path} is not a trainer's metrics.csv (epochs 1, 2, ... expected)")
        offset = len(rows)
        rows += [dict(r, epoch=int(r["epoch"]) + offset, stage=i + 1) for r in got]
        stages.append({"config": config_name, "epochs": len(got)})
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue(), stages


def _keep_training_files(files: list[str | Path], folder: Path) -> list[str]:
    """Copy ``files`` into ``folder`` (made if needed); returns their names. Two files of one name are refused."""
    names: list[str] = []
    for f in map(Path, files):
        if not f.is_file():
            raise ValueError(f"--keep-training: {f} is not a file")
        if f.name in names:
            raise ValueError(f"--keep-training: a second file named {f.name}")
        folder.mkdir(exist_ok=True)
        shutil.copy2(f, folder / f.name)
        names.append(f.name)
    return names


def ship(run_dir: str | Path, name: str, config: str | Path, data_root, preset: str | None = None,
         models_dir: str | Path = MODELS_DIR, verify: bool = False, show_progress: bool = False,
         verify_qonnx: bool = False, earlier_stages: list[tuple[str | Path, str | Path]] = (),
         keep_training: list[str | Path] = ()) -> Path:
    """Compile the run's exported model into ``models_dir/name`` and write its card.

    ``earlier_stages``: [(config, metrics.csv)] of the stages this run fine-tuned from
    (``init_from``), in order; their configs are shipped as ``config-stage<i>.yaml``, the
    metrics become one history (:func:`stage_history`) and the card lists the stages.
    ``keep_training``: files copied into the model's ``training/`` folder (the recipe's inputs,
    e.g. a stage's starting checkpoint or a distillation teacher, so the paths in the shipped
    configs resolve; kept in the repository, not installed as package data). They may be read
    from the folder being replaced.

    The folder is built beside the old one and swapped in by two renames; if the second fails the
    old folder is put back. A run folder inside ``models_dir/name`` is refused (shipping would
    delete the run it reads). ``verify``: first check every executor on the whole test set
    (:func:`verify_executors`; ``verify_qonnx``: QONNX too); the card records the result, and a
    disagreement ships nothing.
    """
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    dest = models_dir / name
    if Path(run_dir).resolve().is_relative_to(dest.resolve()):
        raise ValueError(f"run folder {run_dir} is inside {dest}, which shipping replaces: move the run out first")
    src = find_model_files(run_dir)
    im = load_integer_model(src)
    prog = compile_model(im, preset)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=models_dir))
    tmp.chmod(0o755)
    try:
        write_program(prog, tmp / "model.cim")
        for f in (src, src.with_suffix(".npz"), src.parent / "model.onnx"):
            if f.is_file():
                shutil.copy2(f, tmp / f.name)
        shutil.copy2(config, tmp / "config.yaml")
        metrics = Path(run_dir) / "metrics.csv"
        stages = None
        if earlier_stages:
            history, stages = stage_history(list(earlier_stages), metrics)
            (tmp / "metrics.csv").write_text(history)
            for i, (stage_config, _) in enumerate(earlier_stages):
                shutil.copy2(stage_config, tmp / f"config-stage{i + 1}.yaml")
        elif metrics.is_file():
            shutil.copy2(metrics, tmp / "metrics.csv")
        kept = _keep_training_files(keep_training, tmp / "training")
        verified = verify_executors(tmp, data_root, show_progress, verify_qonnx) if verify or verify_qonnx else None
        if verified is not None:  # its emulator session already scored the whole test set
            r = verified["emulator_vs_brevitas"]
            accuracy = {"images": r["images"], "correct": r["correct"],
                        "accuracy": r["correct"] / r["images"] if r["images"] else float("nan")}
        else:
            accuracy = measure_accuracy(tmp / "model.cim", data_root, show_progress=show_progress)
        card = {"name": name, "program": "model.cim", "preset": prog.preset.name,
                "shipped_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
                "cifar10_test": accuracy, **program_compression(prog)}
        duals = {l.name: {"ratio_eighths": l.dual.ratio_eighths, "bin_threshold": l.dual.bin_threshold}
                 for l in prog.layers if l.dual is not None}
        if duals:  # DualNet: each dual-path layer's ternary share (q/8 of its filters) and binary-input threshold
            card["dual_layers"] = duals
        if stages is not None:
            card["stages"] = stages
        if kept:
            card["training_files"] = kept
        if verified is not None:
            card["verified"] = verified
        (tmp / "card.json").write_text(json.dumps(card, indent=2) + "\n")
        old = dest.with_name(f".{name}.old")
        shutil.rmtree(old, ignore_errors=True)  # a leftover of an interrupted ship
        if dest.exists():
            dest.rename(old)
        try:
            tmp.rename(dest)
        except BaseException:
            if old.exists() and not dest.exists():
                old.rename(dest)  # put the previous model back
            raise
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


