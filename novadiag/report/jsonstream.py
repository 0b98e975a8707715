"""The ``novadiag.audit/v1`` JSON report, written edge by edge.

Building the whole document as one dict and one string costs more than the
audit on a large cluster (276,113 edges: 27 s and 2.4 GiB against 17 s and
639 MiB for the audit alone), so the writer encodes one edge at a time with
orjson (measured faster than msgspec on these dicts, docs/performance.md)
and writes each chunk as it goes: peak memory is the audit plus one edge.
The document is the same as :meth:`Report.to_dict`; compact unless an indent
is asked for.

Text from the cluster is made safe for a terminal or CI log as the other
formats make it: orjson escapes C0 controls, and DEL, C1 controls and bidi
overrides are escaped here (``\\u009b``), which JSON reads back unchanged.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

if TYPE_CHECKING:
    from novadiag.report.core import Report

_UNSAFE = re.compile(rb"\x7f|\xc2[\x80-\x9f]|\xe2\x80[\xaa-\xae]|\xe2\x81[\xa6-\xa9]")


def write_json(report: Report, stream: BinaryIO, *, indent: bool = False) -> None:
    """Write the report's JSON document to a binary stream, one edge at a time."""
    for chunk in json_chunks(report, indent=indent):
        stream.write(chunk)


def render_json(report: Report, *, indent: bool = True, **_: Any) -> str:
    """The JSON document as text (``report.render("json")``); indented, as it always was for the library."""
    buffer = io.BytesIO()
    write_json(report, buffer, indent=indent)
    return buffer.getvalue().decode("utf-8")


def json_chunks(report: Report, *, indent: bool = False) -> Iterator[bytes]:
    """The document in pieces: head, each edge, tail; their concatenation is one JSON document."""
    doc = report.to_dict(edges=False)
    keys = list(doc)
    cut = keys.index("summary") + 1
    head = _encode({k: doc[k] for k in keys[:cut]}, indent)
    tail = _encode({k: doc[k] for k in keys[cut:]}, indent)
    if indent:  # strip the closing "\n}" of the head and the opening "{\n" of the tail
        yield head[:-2] + b',\n  "edges": ['
        yield from _edges(report.edge_dicts(), indent)
        yield (b"\n  ]" if report.edges else b"]") + b",\n" + tail[2:] + b"\n"
    else:
        yield head[:-1] + b',"edges":['
        yield from _edges(report.edge_dicts(), indent)
        yield b"]," + tail[1:] + b"\n"


def jsonl_chunks(report: Report) -> Iterator[bytes]:
    """One compact edge per line (``--format jsonl``), for log pipelines that read a line at a time."""
    for edge in report.edge_dicts():
        yield _safe(orjson.dumps(edge)) + b"\n"


def _edges(edges: Iterable[dict[str, Any]], indent: bool) -> Iterator[bytes]:
    first = True
    for edge in edges:
        chunk = _encode(edge, indent)
        if indent:
            chunk = b"\n    " + chunk.replace(b"\n", b"\n    ")
        yield chunk if first else b"," + chunk
        first = False


def _encode(value: Any, indent: bool) -> bytes:
    return _safe(orjson.dumps(value, option=orjson.OPT_INDENT_2 if indent else 0))


def _safe(data: bytes) -> bytes:
    """Escape DEL, C1 controls and bidi overrides (only ever inside JSON strings) as ``\\uXXXX``."""
    if not _UNSAFE.search(data):
        return data
    return _UNSAFE.sub(lambda m: f"\\u{ord(m[0].decode('utf-8')):04x}".encode(), data)
