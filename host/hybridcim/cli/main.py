"""Entry point of the ``hybridcim`` command (``main``; the parser is ``build_parser``).

Each subcommand lives in its own module exposing ``register(subparsers)`` which adds a
parser whose ``func(args) -> int`` runs it. Commands whose module needs optional packages
(torch for training) import them inside ``func`` so ``hybridcim --help`` works with numpy only.
Errors of the user's input (bad files, bad data) print one line and exit 2; no traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMANDS = ("info", "emulate", "zoo", "run", "train", "compile", "export", "ship", "report", "calibrate", "search", "finetune", "compare")


DESCRIPTION = """\
Train a compressed CNN for an SRAM compute-in-memory (CIM) accelerator, compile it into a
versioned program image (.cim), and run that image bit-exactly on the emulator, the HLS
kernel compiled for this CPU (csim) or a PYNQ FPGA board, checked against a reference."""

EPILOG = """\
examples:
  hybridcim run --data DIR                      the best shipped model on CIFAR-10, checked
  hybridcim info                                the hardware presets
  hybridcim info MODEL.cim --plot layers.png    a program's layers, cycles and pruning
  hybridcim emulate MODEL.cim --data DIR        accuracy and speed of the emulator

Run 'hybridcim COMMAND --help' for a command's options. Errors in the input (a bad file,
path or value) print one line and exit with status 2."""


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    parser = argparse.ArgumentParser(prog="hybridcim", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"hybridcim {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands",
                                help="one of:")
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f".cmd_{name}", __package__)
        except ModuleNotFoundError as e:
            if e.name and e.name.startswith(f"{__package__}.cmd_"):
                continue  # command not shipped in this build
            raise
        mod.register(sub)
    for choice in sub._choices_actions:  # a command's --help opens with its one-line summary
        cmd = sub.choices[choice.dest]
        if cmd.description is None and choice.help:
            cmd.description = choice.help[0].upper() + choice.help[1:] + "."
    return parser


def _one_line(e: BaseException) -> str:
    """The error's message on one line (an OSError as 'reason: path')."""
    if isinstance(e, OSError) and not isinstance(e, FileNotFoundError) and e.strerror:
        msg = f"{e.strerror}: {e.filename!r}" if e.filename is not None else e.strerror
        if e.filename2 is not None:
            msg += f" -> {e.filename2!r}"
    elif isinstance(e, MemoryError):
        msg = "out of memory" + (f" ({e})" if str(e) else "")
    elif isinstance(e, RecursionError):
        msg = f"an input nests too deeply to read ({e})"
    else:
        msg = str(e) or type(e).__name__
    return " ".join(msg.split())


def main(argv: list[str] | None = None) -> int:
    from ..data import DatasetError
    from ..program.errors import ProgramError
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # stdout closed early (| head): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (ProgramError, DatasetError, ValueError, OSError, MemoryError, RecursionError) as e:
        # bad input (file, path, value) or a refused device: one line, no traceback
        print(f"hybridcim {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
