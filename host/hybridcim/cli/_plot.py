"""Options that draw a figure (``--plot``, ``--curve``): refuse them up front without matplotlib."""
from __future__ import annotations

import importlib.util
import sys


def require_matplotlib(option: str) -> None:
    """ValueError (one line, exit 2 from the CLI) when ``option`` is asked for and matplotlib is missing;
    called before any work, so a refused option leaves nothing half done."""
    if importlib.util.find_spec("matplotlib") is None:
        raise ValueError(f"{option} needs matplotlib (pip install matplotlib)")


def check_plot_output(png: str, option: str) -> None:
    """Before any work: matplotlib is there and ``png`` can be written (not a folder, not under a
    regular file); ValueError (one line, exit 2) otherwise."""
    from ..fileio import check_output
    require_matplotlib(option)
    check_output(png, option, make_parents=False)


def write_layer_plot(rows: list[dict], png: str, title: str) -> None:
    """``--plot PNG`` of ``compile`` and ``info``: the layer-report figure, and a line on stderr."""
    from ..plots import plot_layer_report
    plot_layer_report(rows, png, title)
    print(f"wrote {png}", file=sys.stderr)
