"""``hybridcim --help`` and every subcommand's options carry help text a user can read."""
import argparse
import subprocess
import sys

from hybridcim.cli.main import COMMANDS, build_parser


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise AssertionError("no subcommands")


def test_every_option_of_every_command_has_help():
    parser = build_parser()
    sub = _subparsers(parser)
    assert set(sub.choices) == set(COMMANDS)
    missing = [f"hybridcim {' '.join(a.option_strings) or a.dest}" for a in parser._actions if not a.help]
    for name, p in sub.choices.items():
        assert p.description, f"hybridcim {name} has no description"
        missing += [f"hybridcim {name} {'/'.join(a.option_strings) or a.dest}" for a in p._actions
                    if not a.help or a.help == argparse.SUPPRESS]
    assert not missing, missing


def test_top_level_help_describes_the_tool_not_the_code():
    out = subprocess.run([sys.executable, "-m", "hybridcim.cli.main", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "compute-in-memory" in out.stdout and "Entry point" not in out.stdout and "``" not in out.stdout
    assert all(c in out.stdout for c in COMMANDS)
