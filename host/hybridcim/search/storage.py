"""Where the search keeps its trials, and how a resumed search finds the trials of dead workers.

Default (embedded, no server): an Optuna journal file ``<out>/search.journal`` (``JournalStorage``
+ ``JournalFileBackend``, append-only JSON lines under a lock file), shared by every worker on
one machine. A URL (``postgresql://…``, ``mysql://…``, ``sqlite:///…``) selects Optuna's RDB
storage with a heartbeat, for workers on several machines.

Dead workers. The journal has no heartbeat, so every trial records its worker in the trial's
system attrs (:data:`WORKER_ATTR`: hostname, pid, the process's start time in clock ticks since
boot and the boot id, from /proc) the moment it starts. Before each new trial a worker takes the
recovery lock and checks every RUNNING trial that was started on *its* host: a worker whose pid
is gone, is a zombie, or is another process now (another start time or boot id) is dead; its
trial is marked FAILED and its parameters are enqueued again (user attr ``requeued_from``), so
the next ``ask`` evaluates them. Trials of other hosts cannot be checked from here: they stay
RUNNING until a worker on their host resumes (or, with an RDB storage, until their heartbeat
expires, :data:`HEARTBEAT_S`, :data:`GRACE_S`).
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path

JOURNAL_NAME = "search.journal"
WORKER_ATTR = "hybridcim_worker"
REQUEUED_ATTR = "requeued_from"
STUDY_ATTR = "hybridcim_search"
HEARTBEAT_S = 60
"""RDB storages: a running trial writes a heartbeat every HEARTBEAT_S seconds ..."""
GRACE_S = 3 * HEARTBEAT_S
"""... and one silent for GRACE_S seconds is failed and re-queued (Optuna's retry callback, 3 times at most)."""
ORPHAN_S = 120
"""A RUNNING trial with no worker record (killed between its creation and the record, a window
of milliseconds) older than this many seconds is treated as dead too."""


class SearchStorageError(ValueError):
    """A storage that is not a search's: corrupt, foreign, or of another config."""


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _proc_start(pid: int) -> "tuple[int | None, str | None]":
    """(start time in clock ticks since boot, state letter) of process ``pid`` from /proc; (None, None)
    where /proc has no such process or does not exist."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None, None
    rest = raw[raw.rfind(")") + 2:].split()  # fields after the command name: state is field 3
    return int(rest[19]), rest[0]


def worker_record(pid: int | None = None) -> dict:
    """The identity of a worker process (this one by default): host, pid, start ticks, boot id."""
    pid = os.getpid() if pid is None else pid
    return {"host": socket.gethostname(), "pid": pid, "start": _proc_start(pid)[0], "boot": _boot_id()}


def worker_alive(rec: dict) -> bool | None:
    """True/False for a worker record of this host; None when it is another host's (cannot tell)."""
    if not isinstance(rec, dict) or rec.get("host") != socket.gethostname():
        return None
    boot = _boot_id()
    if rec.get("boot") and boot and rec["boot"] != boot:
        return False  # the machine rebooted since
    pid = rec.get("pid")
    if not isinstance(pid, int):
        return False
    start, state = _proc_start(pid)
    if start is None:
        if Path("/proc/self/stat").exists():
            return False
        try:  # no /proc (not Linux): the pid alone
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if state in ("Z", "X"):
        return False  # killed, not yet reaped
    return rec.get("start") is None or rec["start"] == start


def check_journal(path: Path) -> None:
    """Refuse a file that is not an Optuna journal: every complete line must be a JSON object with an
    ``op_code`` (a last line without a newline is a write cut short by a kill; Optuna ignores it)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if not path.is_file():
        raise SearchStorageError(f"search storage {str(path)!r} is not a regular file")
    if size == 0:
        return
    with open(path, "rb") as f:
        head = f.read(16)
        if head.startswith(b"SQLite format 3"):
            raise SearchStorageError(f"search storage {str(path)!r} is an SQLite database, not an Optuna journal "
                                     f"file: pass it as --storage sqlite:///{path}")
        f.seek(0)
        for i, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                break
            try:
                rec = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise SearchStorageError(f"search storage {str(path)!r} is corrupt or not an Optuna journal "
                                         f"(line {i} is not JSON)") from None
            if not isinstance(rec, dict) or "op_code" not in rec:
                raise SearchStorageError(f"search storage {str(path)!r} is not an Optuna journal (line {i} has no "
                                         "op_code)")


def repair_tail(path: Path, lock) -> int:
    """Drop a last journal line cut short (no newline: its writer was killed inside a write) so that
    later appends do not follow it; under the journal's own lock, so no live writer is mid-line.
    Returns the bytes dropped (the cut line was never a complete record: nothing finished is lost)."""
    if not path.is_file() or path.stat().st_size == 0:
        return 0
    lock.acquire()
    try:
        with open(path, "rb+") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return 0
            pos, chunk = size, 1 << 16
            while pos > 0:  # the last newline
                start = max(0, pos - chunk)
                f.seek(start)
                i = f.read(pos - start).rfind(b"\n")
                if i >= 0:
                    keep = start + i + 1
                    break
                pos = start
            else:
                keep = 0
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
            return size - keep
    finally:
        lock.release()


def open_storage(url: str | None, out: Path, heartbeat_s: int = HEARTBEAT_S):
    """(Optuna storage, description). ``url`` None: the journal file under ``out``; else a database
    whose running trials write a heartbeat every ``heartbeat_s`` seconds and are failed and re-queued
    after ``3 * heartbeat_s`` seconds of silence."""
    import optuna
    if url is None:
        path = Path(out) / JOURNAL_NAME
        check_journal(path)
        from optuna.storages import JournalStorage
        try:
            from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
        except ImportError:  # optuna < 4.0
            from optuna.storages import JournalFileOpenLock
            from optuna.storages import JournalFileStorage as JournalFileBackend
        lock = JournalFileOpenLock(str(path))
        repair_tail(path, lock)
        backend = JournalFileBackend(str(path), lock_obj=lock)
        try:
            return JournalStorage(backend), f"journal file {path}"
        except (ValueError, KeyError, TypeError) as e:
            raise SearchStorageError(f"search storage {str(path)!r} cannot be replayed as an Optuna journal: "
                                     f"{e}") from None
    if "://" not in url:
        raise SearchStorageError(f"--storage {url!r} is not a database URL (postgresql://user@host/db, "
                                 "sqlite:///file.db); leave it out for the journal file under --out")
    import warnings
    import optuna.storages as ost
    with warnings.catch_warnings():  # the heartbeat is "experimental" in Optuna's words since 2.8
        warnings.simplefilter("ignore")
        if hasattr(ost, "RetryHeartbeatStaleTrialCallback"):  # optuna >= 4.9
            retry = {"heartbeat_stale_trial_callback": ost.RetryHeartbeatStaleTrialCallback(max_retry=3)}
        else:
            retry = {"failed_trial_callback": ost.RetryFailedTrialCallback(max_retry=3)}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            st = ost.RDBStorage(url, heartbeat_interval=heartbeat_s, grace_period=3 * heartbeat_s, **retry)
    except Exception as e:  # sqlalchemy / driver errors: one line naming the URL's scheme
        raise SearchStorageError(f"--storage {url.split('://')[0]}://…: cannot open: {' '.join(str(e).split())[:300]}") \
            from None
    return st, f"database {url.split('://')[0]}://…"


def recover_dead_trials(study, lock_path: Path | None = None) -> list[int]:
    """Fail every RUNNING trial of a dead worker on this host and enqueue its params again; returns the
    numbers of the trials failed. Serialized by an exclusive lock on ``lock_path`` (when given) so two
    workers resuming at once re-queue a trial once."""
    import datetime
    import optuna
    from optuna.trial import TrialState
    lock = contextlib.nullcontext()
    if lock_path is not None:
        lock = _flock(lock_path)
    failed = []
    with lock:
        now = datetime.datetime.now()
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            rec = t.system_attrs.get(WORKER_ATTR)
            if rec is None:
                age = (now - t.datetime_start).total_seconds() if t.datetime_start else 0
                if age < ORPHAN_S:
                    continue
                dead = True
            else:
                dead = worker_alive(rec) is False
            if not dead:
                continue
            try:
                study._storage.set_trial_user_attr(t._trial_id, "failed_because", "its worker died")
                ok = study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another worker (on another host, or without the lock) finished or failed it meanwhile
            if ok is False:
                continue
            study.enqueue_trial(dict(t.params), user_attrs={**t.user_attrs, REQUEUED_ATTR: t.number})
            failed.append(t.number)
    return failed


@contextlib.contextmanager
def _flock(path: Path):
    """An exclusive advisory lock (fcntl.flock) on ``path`` for the duration of the block."""
    import fcntl
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
