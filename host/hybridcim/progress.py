"""Progress of long work (emulation, device runs, shipping, training epochs), written to stderr.

On a terminal: a live bar (tqdm when installed, else a counter redrawn in place). Elsewhere
(a log file, CI, a notebook, a pipe): plain lines, one at least every ``interval_s`` seconds
(default 10) while the work runs, from a background heartbeat as well as on each update, so a
slow step still shows the process is alive; and a final line on ``close``. Numpy-free, no
imports above this module: the CLI, the runtime and the trainer all use it.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Callable, TextIO

INTERVAL_S = 10.0
"""Longest gap between two progress lines when the stream is not a terminal (seconds)."""


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # closed or stream-like objects
        return False


def _fmt_count(n: float) -> str:
    return f"{n:,.0f}"


class _Null:
    """A disabled bar: every call does nothing."""

    n = 0

    def update(self, k: int = 1) -> None:
        self.n += k

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Redraw(_Null):
    """Terminal without tqdm: one line redrawn in place (carriage return)."""

    def __init__(self, total: int | None, desc: str, unit: str, stream: TextIO, initial: int = 0):
        self.total, self.desc, self.unit, self.stream, self.n, self.postfix = total, desc, unit, stream, initial, ""

    def _draw(self) -> None:
        post = f" {self.postfix}" if self.postfix else ""
        print(f"\r{self.desc}: {self.n}/{self.total or '?'} {self.unit}{post}", end="", file=self.stream, flush=True)

    def update(self, k: int = 1) -> None:
        self.n += k
        self._draw()

    def set_postfix_str(self, s: str) -> None:
        self.postfix = s
        self._draw()

    def close(self) -> None:
        print(file=self.stream, flush=True)


class LineProgress(_Null):
    """Plain progress lines for a stream that is not a terminal.

    A line ``DESC: N/TOTAL UNIT (P%) in Ts, R UNIT/s[, POSTFIX]`` is written when ``update`` finds
    ``interval_s`` or more passed since the last line, by the heartbeat thread when no line came
    for ``interval_s`` (``heartbeat=False``: none; tests drive ``clock`` by hand), and once by
    ``close`` (the totals, marked ``done``). ``clock``: seconds, monotonic. ``initial``: the count
    already done before this run (a resumed job): counted, but not in the rate.
    """

    def __init__(self, total: int | None, desc: str, unit: str = "img", stream: TextIO | None = None,
                 interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic,
                 heartbeat: bool = True, initial: int = 0):
        if not interval_s > 0:
            raise ValueError(f"interval_s={interval_s} must be > 0")
        self.total, self.desc, self.unit = total, desc, unit
        self.stream = stream if stream is not None else sys.stderr
        self.interval_s, self.clock = float(interval_s), clock
        self.n, self.initial, self.postfix, self.lines = initial, initial, "", 0
        self.t0 = self._last = clock()
        self._lock = threading.Lock()
        self._closed = False
        self._stop = threading.Event()
        self._thread = None
        if heartbeat:
            self._thread = threading.Thread(target=self._beat, name="hybridcim-progress", daemon=True)
            self._thread.start()

    def line(self, done: bool = False) -> str:
        """The current progress line (no newline)."""
        dt = max(self.clock() - self.t0, 0.0)
        if not self.total and not self.n:  # a step without a count (a compiler run): time only
            return f"{self.desc}: {dt:.0f} s{' done' if done else ''}"
        count = f"{_fmt_count(self.n)}/{_fmt_count(self.total)}" if self.total else _fmt_count(self.n)
        pct = f" ({self.n / self.total:.0%})" if self.total else ""
        new = self.n - self.initial
        rate = f", {new / dt:,.1f} {self.unit}/s" if dt > 0 and new else ""
        post = f", {self.postfix}" if self.postfix else ""
        finished = done and (not self.total or self.n >= self.total)  # closed early (an error): no 'done'
        return f"{self.desc}: {count} {self.unit}{pct} in {dt:.0f} s{rate}{post}{' done' if finished else ''}"

    def _emit(self, done: bool = False, final: bool = False) -> None:
        with self._lock:
            if self._closed:
                return
            text = self.line(done)
            self._last = self.clock()
            self.lines += 1
            self._closed = final
        print(text, file=self.stream, flush=True)

    def _beat(self) -> None:
        while True:  # sleep until the next line is due, so no gap exceeds interval_s
            due = self._last + self.interval_s - self.clock()
            if self._stop.wait(min(max(due, 0.01), self.interval_s)):
                return
            if self.clock() - self._last >= self.interval_s:
                self._emit()

    def update(self, k: int = 1) -> None:
        self.n += k
        if self.clock() - self._last >= self.interval_s:
            self._emit()

    def set_postfix_str(self, s: str) -> None:
        self.postfix = s

    def close(self, ok: bool = True) -> None:
        """Stop the heartbeat and write the last line (``done`` when ``ok`` and the count is complete)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._emit(done=ok, final=True)

    def __exit__(self, exc_type, *exc) -> None:
        self.close(ok=exc_type is None)


def progress(total: int | None, desc: str, unit: str = "img", disable: bool = False, *,
             stream: TextIO | None = None, interval_s: float | None = None,
             clock: Callable[[], float] = time.monotonic, initial: int = 0):
    """A progress bar with ``update(k)``, ``set_postfix_str(s)`` and ``close()`` (also a context
    manager) on ``stream`` (default stderr): a live bar on a terminal, else :class:`LineProgress`
    (a line at least every ``interval_s`` seconds, default :data:`INTERVAL_S`). ``disable``: a bar
    that writes nothing. ``initial``: units done before (a resumed job), its count ``n`` starts there."""
    interval_s = INTERVAL_S if interval_s is None else interval_s
    stream = stream if stream is not None else sys.stderr
    if disable:
        bar = _Null()
        bar.n = initial
        return bar
    if not _isatty(stream):
        return LineProgress(total, desc, unit, stream, interval_s, clock, initial=initial)
    try:
        from tqdm import tqdm
    except ImportError:
        return _Redraw(total, desc, unit, stream, initial)
    return tqdm(total=total, desc=desc, unit=unit, file=stream, dynamic_ncols=True, initial=initial)


def activity(desc: str, *, stream: TextIO | None = None, interval_s: float | None = None) -> LineProgress:
    """A step with nothing to count (a compiler run): a line now (``DESC: 0 s``), one at least every
    ``interval_s`` while it runs, whether or not ``stream`` is a terminal, and ``DESC: T s done``
    on ``close`` (use as a context manager)."""
    bar = LineProgress(None, desc, "", stream, INTERVAL_S if interval_s is None else interval_s)
    bar._emit()
    return bar
