"""docs/program-format.md states the reader's file-size cap of every named preset as the code computes it."""
from pathlib import Path

from hybridcim.program.codec import MANIFEST_ALLOWANCE, max_image_bytes
from hybridcim.spec.capacity import KERNEL_LIMITS
from hybridcim.spec.hardware import get_preset

DOC = Path(__file__).resolve().parents[2] / "docs" / "program-format.md"


def test_file_size_cap_in_the_reader_checks_is_current():
    text = DOC.read_text(encoding="utf-8")
    part = text.split("## Reader checks", 1)[1].split("\n## ", 1)[0]
    assert "codec.max_image_bytes(preset)" in part and MANIFEST_ALLOWANCE == 1 << 20 and "plus 1 MiB" in part
    for name in KERNEL_LIMITS:
        mib = max_image_bytes(get_preset(name)) / 2 ** 20
        assert f"{mib:.0f} MiB for `{name}`" in part, name
