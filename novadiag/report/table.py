"""The terminal table: grouped by source namespace, broken edges first.

Written for the engineer paged at 3 a.m.: the first lines say what is broken
and how to fix it; working edges follow, external ones last; one summary line
closes it. Colours come from rich and vanish when the output is not a TTY.
What the table lists and what each cell says is decided in
:mod:`novadiag.report.tablerows`; files and pipes get the same table as plain
text from :mod:`novadiag.report.plaintable`, without rich's per-row layout.
"""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from novadiag.report.core import Report
from novadiag.report.tablerows import (
    Layout,
    Section,
    closing_lines,
    counted_heading,
    edge_cells,
    lay_out,
    probe_seen,
)

FILE_WIDTH = 200
"""Columns of a table written to a file or a pipe (as wide as the CLI's piped output)."""

STATUS_STYLE = {
    "ok": "green",
    "external": "dim",
    "dns-unresolvable": "bold red",
    "unknown-target": "bold red",
    "port-mismatch": "red",
    "no-endpoints": "yellow",
    "blocked": "magenta",
    "unverified": "cyan",
}


def render_table(
    report: Report, *, color: bool = False, width: int = FILE_WIDTH, all_edges: bool = False, **_: Any
) -> str:
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        force_terminal=color,
        no_color=not color,
        width=width,
        highlight=False,
        markup=False,
        soft_wrap=False,
    )
    print_report(report, console, all_edges=all_edges)
    return buffer.getvalue()


def print_report(report: Report, console: Console, *, all_edges: bool = False) -> None:
    """Print the report to a rich console (the CLI passes its own, with colours).

    What is listed and in which order is :func:`novadiag.report.tablerows.lay_out`'s
    (broken edges as rows, the rest counted per namespace; rich lays out every
    row of a table before printing it: 33,000 rows took 15 s). ``all_edges``
    lists every edge, as ``--all`` does.
    """
    layout = lay_out(report, all_edges=all_edges)
    for section in layout.sections:
        console.print(_table(section))
    if layout.counted:
        console.print(Text(counted_heading(layout)))
        console.print(_counts_table(layout))
    for line, style in closing_lines(report):
        console.print(Text(line, style=style))


def _counts_table(layout: Layout) -> Table:
    """One row per namespace: how many of its edges were not listed, by status (``--all`` lists them)."""
    statuses = layout.counted_statuses
    table = Table()
    table.add_column("namespace", overflow="fold")
    for status in statuses:
        table.add_column(status, justify="right", style=STATUS_STYLE[status])
    for ns, counts in layout.count_rows():
        table.add_row(ns, *(str(n) for n in counts))
    return table


def _table(section: Section) -> Table:
    probed = section.probed
    table = Table(title=section.title, title_justify="left", show_lines=False, expand=False)
    table.add_column("status", no_wrap=True)
    if probed:
        table.add_column("probe", no_wrap=True)
    # Only the short status columns may refuse to wrap: when the no-wrap columns alone are wider
    # than the console, rich crops the row, and the fix (the text to copy) was what got cut.
    table.add_column("source", overflow="fold")
    table.add_column("slot", overflow="fold")
    table.add_column("host", overflow="fold", max_width=56)
    table.add_column("target", overflow="fold")
    table.add_column("fix / note", overflow="fold")
    for edge in section.rows:
        cells: list[Text | str] = [Text(edge.status, style=STATUS_STYLE[edge.status])]
        if probed:
            cells.append(Text(*probe_seen(edge)))
        table.add_row(*cells, *edge_cells(edge))
    return table
