"""Progress bars for long CLI work: tqdm when installed, otherwise a plain stderr counter."""
from __future__ import annotations

import sys
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


class _Plain:
    def __init__(self, total: int | None, desc: str, unit: str):
        self.total, self.desc, self.unit, self.n = total, desc, unit, 0

    def update(self, k: int) -> None:
        self.n += k
        print(f"\r{self.desc}: {self.n}/{self.total or '?'} {self.unit}", end="", file=sys.stderr, flush=True)

    def set_postfix_str(self, s: str) -> None:
        print(f" {s}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        print(file=sys.stderr)


def progress(total: int | None, desc: str, unit: str = "img", disable: bool = False):
    """A bar with ``update(k)``, ``set_postfix_str(s)`` and ``close()``; writes to stderr."""
    try:
        from tqdm import tqdm
        return tqdm(total=total, desc=desc, unit=unit, disable=disable, file=sys.stderr, dynamic_ncols=True)
    except ImportError:
        bar = _Plain(total, desc, unit)
        if disable:
            bar.update = lambda k: None  # type: ignore[method-assign]
            bar.close = lambda: None  # type: ignore[method-assign]
        return bar
