"""hybridcim.runtime.csim_build: content-hash names, atomic builds, g++ errors shown verbatim."""
import shutil

import pytest

from hybridcim.runtime import csim_build
from hybridcim.runtime.errors import CSimBuildError, DeviceNotAvailableError

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")


@pytest.fixture
def hls_copy(tmp_path, monkeypatch):
    src = tmp_path / "hls"
    shutil.copytree(csim_build.hls_dir(), src, ignore=shutil.ignore_patterns("build", "data"))
    monkeypatch.setenv("HYBRIDCIM_HLS_DIR", str(src))
    monkeypatch.setenv("HYBRIDCIM_CACHE", str(tmp_path / "cache"))
    return src


def test_name_holds_preset_and_content_hash(hls_copy):
    a = csim_build.library_path("tiny-64")
    assert a.name.startswith("libhcim_csim_tiny-64_") and a.suffix == ".so"
    assert a.parent == csim_build.cache_dir()
    assert csim_build.library_path("sun-mars-256").name != a.name
    (hls_copy / "hcim_layers.cpp").write_text((hls_copy / "hcim_layers.cpp").read_text() + "\n// edit\n")
    assert csim_build.library_path("tiny-64").name != a.name


def test_failed_compile_shows_gxx_stderr_and_leaves_no_file(hls_copy):
    (hls_copy / "hcim_layers.cpp").write_text("this is not C++;\n")
    with pytest.raises(CSimBuildError) as ei:
        csim_build.build("tiny-64")
    msg = str(ei.value)
    assert "hcim_layers.cpp" in msg and "error" in msg and "g++" in msg
    assert "cannot open shared object" not in msg
    assert not any(csim_build.cache_dir().iterdir())  # no library, no temporary left behind


def test_build_then_reuse(hls_copy, monkeypatch):
    path = csim_build.build("tiny-64")
    assert path.is_file() and path == csim_build.library_path("tiny-64")
    mtime = path.stat().st_mtime_ns
    assert csim_build.build("tiny-64") == path and path.stat().st_mtime_ns == mtime
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_missing_sources_and_headers_are_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("HYBRIDCIM_HLS_DIR", str(tmp_path))
    monkeypatch.setattr(csim_build, "__file__", str(tmp_path / "a" / "b" / "c" / "d.py"))
    with pytest.raises(DeviceNotAvailableError, match="HLS kernel sources not found"):
        csim_build.hls_dir()


def test_unknown_preset_header(hls_copy):
    (hls_copy / "presets" / "wide-512.h").unlink()
    with pytest.raises(DeviceNotAvailableError, match="no HLS preset header for preset 'wide-512'"):
        csim_build.library_path("wide-512")


def test_missing_ap_types_is_a_build_error_with_the_reason(hls_copy, tmp_path, monkeypatch):
    empty = tmp_path / "no_ap"
    empty.mkdir()
    monkeypatch.setenv("HYBRIDCIM_AP_TYPES", str(empty))
    with pytest.raises(CSimBuildError, match="ap_int.h"):
        csim_build.build("tiny-64")
