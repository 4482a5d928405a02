"""Where ``--backend pynq`` looks for a board's bitstream folder (``<board>/manifest.json``,
``.bit``, ``.hwh``).

``board`` is either a folder (any argument with a ``/``, or starting with ``~`` or ``.``:
used as given, no search) or a board name, looked up in this order, the first folder that
holds ``<board>/manifest.json`` winning:

1. each folder of ``$HYBRIDCIM_BITSTREAMS`` (one folder, or several joined with ``os.pathsep``);
2. the repository checkout's ``bitstreams/`` when the package runs from a checkout
   (``pip install -e .``: ``host/hybridcim`` beside ``setup.py``);
3. the installed package's data folder ``hybridcim/bitstreams/`` (``pip install .`` copies the
   checkout's ``bitstreams/<board>/`` there: ``setup.py``'s ``BuildPyWithHls``).

An installed (non-editable) package never looks beside its ``site-packages`` folder.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import DeviceError

ENV = "HYBRIDCIM_BITSTREAMS"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
"""The ``hybridcim`` package folder (``host/hybridcim`` in a checkout, ``site-packages/hybridcim`` installed)."""
_BOARD_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}")


def checkout_bitstreams(package_dir: Path | None = None) -> Path | None:
    """``<checkout>/bitstreams`` when ``package_dir`` is ``<checkout>/host/hybridcim``, else None."""
    pkg = Path(package_dir or PACKAGE_DIR)
    root = pkg.parent.parent
    if pkg.parent.name == "host" and (root / "setup.py").is_file() and (root / "hls").is_dir():
        return root / "bitstreams"
    return None


def search_path(package_dir: Path | None = None) -> list[tuple[str, Path]]:
    """The folders searched for ``<board>/``, in order, each with where it comes from."""
    pkg = Path(package_dir or PACKAGE_DIR)
    out = [(f"${ENV}", Path(p).expanduser()) for p in os.environ.get(ENV, "").split(os.pathsep) if p]
    co = checkout_bitstreams(pkg)
    if co is not None:
        out.append(("the repository checkout", co))
    out.append(("the installed package", pkg / "bitstreams"))
    return out


def is_folder_argument(board: str) -> bool:
    """True when ``board`` names a folder (has a ``/`` or the OS separator, or starts with ``~`` or ``.``)."""
    return "/" in board or os.sep in board or board.startswith(("~", "."))


def find_board_dir(board: str, bitstream_dir: "str | os.PathLike | None" = None,
                   package_dir: Path | None = None) -> Path:
    """The folder holding ``board``'s manifest.json; DeviceError listing every place tried.

    ``bitstream_dir`` (the Python API's explicit root) skips the search: ``bitstream_dir/board``.
    """
    if not isinstance(board, str) or not board:
        raise DeviceError(f"board must be a board name or a folder, not {board!r}")
    if is_folder_argument(board):
        return Path(board).expanduser()
    if not _BOARD_NAME.fullmatch(board):
        raise DeviceError(f"board name {board[:80]!r} is not a name (letters, digits, '_', '.', '+', '-'); "
                          "to use a folder, pass a path such as ./" + board[:40])
    if bitstream_dir is not None:
        return Path(bitstream_dir) / board
    tried = search_path(package_dir)
    for _, root in tried:
        if (root / board / "manifest.json").is_file():
            return root / board
    where = "; ".join(f"{root / board} ({what})" for what, root in tried)
    raise DeviceError(f"no bitstream for board {board!r}: looked in {where}. Build it with overlay/build.sh "
                      f"(needs Vivado/Vitis HLS), then copy the folder to one of these places, set {ENV} to "
                      "the folder holding it, or pass --board with the folder's path")
