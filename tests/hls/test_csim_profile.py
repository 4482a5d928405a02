"""The csim library's loop and DDR profile (hls/hcim_loops.h, CSimDevice.kernel_profile()).

The loop table comes out of the library as compiled; the per-layer counts agree with the
activity counters where both count the same events (a `units` iteration runs one present unit
for one output pixel, two when bits_in <= 4 and no noise is drawn; unit_activations = present
units x bits_in), and they cover exactly the last call.
"""
import re

import numpy as np
import pytest

from hybridcim.runtime.csim_build import hls_dir
from hybridcim.runtime.csim_device import CSimDevice
from hybridcim.runtime.errors import DeviceError
from hybridcim.zoo import random_images, random_program
from hybridcim.zoo.fuzz import random_hybrid_program


def _table():
    text = (hls_dir() / "hcim_loops.h").read_text()
    return [(n, int(ii), int(d)) for n, ii, d in re.findall(r'X\(HCIM_LP_\w+,\s*"(\w+)",\s*(\d+),\s*(\d+)\)', text)]


def test_loop_table_is_the_headers(csim_lib):
    csim_lib("tiny-64")
    dev = CSimDevice("tiny-64")
    prog = random_program(3, "tiny-64")
    dev.load(prog)
    with pytest.raises(DeviceError, match="no kernel call yet"):
        dev.kernel_profile()
    dev.run(random_images(prog, 1))
    prof = dev.kernel_profile()
    assert [(l["name"], l["ii"], l["depth"]) for l in prof["loops"]] == _table()
    assert len(prof["layers"]) == len(prog.layers) and prof["images"] == 1


@pytest.mark.parametrize("preset, hybrid", [("tiny-64", False), ("sun-mars-256", False), ("tiny-64", True),
                                            ("wide-512", True)])
def test_profile_counts_agree_with_the_activity_counters(csim_lib, preset, hybrid):
    csim_lib(preset)
    dev = CSimDevice(preset, batch_size=64)
    for seed in range(4):
        prog = (random_hybrid_program if hybrid else random_program)(seed, preset)
        dev.load(prog)
        images = random_images(prog, 3, seed)
        dev.run(images)
        prof = dev.kernel_profile()
        names = [l["name"] for l in prof["loops"]]
        units, noise, stream = names.index("units"), names.index("noise"), names.index("pixel_stream")
        # digital layers run as pixel streams, hybrid ones in the per-pixel loops
        streamed = [bool(r["entries"][stream]) for r in prof["layers"]]
        assert not any(s and l.mode == 1 for s, l in zip(streamed, prog.layers))
        assert any(streamed) or hybrid
        for layer, row, c in zip(prog.layers, prof["layers"], dev.counters):
            bits = prog.tensors[layer.in_tensor].bits
            assert len(row["entries"]) == len(row["iters"]) == len(names)
            # one unit an iteration, or two when bits_in <= 4 and no noise is drawn (the last of an odd
            # count alone): per pixel and round ceil(units / 2), so between half the units and that + 1
            present = c.unit_activations // bits if bits else 0
            assert present * bits == c.unit_activations, layer.name
            if row["entries"][stream]:  # digital layer in on-chip mode: units inside the pixel stream
                assert row["iters"][units] == 0 and present <= 2 * row["iters"][stream], layer.name
            elif bits <= 4 and not (layer.mode == 1 and layer.hybrid.noise_pairs):
                assert 2 * row["iters"][units] - row["entries"][units] <= present <= 2 * row["iters"][units], \
                    layer.name
            else:
                assert row["iters"][units] == present, layer.name
            if layer.op.is_cim:
                assert row["bursts"][0] > 0  # tables read
            # activations on chip: only the last layer (the output copy) writes DDR
            assert (row["bytes"][1] > 0) == (layer is prog.layers[-1]), layer.name
            if layer.mode == 1 and layer.hybrid.noise_pairs:
                assert row["iters"][noise] == present * prog.preset.group_width * bits
            else:
                assert row["iters"][noise] == 0
        # on-chip mode: the image is staged and packed into its bit planes (pack_planes), not copied
        pixels = 3 * prog.input.channels * prog.input.height * prog.input.width
        assert prof["layers"][0]["iters"][names.index("load_pixels")] == 0
        assert prof["layers"][0]["iters"][names.index("pack_planes")] >= pixels
        # the profile covers the last call only: one image now
        dev.run(images[:1])
        assert dev.kernel_profile()["images"] == 1
        one = dev.kernel_profile()["layers"]
        assert all(3 * a["iters"][units] == b["iters"][units] for a, b in zip(one, prof["layers"]))
        # trace mode keeps every tensor in scratch (DDR mode): the image is copied there
        dev.trace(images[:1])
        assert dev.kernel_profile()["layers"][0]["iters"][names.index("load_pixels")] == pixels // 3


def test_library_without_the_profile_is_named(csim_lib, monkeypatch):
    """Negative case: a library whose profile calls fail (built without HCIM_CYCLE_COUNT) gives a clear error."""
    csim_lib("tiny-64")
    dev = CSimDevice("tiny-64")
    prog = random_program(1, "tiny-64")
    dev.load(prog)
    lib, raw = dev.lib, dev.lib.lib

    class NoProfile:
        def __getattr__(self, name):
            return getattr(raw, name)

        @staticmethod
        def hcim_csim_loop_stats(*_):
            return -1

    monkeypatch.setattr(lib, "lib", NoProfile())
    with pytest.raises(DeviceError, match="HCIM_CYCLE_COUNT"):
        dev.run(random_images(prog, 1))
