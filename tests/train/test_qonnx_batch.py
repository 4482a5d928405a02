"""QonnxReference runs a batched copy of the exported graph (with_batch): its logits equal the exported
batch-1 graph's, image for image, with a padded last batch, on a plain and a dual-path shipped model."""
import numpy as np
import pytest

pytest.importorskip("qonnx")

from hybridcim.models import resolve_model  # noqa: E402
from hybridcim.program import read_program  # noqa: E402
from hybridcim.train.qonnx_export import QonnxModelError, QonnxReference, with_batch  # noqa: E402


@pytest.mark.parametrize("name", ["resnet8-w4a4-p50-quick", "resnet20-dualnet"])
def test_batched_equals_one_image_per_call(name):
    folder = resolve_model(name).parent
    exp = read_program(folder / "model.cim").metadata["logit_exponent"]
    x = np.random.default_rng(7).integers(0, 256, (5, 3, 32, 32), dtype=np.uint8)
    one = QonnxReference(folder / "model.onnx", exp, batch=1).run(x)
    batched = QonnxReference(folder / "model.onnx", exp, batch=4).run(x)  # 4 + 1 padded with 3 zero images
    assert batched.shape == one.shape == (5, 10)
    np.testing.assert_array_equal(batched, one)
    assert len(np.unique(one, axis=0)) > 1  # the images give different logits: a row mix-up would show


def test_refusals():
    import onnx
    from onnx import helper, numpy_helper
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 2, 2])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [3, 4])
    shape = numpy_helper.from_array(np.array([3, 4], np.int64), "shape")
    g = helper.make_graph([helper.make_node("Reshape", ["x", "shape"], ["y"], name="r")], "g", [x], [y], [shape])
    with pytest.raises(QonnxModelError, match=r"reshapes to \[3, 4\], not \[1, \.\.\.\]"):
        with_batch(helper.make_model(g), 8)
    with pytest.raises(ValueError, match="batch must be an int >= 1"):
        QonnxReference(resolve_model("resnet8-w4a4-p50-quick").parent / "model.onnx", 0, batch=0)
