"""A report as data: headline figures, sections of text, tables and PNG figures (no rendering here)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Table:
    """headers: column titles; rows: cells already formatted as strings."""

    headers: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Figure:
    """name: a file-name stem ([a-z0-9-]); png: the encoded image; alt: one-line description."""

    name: str
    png: bytes
    alt: str


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)  # paragraphs (plain text; `code` spans allowed)
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


@dataclass
class Document:
    title: str
    headline: list[tuple[str, str]]  # (quantity, value with unit)
    notes: list[str] = field(default_factory=list)  # what the figures assume (counters' source, presets)
    sections: list[Section] = field(default_factory=list)

    def figures(self) -> list[Figure]:
        return [f for s in self.sections for f in s.figures]
