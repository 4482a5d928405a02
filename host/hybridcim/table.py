"""Plain-text tables whose column widths are computed from the cells (CLI and report output).

>>> print(format_table(["layer", "cycles"], [["stem", 8192], ["a_much_longer_name", 4]]))
layer               cycles
stem                  8192
a_much_longer_name       4
"""
from __future__ import annotations


def format_table(header: list[str], rows: list[list], align: str | None = None, indent: str = "") -> str:
    """Header and rows, each column as wide as its widest cell, two spaces apart. ``align``: one
    character per column, ``<`` (left) or ``>`` (right); default: left for the first column,
    right for the others. Cells are str()-ed; trailing spaces are stripped."""
    n = len(header)
    if any(len(r) != n for r in rows):
        raise ValueError(f"every row needs {n} cells")
    align = align or "<" + ">" * (n - 1)
    if len(align) != n or set(align) - {"<", ">"}:
        raise ValueError(f"align={align!r}: one of '<' '>' per column")
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(n)]
    return "\n".join(indent + "  ".join(f"{c:{a}{w}}" for c, a, w in zip(r, align, widths)).rstrip() for r in cells)
