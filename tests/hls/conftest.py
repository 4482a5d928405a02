"""Fixtures shared by the csim tests of hls/."""
import pytest


@pytest.fixture(scope="session")
def hw_datapath_lib(csim_lib):
    """The csim library compiled with -DHCIM_HW_DATAPATH: the adder-tree popcount and the single
    8-plane shift-add unit that synthesis uses (__SYNTHESIS__ selects the same code)."""
    from hybridcim.runtime.csim_build import build
    csim_lib("tiny-64")
    return {p: build(p, extra=("-DHCIM_HW_DATAPATH",)) for p in ("tiny-64", "sun-mars-256")}
