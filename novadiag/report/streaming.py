"""The formats written as they are made: JSON, JSON Lines and CSV, as chunks of UTF-8 bytes.

The CLI writes these chunk by chunk to standard output or to the temporary
file that becomes ``-o``, so a report of a large cluster never exists whole
in memory (docs/performance.md). Every chunk is already safe for a terminal
(see :mod:`novadiag.report.jsonstream`; CSV cells go through the same escape).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from novadiag.report.jsonstream import json_chunks, jsonl_chunks
from novadiag.report.tabular import CSV_COLUMNS, csv_rows

if TYPE_CHECKING:
    from novadiag.report.core import Report

STREAMED_FORMATS = ("json", "jsonl", "csv")

_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def report_chunks(report: Report, fmt: str, *, indent: bool = False) -> Iterator[bytes]:
    """The report in one of :data:`STREAMED_FORMATS`, in pieces; ``indent`` applies to JSON."""
    if fmt == "json":
        return json_chunks(report, indent=indent)
    if fmt == "jsonl":
        return jsonl_chunks(report)
    if fmt == "csv":
        return _csv_chunks(report)
    raise ValueError(f"{fmt} is not a streamed format")


def _csv_chunks(report: Report, rows_per_chunk: int = 1000) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for n, row in enumerate(csv_rows(report), 1):
        writer.writerow(row)
        if n % rows_per_chunk == 0:
            yield _visible(buffer)
    yield _visible(buffer)


def _visible(buffer: io.StringIO) -> bytes:
    """Take what the buffer holds, control characters escaped as the other formats escape them."""
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m[0]):04x}", text).encode("utf-8")
