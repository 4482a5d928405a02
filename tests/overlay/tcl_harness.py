"""Run the overlay/HLS Tcl scripts under stub Vivado / Vitis HLS commands (tcl_stubs.tcl).

The Tcl interpreter is ``tclsh`` (Debian/Ubuntu package ``tcl``) when it is on PATH, else the
one inside Python's ``tkinter`` (no display needed): either runs the scripts' own logic; only
the tool commands are stubs. ``tool_stubs(bin)`` writes ``vivado`` and ``vitis_hls``
executables that answer ``-version`` and run ``-source``/``-f`` scripts the same way, so
``overlay/build.sh`` can run end to end.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
STUBS = HERE / "tcl_stubs.tcl"
_TK = """import sys, tkinter
try:
    tkinter.Tcl().eval('source {' + sys.argv[1] + '}')
except tkinter.TclError as e:
    if str(e).startswith('__stub_exit__ '):
        sys.exit(int(str(e).split()[1]))
    sys.exit(f'ERROR: {e}')
"""


def tcl_command() -> list[str]:
    """argv prefix that runs one Tcl file."""
    if shutil.which("tclsh"):
        return [shutil.which("tclsh")]
    try:
        import tkinter  # noqa: F401
        tkinter.Tcl()
    except Exception as e:  # no tclsh and a Python without Tcl: nothing here can run Tcl
        pytest.skip(f"no Tcl interpreter (install tclsh: apt-get install tcl): {e}")
    return [sys.executable, "-c", _TK]


def run_tcl(script: Path, log: Path, env: dict | None = None, cwd: Path | None = None):
    """Run ``script`` under the stubs; returns (returncode, stdout + stderr, calls)."""
    e = dict(os.environ, STUB_SCRIPT=str(script), STUB_LOG=str(log), **(env or {}))
    p = subprocess.run(tcl_command() + [str(STUBS)], env=e, cwd=cwd, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr, read_log(log)


def read_log(log: Path) -> list[list[str]]:
    if not log.is_file():
        return []
    return [line.split("\x1f") for line in log.read_text().splitlines()]


def names(calls) -> list[str]:
    return [c[0] for c in calls]


def index(calls, name: str, start: int = 0) -> int:
    return names(calls).index(name, start)


def tool_stubs(bin_dir: Path, log_dir: Path) -> Path:
    """``vivado`` and ``vitis_hls`` stand-ins in ``bin_dir`` (call logs in ``log_dir``)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    tcl = " ".join(shlex.quote(a) for a in tcl_command())
    for tool, version, flag in (("vivado", "vivado v2023.2 (64-bit) [stub]", "-source"),
                                ("vitis_hls", "Vitis HLS - High-Level Synthesis from C, C++ and OpenCL v2023.2 "
                                              "(64-bit) [stub]", "-f")):
        (bin_dir / tool).write_text(f"""#!/usr/bin/env bash
set -e
echo "{tool} $*" >> '{log_dir}/argv.txt'
if [ "$1" = -version ]; then echo '{version}'; exit 0; fi
script=
while [ $# -gt 0 ]; do [ "$1" = {flag} ] && script=$2; shift; done
n=$(ls '{log_dir}' | wc -l)
STUB_SCRIPT="$(cd "$(dirname "$script")" && pwd)/$(basename "$script")" STUB_LOG='{log_dir}'/{tool}.$n.log \\
    exec {tcl} '{STUBS}'
""")
        (bin_dir / tool).chmod(0o755)
    return bin_dir
