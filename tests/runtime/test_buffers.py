"""hybridcim.runtime.buffers: the board's DDR layout, mirrored by the kernel."""
import re

import numpy as np
import pytest

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


def _counted(seed=4, preset="tiny-64", n=2):
    from hybridcim.emulator import FastEmulator
    from hybridcim.zoo import random_images, random_program
    prog = random_program(seed, preset)
    return prog, FastEmulator(prog).run(random_images(prog, n, seed)).counters


def test_counters_buffer_round_trips_with_its_header():
    from hybridcim.runtime.buffers import (COUNTER_FIELDS, COUNTERS_HEADER_WORDS, counters_from_buffer,
                                           counters_to_words, counters_words)
    prog, counters = _counted()
    words = counters_to_words(counters)
    assert words.dtype == np.uint64 and words.size == counters_words(prog)
    assert words.size == COUNTERS_HEADER_WORDS + len(prog.layers) * len(COUNTER_FIELDS)
    assert int(words[0]) & 0xFFFFFFFF == 0x544E4348 and int(words[0]) >> 48 == len(prog.layers)
    assert [c.as_dict() for c in counters_from_buffer(prog, words)] == [c.as_dict() for c in counters]


def test_counters_reader_takes_a_newer_kernels_extra_counters():
    """Counters are append-only: a block with more counters per layer than this package knows is read."""
    from hybridcim.runtime.buffers import COUNTER_FIELDS, counters_from_buffer, counters_header, counters_to_words
    prog, counters = _counted()
    rows = counters_to_words(counters)[1:].reshape(len(prog.layers), len(COUNTER_FIELDS))
    wider = np.concatenate([rows, np.full((len(rows), 2), 99, dtype=np.uint64)], axis=1)
    buf = np.concatenate([[np.uint64(counters_header(len(prog.layers), len(COUNTER_FIELDS) + 2))], wider.ravel()])
    assert [c.as_dict() for c in counters_from_buffer(prog, buf)] == [c.as_dict() for c in counters]


def test_counters_reader_takes_a_kernel_1_2_block():
    """Layout 1 (kernel 1.2: 16 counters, no hybrid mode) is read; the hybrid counters are 0."""
    from hybridcim.emulator.counters import PER_IMAGE
    from hybridcim.runtime.buffers import COUNTER_FIELDS, counters_from_buffer, counters_header, counters_to_words
    prog, counters = _counted()
    rows = counters_to_words(counters)[1:].reshape(len(prog.layers), len(COUNTER_FIELDS))
    for c in counters:
        c.saliency_ops = 5  # a layout-1 block cannot carry it: read back as 0
    old = np.concatenate([[np.uint64(counters_header(len(prog.layers), 16, layout=1))],
                          rows[:, :len(PER_IMAGE)].ravel()])
    got = counters_from_buffer(prog, old)
    assert all(c.saliency_ops == 0 for c in got)
    assert [[getattr(c, f) for f in PER_IMAGE] for c in got] == [[getattr(c, f) for f in PER_IMAGE] for c in counters]


@pytest.mark.parametrize("change, message", [
    (lambda w: w ^ 1, "header magic"),                                  # wrong magic
    (lambda w: w ^ (3 << 32) ^ (4 << 32), "layout version 4"),          # layout 3 -> 4
    (lambda w: w - (1 << 40), "31 counters per layer, layout 3 has 32 (missing refresh_events)"),
    (lambda w: w ^ (3 << 32) ^ (2 << 32) ^ (32 << 40) ^ (24 << 40),    # layout 2 with 24 counters
     "24 counters per layer, layout 2 has 25 (missing decisions_level7)"),
    (lambda w: w ^ (3 << 32) ^ (1 << 32) ^ (32 << 40) ^ (15 << 40),    # layout 1 with 15 counters
     "15 counters per layer, layout 1 has 16 (missing input_ones)"),
    (lambda w: w + (1 << 48), "layers, the program has"),               # one layer more
    (lambda w: 0, "a kernel before 1.2 has no counter header"),          # a 1.1 block (no header)
])
def test_counters_reader_refuses_a_wrong_header(change, message):
    from hybridcim.runtime.buffers import CounterLayoutError, counters_from_buffer, counters_to_words
    from hybridcim.runtime.errors import DeviceError
    prog, counters = _counted()
    words = counters_to_words(counters)
    words[0] = np.uint64(change(int(words[0])))
    with pytest.raises(CounterLayoutError, match=re.escape(message)) as e:
        counters_from_buffer(prog, words)
    assert isinstance(e.value, DeviceError)


def test_counters_reader_refuses_a_short_buffer():
    from hybridcim.runtime.buffers import CounterLayoutError, counters_from_buffer, counters_to_words
    prog, counters = _counted()
    words = counters_to_words(counters)
    with pytest.raises(CounterLayoutError, match="its header needs"):
        counters_from_buffer(prog, words[:-1])
    with pytest.raises(CounterLayoutError, match="empty"):
        counters_from_buffer(prog, words[:0])
