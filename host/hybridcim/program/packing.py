"""Filter-wise paired mixed precision: packing filters into column groups (architecture.md §5).

>>> groups = pack_filters([4, 2, 4, 8, 2, 0], group_width=8)
>>> groups
[[(3, 0)], [(0, 0), (2, 4)], [(1, 0), (4, 2)]]
>>> pack_filters([4, 4], group_width=8, mode="naive")
[[(0, 0)], [(1, 0)]]
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

PACKINGS = ("paired", "naive")


def pack_filters(precision: Sequence[int], group_width: int, mode: str = "paired") -> list[list[tuple[int, int]]]:
    """Assign each unpruned filter (precision > 0) a (group, column offset).

    Returns a list of groups, each a list of (filter index, column offset), offsets
    ascending. ``paired``: first-fit decreasing by precision (ties by filter index);
    ``naive``: one filter per group, in filter order.
    """
    if mode not in PACKINGS:
        raise ValueError(f"unknown packing {mode!r}; known: {PACKINGS}")
    prec = [int(p) for p in precision]
    for f, p in enumerate(prec):
        if p < 0 or p > group_width:
            raise ValueError(f"filter {f}: precision {p} does not fit a {group_width}-column group")
    live = [f for f, p in enumerate(prec) if p > 0]
    if mode == "naive":
        return [[(f, 0)] for f in live]
    order = sorted(live, key=lambda f: (-prec[f], f))
    groups: list[list[tuple[int, int]]] = []
    used: list[int] = []
    for f in order:
        for g, u in enumerate(used):
            if u + prec[f] <= group_width:
                groups[g].append((f, u))
                used[g] += prec[f]
                break
        else:
            groups.append([(f, 0)])
            used.append(prec[f])
    return groups


def column_map(groups: list[list[tuple[int, int]]], precision: Sequence[int], group_width: int) -> tuple[np.ndarray, np.ndarray]:
    """Column map arrays from a packing: col_filter int32 (NG, G) (-1 unused), col_plane uint8 (NG, G)."""
    ng = len(groups)
    col_filter = np.full((ng, group_width), -1, dtype=np.int32)
    col_plane = np.zeros((ng, group_width), dtype=np.uint8)
    for g, members in enumerate(groups):
        for f, off in members:
            for j in range(int(precision[f])):
                if col_filter[g, off + j] != -1:
                    raise ValueError(f"group {g}: column {off + j} assigned twice")
                col_filter[g, off + j] = f
                col_plane[g, off + j] = j
    return col_filter, col_plane


def utilization(precision: Sequence[int], groups: list[list[tuple[int, int]]], group_width: int) -> float:
    """Used weight columns / allocated columns over the layer's groups (ignores row padding)."""
    if not groups:
        return 0.0
    return sum(int(p) for p in precision) / (len(groups) * group_width)
