"""CIFAR-10 input (numpy + stdlib only): images uint8 NCHW (B, 3, 32, 32), labels uint8 (B,).

Reads the official binary (``cifar-10-batches-bin/*.bin``) or python
(``cifar-10-batches-py/`` pickles, via a restricted unpickler) layout; see ``cifar10``.
Downloading is explicit only: ``download_cifar10(root)``.
"""
from .cifar10 import (BIN_DIR, CALIBRATION_SIZE, CALIBRATION_START, CLASSES, FILE_BYTES, IMAGE_SHAPE, PY_DIR,
                      RECORD_BYTES, RECORDS_PER_FILE, SPLITS, Cifar10, CorruptDatasetError, DatasetError, DatasetNotFoundError,
                      RestrictedUnpickler, calibration_split, load_cifar10, load_pickle, locate, resolve_root)
from .download import BIN_MD5, PY_MD5, URLS, download_cifar10, fetch, install_archive, md5_file, verify

__all__ = [
    "BIN_DIR", "BIN_MD5", "CALIBRATION_SIZE", "CALIBRATION_START", "CLASSES", "FILE_BYTES", "IMAGE_SHAPE", "PY_DIR",
    "PY_MD5", "RECORD_BYTES",
    "RECORDS_PER_FILE", "SPLITS", "URLS", "Cifar10", "CorruptDatasetError", "DatasetError",
    "DatasetNotFoundError", "RestrictedUnpickler", "calibration_split", "download_cifar10", "fetch",
    "install_archive",
    "load_cifar10", "load_pickle", "locate", "md5_file", "resolve_root", "verify",
]
