"""The resumable state of a calibration: every evaluation measured so far, keyed by what ran.

A JSON file (written atomically after each evaluation) holding the fingerprint of the
calibration it belongs to (program image, image set, saliency planes) and a map from
evaluation key (image subset + assignment, :func:`hybridcim.calibrate.evaluate.assignment_key`)
to the measured :class:`~hybridcim.calibrate.evaluate.Evaluation`. The search is deterministic
given its evaluations, so a rerun replays the cached ones and continues where it stopped. Budgets,
skip/static modes and cost presets do not enter the fingerprint: one state serves them all.
"""
from __future__ import annotations

import json
from pathlib import Path

from .errors import CalibrationError
from .evaluate import Evaluation

FORMAT = "hybridcim-calibration-state"
VERSION = 1


class State:
    """Cached evaluations of one calibration; ``path`` None keeps them in memory only."""

    def __init__(self, path: "str | Path | None", fingerprint: dict):
        self.path = Path(path) if path is not None else None
        self.fingerprint = dict(fingerprint)
        self.evals: dict[str, dict] = {}
        self.loaded = 0
        if self.path is not None and self.path.exists():
            from ..fileio import read_regular_file
            try:
                data = json.loads(read_regular_file(self.path, 1 << 30, "calibration state").decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise CalibrationError(f"calibration state {self.path}: not a valid JSON state file ({e})") from None
            if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
                raise CalibrationError(f"calibration state {self.path}: not a {FORMAT} version {VERSION} file")
            if data.get("fingerprint") != self.fingerprint:
                diff = sorted(k for k in set(self.fingerprint) | set(data.get("fingerprint") or {})
                              if (data.get("fingerprint") or {}).get(k) != self.fingerprint.get(k))
                raise CalibrationError(f"calibration state {self.path} belongs to another calibration (differs in "
                                       f"{', '.join(diff)}): give a new --state file or delete it")
            self.evals = dict(data.get("evals") or {})
            self.loaded = len(self.evals)

    def get(self, key: str) -> Evaluation | None:
        d = self.evals.get(key)
        return Evaluation.from_dict(d) if d is not None else None

    def put(self, key: str, ev: Evaluation) -> None:
        self.evals[key] = ev.as_dict()
        self.save()

    def save(self) -> None:
        if self.path is None:
            return
        from ..fileio import atomic_write_text
        atomic_write_text(self.path, json.dumps({"format": FORMAT, "version": VERSION, "fingerprint": self.fingerprint,
                                                 "evals": self.evals}, separators=(",", ":")) + "\n",
                          "calibration state")
