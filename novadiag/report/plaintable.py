"""The table as plain aligned text, for a file (``-o report.txt``) or a pipe.

The same sections, columns, order, per-namespace counts and closing lines as
the terminal table (all from :mod:`novadiag.report.tablerows`), without rich:
rich lays out each row of a table before printing it, about 0.8 ms a row, which
made the table of a cluster with 15,000 broken edges take longer than its
audit. Here a section's column widths are its longest cells, no cell wraps (a
file or a log is read with ``less -S`` or ``grep``, and a fix is the text to
copy), a cell of several lines continues under its own column, and the lines
are yielded section by section, so the writer streams them.

Every cell passes through :func:`novadiag.outputs.visible`: names, env values and
messages come from the cluster, and an escape sequence in one must not reach a
terminal that later shows the file or the log.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from novadiag.model import Edge
from novadiag.outputs import visible
from novadiag.report.core import Report
from novadiag.report.tablerows import (
    EDGE_COLUMNS,
    Layout,
    Section,
    closing_lines,
    counted_heading,
    edge_cells,
    lay_out,
    probe_seen,
)

GAP = "  "
"""Between two columns."""


def render_plain_table(report: Report, *, all_edges: bool = False) -> str:
    """The whole plain table as one string (what ``-o report.txt`` writes)."""
    return "".join(plain_table_lines(report, all_edges=all_edges))


def plain_table_chunks(report: Report, *, all_edges: bool = False, lines_per_chunk: int = 1000) -> Iterator[bytes]:
    """The plain table in UTF-8 chunks of a thousand lines, as ``-o`` writes it through ``write_output_chunks``."""
    batch: list[str] = []
    for line in plain_table_lines(report, all_edges=all_edges):
        batch.append(line)
        if len(batch) == lines_per_chunk:
            yield "".join(batch).encode("utf-8")
            batch.clear()
    yield "".join(batch).encode("utf-8")


def plain_table_lines(report: Report, *, all_edges: bool = False) -> Iterator[str]:
    """The plain table, one line at a time, each ending in a newline."""
    layout = lay_out(report, all_edges=all_edges)
    for section in layout.sections:
        yield from _section_lines(section)
        yield "\n"
    if layout.counted:
        yield from _counts_lines(layout)
        yield "\n"
    for line, _style in closing_lines(report):
        yield visible(line) + "\n"


def _section_lines(section: Section) -> Iterator[str]:
    probed = section.probed
    header = [c for c in EDGE_COLUMNS if probed or c != "probe"]
    rows = [_edge_row(edge, probed=probed) for edge in section.rows]
    yield visible(section.title) + "\n"
    yield from aligned_lines([[[h] for h in header], *rows], right=())


def _edge_row(edge: Edge, *, probed: bool) -> list[list[str]]:
    """The row's cells, each a list of its lines (a broken edge's note is the fix, then why)."""
    cells = [edge.status, *([probe_seen(edge)[0]] if probed else []), *edge_cells(edge)]
    return [visible(cell).split("\n") for cell in cells]


def _counts_lines(layout: Layout) -> Iterator[str]:
    statuses = layout.counted_statuses
    yield visible(counted_heading(layout)) + "\n"
    rows = [[[visible(ns)], *([str(n)] for n in counts)] for ns, counts in layout.count_rows()]
    yield from aligned_lines([[["namespace"], *([s] for s in statuses)], *rows], right=range(1, len(statuses) + 1))


def aligned_lines(rows: Sequence[Sequence[Sequence[str]]], *, right: Sequence[int] | range = ()) -> Iterator[str]:
    """Rows of cells (each a list of lines) as text lines, columns as wide as their widest line.

    ``right`` holds the columns aligned right (counts). Shared with the plain
    ``novadiag policies`` table, so that every plain table of the CLI reads alike.
    """
    widths = [max(len(line) for row in rows for line in row[col]) for col in range(len(rows[0]))]
    last = len(widths) - 1
    for row in rows:
        for n in range(max(len(cell) for cell in row)):
            parts = []
            for col, cell in enumerate(row):
                text = cell[n] if n < len(cell) else ""
                if col in right:
                    parts.append(text.rjust(widths[col]))
                else:
                    parts.append(text if col == last else text.ljust(widths[col]))
            yield GAP.join(parts).rstrip() + "\n"
