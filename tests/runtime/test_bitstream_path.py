"""Where --backend pynq finds a board's bitstream folder, in an editable checkout and in a
non-editable install (simulated by pointing the lookup at a site-packages layout)."""
import json

import pytest

from hybridcim.runtime import bitstream_path
from hybridcim.runtime.bitstream_path import ENV, checkout_bitstreams, find_board_dir, search_path
from hybridcim.runtime.errors import DeviceError


def _board(root, name="pynq-z2"):
    d = root / name
    d.mkdir(parents=True)
    (d / "manifest.json").write_text(json.dumps({"format": "hybridcim-bitstream"}))
    return d


@pytest.fixture
def site(tmp_path, monkeypatch):
    """``pip install .`` layout: venv/lib/python3.11/site-packages/hybridcim, no checkout around it."""
    monkeypatch.delenv(ENV, raising=False)
    pkg = tmp_path / "venv" / "lib" / "python3.11" / "site-packages" / "hybridcim"
    pkg.mkdir(parents=True)
    monkeypatch.setattr(bitstream_path, "PACKAGE_DIR", pkg)
    return pkg


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """``pip install -e .`` layout: <checkout>/host/hybridcim beside setup.py, hls/ and bitstreams/."""
    monkeypatch.delenv(ENV, raising=False)
    root = tmp_path / "repo"
    pkg = root / "host" / "hybridcim"
    pkg.mkdir(parents=True)
    (root / "hls").mkdir()
    (root / "setup.py").write_text("")
    monkeypatch.setattr(bitstream_path, "PACKAGE_DIR", pkg)
    return root


def test_an_installed_package_finds_its_package_data(site):
    d = _board(site / "bitstreams")
    _board(site.parents[1] / "bitstreams", "other")  # venv/lib/python3.11/bitstreams: never searched
    assert find_board_dir("pynq-z2") == d
    assert [w for w, _ in search_path()] == ["the installed package"]
    assert all("python3.11/bitstreams" not in str(p) for _, p in search_path())
    with pytest.raises(DeviceError, match="no bitstream for board 'other'"):
        find_board_dir("other")


def test_the_error_lists_every_place_tried_and_the_remedies(site, monkeypatch, tmp_path):
    monkeypatch.setenv(ENV, str(tmp_path / "mine"))
    with pytest.raises(DeviceError) as e:
        find_board_dir("pynq-z2")
    msg = str(e.value)
    assert str(tmp_path / "mine" / "pynq-z2") in msg and str(site / "bitstreams" / "pynq-z2") in msg
    assert ENV in msg and "--board" in msg and "overlay/build.sh" in msg


def test_search_order_env_then_checkout_then_package(checkout, monkeypatch, tmp_path):
    pkg = checkout / "host" / "hybridcim"
    in_pkg = _board(pkg / "bitstreams")
    assert checkout_bitstreams() == checkout / "bitstreams"
    assert find_board_dir("pynq-z2") == in_pkg
    in_checkout = _board(checkout / "bitstreams")
    assert find_board_dir("pynq-z2") == in_checkout
    env_a, env_b = tmp_path / "a", tmp_path / "b"
    in_env = _board(env_b)
    monkeypatch.setenv(ENV, f"{env_a}:{env_b}")
    assert find_board_dir("pynq-z2") == in_env
    assert [w for w, _ in search_path()] == [f"${ENV}", f"${ENV}", "the repository checkout",
                                            "the installed package"]


def test_a_folder_argument_is_used_as_given(site, tmp_path, monkeypatch):
    d = _board(tmp_path / "builds")
    assert find_board_dir(str(d)) == d
    monkeypatch.chdir(tmp_path / "builds")
    assert find_board_dir("./pynq-z2").resolve() == d.resolve()
    monkeypatch.setenv("HOME", str(tmp_path))
    assert find_board_dir("~/builds/pynq-z2") == d


def test_explicit_root_and_bad_names(site, tmp_path):
    assert find_board_dir("pynq-z2", tmp_path) == tmp_path / "pynq-z2"
    for bad in ("", "a b", "x\x00", "-rf", None):
        with pytest.raises(DeviceError):
            find_board_dir(bad)


def test_pynq_device_uses_the_lookup(site, monkeypatch, tmp_path):
    """PynqDevice(board=NAME) opens the package data folder's manifest (and fails on its content,
    not on the path): the lookup is wired in."""
    from hybridcim.runtime.pynq_device import PynqDevice
    _board(site / "bitstreams")
    with pytest.raises(DeviceError, match=str(site / "bitstreams" / "pynq-z2" / "manifest.json")):
        PynqDevice(board="pynq-z2")
    with pytest.raises(DeviceError, match="no bitstream for board 'zcu104'"):
        PynqDevice(board="zcu104")
