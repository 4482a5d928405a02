"""The host-side mirror of the kernel's capacity equals hls/presets/*.h, for every preset with a header."""
import dataclasses
from pathlib import Path

import pytest

from hybridcim.spec.capacity import KERNEL_LIMITS, kernel_limits
from hybridcim.spec.hardware import HOST_PRESETS, PRESETS

HEADERS = Path(__file__).resolve().parents[2] / "hls" / "presets"


@pytest.mark.parametrize("name", sorted(PRESETS) + sorted(HOST_PRESETS))
def test_limits_mirror_the_preset_headers(name):
    from hybridcim.runtime.bitstream import kernel_info_from_headers
    info = kernel_info_from_headers(name)
    got = kernel_limits(name)
    assert dataclasses.asdict(got) == {f: getattr(info, f) for f in dataclasses.asdict(got)}


def test_every_preset_header_has_limits():
    """One entry per kernel build: hls/presets/<name>.h, the -dual presets of kernel 1.4 included."""
    headers = {h.stem for h in HEADERS.glob("*.h")}
    assert set(PRESETS) | set(HOST_PRESETS) == headers
    assert set(KERNEL_LIMITS) == headers
