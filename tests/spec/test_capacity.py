"""The host-side mirror of the kernel's capacity equals hls/presets/*.h, for every preset."""
import dataclasses

import pytest

from hybridcim.spec.capacity import KERNEL_LIMITS, kernel_limits
from hybridcim.spec.hardware import PRESETS


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_limits_mirror_the_preset_headers(name):
    from hybridcim.runtime.bitstream import kernel_info_from_headers
    info = kernel_info_from_headers(name)
    got = kernel_limits(name)
    assert dataclasses.asdict(got) == {f: getattr(info, f) for f in dataclasses.asdict(got)}


def test_every_preset_has_limits():
    assert set(KERNEL_LIMITS) == set(PRESETS)
