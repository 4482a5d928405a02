"""hybridcim.fileio: regular files only, size caps before reading, atomic and all-or-none writes."""
import os

import pytest

from hybridcim import fileio
from hybridcim.fileio import FileError, atomic_write_bytes, atomic_write_files, check_output, read_regular_file
from hybridcim.program import read_program, write_program
from hybridcim.program.codec import max_image_bytes
from hybridcim.program.format import HEADER
from hybridcim.spec.hardware import PRESETS
from hybridcim.zoo import random_resnet20


def test_reads_regular_files_and_follows_symlinks(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"12345")
    (tmp_path / "link").symlink_to(f)
    assert read_regular_file(tmp_path / "link", 5) == b"12345"
    with pytest.raises(FileError, match="5 bytes, over the 4-byte limit"):
        read_regular_file(f, 4)


@pytest.mark.parametrize("make, says", [
    (lambda d: "/dev/zero", "character device"),
    (lambda d: "/dev/urandom", "character device"),
    (lambda d: (os.mkfifo(d / "p"), d / "p")[1], "FIFO"),
    (lambda d: d, "folder"),
    (lambda d: ((d / "z").symlink_to("/dev/zero"), d / "z")[1], "character device"),
    (lambda d: ((d / "a").symlink_to(d / "b"), (d / "b").symlink_to(d / "a"), d / "a")[2], "symlink loop"),
    (lambda d: ((d / "f").write_text("x"), d / "f" / "g")[1], "regular file, not a folder"),
])
def test_refuses_anything_else_without_blocking(tmp_path, make, says):
    with pytest.raises(FileError, match=says):
        read_regular_file(make(tmp_path), 1 << 30, "program image")


def test_missing_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_regular_file(tmp_path / "nope", 10)


def test_callable_limit_sees_only_the_head(tmp_path, monkeypatch):
    f = tmp_path / "big"
    f.write_bytes(b"H" * 10_000)
    seen = []
    assert read_regular_file(f, lambda head: seen.append(head) or 10_000) == b"H" * 10_000
    assert seen == [b"H" * fileio.HEAD_BYTES]
    with pytest.raises(FileError, match="10,000 bytes, over the 9,999-byte limit"):
        read_regular_file(f, lambda head: 9_999)


@pytest.fixture(scope="module")
def header(tmp_path_factory):
    return write_program(random_resnet20("tiny-64"), tmp_path_factory.mktemp("h") / "p.cim").read_bytes()[:HEADER.size]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_program_over_its_presets_cap_is_refused_before_reading(tmp_path, preset, header, monkeypatch):
    """A (sparse) file one byte over the cap of the preset its header names: refused after the head."""
    h = list(HEADER.unpack(header))
    h[5] = PRESETS[preset].fingerprint
    cap = max_image_bytes(PRESETS[preset])
    big = tmp_path / "big.cim"
    with open(big, "wb") as fh:
        fh.write(HEADER.pack(*h))
        fh.truncate(cap + 1)
    read = []
    real = os.read
    monkeypatch.setattr(fileio.os, "read", lambda fd, n: read.append(n) or real(fd, n))
    with pytest.raises(FileError, match=f"over the {cap:,}-byte limit"):
        read_program(big)
    assert sum(read) <= fileio.HEAD_BYTES


def test_cap_holds_the_largest_program_the_kernel_takes():
    """sun-mars-256 (128 layers x 512 groups x 128 row blocks x 8 words): about 516 MiB, not 4 GiB."""
    assert 512 << 20 < max_image_bytes(PRESETS["sun-mars-256"]) < 520 << 20
    assert max_image_bytes() == max(max_image_bytes(p) for p in PRESETS.values()) < 1 << 32


def test_check_output_refusals(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(FileError, match="is a folder"):
        check_output(tmp_path, "--output")
    with pytest.raises(FileError, match="'.*f' is a regular file, not a folder"):
        check_output(tmp_path / "f" / "deeper" / "x.cim", "--output")
    assert check_output(tmp_path / "new" / "x.cim") == tmp_path / "new" / "x.cim"
    assert (tmp_path / "new").is_dir()


def test_atomic_writes_leave_no_temporaries(tmp_path):
    p = atomic_write_bytes(tmp_path / "a.bin", b"abc")
    assert p.read_bytes() == b"abc" and oct(p.stat().st_mode & 0o777) != "0o600"
    atomic_write_files([(tmp_path / "a.bin", b"new"), (tmp_path / "b.bin", b"b")])
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.bin", "b.bin"]
    with pytest.raises(FileError, match="same file given twice"):
        atomic_write_files([(tmp_path / "a.bin", b"1"), (tmp_path / "." / "a.bin", b"2")])
    assert (tmp_path / "a.bin").read_bytes() == b"new"
