"""Render a :class:`~hybridcim.report.document.Document` as one self-contained HTML page (figures
embedded as base64 PNG ``data:`` URIs, no external resource) and as its Markdown twin (figures
written as PNG files into ``<stem>_files/`` beside it). The files are written atomically, all or none.
"""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from ..fileio import atomic_write_files
from .document import Document, Table

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1180px;margin:1.5em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;
vertical-align:top}th{background:#f3f3f3}td.n{text-align:right;white-space:nowrap}caption{caption-side:top;text-align:left;font-style:italic;padding:.2em 0}
.headline td{font-size:1.05em}.notes{color:#555;font-size:.9em}img{max-width:100%;height:auto;border:1px solid #eee}
code{background:#f5f5f5;padding:0 .2em}
"""


def _inline_html(text: str) -> str:
    """Escape text, then render `code` spans."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


_NUMBER = re.compile(r"[-+]?[\d,]*\.?\d+(e[-+]?\d+)?\s*%?")


def _td(cell: str) -> str:
    """A table cell; numbers are right-aligned."""
    cls = ' class="n"' if _NUMBER.fullmatch(cell.strip()) else ""
    return f"<td{cls}>{_inline_html(cell)}</td>"


def _table_html(t: Table) -> str:
    out = ["<table>"]
    if t.caption:
        out.append(f"<caption>{_inline_html(t.caption)}</caption>")
    out.append("<tr>" + "".join(f"<th>{_inline_html(h)}</th>" for h in t.headers) + "</tr>")
    for r in t.rows:
        out.append("<tr>" + "".join(_td(c) for c in r) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def to_html(doc: Document) -> str:
    """The whole page as one HTML string; figures are base64 ``data:image/png`` URIs."""
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{html.escape(doc.title)}</title><style>{_CSS}</style></head><body>",
           f"<h1>{html.escape(doc.title)}</h1>",
           '<table class="headline">' + "".join(f"<tr><th>{_inline_html(k)}</th><td>{_inline_html(v)}</td></tr>"
                                                 for k, v in doc.headline) + "</table>"]
    if doc.notes:
        out.append('<ul class="notes">' + "".join(f"<li>{_inline_html(n)}</li>" for n in doc.notes) + "</ul>")
    for s in doc.sections:
        out.append(f"<h2>{html.escape(s.title)}</h2>")
        out.extend(f"<p>{_inline_html(p)}</p>" for p in s.text)
        for f in s.figures:
            b64 = base64.b64encode(f.png).decode("ascii")
            out.append(f'<figure><img alt="{html.escape(f.alt, quote=True)}" src="data:image/png;base64,{b64}">'
                       f"<figcaption class=\"notes\">{_inline_html(f.alt)}</figcaption></figure>")
        out.extend(_table_html(t) for t in s.tables)
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table_md(t: Table) -> str:
    out = [f"*{t.caption}*", ""] if t.caption else []
    out.append("| " + " | ".join(_md_cell(h) for h in t.headers) + " |")
    out.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(t.headers))) + "|")
    out.extend("| " + " | ".join(_md_cell(c) for c in r) + " |" for r in t.rows)
    return "\n".join(out)


def to_markdown(doc: Document, figure_dir: str) -> str:
    """The Markdown twin; figure ``f`` is linked as ``<figure_dir>/<f.name>.png``."""
    out = [f"# {doc.title}", "", "| quantity | value |", "|---|---:|"]
    out.extend(f"| {_md_cell(k)} | {_md_cell(v)} |" for k, v in doc.headline)
    out.append("")
    out.extend(f"- {n}" for n in doc.notes)
    for s in doc.sections:
        out += ["", f"## {s.title}", ""]
        for p in s.text:
            out += [p, ""]
        for f in s.figures:
            out += [f"![{f.alt}]({figure_dir}/{f.name}.png)", ""]
        for t in s.tables:
            out += [_table_md(t), ""]
    return "\n".join(out).rstrip() + "\n"


def write(doc: Document, out_html: str | Path) -> tuple[Path, Path]:
    """Write ``out_html`` and its Markdown twin ``<stem>.md`` (figures in ``<stem>_files/``)
    atomically, all or none; returns (html path, markdown path)."""
    out_html = Path(out_html)
    if out_html.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"the report page must end in .html, got {out_html.name!r}")
    md = out_html.with_suffix(".md")
    fig_dir = out_html.parent / f"{out_html.stem}_files"
    files = []
    for f in doc.figures():
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", f.name):
            raise ValueError(f"figure name {f.name!r} is not a plain file stem")
        files.append((fig_dir / f"{f.name}.png", f.png))
    files.append((md, to_markdown(doc, fig_dir.name).encode("utf-8")))
    files.append((out_html, to_html(doc).encode("utf-8")))
    atomic_write_files(files, "report")
    return out_html, md
