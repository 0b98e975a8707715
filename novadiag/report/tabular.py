"""Row formats for spreadsheets and log pipelines: CSV and JSON Lines, one edge per row.

Both are streamed (:func:`write_csv`, :func:`novadiag.report.jsonstream.jsonl_chunks`):
a pipeline reading them starts before the last edge is written, and memory
stays at the audit's. The CSV flattens an edge to the columns a spreadsheet
filters on; JSON Lines keeps the contract's edge object whole.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

from novadiag.report.jsonstream import jsonl_chunks

if TYPE_CHECKING:
    from novadiag.model import Edge
    from novadiag.report.core import Report

CSV_COLUMNS = (
    "id",
    "status",
    "namespace",
    "kind",
    "name",
    "container",
    "env",
    "origin",
    "location",
    "reference",
    "host",
    "port",
    "target",
    "resolves_to",
    "cross_namespace",
    "fix",
    "detail",
    "file",
    "line",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def render_csv(report: Report, **_: Any) -> str:
    buffer = io.StringIO()
    write_csv(report, buffer)
    return buffer.getvalue()


def render_jsonl(report: Report, **_: Any) -> str:
    return b"".join(jsonl_chunks(report)).decode("utf-8")


def write_csv(report: Report, stream: TextIO) -> None:
    """A header row, then one row per edge, written as they are made."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_rows(report))


def csv_rows(report: Report) -> Iterator[list[str]]:
    for edge in report.edges:
        yield [_cell(v) for v in _row(report, edge)]


def _row(report: Report, edge: Edge) -> tuple[Any, ...]:
    ref = edge.reference
    where = report.source_line(edge)
    return (
        edge.id,
        edge.status,
        ref.workload.namespace,
        ref.workload.kind,
        ref.workload.name,
        ref.container,
        ref.env,
        ref.origin,
        ref.location,
        ref.reference,
        ref.host,
        ref.port,
        None if edge.target is None else f"{edge.target.namespace}/{edge.target.name}",
        None if edge.resolves_to is None else f"{edge.resolves_to.namespace}/{edge.resolves_to.name}",
        edge.cross_namespace,
        edge.fix,
        edge.detail,
        None if where is None else where.file,
        None if where is None else where.line,
    )


def _cell(value: Any) -> str:
    """A cell a spreadsheet shows as text: a value from the cluster starting with ``=`` is not run as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text
