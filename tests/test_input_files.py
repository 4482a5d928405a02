"""Files a user hands over, beside program images: the integer model (.json + .npz), a training
config (YAML), model.onnx, the .cim.json sidecar and a training checkpoint. Each, truncated,
corrupted or hostile, gives its typed one-line error within BOUND_S seconds (the bounds each
reader states in its docstring), never a traceback from a library, a hang or a huge allocation.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "host" / "hybridcim" / "models" / "resnet8-w4a4-p50-quick"
BOUND_S = 5.0


def refused(fn, error, match=None):
    """Call fn; it must raise ``error`` (one line, matching ``match``) within BOUND_S."""
    t0 = time.monotonic()
    with pytest.raises(error, match=match) as e:
        fn()
    assert time.monotonic() - t0 < BOUND_S, f"took {time.monotonic() - t0:.1f} s"
    assert "\n" not in str(e.value) and len(str(e.value)) < 1000
    return e.value


def _fifo(path: Path) -> Path:
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


def _dev_zero(path: Path) -> Path:
    path.unlink(missing_ok=True)
    path.symlink_to("/dev/zero")
    return path


# ------------------------------------------------------------------ integer model (.json + .npz)
def _model_copy(tmp_path: Path) -> Path:
    d = tmp_path / "model"
    d.mkdir()
    for f in ("integer_model.json", "integer_model.npz"):
        shutil.copy(MODEL / f, d / f)
    return d


def _edit_json(d: Path, fn) -> None:
    desc = json.loads((d / "integer_model.json").read_text())
    fn(desc)
    (d / "integer_model.json").write_text(json.dumps(desc))


def _edit_arrays(d: Path, fn) -> None:
    with np.load(d / "integer_model.npz") as z:
        arrays = {k: z[k] for k in z.files}
    fn(arrays)
    np.savez(d / "integer_model.npz", **arrays)


def _zip_bomb(d: Path) -> None:
    """An npz whose central directory claims a 4 GB member (the bytes are a few hundred)."""
    p = d / "integer_model.npz"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("stem/weight.npy", b"\x00" * 100)
    raw = bytearray(p.read_bytes())
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24:cd + 28] = struct.pack("<I", 0xFFFFFFF0)
    p.write_bytes(bytes(raw))


def _set_layer(i, **kw):
    return lambda desc: desc["layers"][i].update(kw)


INTEGER_MODEL = {
    "truncated json": lambda d: (d / "integer_model.json").write_bytes((d / "integer_model.json").read_bytes()[:500]),
    "truncated npz": lambda d: (d / "integer_model.npz").write_bytes((d / "integer_model.npz").read_bytes()[:5000]),
    "empty npz": lambda d: (d / "integer_model.npz").write_bytes(b""),
    "corrupted npz bytes": lambda d: (d / "integer_model.npz").write_bytes(
        (d / "integer_model.npz").read_bytes()[:3000] + b"\xff" * 64 + (d / "integer_model.npz").read_bytes()[3064:]),
    "corrupted json bytes": lambda d: (d / "integer_model.json").write_bytes(b"\xff\xfe" + (d / "integer_model.json").read_bytes()),
    "filters as a string": lambda d: _edit_json(d, _set_layer(0, filters="16")),
    "k huge": lambda d: _edit_json(d, _set_layer(0, k=10 ** 30)),
    "unknown op": lambda d: _edit_json(d, _set_layer(1, op="exec")),
    "layer reads the future": lambda d: _edit_json(d, _set_layer(0, **{"in": "fc"})),
    "layers not a list": lambda d: _edit_json(d, lambda desc: desc.update(layers={"a": 1})),
    "input missing": lambda d: _edit_json(d, lambda desc: desc.pop("input")),
    "output unknown": lambda d: _edit_json(d, lambda desc: desc.update(output=["fc"])),
    "JSON a list": lambda d: (d / "integer_model.json").write_text("[1, 2]"),
    "deep nesting": lambda d: (d / "integer_model.json").write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"),
    "pickled object array": lambda d: _edit_arrays(d, lambda a: a.update({"stem/bias": np.array([{}] * 16, object)})),
    "float weights": lambda d: _edit_arrays(d, lambda a: a.update({"stem/weight": a["stem/weight"].astype(np.float32)})),
    "weight shape": lambda d: _edit_arrays(d, lambda a: a.update({"stem/weight": a["stem/weight"][:, :, :1]})),
    "weights over their precision": lambda d: _edit_arrays(d, lambda a: a.update({"stem/weight": a["stem/weight"] * 0 + 127,
                                                                                   "stem/precision": a["stem/precision"] * 0 + 2})),
    "rewired input": lambda d: _edit_json(d, _set_layer(2, **{"in": "input"})),
    "residual of another shape": lambda d: _edit_json(d, _set_layer(2, res="input")),
    "zip bomb": _zip_bomb,
    "json is /dev/zero": lambda d: _dev_zero(d / "integer_model.json"),
    "npz is a FIFO": lambda d: _fifo(d / "integer_model.npz"),
}


@pytest.mark.parametrize("variant", INTEGER_MODEL)
def test_integer_model(tmp_path, variant):
    from hybridcim.compiler import IntegerModelError, compile_model, load_integer_model
    d = _model_copy(tmp_path)
    assert compile_model(load_integer_model(d)).name  # the intact copy compiles
    INTEGER_MODEL[variant](d)
    refused(lambda: load_integer_model(d), IntegerModelError)


def test_integer_model_out_of_range_values_are_a_program_error(tmp_path):
    """Schema-valid but semantically hostile arrays reach the builder, whose validator refuses them."""
    from hybridcim.compiler import compile_model, load_integer_model
    from hybridcim.program.errors import ProgramError
    d = _model_copy(tmp_path)
    _edit_arrays(d, lambda a: a.update({"stem/shift": np.full(16, 100, np.int8)}))
    refused(lambda: compile_model(load_integer_model(d)), ProgramError)


# ------------------------------------------------------------------ training config (YAML)
GOOD_YAML = (ROOT / "host" / "hybridcim" / "train" / "configs" / "smoke.yaml").read_text()
LAUGHS = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi"))
CONFIG = {
    "truncated": GOOD_YAML[:len(GOOD_YAML) // 2] + "\n  model: {arch: [",
    "not UTF-8": b"name: \xff\xfe\n",
    "binary junk": bytes(range(256)) * 4,
    "a list": "- 1\n- 2\n",
    "wrong type": "optim: {epochs: ten}\n",
    "bool for an int": "optim: {epochs: true}\n",
    "nan lr": "optim: {lr: .nan}\n",
    "huge int": "optim: {epochs: " + "9" * 100_000 + "}\n",
    "python tag": "name: !!python/object/apply:os.system ['touch pwned']\n",
    "billion laughs": LAUGHS + "model: {widths: *i}\n",
    "deep nesting": "model: " + "[" * 30_000 + "]" * 30_000 + "\n",
    "deep block nesting": "".join(" " * i + f"k{i}:\n" for i in range(300)),
    "over the size cap": "name: x\n" + "# padding\n" * 10_000,
    "unknown key": "optim: {epoch: 3}\n",
    "/dev/zero": None,
    "FIFO": None,
}


@pytest.mark.parametrize("libyaml", [True, False], ids=["libyaml", "pure-python"])
@pytest.mark.parametrize("variant", CONFIG)
def test_training_config(tmp_path, monkeypatch, variant, libyaml):
    pytest.importorskip("yaml")
    import yaml

    from hybridcim.train.config import ConfigError, load_config
    if libyaml and not yaml.__with_libyaml__:
        pytest.skip("PyYAML without libyaml")
    monkeypatch.setattr(yaml, "__with_libyaml__", libyaml)
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "c.yaml"
    p.write_text(GOOD_YAML)
    assert load_config(p).name == "smoke"
    content = CONFIG[variant]
    if variant == "/dev/zero":
        _dev_zero(p)
    elif variant == "FIFO":
        _fifo(p)
    else:
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
    refused(lambda: load_config(p), ConfigError)
    assert not (tmp_path / "pwned").exists()


# ------------------------------------------------------------------ model.onnx (QONNX reference)
def _onnx_variant(variant: str, path: Path) -> None:
    import onnx
    from onnx import helper
    raw = (MODEL / "model.onnx").read_bytes()
    if variant == "truncated":
        path.write_bytes(raw[:len(raw) // 3])
    elif variant == "garbage":
        path.write_bytes(os.urandom(4096))
    elif variant == "empty":
        path.write_bytes(b"")
    elif variant in ("foreign domain", "subgraph", "huge pads", "external data", "function"):
        m = onnx.load_model_from_string(raw)
        conv = next(n for n in m.graph.node if n.op_type == "Conv")
        if variant == "foreign domain":  # qonnx would import the module the domain names
            m.graph.node[0].domain, m.graph.node[0].op_type = "antigravity", "Quant"
        elif variant == "subgraph":
            conv.attribute.append(helper.make_attribute("body", helper.make_graph([], "g", [], [])))
        elif variant == "huge pads":
            for a in conv.attribute:
                if a.name == "pads":
                    a.ints[:] = [10 ** 9] * len(a.ints)
        elif variant == "external data":
            t = m.graph.initializer[0]
            t.data_location = onnx.TensorProto.EXTERNAL
            t.external_data.add(key="location", value="/etc/passwd")
        else:
            m.functions.add(name="f", domain="x")
        path.write_bytes(m.SerializeToString())
    elif variant == "FIFO":
        _fifo(path)
    elif variant == "/dev/zero":
        _dev_zero(path)


@pytest.mark.parametrize("variant", ["truncated", "garbage", "empty", "foreign domain", "subgraph", "huge pads",
                                     "external data", "function", "FIFO", "/dev/zero"])
def test_model_onnx(tmp_path, variant):
    pytest.importorskip("qonnx")
    pytest.importorskip("torch")
    from hybridcim.train.qonnx_export import QonnxModelError, QonnxReference, load_qonnx_model
    assert load_qonnx_model(MODEL / "model.onnx").graph.node
    p = tmp_path / "model.onnx"
    _onnx_variant(variant, p)
    refused(lambda: QonnxReference(p, 10), QonnxModelError)


# ------------------------------------------------------------------ the .cim.json sidecar
@pytest.mark.parametrize("variant", ["truncated", "garbage", "deep nesting", "FIFO", "/dev/zero", "a folder"])
def test_cim_json_sidecar_is_never_read(tmp_path, variant, capsys):
    """The sidecar is a human-readable copy of the image's embedded manifest: no reader uses it
    (the image is authoritative), so a broken one changes nothing and blocks nothing."""
    from hybridcim.cli.main import main
    from hybridcim.program import read_program
    img = tmp_path / "m.cim"
    shutil.copy(MODEL / "model.cim", img)
    side = tmp_path / "m.cim.json"
    shutil.copy(MODEL / "model.cim.json", side)
    want = read_program(img)
    text = side.read_bytes()
    if variant == "truncated":
        side.write_bytes(text[:len(text) // 2])
    elif variant == "garbage":
        side.write_bytes(os.urandom(2048))
    elif variant == "deep nesting":
        side.write_text("[" * 200_000 + "]" * 200_000)
    elif variant == "FIFO":
        _fifo(side)
    elif variant == "/dev/zero":
        _dev_zero(side)
    else:
        side.unlink()
        side.mkdir()
    t0 = time.monotonic()
    got = read_program(img)
    assert got.name == want.name and [l.name for l in got.layers] == [l.name for l in want.layers]
    assert main(["info", str(img)]) == 0
    assert time.monotonic() - t0 < BOUND_S
    assert "conv" in capsys.readouterr().out


# ------------------------------------------------------------------ training checkpoint (safetensors)
def _checkpoint(tmp_path: Path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from hybridcim.train.checkpoint import save_checkpoint
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(2, 4)).sum().backward()
    opt.step()
    p = save_checkpoint(tmp_path / "checkpoint.safetensors", model, opt, {"epoch": 1, "config": {}})
    return p, model, opt


def _header(raw: bytes) -> tuple[int, dict]:
    (n,) = struct.unpack("<Q", raw[:8])
    return n, json.loads(raw[8:8 + n])


def _with_header(raw: bytes, header: dict) -> bytes:
    n, _ = _header(raw)
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + raw[8 + n:]


def _ckpt_variant(variant: str, p: Path) -> None:
    raw = p.read_bytes()
    n, h = _header(raw)
    if variant == "truncated":
        p.write_bytes(raw[:len(raw) - 20])
    elif variant == "truncated header":
        p.write_bytes(raw[:5])
    elif variant == "corrupted header":
        p.write_bytes(raw[:8] + b"\xff" * 16 + raw[24:])
    elif variant == "header length 2**63":
        p.write_bytes(struct.pack("<Q", 1 << 63) + raw[8:])
    elif variant == "offsets past the end":
        k = next(k for k in h if k != "__metadata__")
        h[k]["data_offsets"] = [0, 1 << 40]
        p.write_bytes(_with_header(raw, h))
    elif variant == "metadata not JSON":
        h["__metadata__"]["hybridcim"] = "{not json"
        p.write_bytes(_with_header(raw, h))
    elif variant == "metadata deep nesting":
        h["__metadata__"]["hybridcim"] = "[" * 100_000 + "]" * 100_000
        p.write_bytes(_with_header(raw, h))
    elif variant == "no metadata":
        h.pop("__metadata__")
        p.write_bytes(_with_header(raw, h))
    elif variant == "epoch a string":
        h["__metadata__"]["hybridcim"] = json.dumps({"epoch": "1", "config": {}})
        p.write_bytes(_with_header(raw, h))
    elif variant == "a torch pickle":
        import torch
        torch.save({"x": 1}, p)
    elif variant == "FIFO":
        _fifo(p)
    elif variant == "/dev/zero":
        _dev_zero(p)


CKPT = ["truncated", "truncated header", "corrupted header", "header length 2**63", "offsets past the end",
        "metadata not JSON", "metadata deep nesting", "no metadata", "epoch a string", "a torch pickle", "FIFO",
        "/dev/zero"]


@pytest.mark.parametrize("variant", CKPT)
def test_checkpoint(tmp_path, variant):
    p, model, _ = _checkpoint(tmp_path)
    from hybridcim.train.checkpoint import CheckpointError, load_checkpoint, read_checkpoint
    tensors, meta = read_checkpoint(p)
    assert meta["epoch"] == 1 and "model/weight" in tensors
    _ckpt_variant(variant, p)
    refused(lambda: load_checkpoint(p, model), CheckpointError)


def test_checkpoint_that_does_not_fit_the_model(tmp_path):
    import torch
    p, _, _ = _checkpoint(tmp_path)
    from hybridcim.train.checkpoint import CheckpointError, load_checkpoint
    other = torch.nn.Linear(5, 3)
    refused(lambda: load_checkpoint(p, other), CheckpointError, "does not fit the model")
    tensors_opt = torch.optim.SGD(torch.nn.Linear(4, 3).parameters(), lr=0.1, momentum=0.9)
    assert load_checkpoint(p, torch.nn.Linear(4, 3), tensors_opt)["epoch"] == 1
    wrong_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    refused(lambda: load_checkpoint(p, torch.nn.Linear(4, 3), wrong_opt), CheckpointError, "optimizer")


# ------------------------------------------------------------------ the CLI: one line, exit 2
def test_cli_reports_bad_input_files_in_one_line(tmp_path, capsys):
    from hybridcim.cli.main import main
    d = _model_copy(tmp_path)
    (d / "integer_model.npz").write_bytes(b"PK\x03\x04 truncated")
    assert main(["compile", str(d), "-o", str(tmp_path / "x.cim")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "integer_model.npz" in err and "Traceback" not in err
    pytest.importorskip("yaml")
    pytest.importorskip("torch")
    (tmp_path / "c.yaml").write_text("optim: {epochs: ten}\n")
    assert main(["train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "optim.epochs" in err


def test_cli_pynq_board_lookup_errors_are_one_line(tmp_path, capsys, monkeypatch):
    from hybridcim.cli.main import main
    monkeypatch.setenv("HYBRIDCIM_BITSTREAMS", str(tmp_path))
    for board in ("no-such-board", str(tmp_path / "folder")):
        assert main(["run", "--backend", "pynq", "--board", board, "--model", "zoo:resnet20-random",
                     "--limit", "1"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and ("no bitstream" in err)


# ------------------------------------------------------------------ integer model: structure-aware fuzzing
def _json_paths(x, prefix=()):
    if isinstance(x, dict):
        for k, v in x.items():
            yield prefix + (k,)
            yield from _json_paths(v, prefix + (k,))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield prefix + (i,)
            yield from _json_paths(v, prefix + (i,))


def test_mutated_integer_models_compile_or_give_a_typed_error(tmp_path):
    """Every field of integer_model.json replaced by a value of another type or range, or deleted:
    loading and compiling either work or raise IntegerModelError / ProgramError (never KeyError,
    TypeError, AttributeError, IndexError or a numpy error)."""
    from hypothesis import HealthCheck, given, settings, strategies as st

    from hybridcim.compiler import IntegerModelError, compile_model, load_integer_model
    from hybridcim.program.errors import ProgramError
    d = _model_copy(tmp_path)
    base = json.loads((d / "integer_model.json").read_text())
    base.pop("metadata")  # free-form: not read by the compiler
    paths = list(_json_paths(base))
    values = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 40, 2 ** 40), st.sampled_from([0, 1, -1, 31, 32, 255]),
                       st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=6),
                       st.sampled_from(["conv", "fc", "maxpool", "avgpool", "input", "stem", "fc"]),
                       st.just([]), st.just({}))

    @settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(edits=st.lists(st.tuples(st.integers(0, len(paths) - 1), st.booleans(), values), min_size=1, max_size=3))
    def check(edits):
        desc = json.loads(json.dumps(base))
        for i, delete, value in edits:
            path = paths[i]
            parent = desc
            try:
                for k in path[:-1]:
                    parent = parent[k]
                if delete and isinstance(parent, dict):
                    parent.pop(path[-1], None)
                else:
                    parent[path[-1]] = value
            except (KeyError, IndexError, TypeError):  # an earlier edit removed or retyped the parent
                continue
        (d / "integer_model.json").write_text(json.dumps(desc))
        try:
            compile_model(load_integer_model(d))
        except (IntegerModelError, ProgramError) as e:
            assert str(e) and "\n" not in str(e)
    check()
