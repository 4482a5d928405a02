"""hybridcim.runtime.buffers: the board's DDR layout, mirrored by the kernel."""
import numpy as np

from hybridcim.program import encode
from hybridcim.runtime import buffers
from hybridcim.zoo import random_images, random_program


def test_pack_images_is_nchw_bytes_padded_to_words():
    x = np.arange(2 * 3 * 1 * 3, dtype=np.uint8).reshape(2, 3, 1, 3)  # 9 bytes per image -> 2 words
    w = buffers.pack_images(x)
    assert w.shape == (2, 2) and w.dtype == np.uint64
    raw = w.view(np.uint8).reshape(2, 16)
    assert raw[0, :9].tolist() == list(range(9)) and raw[0, 9:].tolist() == [0] * 7
    assert raw[1, :9].tolist() == list(range(9, 18))


def test_program_words_round_trip():
    image = encode(random_program(1, "tiny-64"))
    w = buffers.program_words(image)
    assert w.dtype == np.uint64 and w.tobytes() == image


def test_scratch_layout_and_trace_extraction():
    prog = random_program(2, "tiny-64")
    offs, per = buffers.scratch_layout(prog)
    sizes = [t.channels * t.height * t.width for t in prog.tensors]
    assert offs == list(np.cumsum([0] + sizes[:-1])) and per == sum(sizes)
    scratch = np.arange(2 * per, dtype=np.int32)
    tr = buffers.tensors_from_scratch(prog, scratch, 2)
    t = prog.tensors[1]
    want = scratch[per + offs[1]:per + offs[1] + sizes[1]].reshape(t.height, t.width, t.channels)
    assert np.array_equal(tr[t.name][1], want) and tr[t.name].dtype == np.int64


def test_capacity_passes_for_zoo_programs(csim_lib):
    lib = csim_lib("tiny-64")
    prog = random_program(4, "tiny-64")
    buffers.check_capacity(prog, lib.info)
    images = random_images(prog, 1)
    assert images.dtype == np.uint8
