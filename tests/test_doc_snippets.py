"""Every bash and Python snippet in README.md and docs/*.md runs as written, or says why not.

A fenced block is a snippet when its info string is ``bash``, ``sh``, ``shell`` or ``python``;
``text`` marks a diagram or a sample output; a fence without an info string is refused (say
which it is). A snippet that cannot run here carries, among the HTML comment lines right
before its fence, ``<!-- not run: REASON -->`` with REASON from :data:`REASONS`.

The snippets of one file run in document order in one scratch folder (as a reader following
the page would), where ``host`` links to the checkout's ``host/``, with the venv's ``bin`` on
PATH and ``CIFAR10_DIR`` set; bash with ``-euo pipefail``, Python with this interpreter.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
REASONS = ("needs a board", "needs Vivado/Vitis", "needs several GPUs", "over 5 minutes")
CODE = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python"}
NOT_CODE = {"text"}
MARKER = re.compile(r"<!--\s*not run:\s*(.*?)\s*-->")
SNIPPET_TIMEOUT_S = 300


def fences(text: str) -> list[dict]:
    """Fenced blocks of a Markdown text: line (1-based, of the opening fence), info, code, reasons.

    >>> [(f["info"], f["code"], f["reasons"]) for f in fences("<!-- not run: over 5 minutes -->\\n```bash\\nls\\n```\\n")]
    [('bash', 'ls\\n', ['over 5 minutes'])]
    """
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        m = re.match(r"^(```+|~~~+)\s*(\S*)", lines[i])
        if not m:
            i += 1
            continue
        fence, info, start = m.group(1), m.group(2).lower(), i
        j = i + 1
        while j < len(lines) and not lines[j].startswith(fence):
            j += 1
        reasons, k = [], start - 1
        while k >= 0 and lines[k].strip().startswith("<!--"):  # the comment lines right before the fence
            reasons += MARKER.findall(lines[k])
            k -= 1
        out.append({"line": start + 1, "info": info, "code": "\n".join(lines[start + 1:j]) + "\n", "reasons": reasons})
        i = j + 1
    return out


ALL = [(doc, f) for doc in DOCS for f in fences(doc.read_text(encoding="utf-8"))]


def _id(doc: Path, f: dict) -> str:
    return f"{doc.relative_to(ROOT)}:{f['line']}"


@pytest.mark.parametrize("doc,fence", ALL, ids=[_id(d, f) for d, f in ALL])
def test_every_fence_is_declared(doc, fence):
    """Code runs or states a reason from the fixed list; non-code says it is text."""
    where = _id(doc, fence)
    assert fence["info"], f"{where}: a fence needs an info string (bash, python, or text for diagrams/output)"
    assert fence["info"] in CODE or fence["info"] in NOT_CODE, f"{where}: unknown info string {fence['info']!r}"
    for r in fence["reasons"]:
        assert r in REASONS, f"{where}: 'not run' reason {r!r} is not one of {REASONS}"
    if fence["info"] in NOT_CODE:
        assert not fence["reasons"], f"{where}: a text block needs no 'not run' reason"


def _env(cifar10_root: Path) -> dict:
    env = dict(os.environ, CIFAR10_DIR=str(cifar10_root), MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _runnable(doc: Path) -> list[dict]:
    return [f for f in fences(doc.read_text(encoding="utf-8")) if f["info"] in CODE and not f["reasons"]]


RUNNABLE_DOCS = [d for d in DOCS if _runnable(d)]


def test_the_readme_has_runnable_snippets():
    assert ROOT / "README.md" in RUNNABLE_DOCS


@pytest.mark.parametrize("doc", RUNNABLE_DOCS, ids=[str(d.relative_to(ROOT)) for d in RUNNABLE_DOCS])
def test_snippets_run_as_written(doc, cifar10_root, tmp_path):
    runnable = _runnable(doc)
    (tmp_path / "host").symlink_to(ROOT / "host")
    env = _env(cifar10_root)
    for f in runnable:
        cmd = (["bash", "-euo", "pipefail", "-c", f["code"]] if CODE[f["info"]] == "bash"
               else [sys.executable, "-c", f["code"]])
        r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=SNIPPET_TIMEOUT_S)
        assert r.returncode == 0, (f"{_id(doc, f)} failed (exit {r.returncode}):\n{f['code']}\n"
                                   f"stdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-3000:]}")
        assert "Traceback" not in r.stderr, f"{_id(doc, f)} printed a traceback:\n{r.stderr[-3000:]}"


def test_the_readme_python_api_reads_cifar10_dir(cifar10_root, tmp_path, monkeypatch):
    """The README's Python snippet finds the data through $CIFAR10_DIR alone, and without it says
    how to give it (the suggestion it makes is the one that works)."""
    code = next(f["code"] for f in fences((ROOT / "README.md").read_text()) if f["info"] == "python")
    assert "CIFAR10_DIR" in code and "../shared" not in code
    env = _env(cifar10_root)
    env.pop("CIFAR10_DIR")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=SNIPPET_TIMEOUT_S)
    assert r.returncode != 0 and "set CIFAR10_DIR=DIR" in r.stderr
