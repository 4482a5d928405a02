"""The calibration split: the last 5,000 CIFAR-10 training images (data_batch_5), defined once."""
from pathlib import Path

import numpy as np
import pytest

from hybridcim.data import BIN_DIR, CALIBRATION_SIZE, CALIBRATION_START, Cifar10, DatasetNotFoundError, calibration_split


def test_split_is_data_batch_5(cifar10_root: Path) -> None:
    images, labels = calibration_split(cifar10_root)
    assert CALIBRATION_START == 45_000 and CALIBRATION_SIZE == 5_000
    assert images.shape == (5_000, 3, 32, 32) and images.dtype == np.uint8 and labels.shape == (5_000,)
    raw = np.fromfile(cifar10_root / BIN_DIR / "data_batch_5.bin", np.uint8).reshape(10_000, 3073)
    assert np.array_equal(labels, raw[5_000:, 0])
    assert np.array_equal(images.reshape(5_000, -1), raw[5_000:, 1:])
    train = Cifar10(cifar10_root, "train")
    assert np.array_equal(labels, train.labels[45_000:])


def test_limit_takes_the_first_images(cifar10_root: Path) -> None:
    full_images, full_labels = calibration_split(cifar10_root, limit=20)
    assert full_images.shape[0] == 20
    img, lab = Cifar10(cifar10_root, "train").read(45_000, 45_020)
    assert np.array_equal(full_images, img) and np.array_equal(full_labels, lab)
    assert calibration_split(cifar10_root, limit=10**6)[0].shape[0] == 5_000
    with pytest.raises(ValueError, match="limit"):
        calibration_split(cifar10_root, limit=-1)


def test_disjoint_from_the_test_set(cifar10_root: Path) -> None:
    cal = calibration_split(cifar10_root, limit=200)[0].reshape(200, -1)
    test = Cifar10(cifar10_root, "test").read(0, 2_000)[0].reshape(2_000, -1)
    assert not (set(map(bytes, cal)) & set(map(bytes, test)))


def test_short_train_split_is_refused(tmp_path: Path, cifar10_root: Path) -> None:
    d = tmp_path / BIN_DIR
    d.mkdir()
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        (d / f"{name}.bin").symlink_to(cifar10_root / BIN_DIR / f"{name}.bin")
    assert calibration_split(tmp_path, limit=1)[0].shape == (1, 3, 32, 32)
    (d / "data_batch_5.bin").unlink()
    with pytest.raises(DatasetNotFoundError, match="data_batch_5"):
        calibration_split(tmp_path)
