"""Where a training run stands (e.g. the supernet a search will need), read without torch:

    python -m hybridcim.search.runstatus RUN_DIR

prints one line: epochs done of the schedule, the last epoch's test accuracy and loss, the mean
seconds of the last five epochs, the time left at that pace, and the age of the checkpoint. It reads
``RUN_DIR/metrics.csv`` and the JSON header of ``RUN_DIR/checkpoint.safetensors`` (for the schedule's
epoch count), never the tensors, and writes nothing: safe beside a run in progress.
"""
from __future__ import annotations

import csv
import json
import math
import struct
import sys
import time
from pathlib import Path

HEADER_MAX_BYTES = 16 << 20


def checkpoint_meta(path) -> dict | None:
    """The ``hybridcim`` metadata of a checkpoint's safetensors header, or None when there is no
    readable one (missing, truncated, another file)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return None
            (n,) = struct.unpack("<Q", head)
            if n > HEADER_MAX_BYTES:
                return None
            meta = json.loads(f.read(n).decode("utf-8"))["__metadata__"]["hybridcim"]
            meta = json.loads(meta)
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    return meta if isinstance(meta, dict) else None


def run_status(run, now: float | None = None) -> dict:
    """{epoch, epochs, test_acc, train_loss, pace_s, left_s, checkpoint_age_s} of a run folder (None
    where unknown); FileNotFoundError when the folder has neither metrics.csv nor a checkpoint."""
    run = Path(run)
    rows = []
    if (run / "metrics.csv").is_file():
        with open(run / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    ck = run / "checkpoint.safetensors"
    meta = checkpoint_meta(ck) if ck.is_file() else None
    if not rows and meta is None and not run.is_dir():
        raise FileNotFoundError(f"no run folder at {run}")
    epochs = None
    if meta is not None:
        try:
            epochs = int(meta["config"]["optim"]["epochs"])
        except (KeyError, TypeError, ValueError):
            epochs = None
    last = rows[-1] if rows else {}
    secs = []
    for r in rows[-5:]:
        try:
            secs.append(float(r["seconds"]))
        except (KeyError, TypeError, ValueError):
            pass
    epoch = int(last["epoch"]) if last.get("epoch") else (int(meta["epoch"]) if meta else 0)
    pace = sum(secs) / len(secs) if secs else None
    left = (epochs - epoch) * pace if pace is not None and epochs is not None else None
    now = time.time() if now is None else now
    num = lambda k: float(last[k]) if last.get(k) not in (None, "") else None  # noqa: E731
    return {"epoch": epoch, "epochs": epochs, "test_acc": num("test_acc"), "train_loss": num("train_loss"),
            "pace_s": pace, "left_s": left, "checkpoint_age_s": now - ck.stat().st_mtime if ck.is_file() else None}


def format_status(run, s: dict) -> str:
    """One line of :func:`run_status`'s figures.

    >>> print(format_status("r", {"epoch": 3, "epochs": 60, "test_acc": 0.4512, "train_loss": 1.5, "pace_s": 600.0,
    ...                           "left_s": 34200.0, "checkpoint_age_s": 120.0}).replace(", ", ",\\n"))
    r: epoch 3 of 60,
    test 45.12 %,
    loss 1.5000,
    600 s per epoch (last 5),
    about 9.5 h left at that pace,
    checkpoint written 2 min ago
    """
    def dur(s_):
        return f"{s_ / 3600:.1f} h" if s_ >= 5400 else (f"{s_ / 60:.0f} min" if s_ >= 90 else f"{s_:.0f} s")
    parts = [f"epoch {s['epoch']} of {s['epochs'] if s['epochs'] is not None else '?'}"]
    if s["test_acc"] is not None and not math.isnan(s["test_acc"]):
        parts.append(f"test {100 * s['test_acc']:.2f} %")
    if s["train_loss"] is not None:
        parts.append(f"loss {s['train_loss']:.4f}" if math.isfinite(s["train_loss"])
                     else f"loss {s['train_loss']} (the training diverged)")
    if s["pace_s"] is not None:
        parts.append(f"{s['pace_s']:.0f} s per epoch (last 5)")
    if s["left_s"] is not None:
        parts.append(f"about {dur(s['left_s'])} left at that pace" if s["left_s"] > 0 else "finished")
    parts.append("no checkpoint yet" if s["checkpoint_age_s"] is None
                 else f"checkpoint written {dur(max(s['checkpoint_age_s'], 0.0))} ago")
    return f"{run}: " + ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: python -m hybridcim.search.runstatus RUN_DIR", file=sys.stderr)
        return 2
    try:
        print(format_status(argv[0], run_status(argv[0])))
    except FileNotFoundError as e:
        print(f"runstatus: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
