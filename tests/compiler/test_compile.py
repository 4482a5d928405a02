"""The compiler (numpy only): integer model files -> validated program; report numbers."""
import json
import subprocess
import sys

import numpy as np
import pytest

from hybridcim.compiler import (IntegerModelError, compile_model, format_report, layer_report, load_integer_model,
                                weight_sparsity)
from hybridcim.emulator import FastEmulator
from hybridcim.program import decode_weight_matrix, read_program, write_program
from hybridcim.program.weights import conv_weight_matrix


def _write_model(tmp_path, seed=0, preset="tiny-64"):
    """A hand-made integer model: conv(3->8) -> conv(8->8, res) -> avgpool -> fc logits."""
    rng = np.random.default_rng(seed)
    prec1 = np.array([8, 4, 4, 2, 2, 2, 2, 0], np.uint8)
    prec2 = np.array([4, 4, 4, 4, 8, 8, 0, 0], np.uint8)

    def weights(prec, c, k):
        w = np.zeros((len(prec), c, k, k), np.int8)
        for f, p in enumerate(prec):
            if p:
                w[f] = rng.integers(-(1 << (p - 1)), 1 << (p - 1), (c, k, k))
        return w

    arrays = {}
    for name, prec, c, k in (("c1", prec1, 3, 3), ("c2", prec2, 8, 3), ("fc", np.full(10, 8, np.uint8), 8, 1)):
        f = len(prec)
        arrays.update({f"{name}/weight": weights(prec, c, k), f"{name}/precision": prec,
                       f"{name}/weight_exponent": np.full(f, 4, np.int8),
                       f"{name}/bias": rng.integers(-50, 50, f).astype(np.int32),
                       f"{name}/shift": np.full(f, 6 if name != "fc" else 0, np.int8),
                       f"{name}/res_shift": np.full(f, 2 if name == "c2" else 0, np.int8)})
    arrays["c1/bias"][prec1 == 0] = 0
    desc = {"format": "hybridcim-integer-model", "version": 1, "name": "hand", "arch": "test", "preset": preset,
            "classes": 10, "act_bits": 4,
            "input": {"name": "input", "channels": 3, "height": 8, "width": 8, "bits": 8, "exponent": 8},
            "layers": [
                {"name": "c1", "op": "conv", "in": "input", "res": None, "k": 3, "stride": 1, "pad": 1, "filters": 8,
                 "logits": False, "in_exponent": 8, "out_bits": 4, "out_exponent": 2},
                {"name": "c2", "op": "conv", "in": "c1", "res": "c1", "k": 3, "stride": 1, "pad": 1, "filters": 8,
                 "logits": False, "in_exponent": 2, "out_bits": 4, "out_exponent": 2},
                {"name": "pool", "op": "avgpool", "in": "c2", "shift": 6, "out_bits": 4, "out_exponent": 2},
                {"name": "fc", "op": "fc", "in": "pool", "res": None, "k": 1, "stride": 1, "pad": 0, "filters": 10,
                 "logits": True, "in_exponent": 2, "out_bits": 32, "out_exponent": 6, "out_signed": True}],
            "output": "fc", "metadata": {}}
    (tmp_path / "integer_model.json").write_text(json.dumps(desc))
    np.savez(tmp_path / "integer_model.npz", **arrays)
    return desc, arrays


def test_compile_preserves_integers(tmp_path):
    desc, arrays = _write_model(tmp_path)
    prog = compile_model(load_integer_model(tmp_path))
    by = {l.name: l for l in prog.layers}
    for name in ("c1", "c2", "fc"):
        l = by[name]
        w = decode_weight_matrix(l.precision, l.col_filter, l.col_plane, l.present, l.words, l.k_rows,
                                 prog.preset.rows_active)
        assert np.array_equal(w, conv_weight_matrix(arrays[f"{name}/weight"]))
        assert np.array_equal(l.precision, arrays[f"{name}/precision"])
        assert np.array_equal(l.bias, arrays[f"{name}/bias"])
        assert np.array_equal(l.shift, arrays[f"{name}/shift"])
    assert by["c2"].res_tensor is not None and by["pool"].pool_shift == 6
    assert prog.tensors[prog.output_tensor].exponent == 6 and prog.metadata["logit_exponent"] == 6
    out = tmp_path / "m.cim"
    write_program(prog, out)
    again = read_program(out)
    x = np.random.default_rng(1).integers(0, 256, (3, 3, 8, 8)).astype(np.uint8)
    assert np.array_equal(FastEmulator(again).run(x).outputs, FastEmulator(prog).run(x).outputs)


def test_paired_beats_naive_utilization(tmp_path):
    _write_model(tmp_path)
    im = load_integer_model(tmp_path)
    paired, naive = compile_model(im, packing="paired"), compile_model(im, packing="naive")
    rows = layer_report(paired, naive)
    c1 = next(r for r in rows if r["layer"] == "c1")
    assert c1["groups_paired"] == 3 and c1["groups_naive"] == 7  # 8 | 4+4 | 2+2+2+2 vs one per filter
    assert c1["util_paired"] > c1["util_naive"]
    text = format_report(rows, weight_sparsity(im))
    assert "c1" in text and "total cycles/image" in text


def test_rejects_bad_models(tmp_path):
    desc, arrays = _write_model(tmp_path)
    desc["layers"][1]["res"] = "pool"  # not produced yet
    (tmp_path / "integer_model.json").write_text(json.dumps(desc))
    with pytest.raises(IntegerModelError, match="not produced before"):
        load_integer_model(tmp_path)
    desc, arrays = _write_model(tmp_path)
    desc["version"] = 99
    (tmp_path / "integer_model.json").write_text(json.dumps(desc))
    with pytest.raises(IntegerModelError, match="v1"):
        load_integer_model(tmp_path)


def test_precision_outside_preset_is_rejected(tmp_path):
    _, arrays = _write_model(tmp_path)
    arrays["c1/precision"] = arrays["c1/precision"].copy()
    arrays["c1/precision"][0] = 3
    np.savez(tmp_path / "integer_model.npz", **arrays)
    with pytest.raises(IntegerModelError, match="not in preset"):
        compile_model(load_integer_model(tmp_path))


def test_compiler_needs_no_torch(tmp_path):
    _write_model(tmp_path)
    code = ("import sys; sys.modules['torch'] = None; sys.modules['brevitas'] = None\n"
            "from hybridcim.compiler import compile_model, load_integer_model\n"
            f"p = compile_model(load_integer_model({str(tmp_path)!r}))\n"
            "print(len(p.layers))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "4"


def test_cli_compile(tmp_path):
    _write_model(tmp_path)
    from hybridcim.cli.main import main
    assert main(["compile", str(tmp_path), "-o", str(tmp_path / "m.cim"), "--report-json", str(tmp_path / "r.json")]) == 0
    assert (tmp_path / "m.cim").exists() and (tmp_path / "m.cim.json").exists()
    rep = json.loads((tmp_path / "r.json").read_text())
    assert [r["layer"] for r in rep["layers"]] == ["c1", "c2", "fc"]
