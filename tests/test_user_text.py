"""User-facing text never refers to internal work items ("issue 2 target", "(issue 3)", "#12").

Covers README.md, docs/, notebooks/ (sources and stored outputs), hls/README.md,
overlay/README.md, bitstreams/README.md and the CLI's sources (help and output strings).
The text should describe the goal itself instead.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted({ROOT / "README.md", ROOT / "hls" / "README.md", ROOT / "overlay" / "README.md",
                ROOT / "bitstreams" / "README.md",
                *(ROOT / "docs").glob("*.md"), *(ROOT / "notebooks").glob("*.ipynb"),
                *(ROOT / "host" / "hybridcim" / "cli").glob("*.py")})
WORK_ITEM = re.compile(r"\b(?:issue|ticket|work item)s?\s*(?:no\.?\s*)?#?\s*\d+"  # issue 2, issues #3
                       r"|\(\s*#\d+\s*\)"                                           # (#12)
                       r"|\bthe issue\b"                                            # "as the issue defines it"
                       r"|\bitem\s+\d+\b(?= of| in| from)", re.IGNORECASE)


def find_work_items(text: str) -> list[str]:
    """Matches of :data:`WORK_ITEM` in ``text``.

    >>> find_work_items("Fast emulator (issue 2 target: ratio >= 1.0); trained model (Issue #3)")
    ['issue 2', 'Issue #3']
    >>> find_work_items("a bit-exact emulator; status 11 (TENSOR)")
    []
    """
    return [m.group(0) for m in WORK_ITEM.finditer(text)]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_work_item_references(path):
    lines = [(i, line) for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if find_work_items(line)]
    assert not lines, f"{path.relative_to(ROOT)} refers to internal work items: " + \
        "; ".join(f"line {i}: {line.strip()[:120]}" for i, line in lines)


def test_the_scan_covers_every_kind():
    rel = {str(p.relative_to(ROOT)) for p in FILES}
    assert {"README.md", "hls/README.md", "overlay/README.md", "docs/performance.md",
            "notebooks/02_train_compile_check.ipynb", "host/hybridcim/cli/cmd_run.py"} <= rel
