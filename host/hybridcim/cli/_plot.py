"""The ``--plot PNG`` option of ``compile`` and ``info``: draw a layer report, or say why not."""
from __future__ import annotations

import sys


def plot_or_explain(rows: list[dict], png: str, title: str) -> bool:
    """Write the layer-report figure to ``png``; False (after one line on stderr) without matplotlib."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("hybridcim: error: --plot needs matplotlib (pip install matplotlib)", file=sys.stderr)
        return False
    from ..plots import plot_layer_report
    plot_layer_report(rows, png, title)
    print(f"wrote {png}", file=sys.stderr)
    return True
