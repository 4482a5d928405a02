"""Safe reading and writing of the files a user hands over or asks for.

Reading: only regular files (symlinks resolved; a device such as ``/dev/zero``, a FIFO, a
socket or a folder is refused before any byte is read, and opening never blocks on a FIFO),
at most a stated number of bytes. Writing: atomically (a temporary file in the same folder,
fsync, rename), after checking the target is not a folder and its folder is not under a
regular file; :func:`atomic_write_files` writes several files as a set, all or none (an image
and its JSON sidecar). Every refusal is a :class:`FileError` (a ValueError: the CLI prints
its one-line message and exits 2), or FileNotFoundError for a missing input.
"""
from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["FileError", "read_regular_file", "check_input", "check_output", "check_output_dir", "atomic_write_bytes",
           "atomic_write_text", "atomic_write_files"]


class FileError(ValueError):
    """A path that cannot be read or written as asked (not a regular file, too big, a loop, ...)."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISREG, "a regular file")):
        if test(mode):
            return name
    return "not a regular file or folder"


def _os_error(e: OSError, what: str, path) -> Exception:
    """One-line error for an OSError met on ``path``; FileNotFoundError stays one (missing input)."""
    if e.errno == errno.ENOENT:
        return FileNotFoundError(f"{what} {str(path)!r} does not exist")
    if e.errno == errno.ELOOP:
        return FileError(f"{what} {str(path)!r}: too many levels of symbolic links (a symlink loop)")
    if e.errno == errno.ENOTDIR:
        return FileError(f"{what} {str(path)!r}: a component of the path is a regular file, not a folder")
    if e.errno in (errno.EACCES, errno.EPERM):
        return FileError(f"{what} {str(path)!r}: permission denied")
    if e.errno == errno.EISDIR:
        return FileError(f"{what} {str(path)!r} is a folder, not a file")
    return FileError(f"{what} {str(path)!r}: {e.strerror or e}")


def check_input(path: str | os.PathLike, what: str, kind: str = "file") -> Path:
    """Stat ``path`` (following symlinks, opening nothing) and refuse it unless it is a regular
    file (``kind="file"``), a folder (``"dir"``) or either (``"any"``); returns it as a Path."""
    if kind not in ("file", "dir", "any"):
        raise ValueError(f"kind={kind!r}")
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as e:
        raise _os_error(e, what, p) from None
    if stat.S_ISREG(st.st_mode) and kind in ("file", "any"):
        return p
    if stat.S_ISDIR(st.st_mode) and kind in ("dir", "any"):
        return p
    want = {"file": "a regular file", "dir": "a folder", "any": "a regular file or a folder"}[kind]
    raise FileError(f"{what} {str(p)!r} is {_kind(st.st_mode)}, not {want}")


HEAD_BYTES = 4096
"""Bytes a callable ``max_bytes`` of :func:`read_regular_file` sees (the file's start)."""


def read_regular_file(path: str | os.PathLike, max_bytes: int | Callable[[bytes], int], what: str = "file") -> bytes:
    """The bytes of the regular file ``path`` (symlinks followed), refusing anything else and any
    file over ``max_bytes``. Opens with O_NONBLOCK so a FIFO cannot block before it is refused;
    reads at most ``max_bytes + 1`` bytes, so a file that grows meanwhile is refused too.
    ``max_bytes`` may be a function of the file's first :data:`HEAD_BYTES` bytes (a header that
    says which limit applies); only those are read before the limit is known."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise _os_error(e, what, p) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileError(f"{what} {str(p)!r} is {_kind(st.st_mode)}, not a regular file")
        chunks: list[bytes] = []
        if callable(max_bytes):
            head = _read_some(fd, HEAD_BYTES, what, p)
            chunks.append(head)
            max_bytes = int(max_bytes(head))
        if st.st_size > max_bytes:
            raise FileError(f"{what} {str(p)!r} is {st.st_size:,} bytes, over the {max_bytes:,}-byte limit")
        left = max_bytes + 1 - sum(map(len, chunks))
        while left > 0:
            chunk = _read_some(fd, min(left, 1 << 20), what, p)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise FileError(f"{what} {str(p)!r} grew past the {max_bytes:,}-byte limit while being read")
        return data
    finally:
        os.close(fd)


def _read_some(fd: int, n: int, what: str, path: Path) -> bytes:
    try:
        return os.read(fd, n)
    except OSError as e:
        raise _os_error(e, what, path) from None


def _stat_or_none(p: Path, what: str, named: Path) -> os.stat_result | None:
    """os.stat(p), or None when ``p`` does not exist (or lies under a non-folder); any other
    failure is a one-line error naming ``named``."""
    try:
        return os.stat(p)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise _os_error(e, what, named) from None


def check_output(path: str | os.PathLike, what: str = "output", make_parents: bool = True) -> Path:
    """Refuse an output path that is a folder (or a FIFO, device, ...) or lies under a regular
    file; make its missing parent folders when ``make_parents``. Returns it as a Path."""
    p = Path(path)
    st = _stat_or_none(p, what, p)
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise FileError(f"{what} {str(p)!r} is {_kind(st.st_mode)}; give a file path")
    parent = p.parent
    missing = []
    while (pst := _stat_or_none(parent, what, p)) is None:  # the nearest existing ancestor must be a folder
        missing.append(parent)
        if parent == parent.parent:
            raise FileError(f"{what} {str(p)!r}: no existing folder above it")
        parent = parent.parent
    if not stat.S_ISDIR(pst.st_mode):
        raise FileError(f"{what} {str(p)!r}: {str(parent)!r} is {_kind(pst.st_mode)}, not a folder")
    if make_parents and missing:
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _os_error(e, what, p.parent) from None
    return p


def check_output_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Refuse an output folder path that exists as something other than a folder or lies under
    a regular file (nothing is created)."""
    p = Path(path)
    st = _stat_or_none(p, what, p)
    if st is None:
        check_output(p, what, make_parents=False)
        return p
    if not stat.S_ISDIR(st.st_mode):
        raise FileError(f"{what} {str(p)!r} is {_kind(st.st_mode)}, not a folder")
    return p


def _write_temp(path: Path, data: bytes) -> str:
    """Write ``data`` to a new temporary file beside ``path`` (fsynced, usual mode); its name."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_files(files: list[tuple[str | os.PathLike, bytes]], what: str = "output") -> list[Path]:
    """Write every (path, bytes) pair, all or none: every target is checked (:func:`check_output`)
    and written to a temporary file first, then each is renamed over its target; if a rename
    fails, the targets already replaced get their previous content back (or are removed when
    they did not exist) and the error is raised. A reader never sees half a file."""
    targets = [check_output(p, what) for p, _ in files]
    if len({t.resolve() for t in targets}) != len(targets):
        raise FileError(f"{what}: the same file given twice: {[str(t) for t in targets]}")
    temps: list[str] = []
    backups: list[str] = []
    replaced: list[tuple[Path, str | None]] = []  # targets already renamed over, with their backup
    try:
        for t, (_, data) in zip(targets, files):
            try:
                temps.append(_write_temp(t, data))
            except OSError as e:
                raise _os_error(e, what, t) from None
        for t, tmp in zip(targets, temps):
            backup = None
            try:
                if len(targets) > 1 and t.is_file():  # keep the old content until all are in place
                    fd, backup = tempfile.mkstemp(prefix=f".{t.name}.", suffix=".old", dir=t.parent)
                    os.close(fd)
                    backups.append(backup)
                    shutil.copyfile(t, backup)
                os.replace(tmp, t)
            except OSError as e:
                raise _os_error(e, what, t) from None
            replaced.append((t, backup))
    except BaseException:
        for t, backup in reversed(replaced):  # put back what was replaced
            try:
                if backup is not None:
                    os.replace(backup, t)
                else:
                    t.unlink(missing_ok=True)
            except OSError:
                pass
        raise
    finally:
        for leftover in temps + backups:
            Path(leftover).unlink(missing_ok=True)
    return targets


def atomic_write_bytes(path: str | os.PathLike, data: bytes, what: str = "output") -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename)."""
    return atomic_write_files([(path, data)], what)[0]


def atomic_write_text(path: str | os.PathLike, text: str, what: str = "output") -> Path:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"), what)
