"""compile -> emulate == Brevitas reference == training model == QONNX, exactly, per layer."""
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from small_models import trained_small

from hybridcim.compiler import compile_model, load_integer_model
from hybridcim.train.export import export_model
from hybridcim.train.reference import load_brevitas_reference
from hybridcim.train.verify import MismatchError, verify_exact


def _images(n=6, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (n, 3, 32, 32)).astype(np.uint8)


@pytest.mark.parametrize("arch,preset", [("resnet", "tiny-64"), ("resnet", "sun-mars-256"), ("cnv", "tiny-64")])
def test_all_executors_agree(tmp_path, arch, preset):
    m = trained_small(arch, preset)
    export_model(m, tmp_path, preset=preset, qonnx=True)
    summary = verify_exact(tmp_path, _images(), trained=m, qonnx_images=2)
    assert summary["qonnx_images"] == 2
    # activations are non-degenerate: some layer output uses more than one code
    ref = load_brevitas_reference(tmp_path)
    t = ref.trace(_images())
    assert max(len(np.unique(v)) for k, v in t.items() if k != "input") > 4


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(arch=st.sampled_from(["resnet", "cnv"]), preset=st.sampled_from(["tiny-64", "sun-mars-256", "wide-512"]),
       seed=st.integers(0, 1000), avg_bits=st.sampled_from([3.0, 4.0, 6.0]), target=st.sampled_from([0.0, 0.3, 0.6]))
def test_brevitas_equals_emulator_on_drawn_models(tmp_path_factory, arch, preset, seed, avg_bits, target):
    """Property test over architectures, presets, seeds, bit budgets and pruning targets: the trained
    model, its Brevitas reference and the compiled program on the emulator agree per layer."""
    m = trained_small(arch, preset, seed=seed, avg_bits=avg_bits, target=target)
    out = tmp_path_factory.mktemp("drawn")
    export_model(m, out, preset=preset, qonnx=False)
    summary = verify_exact(out, _images(3, seed), trained=m)
    assert summary["images"] == 3


def test_real_images(tmp_path, cifar10_root):
    from hybridcim.data import load_cifar10
    x, _ = load_cifar10(cifar10_root, "test", 16)
    m = trained_small("resnet", "sun-mars-256")
    export_model(m, tmp_path, preset="sun-mars-256", qonnx=False)
    verify_exact(tmp_path, x, trained=m)


def test_logits_are_integer_multiples(tmp_path):
    m = trained_small("resnet", "tiny-64")
    export_model(m, tmp_path, preset="tiny-64", qonnx=False)
    ref = load_brevitas_reference(tmp_path)
    out = ref.run(_images())  # to_int raises unless every logit is an exact multiple of 2^-e below 2^24
    assert out.dtype == np.int64 and out.shape == (6, 10)
    assert np.abs(out).max() < 2 ** 24
    import torch
    from hybridcim.train.reference import ExactnessError, to_int
    assert to_int(torch.tensor([0.75, -1.25]), 2, "t").tolist() == [3, -5]
    with pytest.raises(ExactnessError, match="tensor 't': .* not an exact integer multiple of 2\\^-2"):
        to_int(torch.tensor([0.75, 0.3]), 2, "t")
    with pytest.raises(ExactnessError, match="below 2\\^24"):
        to_int(torch.tensor([2.0 ** 23]), 2, "t")


def test_mismatch_names_first_layer(tmp_path):
    """A perturbed bias in the compiled program is caught and attributed to its layer."""
    m = trained_small("resnet", "tiny-64")
    export_model(m, tmp_path, preset="tiny-64", qonnx=False)
    im = load_integer_model(tmp_path)
    bad = dict(im.arrays)
    layer = "s2b1_conv1"
    b = bad[f"{layer}/bias"].copy()
    b[:] += 1 << 12
    bad[f"{layer}/bias"] = b
    # the reference keeps the good model; the emulator gets the perturbed one
    from hybridcim.emulator import FastEmulator
    from hybridcim.train.verify import first_mismatch
    from hybridcim.compiler.integer_model import IntegerModel
    prog = compile_model(IntegerModel(im.desc, bad))
    emu = FastEmulator(prog).run(_images(), trace=True)
    ref = load_brevitas_reference(tmp_path).trace(_images())
    order = ["input"] + [l["name"] for l in im.layers]
    msg = first_mismatch(ref, emu.tensors, order)
    assert msg is not None and msg.startswith(f"layer {layer!r}")


def test_a_tampered_qonnx_graph_is_caught(tmp_path):
    """Negative case of QONNX vs the reference: the first conv's float bias changed in model.onnx."""
    import onnx
    from onnx import numpy_helper
    m = trained_small("resnet", "tiny-64")
    export_model(m, tmp_path, preset="tiny-64", qonnx=True)
    g = onnx.load(tmp_path / "model.onnx")
    init = next(t for t in g.graph.initializer if t.name.endswith("stem.bias"))  # input 0 of a bias Quant node
    b = numpy_helper.to_array(init).copy()
    b += 4.0  # every channel of the first layer saturates: the logits must move
    init.CopyFrom(numpy_helper.from_array(b, init.name))
    onnx.save(g, tmp_path / "model.onnx")
    verify_exact(tmp_path, _images(), qonnx_images=0)  # everything but QONNX still agrees
    with pytest.raises(MismatchError, match="QONNX execute_onnx vs Brevitas reference"):
        verify_exact(tmp_path, _images(), qonnx_images=2)


def test_verify_raises_on_corrupt_export(tmp_path):
    m = trained_small("resnet", "tiny-64")
    export_model(m, tmp_path, preset="tiny-64", qonnx=False)
    other = trained_small("resnet", "tiny-64", seed=3)
    with pytest.raises(MismatchError, match="training model"):
        verify_exact(tmp_path, _images(), trained=other)


def test_integer_model_file_format(tmp_path):
    m = trained_small("cnv", "tiny-64")
    desc = export_model(m, tmp_path, preset="tiny-64", qonnx=False)
    d = json.loads((tmp_path / "integer_model.json").read_text())
    assert d == json.loads(json.dumps(desc))
    assert d["format"] == "hybridcim-integer-model" and d["version"] == 1
    with np.load(tmp_path / "integer_model.npz", allow_pickle=False) as z:
        for l in d["layers"]:
            if l["op"] in ("conv", "fc"):
                n = l["name"]
                assert z[f"{n}/weight"].dtype == np.int8 and z[f"{n}/bias"].dtype == np.int32
                prec = z[f"{n}/precision"].astype(int)
                w = z[f"{n}/weight"].astype(int).reshape(len(prec), -1)
                for f, p in enumerate(prec):
                    if p == 0:
                        assert not w[f].any()
                    else:
                        assert w[f].min() >= -(1 << (p - 1)) and w[f].max() <= (1 << (p - 1)) - 1
    assert [l["op"] for l in d["layers"]].count("maxpool") == 2
