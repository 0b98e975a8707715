"""GitHub Actions workflow commands: one ``::error`` annotation per broken edge.

A workflow step that runs ``novadiag audit --format github`` on manifests
gets each broken reference annotated on the line of the pull request that
wrote it (``file=``/``line=`` from :mod:`novadiag.sourcelines`). Values are
escaped as the runner expects (``%``, CR, LF, and ``:``/``,`` in properties),
so cluster text cannot end a command early or start another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from novadiag.report.tablerows import summary_line

if TYPE_CHECKING:
    from novadiag.model import Edge
    from novadiag.report.core import Report


def render_github(report: Report, **_: Any) -> str:
    lines = [_annotation(report, edge) for edge in report.edges if edge.broken]
    level = "error" if report.broken else "notice"
    lines.append(f"::{level} title=novadiag::{escape_data(summary_line(report))}")
    return "\n".join(lines) + "\n"


def _annotation(report: Report, edge: Edge) -> str:
    props = [f"title={escape_property(f'novadiag {edge.status}')}"]
    where = report.source_line(edge)
    if where is not None:
        props.insert(0, f"file={escape_property(where.file)}")
        if where.line is not None:
            props.insert(1, f"line={where.line}")
    message = f"{edge.id}: {edge.detail}"
    if edge.fix:
        message += f" Fix: {edge.fix}"
    return f"::error {','.join(props)}::{escape_data(message)}"


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")
