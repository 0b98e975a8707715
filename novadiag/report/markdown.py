"""The report as GitHub-flavoured Markdown: for a pull request, an issue or a job summary.

Read top-down by a reviewer who did not run the audit: one line that says
whether anything is broken, the numbers, then only what needs doing (the
broken edges with their fix), then the namespace matrix that shows how tangled
the namespaces are. The other edges are counted per namespace; ``all_edges``
(``--all``) lists every one, folded in a ``<details>`` block, so the comment
stays short. The matrix is drawn up to :data:`MATRIX_MAX_NAMESPACES`
namespaces: past that a pull request comment cannot show it.

Cells hold untrusted cluster content (env values, names). In a GFM table a
``|`` ends the cell even inside a code span and a newline ends the row, so
:func:`cell` backslash-escapes ``|`` and turns newlines into ``<br>``; it also
escapes the characters that would start emphasis, links or raw HTML.
:func:`code` puts a value in a code span that no backtick inside can close.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from novadiag.model import BROKEN_STATUSES, Edge
from novadiag.report.core import Report
from novadiag.report.tablerows import summary_line
from novadiag.report.views import (
    PSEUDO_NAMESPACES,
    host_port,
    matrix_namespaces,
    namespace_counts,
    sorted_edges,
    target_label,
)
from novadiag.snapshot import paused_gc

MATRIX_MAX_NAMESPACES = 30
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")
_NEWLINES = re.compile(r"\r\n|\r|\n")


def cell(text: str) -> str:
    """Plain text safe in a GFM table cell."""
    return _NEWLINES.sub("<br>", _SPECIAL.sub(r"\\\1", text))


def code(text: str) -> str:
    """A code span that shows ``text`` as written, safe in a table cell."""
    if not text:
        return ""
    flat = " ".join(_NEWLINES.split(text)).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, align: str = "") -> list[str]:
    """A GFM table; ``align`` holds one of ``l``/``r`` per column (default left)."""
    marks = ["---:" if (align[i : i + 1] == "r") else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render_markdown(report: Report, *, all_edges: bool = False, **_: Any) -> str:
    """The Markdown report, built with the collector paused, as the HTML page is (see its renderer)."""
    with paused_gc():
        return _render_markdown(report, all_edges=all_edges)


def _render_markdown(report: Report, *, all_edges: bool) -> str:
    sections = [
        _header(report),
        _broken(report),
        _unverified(report),
        _matrix(report),
        _notes(report),
        _all_edges(report) if all_edges else _other_counts(report),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


def _header(report: Report) -> str:
    s = report.summary()
    broken = s["broken"]
    verdict = "OK" if report.complete else "INCOMPLETE"
    title = (
        f"# novadiag audit: {broken} broken edge{'s' if broken != 1 else ''}"
        if broken
        else f"# novadiag audit: {verdict}"
    )
    head, _, rest = summary_line(report).partition(": ")
    keys = ("edges", "broken", "unverified", "cross_namespace", "namespaces", "workloads", "services")
    numbers = table([k.replace("_", "-") for k in keys], [[str(s[k]) for k in keys]], align="r" * len(keys))
    return "\n".join([title, "", f"**{head}**: {cell(rest)}", "", *numbers])


def _source(edge: Edge) -> str:
    ref = edge.reference
    text = f"{ref.namespace}/{ref.workload.name}"
    if ref.workload.kind != "Deployment":
        text += f" ({ref.workload.kind})"
    if ref.container and ref.container != ref.workload.name:
        text += f" [{ref.container}]"
    return code(text)


def _broken(report: Report) -> str:
    broken = sorted_edges(report.broken)
    if not broken and report.unverified:
        return (
            f"## Broken edges\n\nNone among the edges it could judge; {len(report.unverified)} could not be verified."
        )
    if not broken:
        return "## Broken edges\n\nNone: every in-cluster reference resolves to a Service that can answer."
    rows = [
        [cell(e.status), _source(e), code(e.reference.slot), code(host_port(e)), code(e.fix or ""), cell(e.detail)]
        for e in broken
    ]
    lines = table(["status", "source", "slot", "host", "fix", "why"], rows)
    return "\n".join(
        [f"## Broken edges ({len(broken)})", "", "Fix these first; each fix is the value to write.", ""] + lines
    )


def _unverified(report: Report) -> str:
    """Edges the audit could not judge, with the permission each one lacks; nothing when there are none."""
    edges = sorted_edges(report.unverified)
    if not edges:
        return ""
    rows = [[_source(e), code(e.reference.slot), code(host_port(e)), cell(e.detail)] for e in edges]
    intro = "Neither OK nor broken: each verdict needs objects the audit could not read."
    return "\n".join(
        [f"## Unverified edges ({len(edges)})", "", intro, "", *table(["source", "slot", "host", "why"], rows)]
    )


def _matrix(report: Report) -> str:
    counts = namespace_counts(report.edges)
    if not counts:
        return ""
    names = matrix_namespaces(counts)
    if len(names) > MATRIX_MAX_NAMESPACES:
        return ""
    sources = [n for n in names if n not in PSEUDO_NAMESPACES and any(src == n for src, _ in counts)]
    rows = []
    for src in sources:
        row = [f"**{cell(src)}**"]
        for dst in names:
            by_status = counts.get((src, dst))
            if not by_status:
                row.append("·")
                continue
            total = sum(by_status.values())
            broken = sum(n for s, n in by_status.items() if s in BROKEN_STATUSES)
            row.append(f"{total} (**{broken} broken**)" if broken else str(total))
        rows.append(row)
    lines = table(["from ↓ to →", *(cell(n) for n in names)], rows, align="l" + "r" * len(names))
    intro = "Edges from each source namespace (rows) to the namespace of the Service they mean (columns)."
    return "\n".join(["## Namespace matrix", "", intro, "", *lines])


def _notes(report: Report) -> str:
    items = [f"- **{f.severity}** `{f.code}`: {cell(f.message)}" for f in report.findings if f.severity != "info"]
    items += [f"- **gap**: {cell(g.summary())}" for g in report.gaps]
    return "\n".join(["## Findings", "", *items]) if items else ""


def _other_counts(report: Report) -> str:
    """Edges that are neither broken nor unverified, counted per source namespace and status."""
    counts: dict[str, dict[str, int]] = {}
    for edge in report.edges:
        if not edge.broken and edge.status != "unverified":
            by_status = counts.setdefault(edge.reference.namespace, {})
            by_status[edge.status] = by_status.get(edge.status, 0) + 1
    if not counts:
        return ""
    statuses = [s for s in ("ok", "external") if any(s in c for c in counts.values())]
    rows = [[code(ns), *(str(c.get(s, 0)) for s in statuses)] for ns, c in sorted(counts.items())]
    lines = table(["namespace", *statuses], rows, align="l" + "r" * len(statuses))
    total = sum(sum(c.values()) for c in counts.values())
    summary = f"<summary>{total} other edges by namespace (<code>--all</code> lists them)</summary>"
    return "\n".join(["<details>", summary, "", *lines, "", "</details>"])


def _all_edges(report: Report) -> str:
    if not report.edges:
        return ""
    rows = [
        [cell(e.status), _source(e), code(e.reference.slot), code(e.reference.reference), code(target_label(e))]
        for e in sorted_edges(report.edges)
    ]
    lines = table(["status", "source", "slot", "reference", "target"], rows)
    summary = f"<summary>All {len(report.edges)} edges</summary>"
    return "\n".join(["<details>", summary, "", *lines, "", "</details>"])
