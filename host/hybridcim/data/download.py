"""CIFAR-10 checksums and the explicit, opt-in download (urllib + tarfile only).

``download_cifar10`` is never called at import or implicitly. It streams the official
tarball (binary: ``cifar-10-binary.tar.gz``, python: ``cifar-10-python.tar.gz``) into a
temp file inside ``root``, checks its MD5, extracts only regular files and folders into a
temp folder (absolute paths, ``..``, links and devices are refused), then renames
``cifar-10-batches-bin/`` (or ``-py/``) into place in one atomic step. ``verify`` checks
the published per-file MD5s of an installed copy.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from .cifar10 import (_HOW, BIN_DIR, PY_DIR, SPLITS, CorruptDatasetError, DatasetError,
                      DatasetNotFoundError, PathLike, _check_split, locate)

URLS = {  # layout -> (url, md5 of the tarball)
    "binary": ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530"),
    "python": ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
}
BIN_MD5 = {
    "data_batch_1.bin": "5dd7e06a14cb22eb9f671a540d1b7c25",
    "data_batch_2.bin": "5ea93a67294ea407fff1d09f752e9692",
    "data_batch_3.bin": "942cd6a4bcdd0dd3c604fbe906cb4421",
    "data_batch_4.bin": "ae636b3ba5c66a11e91e8cb52e771fcb",
    "data_batch_5.bin": "53f37980c15c3d472c316c40844f3f0d",
    "test_batch.bin": "803d5f7f4d78ea53de84dbe85f74fb6d",
}
PY_MD5 = {  # the files inside the official cifar-10-python.tar.gz (as listed by torchvision)
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}


def md5_file(path: PathLike, chunk: int = 1 << 20) -> str:
    """Hex MD5 of a file, read in ``chunk``-byte pieces."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify(root: PathLike | None = None, split: str | None = None) -> dict[str, str]:
    """Check the official per-file MD5s (``split`` None: both); returns ``{file: md5}``."""
    folder, layout = locate(root)
    table = BIN_MD5 if layout == "binary" else PY_MD5
    ext = ".bin" if layout == "binary" else ""
    done: dict[str, str] = {}
    for s in (SPLITS if split is None else (_check_split(split),)):
        for name in (n + ext for n in SPLITS[s]):
            path = folder / name
            if not path.is_file():
                raise DatasetNotFoundError(f"{name} is missing from {folder}. {_HOW}")
            got = md5_file(path)
            if got != table[name]:
                raise CorruptDatasetError(f"{path}: MD5 mismatch, expected {table[name]}, got {got}")
            done[name] = got
    return done



def fetch(url: str, out: BinaryIO, timeout_s: float = 60, progress: bool = True) -> str:
    """Stream ``url`` into ``out``; returns the hex MD5 of what was written."""
    import urllib.request  # only when a download is asked for

    h = hashlib.md5(usedforsecurity=False)
    bar: Any = None
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            if progress:
                try:
                    from tqdm import tqdm
                    total = int(response.headers.get("Content-Length") or 0) or None
                    bar = tqdm(total=total, unit="B", unit_scale=True, desc="cifar-10")
                except ImportError:
                    bar = None
            while chunk := response.read(1 << 20):
                out.write(chunk)
                h.update(chunk)
                if bar is not None:
                    bar.update(len(chunk))
    except OSError as e:  # URLError, timeouts, connection resets, disk full
        raise DatasetError(f"download of {url} failed ({e}). Download and extract it by hand, then "
                           f"pass its folder. {_HOW}") from e
    finally:
        if bar is not None:
            bar.close()
    return h.hexdigest()


def _safe_member(member: tarfile.TarInfo, archive: Path) -> PurePosixPath | None:
    """The member's relative path, None for a '.' entry; refuses anything unsafe."""
    name = member.name
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith(("/", "\\")) or "\\" in name or ".." in path.parts:
        raise CorruptDatasetError(f"{archive}: unsafe member path {name!r}; refusing to extract")
    if not (member.isfile() or member.isdir()):
        raise CorruptDatasetError(f"{archive}: member {name!r} is a link or device; refusing to extract")
    parts = [p for p in path.parts if p not in ("", ".")]
    return PurePosixPath(*parts) if parts else None


def install_archive(archive: PathLike, root: PathLike, layout: str = "binary") -> Path:
    """Extract a CIFAR-10 tarball safely under ``root``; returns the installed batches folder."""
    archive, root = Path(archive), Path(root)
    dirname = BIN_DIR if layout == "binary" else PY_DIR
    target = root / dirname
    if target.exists():
        raise DatasetError(f"{target} already exists; remove it first to reinstall")
    staging = Path(tempfile.mkdtemp(prefix=".cifar10-extract-", dir=root))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar:
                    rel = _safe_member(member, archive)
                    if rel is None:
                        continue
                    dest = staging / rel
                    if member.isdir():
                        dest.mkdir(parents=True, exist_ok=True)
                        continue
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    src = tar.extractfile(member)
                    assert src is not None  # regular file
                    with src, open(dest, "xb") as f:
                        shutil.copyfileobj(src, f, 1 << 20)
        except (tarfile.TarError, EOFError, OSError) as e:
            raise CorruptDatasetError(f"{archive}: not a readable tar.gz ({e})") from e
        if not (staging / dirname).is_dir():
            raise CorruptDatasetError(f"{archive}: has no {dirname}/ folder (wrong layout?)")
        os.rename(staging / dirname, target)  # atomic: same file system
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def download_cifar10(root: PathLike, layout: str = "binary", timeout_s: float = 60, progress: bool = True,
                     *, url: str | None = None, md5: str | None = None) -> Path:
    """Download and install CIFAR-10 under ``root`` (a no-op if already there).

    Returns the batches folder. ``url``/``md5`` override the official ones (mirrors, tests).
    """
    if layout not in URLS:
        raise DatasetError(f"unknown layout {layout!r}; expected 'binary' or 'python'")
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    target = root / (BIN_DIR if layout == "binary" else PY_DIR)
    if target.is_dir():
        return target
    url, md5 = url or URLS[layout][0], (md5 or URLS[layout][1]).lower()
    fd, tmp_name = tempfile.mkstemp(prefix=".cifar10-", suffix=".tar.gz.part", dir=root)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            got = fetch(url, f, timeout_s, progress)
        if got != md5:
            raise CorruptDatasetError(f"{url}: MD5 mismatch, expected {md5}, got {got}; download deleted")
        return install_archive(tmp, root, layout)
    finally:
        tmp.unlink(missing_ok=True)
