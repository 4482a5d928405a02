"""The board's bitstreams/<board>/manifest.json is an input: every tampered version is refused
with a DeviceError naming the field (never ValueError, KeyError, AttributeError, UnicodeError).
"""
import hashlib
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hybridcim.runtime.bitstream import (KERNEL_MAJOR, LIMIT_FIELDS, MANIFEST_MAX_BYTES, check_manifest,
                                         load_manifest, make_manifest, manifest_kernel_info)
from hybridcim.runtime.buffers import KernelInfo
from hybridcim.runtime.errors import DeviceError

BIT = b"\x00\x09\x0f\xf0fake bitstream"


def valid_manifest() -> dict:
    return make_manifest("pynq-z2", "tiny-64", "xc7z020clg400-1", "hybridcim.bit", "hybridcim.hwh",
                         tools="Vivado v2023.2", built_utc="2026-12-01T00:00:00+00:00",
                         bit_sha256=hashlib.sha256(BIT).hexdigest(), driver_header="xhybridcim_accel_hw.h")


def board_dir(tmp_path, manifest=None, raw: bytes | None = None):
    d = tmp_path / "pynq-z2"
    d.mkdir(exist_ok=True)
    (d / "hybridcim.bit").write_bytes(BIT)
    (d / "hybridcim.hwh").write_text("<xml/>")
    (d / "xhybridcim_accel_hw.h").write_text("")
    (d / "manifest.json").write_bytes(raw if raw is not None else json.dumps(manifest).encode())
    return d


def test_the_valid_manifest_loads(tmp_path):
    m = load_manifest(board_dir(tmp_path, valid_manifest()))
    info = manifest_kernel_info(m)
    assert isinstance(info, KernelInfo) and info.kernel_major == KERNEL_MAJOR
    assert all(getattr(info, k) == m["limits"][k] for k in LIMIT_FIELDS)


def _set(m, path, value):
    d = m
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = value


def _del(m, path):
    d = m
    for k in path[:-1]:
        d = d[k]
    del d[path[-1]]


# (what is changed, value) -> the field the message must name; one row per tampering class
TAMPERED = [
    (("format",), "hybridcim-bitstreams", "format"), (("format",), None, "format"),
    (("bitstream",), 7, "bitstream"), (("bitstream",), "../../etc/passwd", "bitstream"),
    (("bitstream",), "other.bit", "bitstream"), (("hwh",), ["a"], "hwh"), (("hwh",), "", "hwh"),
    (("kernel_version",), 1.1, "kernel_version"), (("kernel_version",), "1", "kernel_version"),
    (("kernel_version",), "x.y", "kernel_version"), (("kernel_version",), "2.0", "kernel version"),
    (("kernel_version",), "1." + "9" * 5000, "kernel_version"),
    (("preset",), "tiny-64", "preset"), (("preset",), [], "preset"), (("preset", "rows"), "64", "preset.rows"),
    (("preset", "rows"), 10**30, "preset.rows"), (("preset", "rows"), True, "preset.rows"),
    (("preset", "rows_active"), 12, "preset"), (("preset", "precisions"), 4, "preset.precisions"),
    (("preset", "precisions"), [2, "4"], "preset.precisions[1]"), (("preset", "precisions"), [4, 2], "preset"),
    (("preset", "name"), None, "preset.name"), (("preset", "colour"), 1, "preset"),
    (("preset_fingerprint",), 123, "preset_fingerprint"), (("preset_fingerprint",), "zz", "preset_fingerprint"),
    (("preset_fingerprint",), "00000000", "preset_fingerprint"), (("preset_fingerprint",), "0x1234", "preset_fingerprint"),
    (("limits",), [1, 2], "limits"), (("limits", "max_layers"), -1, "limits.max_layers"),
    (("limits", "max_layers"), 2**32, "limits.max_layers"), (("limits", "max_layers"), 3.0, "limits.max_layers"),
    (("limits", "max_tensors"), {"a": 1}, "limits.max_tensors"), (("ip_name",), 5, "ip_name"),
    (("ip_name",), "a b", "ip_name"), (("driver_header",), "../x.h", "driver_header"),
    (("driver_header",), "missing.h", "driver_header"), (("clock_mhz",), "100", "clock_mhz"),
    (("clock_mhz",), -5, "clock_mhz"), (("clock_mhz",), 1e308, "clock_mhz"), (("board",), {}, "board"),
    (("bit_sha256",), "ABC", "bit_sha256"), (("bit_sha256",), 0, "bit_sha256"),
    (("bit_sha256",), "0" * 64, "bit_sha256"), (("m_axi_addr_bits",), 48, "m_axi_addr_bits"),
    (("m_axi_addr_bits",), "64", "m_axi_addr_bits"),
]


@pytest.mark.parametrize("path,value,field", TAMPERED, ids=[f"{'.'.join(p)}={str(v)[:20]!r}" for p, v, _ in TAMPERED])
def test_a_tampered_field_is_named(tmp_path, path, value, field):
    m = valid_manifest()
    _set(m, path, value)
    with pytest.raises(DeviceError, match=field.replace("[", r"\[").replace("]", r"\]")):
        load_manifest(board_dir(tmp_path, m))


@pytest.mark.parametrize("key", ["format", "bitstream", "hwh", "kernel_version", "preset", "preset_fingerprint",
                                 "limits", "limits.max_layers", "preset.name"])
def test_a_missing_field_is_named(tmp_path, key):
    m = valid_manifest()
    _del(m, tuple(key.split(".")))
    with pytest.raises(DeviceError, match=key.split(".")[-1]):
        load_manifest(board_dir(tmp_path, m))


RAW = {
    "not UTF-8": json.dumps(valid_manifest()).replace("pynq-z2", "pynq-z\udcff2").encode("utf-8", "surrogateescape"),
    "UTF-16": json.dumps(valid_manifest()).encode("utf-16"),
    "truncated": json.dumps(valid_manifest()).encode()[:-40],
    "empty": b"",
    "a list": b"[1, 2, 3]",
    "a string": b'"hybridcim-bitstream"',
    "null": b"null",
    "a number": b"12",
    "NaN": json.dumps({**valid_manifest(), "clock_mhz": math.nan}).encode(),
    "Infinity": json.dumps({**valid_manifest(), "clock_mhz": math.inf}).encode(),
    "a 100,000-digit integer": json.dumps(valid_manifest()).replace('"clock_mhz": 100.0',
                                                                     '"clock_mhz": ' + "9" * 100_000).encode(),
    "deep nesting": b'{"format": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "over the size cap": b'{"format": "' + b"x" * MANIFEST_MAX_BYTES + b'"}',
}


@pytest.mark.parametrize("name", RAW)
def test_a_broken_file_gives_a_device_error(tmp_path, name):
    with pytest.raises(DeviceError, match="manifest.json"):
        load_manifest(board_dir(tmp_path, raw=RAW[name]))


def test_no_manifest_or_a_directory_says_how_to_build_one(tmp_path):
    with pytest.raises(DeviceError, match="overlay/build.sh"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").mkdir()
    with pytest.raises(DeviceError, match="no bitstream manifest"):
        load_manifest(tmp_path)


def test_manifest_kernel_info_checks_a_dict_handed_to_it():
    m = valid_manifest()
    m["limits"] = None
    with pytest.raises(DeviceError, match="limits"):
        manifest_kernel_info(m)
    with pytest.raises(DeviceError, match="list"):
        check_manifest([m])


# --- structure-aware fuzzing: mutate a valid manifest's types, keys and bytes -------------------
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                      st.text(max_size=12), st.sampled_from(["", "1.1", "0.9", "hybridcim.bit", "../hybridcim.bit",
                                                              "25da3f27", "tiny-64"]))
JSON_VALUE = st.recursive(JSON_LEAF, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c,
                                                                                           max_size=3), max_leaves=8)


def _paths(m, prefix=()):
    for k, v in m.items():
        yield prefix + (k,)
        if isinstance(v, dict):
            yield from _paths(v, prefix + (k,))
        elif isinstance(v, list):
            yield from (prefix + (k, i) for i in range(len(v)))


MUTATION = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 10**6), JSON_VALUE),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.none()),
    st.tuples(st.just("add"), st.text(max_size=8), JSON_VALUE),
)
ENCODING = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1", "truncate", "flip"])


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(MUTATION, min_size=1, max_size=4), encoding=ENCODING, where=st.integers(0, 10**6),
       data=st.data())
def test_mutated_manifests_are_loaded_or_refused_with_a_device_error(tmp_path, mutations, encoding, where, data):
    m = valid_manifest()
    m["part"] = "xc7z020clg400-1 \u00e9"  # one non-ASCII character so that encodings differ
    for op, i, value in mutations:
        paths = list(_paths(m))
        if op == "add":
            m[i] = value
        elif paths:
            path = paths[i % len(paths)]
            (_set(m, path, value) if op == "set" else _del(m, path))
    text = json.dumps(m)
    if encoding == "truncate":
        raw = text.encode()[:where % (len(text) + 1)]
    elif encoding == "flip":
        raw = bytearray(text.encode())
        raw[where % len(raw)] ^= data.draw(st.integers(1, 255))
        raw = bytes(raw)
    else:
        raw = text.encode(encoding)
    try:
        got = load_manifest(board_dir(tmp_path, raw=raw))
    except DeviceError as e:
        assert str(e) and "\n" not in str(e)
    else:  # accepted: then everything downstream works on it
        info = manifest_kernel_info(got)
        assert info.kernel_major == KERNEL_MAJOR and isinstance(info.max_layers, int)
