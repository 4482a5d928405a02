"""CIFAR-10 reader: numpy + stdlib only, streaming, small enough for a 512 MB PYNQ board.

``root`` is the folder that holds ``cifar-10-batches-bin/`` or ``cifar-10-batches-py/``,
or that folder itself. Two official layouts are read:

* binary (``cifar-10-binary.tar.gz``): ``data_batch_1.bin`` .. ``data_batch_5.bin`` and
  ``test_batch.bin``, each exactly 30,730,000 bytes = 10,000 records of 3,073 bytes: one
  label byte (0-9), then 3,072 pixel bytes (1,024 R, 1,024 G, 1,024 B, each plane 32x32
  row-major). ``batches.meta.txt`` holds the 10 class names, one per line.
* python (``cifar-10-python.tar.gz``): pickles ``data_batch_1`` .. ``data_batch_5`` and
  ``test_batch`` (dict: ``b"data"`` uint8 (N, 3072) in the same pixel order, ``b"labels"``
  list of int) and ``batches.meta`` (``b"label_names"``). They are read only through a
  restricted unpickler that refuses every global a CIFAR-10 batch does not need, from regular
  files of at most :data:`PY_FILE_MAX_BYTES`; every field's type, length and element types
  are checked before any numpy conversion, so a hostile pickle (shared references to one huge
  nested list, ragged or non-integer labels) costs time linear in the file's size and the
  number of records, never a walk of the shared structure, and is refused with
  :class:`CorruptDatasetError`.

Everything returned is images uint8 NCHW (B, 3, 32, 32) C-contiguous, labels uint8 (B,).
"""
from __future__ import annotations

import codecs
import importlib
import operator
import os
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SHAPE = (3, 32, 32)
PIXEL_BYTES = 3072
RECORD_BYTES = 1 + PIXEL_BYTES
RECORDS_PER_FILE = 10_000
FILE_BYTES = RECORD_BYTES * RECORDS_PER_FILE  # 30,730,000
PY_FILE_MAX_BYTES = 64 << 20
"""Largest python-layout file read (the official batches are about 31 MB)."""
BIN_DIR, PY_DIR = "cifar-10-batches-bin", "cifar-10-batches-py"
SPLITS = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
_HOW = ("Pass --data DIR (root=DIR), set CIFAR10_DIR=DIR, or fetch it once with "
        "hybridcim.data.download_cifar10(DIR); DIR is the folder holding "
        f"{BIN_DIR}/ (or {PY_DIR}/), or that folder itself.")


class DatasetError(Exception):
    """Base class of every CIFAR-10 input error."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The dataset folder, or a file of it, is missing."""


class CorruptDatasetError(DatasetError, ValueError):
    """A file has the wrong size, checksum, label values or (pickle) content."""


def resolve_root(path: PathLike | None = None) -> Path:
    """The dataset root: ``path``, else ``$CIFAR10_DIR``; it must be an existing folder."""
    if path is None or str(path) == "":
        path = os.environ.get("CIFAR10_DIR", "")
        if not path:
            raise DatasetNotFoundError(f"No CIFAR-10 location given. {_HOW}")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(f"CIFAR-10 folder {root} does not exist. {_HOW}")
    return root


def locate(root: PathLike | None = None) -> tuple[Path, str]:
    """``(folder holding the batch files, "binary" | "python")``; binary wins if both exist."""
    base = resolve_root(root)
    for layout, sub in (("binary", BIN_DIR), ("python", PY_DIR)):
        if (base / sub).is_dir():
            return base / sub, layout
    for layout, ext, meta in (("binary", ".bin", "batches.meta.txt"), ("python", "", "batches.meta")):
        names = [n + ext for s in SPLITS.values() for n in s] + [meta]
        if any((base / n).is_file() for n in names):
            return base, layout
    raise DatasetNotFoundError(f"{base} holds neither {BIN_DIR}/ nor {PY_DIR}/ nor their batch files. {_HOW}")


# ---------------------------------------------------------------- restricted unpickling
def _numpy_attr(modules: tuple[str, ...], name: str) -> Callable[[], Any]:
    def get() -> Any:
        for mod in modules:
            try:
                return getattr(importlib.import_module(mod), name)
            except (ImportError, AttributeError):
                continue
        raise CorruptDatasetError(f"numpy has no {name} to rebuild this pickle")
    return get


def _latin1_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes: latin-1 of a str only."""
    if not isinstance(obj, str) or codecs.lookup(encoding).name != "iso8859-1" or errors != "strict":
        raise CorruptDatasetError(f"pickle calls _codecs.encode({type(obj).__name__}, {encoding!r})")
    return obj.encode("latin-1")


_RECONSTRUCT = _numpy_attr(("numpy._core.multiarray", "numpy.core.multiarray"), "_reconstruct")
_FROMBUFFER = _numpy_attr(("numpy._core.numeric", "numpy.core.numeric"), "_frombuffer")
_ALLOWED: dict[tuple[str, str], Callable[[], Any]] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("_codecs", "encode"): lambda: _latin1_encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a CIFAR-10 batch pickle needs."""

    def __init__(self, file: Any, source: str = "<pickle>", **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        getter = _ALLOWED.get((module, name))
        if getter is None:
            raise CorruptDatasetError(f"{self.source}: pickle references {module}.{name}, which a "
                                      "CIFAR-10 batch never needs; refusing to load it")
        return getter()


def load_pickle(path: PathLike) -> Any:
    """Read one python-layout file safely (``encoding="bytes"``, as the official files need)."""
    path = Path(path)
    try:
        if path.exists() and not path.is_file():
            raise CorruptDatasetError(f"{path}: not a regular file")
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > PY_FILE_MAX_BYTES:
                raise CorruptDatasetError(f"{path}: {size} bytes, more than a CIFAR-10 python batch "
                                          f"(at most {PY_FILE_MAX_BYTES})")
            return RestrictedUnpickler(f, str(path), encoding="bytes").load()
    except FileNotFoundError as e:
        raise DatasetNotFoundError(f"{path.name} is missing from {path.parent}. {_HOW}") from e
    except CorruptDatasetError as e:
        if str(path) in str(e):
            raise
        raise CorruptDatasetError(f"{path}: {e}") from e
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, LookupError, OverflowError, MemoryError, RecursionError) as e:
        raise CorruptDatasetError(f"{path}: not a readable CIFAR-10 pickle ({type(e).__name__}: {e})") from e


def _field(obj: dict, key: str, path: Path) -> Any:
    for k in (key.encode(), key):
        if k in obj:
            return obj[k]
    raise CorruptDatasetError(f"{path}: pickle has no {key!r} entry")


def _read_py_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    obj = load_pickle(path)
    if not isinstance(obj, dict):
        raise CorruptDatasetError(f"{path}: expected a dict, got {type(obj).__name__}")
    data, labels = _field(obj, "data", path), _field(obj, "labels", path)
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == PIXEL_BYTES):
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise CorruptDatasetError(f"{path}: 'data' must be uint8 (N, {PIXEL_BYTES}), got {got}")
    lab = _label_array(labels, len(data), path)
    _check_labels(lab, path, 0)
    return np.ascontiguousarray(data), lab.astype(np.uint8)


def _label_array(labels: Any, n: int, path: Path) -> np.ndarray:
    """``labels`` (a list/tuple of ``n`` ints, or a 1-D integer array) as int64 (n,).

    Type, length and each element's type are checked first (O(n), no recursion), so shared
    references to a large nested list or ragged rows never reach ``np.asarray``.
    """
    want = f"'labels' must be {n} integers"
    if isinstance(labels, np.ndarray):
        if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != n:
            raise CorruptDatasetError(f"{path}: {want}, got a {labels.dtype} array of shape {labels.shape}")
        return labels.astype(np.int64)
    if not isinstance(labels, (list, tuple)):
        raise CorruptDatasetError(f"{path}: {want}, got {type(labels).__name__}")
    if len(labels) != n:
        raise CorruptDatasetError(f"{path}: {want}, got {len(labels)} entries")
    for i, x in enumerate(labels):
        if type(x) is not int and not isinstance(x, np.integer):
            raise CorruptDatasetError(f"{path}: {want}; entry {i} is a {type(x).__name__}")
        if not 0 <= x <= 9:
            raise CorruptDatasetError(f"{path}: record {i} has label {x if abs(x) < 10**9 else 'of over 9 digits'} "
                                      "(not 0..9)")
    return np.fromiter(labels, np.int64, n)


def _check_labels(labels: np.ndarray, path: Path, first: int) -> None:
    bad = np.flatnonzero((labels < 0) | (labels > 9)) if labels.dtype.kind == "i" else np.flatnonzero(labels > 9)
    if bad.size:
        i = int(bad[0])
        raise CorruptDatasetError(f"{path}: record {first + i} has label {int(labels[i])} (> 9)"
                                  f"{f' and {bad.size - 1} more records are bad' if bad.size > 1 else ''}")


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; expected 'train' or 'test'")
    return split


# ---------------------------------------------------------------- the dataset
class Cifar10:
    """One split of CIFAR-10, read on demand (binary: per-record seeks; python: one file cached)."""

    def __init__(self, root: PathLike | None = None, split: str = "test") -> None:
        self.split = _check_split(split)
        self.dir, self.layout = locate(root)
        ext = ".bin" if self.layout == "binary" else ""
        self.files = [self.dir / (n + ext) for n in SPLITS[split]]
        for path in self.files:
            if path.exists() and not path.is_file():
                raise CorruptDatasetError(f"{path}: not a regular file (a folder, FIFO or device)")
            if not path.is_file():
                raise DatasetNotFoundError(f"{path.name} is missing from {self.dir} (the {split} split needs "
                                           f"{', '.join(p.name for p in self.files)}). {_HOW}")
        self._labels: np.ndarray | None = None
        self._classes: list[str] | None = None
        self._cached: tuple[int, np.ndarray, np.ndarray] | None = None
        self._counts: list[int] | None = None
        if self.layout == "binary":
            for path in self.files:
                size = path.stat().st_size
                if size != FILE_BYTES:
                    raise CorruptDatasetError(f"{path}: expected {FILE_BYTES} bytes "
                                              f"({RECORDS_PER_FILE} records of {RECORD_BYTES}), got {size}")
            self._counts = [RECORDS_PER_FILE] * len(self.files)

    def __repr__(self) -> str:
        return f"Cifar10(dir={str(self.dir)!r}, split={self.split!r}, layout={self.layout!r})"

    def __len__(self) -> int:
        return sum(self._file_counts())

    def _file_counts(self) -> list[int]:
        if self._counts is None:  # python layout: every pickle must be opened once
            labels = []
            for i in range(len(self.files)):
                labels.append(self._py_file(i)[1])
            self._counts = [len(x) for x in labels]
            self._labels = np.concatenate(labels)
        return self._counts

    def _py_file(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if self._cached is None or self._cached[0] != i:
            self._cached = None  # drop the old file before loading the next one
            self._cached = (i, *_read_py_batch(self.files[i]))
        return self._cached[1], self._cached[2]

    @property
    def labels(self) -> np.ndarray:
        """All labels of the split, uint8 (N,)."""
        if self._labels is None:
            if self.layout == "binary":
                parts = []
                for path in self.files:
                    mm = np.memmap(path, np.uint8, "r", shape=(RECORDS_PER_FILE, RECORD_BYTES))
                    parts.append(np.array(mm[:, 0]))
                    del mm
                    _check_labels(parts[-1], path, 0)
                self._labels = np.concatenate(parts)
            else:
                self._file_counts()
        assert self._labels is not None
        self._labels.flags.writeable = False  # shared by every caller
        return self._labels

    @property
    def classes(self) -> list[str]:
        """The 10 class names, index = label (from the meta file when there is one)."""
        if self._classes is None:
            names: list[str] = list(CLASSES)
            meta_txt = self.dir / "batches.meta.txt"
            if self.layout == "binary" and (meta_txt.exists() or meta_txt.is_symlink()):
                from ..fileio import FileError, read_regular_file
                try:  # 10 short lines; a FIFO or /dev/zero behind a symlink is refused, not read
                    text = read_regular_file(meta_txt, 64 << 10, "CIFAR-10 meta file").decode("utf-8", "replace")
                except (FileError, OSError) as e:
                    raise CorruptDatasetError(str(e)) from None
                names = [line.strip() for line in text.splitlines() if line.strip()]
            elif self.layout == "python" and (self.dir / "batches.meta").is_file():
                meta_path = self.dir / "batches.meta"
                meta = load_pickle(meta_path)
                raw = _field(meta, "label_names", meta_path) if isinstance(meta, dict) else None
                if (not isinstance(raw, (list, tuple)) or len(raw) != 10
                        or not all(isinstance(n, (bytes, str)) and len(n) <= 100 for n in raw)):
                    raise CorruptDatasetError(f"{meta_path}: 'label_names' must be 10 names (bytes or str of "
                                              "at most 100 characters)")
                names = [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in raw]
            if len(names) != 10:
                raise CorruptDatasetError(f"{self.dir}: expected 10 class names in the meta file, got {len(names)}")
            self._classes = names
        return self._classes

    def read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Records ``[start, stop)``: images uint8 (n, 3, 32, 32) C-contiguous, labels uint8 (n,)."""
        start, stop, n_all = operator.index(start), operator.index(stop), len(self)
        if not 0 <= start <= stop <= n_all:
            raise IndexError(f"records [{start}, {stop}) out of range for {n_all} {self.split} images")
        images = np.empty((stop - start, PIXEL_BYTES), np.uint8)
        labels = np.empty(stop - start, np.uint8)
        first = 0
        for i, count in enumerate(self._file_counts()):
            lo, hi = max(start - first, 0), min(stop - first, count)
            if lo < hi:
                out = slice(first + lo - start, first + hi - start)
                if self.layout == "binary":
                    self._read_bin(self.files[i], lo, hi, images[out], labels[out])
                else:
                    data, lab = self._py_file(i)
                    images[out], labels[out] = data[lo:hi], lab[lo:hi]
            first += count
        return images.reshape(-1, *IMAGE_SHAPE), labels

    @staticmethod
    def _read_bin(path: Path, lo: int, hi: int, images: np.ndarray, labels: np.ndarray) -> None:
        want = (hi - lo) * RECORD_BYTES
        with open(path, "rb") as f:
            f.seek(lo * RECORD_BYTES)
            buf = f.read(want)
        if len(buf) != want:
            raise CorruptDatasetError(f"{path}: expected {FILE_BYTES} bytes, file ends early "
                                      f"(got {lo * RECORD_BYTES + len(buf)} bytes)")
        rec = np.frombuffer(buf, np.uint8).reshape(hi - lo, RECORD_BYTES)
        labels[:] = rec[:, 0]
        _check_labels(labels, path, lo)
        images[:] = rec[:, 1:]

    def images(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Random access: images ``[start, stop)`` (default: to the end), uint8 (n, 3, 32, 32)."""
        return self.read(start, len(self) if stop is None else stop)[0]

    def batches(self, batch_size: int = 256, limit: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(images, labels)`` in file order over the first ``limit`` (default all) images."""
        batch_size = operator.index(batch_size)
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        n = _limit(limit, len(self))
        return (self.read(s, min(s + batch_size, n)) for s in range(0, n, batch_size))


def _limit(limit: int | None, n: int) -> int:
    if limit is None:
        return n
    limit = operator.index(limit)
    if limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    return min(limit, n)


def load_cifar10(root: PathLike | None = None, split: str = "test",
                 limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``limit`` (default all) images of a split at once: uint8 NCHW and uint8 labels."""
    ds = Cifar10(root, split)
    return ds.read(0, _limit(limit, len(ds)))


CALIBRATION_START = 45_000
"""First training record of the calibration split (records 45,000…49,999 = ``data_batch_5``)."""
CALIBRATION_SIZE = 5_000
"""Images in the calibration split."""


def calibration_split(root: PathLike | None = None, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The calibration split, defined once for every search that tunes a program on data:
    the last 5,000 CIFAR-10 *training* images (records 45,000…49,999 of the train split, i.e.
    ``data_batch_5``), in file order; the first ``limit`` of them when given. Shared by the
    hybrid-mode threshold calibration (``hybridcim calibrate``) and DualNet's ratio search, so the
    test set is used only for reported numbers. Images uint8 NCHW (n, 3, 32, 32), labels uint8 (n,)."""
    ds = Cifar10(root, "train")
    if len(ds) != CALIBRATION_START + CALIBRATION_SIZE:
        raise CorruptDatasetError(f"{ds.dir}: the train split has {len(ds)} images, the calibration split needs "
                                  f"{CALIBRATION_START + CALIBRATION_SIZE}")
    n = _limit(limit, CALIBRATION_SIZE)
    return ds.read(CALIBRATION_START, CALIBRATION_START + n)
