"""``hybridcim report``: one self-contained HTML page and its Markdown twin per program.

- :mod:`.workload` — the counters a report costs (measured on images, or input_ones assumed);
- :mod:`.mapping` — the macro × tile utilization map and the precision map of a program;
- :mod:`.figures` — the figures as PNG bytes (matplotlib);
- :mod:`.document` — the report as data; :mod:`.build` assembles it; :mod:`.render` writes it.
"""
from .document import Document, Figure, Section, Table
from .workload import Workload, measure

__all__ = ["Document", "Figure", "Section", "Table", "Workload", "measure"]
