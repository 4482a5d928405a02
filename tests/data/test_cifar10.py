"""Tests of hybridcim.data: the real CIFAR-10 files (read-only), tmp_path copies, offline download."""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from hybridcim.data import (BIN_DIR, BIN_MD5, CLASSES, FILE_BYTES, PY_DIR, RECORD_BYTES, Cifar10,
                            CorruptDatasetError, DatasetError, DatasetNotFoundError, download_cifar10,
                            install_archive, load_cifar10, load_pickle, locate, resolve_root, verify)

TRAIN_FIRST = [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
TEST_FIRST = [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]


def bin_dir(root: Path) -> Path:
    return root / BIN_DIR


def raw_record(root: Path, name: str, index: int) -> bytes:
    with open(bin_dir(root) / name, "rb") as f:
        f.seek(index * RECORD_BYTES)
        return f.read(RECORD_BYTES)


@pytest.fixture(scope="module")
def test_set(cifar10_root: Path) -> Cifar10:
    return Cifar10(cifar10_root, "test")


@pytest.fixture(scope="module")
def train_set(cifar10_root: Path) -> Cifar10:
    return Cifar10(cifar10_root, "train")


# ---------------------------------------------------------------- the real files
def test_sizes_and_lengths(cifar10_root: Path, test_set: Cifar10, train_set: Cifar10) -> None:
    for name in BIN_MD5:
        assert (bin_dir(cifar10_root) / name).stat().st_size == FILE_BYTES == 30_730_000
    assert len(test_set) == 10_000 and len(train_set) == 50_000
    assert test_set.layout == "binary" and test_set.classes == list(CLASSES)


def test_labels(test_set: Cifar10, train_set: Cifar10) -> None:
    assert test_set.labels.dtype == np.uint8 and test_set.labels.shape == (10_000,)
    assert train_set.labels.shape == (50_000,)
    assert train_set.labels[:10].tolist() == TRAIN_FIRST
    assert test_set.labels[:10].tolist() == TEST_FIRST
    assert np.bincount(test_set.labels, minlength=10).tolist() == [1000] * 10
    assert np.bincount(train_set.labels, minlength=10).tolist() == [5000] * 10
    assert np.bincount(train_set.labels[:10_000], minlength=10).tolist() == [
        1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981]


@pytest.mark.parametrize("index, head, tail", [
    (0, [59, 43, 50], [140, 84, 72]),
    (1, [154, 126, 105], [139, 142, 144]),
    (2, [255, 253, 253], [83, 83, 84]),
    (9_999, [62, 61, 60], [130, 130, 131]),
])
def test_known_pixels(train_set: Cifar10, index: int, head: list[int], tail: list[int]) -> None:
    flat = train_set.images(index, index + 1).reshape(-1)  # the flat 3072 layout (R, G, B planes)
    assert flat.size == 3072
    assert flat[:3].tolist() == head and flat[-3:].tolist() == tail


def test_nchw_matches_raw_bytes(cifar10_root: Path, train_set: Cifar10) -> None:
    raw = np.frombuffer(raw_record(cifar10_root, "data_batch_2.bin", 7), np.uint8)
    img = train_set.images(10_007, 10_008)[0]
    assert train_set.labels[10_007] == raw[0]
    for c in range(3):
        np.testing.assert_array_equal(img[c], raw[1 + 1024 * c: 1 + 1024 * (c + 1)].reshape(32, 32))


def test_batches_equal_random_access(test_set: Cifar10) -> None:
    seen_images, seen_labels, sizes = [], [], []
    for images, labels in test_set.batches(batch_size=768):
        assert images.dtype == np.uint8 and labels.dtype == np.uint8
        assert images.shape[1:] == (3, 32, 32) and images.flags.c_contiguous
        assert labels.shape == (images.shape[0],)
        seen_images.append(images)
        seen_labels.append(labels)
        sizes.append(len(labels))
    assert sizes == [768] * 13 + [16]
    all_images, all_labels = test_set.read(0, len(test_set))
    np.testing.assert_array_equal(np.concatenate(seen_images), all_images)
    np.testing.assert_array_equal(np.concatenate(seen_labels), test_set.labels)
    np.testing.assert_array_equal(all_labels, test_set.labels)
    np.testing.assert_array_equal(test_set.images(5_000, 5_300), all_images[5_000:5_300])


def test_read_across_file_boundary(train_set: Cifar10) -> None:
    images, labels = train_set.read(9_990, 10_020)
    np.testing.assert_array_equal(images[:10], train_set.images(9_990, 10_000))
    np.testing.assert_array_equal(images[10:], train_set.images(10_000, 10_020))
    np.testing.assert_array_equal(labels, train_set.labels[9_990:10_020])
    batches = list(train_set.batches(batch_size=4_000, limit=12_000))
    assert [len(b[1]) for b in batches] == [4_000, 4_000, 4_000]
    np.testing.assert_array_equal(batches[2][0][1_990:2_020], images)


def test_limit_handling(cifar10_root: Path, test_set: Cifar10) -> None:
    assert [len(y) for _, y in test_set.batches(64, limit=130)] == [64, 64, 2]
    assert list(test_set.batches(64, limit=0)) == []
    assert sum(len(y) for _, y in test_set.batches(4_096, limit=10 ** 9)) == 10_000
    with pytest.raises(ValueError):
        test_set.batches(64, limit=-1)
    with pytest.raises(ValueError):
        test_set.batches(0)
    with pytest.raises(IndexError):
        test_set.images(9_999, 10_001)
    images, labels = load_cifar10(cifar10_root, "test", limit=10)
    assert images.shape == (10, 3, 32, 32) and labels.tolist() == TEST_FIRST
    np.testing.assert_array_equal(images, test_set.images(0, 10))


def test_channel_statistics(test_set: Cifar10, train_set: Cifar10) -> None:
    sums = np.zeros(3, np.uint64)
    for images, _ in test_set.batches(2_500):
        sums += images.sum(axis=(0, 2, 3), dtype=np.uint64)
    np.testing.assert_allclose(sums / (10_000 * 1024 * 255), [0.4942, 0.4851, 0.4504], atol=2e-4)
    sums[:] = 0
    for images, _ in train_set.batches(10_000):
        sums += images.sum(axis=(0, 2, 3), dtype=np.uint64)
    np.testing.assert_allclose(sums / (50_000 * 1024 * 255), [0.4914, 0.4822, 0.4465], atol=2e-4)


def test_verify_md5(cifar10_root: Path) -> None:
    assert verify(cifar10_root, "test") == {"test_batch.bin": "803d5f7f4d78ea53de84dbe85f74fb6d"}


def test_root_resolution(cifar10_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CIFAR10_DIR", raising=False)
    with pytest.raises(DatasetNotFoundError, match="CIFAR10_DIR") as info:
        resolve_root()
    assert "--data" in str(info.value) and "download_cifar10" in str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    monkeypatch.setenv("CIFAR10_DIR", str(cifar10_root))
    assert resolve_root() == cifar10_root
    assert Cifar10().labels[:10].tolist() == TEST_FIRST
    assert locate(bin_dir(cifar10_root)) == (bin_dir(cifar10_root), "binary")  # the batches folder itself
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        resolve_root(cifar10_root / "nope")


def test_bad_split(cifar10_root: Path) -> None:
    with pytest.raises(DatasetError, match="'valid'"):
        Cifar10(cifar10_root, "valid")
    with pytest.raises(DatasetError):
        load_cifar10(cifar10_root, "Train")


# ---------------------------------------------------------------- broken copies in tmp_path
def copy_test_batch(cifar10_root: Path, dest_root: Path, size: int | None = None) -> Path:
    data = (bin_dir(cifar10_root) / "test_batch.bin").read_bytes()
    out = dest_root / BIN_DIR / "test_batch.bin"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data if size is None else data[:size])
    return out


def test_missing_dir_and_file(cifar10_root: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="neither"):
        Cifar10(tmp_path, "test")
    copy_test_batch(cifar10_root, tmp_path)
    assert len(Cifar10(tmp_path, "test")) == 10_000
    with pytest.raises(DatasetNotFoundError, match="data_batch_1.bin"):
        Cifar10(tmp_path, "train")


def test_truncated_file(cifar10_root: Path, tmp_path: Path) -> None:
    path = copy_test_batch(cifar10_root, tmp_path, FILE_BYTES - 100)
    with pytest.raises(CorruptDatasetError) as info:
        Cifar10(tmp_path, "test")
    message = str(info.value)
    assert "test_batch.bin" in message and "30730000" in message and "30729900" in message
    # shrinking after the size check is still caught at read time, naming the file
    path = copy_test_batch(cifar10_root, tmp_path)
    ds = Cifar10(tmp_path, "test")
    with open(path, "r+b") as f:
        f.truncate(FILE_BYTES - RECORD_BYTES)
    assert ds.read(0, 100)[1][:10].tolist() == TEST_FIRST
    with pytest.raises(CorruptDatasetError, match="test_batch.bin.*ends early"):
        ds.read(9_900, 10_000)


def test_label_out_of_range(cifar10_root: Path, tmp_path: Path) -> None:
    path = copy_test_batch(cifar10_root, tmp_path)
    with open(path, "r+b") as f:
        f.seek(1_234 * RECORD_BYTES)
        f.write(bytes([10]))
    ds = Cifar10(tmp_path, "test")
    assert ds.read(0, 1_000)[1][:10].tolist() == TEST_FIRST  # batches before it are fine
    with pytest.raises(CorruptDatasetError, match=r"test_batch\.bin: record 1234 has label 10"):
        list(ds.batches(256))
    with pytest.raises(CorruptDatasetError, match="record 1234"):
        Cifar10(tmp_path, "test").labels


# ---------------------------------------------------------------- python layout (pickles)
def write_py_batch(path: Path, data: np.ndarray, labels: list[int]) -> None:
    obj = {b"batch_label": b"testing batch 1 of 1", b"labels": labels, b"data": data,
           b"filenames": [b"x.png"] * len(labels)}
    path.write_bytes(pickle.dumps(obj, protocol=2))


def make_py_layout(cifar10_root: Path, root: Path, train_records: int = 7) -> Path:
    folder = root / PY_DIR
    folder.mkdir(parents=True)
    records = np.fromfile(bin_dir(cifar10_root) / "test_batch.bin", np.uint8).reshape(-1, RECORD_BYTES)
    write_py_batch(folder / "test_batch", np.ascontiguousarray(records[:, 1:]), records[:, 0].tolist())
    for i in range(1, 6):
        with open(bin_dir(cifar10_root) / f"data_batch_{i}.bin", "rb") as f:
            part = np.frombuffer(f.read(train_records * RECORD_BYTES), np.uint8).reshape(-1, RECORD_BYTES)
        write_py_batch(folder / f"data_batch_{i}", part[:, 1:].copy(), part[:, 0].tolist())
    (folder / "batches.meta").write_bytes(pickle.dumps(
        {b"label_names": [c.encode() for c in CLASSES], b"num_cases_per_batch": 10000}, protocol=2))
    return folder


def test_python_layout_matches_binary(cifar10_root: Path, tmp_path: Path, test_set: Cifar10,
                                      train_set: Cifar10) -> None:
    folder = make_py_layout(cifar10_root, tmp_path)
    original = pickle.loads((folder / "data_batch_3").read_bytes())  # our own file: plain pickle is fine
    restored = load_pickle(folder / "data_batch_3")
    assert restored.keys() == original.keys() and restored[b"labels"] == original[b"labels"]
    assert restored[b"data"].dtype == np.uint8 and restored[b"data"].shape == (7, 3072)
    np.testing.assert_array_equal(restored[b"data"], original[b"data"])

    py_test = Cifar10(tmp_path, "test")
    assert py_test.layout == "python" and len(py_test) == 10_000 and py_test.classes == list(CLASSES)
    np.testing.assert_array_equal(py_test.labels, test_set.labels)
    for (a, la), (b, lb) in zip(py_test.batches(3_000), test_set.batches(3_000)):
        assert a.flags.c_contiguous and a.shape[1:] == (3, 32, 32)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)

    py_train = Cifar10(folder, "train")  # the batches folder itself also works
    assert len(py_train) == 35
    images, labels = py_train.read(5, 16)  # spans data_batch_1 .. data_batch_3
    expected = [(i // 7) * 10_000 + i % 7 for i in range(5, 16)]
    np.testing.assert_array_equal(labels, train_set.labels[expected])
    np.testing.assert_array_equal(images, np.stack([train_set.images(j, j + 1)[0] for j in expected]))
    with pytest.raises(CorruptDatasetError, match="data_batch_1: MD5 mismatch"):
        verify(tmp_path, "train")


class _Evil:
    def __reduce__(self) -> tuple:
        return (os.system, ("touch pwned",))


@pytest.mark.parametrize("payload", [
    pickle.dumps({b"data": _Evil(), b"labels": []}, protocol=2),
    pickle.dumps(eval, protocol=2),
    b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R.",
    b"\x80\x02cnumpy\nload\n.",
])
def test_malicious_pickle_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, payload: bytes) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / PY_DIR).mkdir()
    (tmp_path / PY_DIR / "test_batch").write_bytes(payload)
    with pytest.raises(CorruptDatasetError, match="test_batch"):
        Cifar10(tmp_path, "test").labels
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("payload, match", [
    (b"not a pickle at all", "not a readable"),
    (pickle.dumps([1, 2, 3], protocol=2), "expected a dict"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, protocol=2), "uint8"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, protocol=2), "labels"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}, protocol=2), "record 1"),
    (pickle.dumps({b"labels": [0]}, protocol=2), "'data'"),
])
def test_bad_pickle_content(tmp_path: Path, payload: bytes, match: str) -> None:
    (tmp_path / PY_DIR).mkdir()
    (tmp_path / PY_DIR / "test_batch").write_bytes(payload)
    with pytest.raises(CorruptDatasetError, match=match):
        Cifar10(tmp_path, "test").images(0, 1)


# ---------------------------------------------------------------- download (offline)
def make_tar(path: Path, members: list[tuple[str, bytes]], symlink: str | None = None) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink is not None:
            info = tarfile.TarInfo(symlink)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return hashlib.md5(path.read_bytes()).hexdigest()


def small_py_members() -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(0)
    out = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        obj = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 3, 9, 1]}
        out.append((f"{PY_DIR}/{name}", pickle.dumps(obj, protocol=2)))
    return out


def test_download_md5_mismatch(tmp_path: Path) -> None:
    archive = tmp_path / "cifar.tar.gz"
    make_tar(archive, small_py_members())
    root = tmp_path / "data"
    with pytest.raises(CorruptDatasetError, match="MD5 mismatch"):
        download_cifar10(root, "python", url=archive.as_uri(), progress=False)
    assert list(root.iterdir()) == []  # the partial download is gone


@pytest.mark.parametrize("bad", ["../evil", "/tmp/evil-abs", "cifar-10-batches-py/../../evil", "symlink"])
def test_download_rejects_unsafe_members(tmp_path: Path, bad: str) -> None:
    archive = tmp_path / "cifar.tar.gz"
    members = small_py_members()
    if bad == "symlink":
        md5 = make_tar(archive, members, symlink=f"{PY_DIR}/link")
    else:
        md5 = make_tar(archive, members + [(bad, b"owned")])
    root = tmp_path / "data"
    with pytest.raises(CorruptDatasetError, match="refusing to extract"):
        download_cifar10(root, "python", url=archive.as_uri(), md5=md5, progress=False)
    assert list(root.iterdir()) == []  # nothing installed, no staging left
    assert not (tmp_path / "evil").exists() and not Path("/tmp/evil-abs").exists()


def test_download_good_archive_installs(tmp_path: Path) -> None:
    archive = tmp_path / "cifar.tar.gz"
    md5 = make_tar(archive, small_py_members())
    root = tmp_path / "data"
    target = download_cifar10(root, "python", url=archive.as_uri(), md5=md5, progress=False)
    assert target == root / PY_DIR and [p.name for p in root.iterdir()] == [PY_DIR]
    ds = Cifar10(root, "test")
    assert len(ds) == 4 and ds.labels.tolist() == [0, 3, 9, 1] and ds.classes == list(CLASSES)
    assert len(Cifar10(root, "train")) == 20
    # already installed: no fetch at all (the URL is never opened)
    assert download_cifar10(root, "python", url=(tmp_path / "missing").as_uri()) == target


def test_download_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="layout"):
        download_cifar10(tmp_path, "jpeg")
    with pytest.raises(DatasetError, match="download of"):
        download_cifar10(tmp_path / "a", url=(tmp_path / "missing.tar.gz").as_uri(), progress=False)
    archive = tmp_path / "wrong.tar.gz"
    make_tar(archive, small_py_members())
    (tmp_path / "b").mkdir()
    with pytest.raises(CorruptDatasetError, match="cifar-10-batches-bin"):
        install_archive(archive, tmp_path / "b", "binary")
    assert list((tmp_path / "b").iterdir()) == []


# ---------------------------------------------------------------- hostile python-layout pickles
def _shared_reference_labels_pickle(n: int = 10_000, width: int = 2_000) -> bytes:
    """A small pickle whose labels are ``n`` references to one ``width`` x ``width`` nested list:
    np.asarray would walk n * width**2 elements (minutes); the file is a few KB."""
    row = [0] * width
    big = [row] * width
    return pickle.dumps({b"data": np.zeros((n, 3072), np.uint8), b"labels": [big] * n}, protocol=2)


def test_shared_reference_labels_are_refused_fast(tmp_path: Path) -> None:
    import time
    (tmp_path / PY_DIR).mkdir()
    payload = _shared_reference_labels_pickle()
    assert len(payload) < 31_000_000 + 100_000
    (tmp_path / PY_DIR / "test_batch").write_bytes(payload)
    t0 = time.monotonic()
    with pytest.raises(CorruptDatasetError, match=r"'labels' must be 10000 integers; entry 0 is a list"):
        Cifar10(tmp_path, "test").labels
    assert time.monotonic() - t0 < 5.0


@pytest.mark.parametrize("labels, match", [
    ([[0, 1], [2]], "entry 0 is a list"),                       # ragged: numpy's own ValueError before
    ([0, [1, 2]], "entry 1 is a list"),
    ([0, 1.0], "entry 1 is a float"),
    ([True, 0], "entry 0 is a bool"),
    ([0, b"1"], "entry 1 is a bytes"),
    ([0, -1], "record 1 has label -1"),
    ([0, 10 ** 40], "record 1 has label of over 9 digits"),
    ({0: 0, 1: 1}, "got dict"),
    (np.zeros((2, 1), np.int64), "shape"),
    (np.zeros(2, np.float32), "float32"),
    (np.array([0, 1], np.uint16), None),                       # an integer array is fine
])
def test_label_types_are_checked(tmp_path: Path, labels: object, match: str | None) -> None:
    (tmp_path / PY_DIR).mkdir()
    (tmp_path / PY_DIR / "test_batch").write_bytes(
        pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": labels}, protocol=2))
    if match is None:
        assert Cifar10(tmp_path, "test").labels.tolist() == [0, 1]
    else:
        with pytest.raises(CorruptDatasetError, match=match):
            Cifar10(tmp_path, "test").labels


def test_hostile_meta_names_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / PY_DIR
    folder.mkdir()
    write_py_batch(folder / "test_batch", np.zeros((1, 3072), np.uint8), [0])
    big = [[0] * 1000] * 1000
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [big] * 10}, protocol=2))
    with pytest.raises(CorruptDatasetError, match="label_names"):
        Cifar10(tmp_path, "test").classes


def test_oversized_or_special_python_files_are_refused(tmp_path: Path) -> None:
    from hybridcim.data.cifar10 import PY_FILE_MAX_BYTES
    folder = tmp_path / PY_DIR
    folder.mkdir()
    with open(folder / "test_batch", "wb") as f:
        f.truncate(PY_FILE_MAX_BYTES + 1)  # sparse: no disk used
    with pytest.raises(CorruptDatasetError, match="more than a CIFAR-10 python batch"):
        Cifar10(tmp_path, "test").labels
    (folder / "test_batch").unlink()
    os.mkfifo(folder / "test_batch")  # a FIFO is not a regular file: refused, never opened (no hang)
    with pytest.raises(CorruptDatasetError, match="not a regular file"):
        Cifar10(tmp_path, "test").labels


class _EvilPopen:
    def __reduce__(self) -> tuple:
        import subprocess
        return (subprocess.Popen, (["touch", "pwned"],))


@pytest.mark.parametrize("payload", [
    b"cos\nsystem\n(S'touch pwned'\ntR.",                            # protocol 0 GLOBAL + REDUCE
    b"(S'touch pwned'\nios\nsystem\n.",                              # INST opcode
    b"cposix\nsystem\n(S'touch pwned'\ntR.",
    b"c__builtin__\neval\n(S'__import__(\"os\").system(\"touch pwned\")'\ntR.",
    b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(S'os'\ntRS'system'\ntR(S'touch pwned'\ntR.",
    b"ccopyreg\n_reconstructor\n(cos\nsystem\nc__builtin__\nstr\nS'touch pwned'\ntR.",
    pickle.dumps(_EvilPopen(), protocol=4),                           # STACK_GLOBAL (protocol 4)
    pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [_Evil()]}, protocol=5),
    b"\x80\x02cnumpy\nfrombuffer\nC\x01\x00\x85R.",                   # numpy, but not an allowed name
])
def test_more_code_execution_payloads_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  payload: bytes) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / PY_DIR).mkdir()
    (tmp_path / PY_DIR / "test_batch").write_bytes(payload)
    with pytest.raises(CorruptDatasetError, match="refusing to load it"):
        Cifar10(tmp_path, "test").labels
    assert not (tmp_path / "pwned").exists()


def test_a_hostile_binary_meta_file_is_refused(cifar10_root: Path, tmp_path: Path) -> None:
    copy_test_batch(cifar10_root, tmp_path)
    meta = tmp_path / BIN_DIR / "batches.meta.txt"
    meta.symlink_to("/dev/zero")  # read_text would never end
    with pytest.raises(CorruptDatasetError, match="batches.meta.txt"):
        Cifar10(tmp_path, "test").classes
    meta.unlink()
    os.mkfifo(meta)  # opening a FIFO for reading would block
    with pytest.raises(CorruptDatasetError, match="FIFO"):
        Cifar10(tmp_path, "test").classes
    meta.unlink()
    meta.write_text("\n".join(CLASSES) + "\n")
    assert Cifar10(tmp_path, "test").classes == list(CLASSES)
