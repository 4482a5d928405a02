"""Entry point of the ``hybridcim`` command.

Each subcommand lives in its own module exposing ``register(subparsers)`` which adds a
parser whose ``func(args) -> int`` runs it. Commands whose module needs optional packages
(torch for training) import them inside ``func`` so ``hybridcim --help`` works with numpy only.
Errors of the user's input (bad files, bad data) print one line and exit 2; no traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("info", "emulate", "zoo", "run", "train", "compile", "export", "ship")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    parser = argparse.ArgumentParser(prog="hybridcim", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"hybridcim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f".cmd_{name}", __package__)
        except ModuleNotFoundError as e:
            if e.name and e.name.startswith(f"{__package__}.cmd_"):
                continue  # command not shipped in this build
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..data import DatasetError
    from ..program.errors import ProgramError
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ProgramError, DatasetError, FileNotFoundError, ValueError) as e:
        print(f"hybridcim {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
