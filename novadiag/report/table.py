"""The terminal table: grouped by source namespace, broken edges first.

Written for the engineer paged at 3 a.m.: the first lines say what is broken
and how to fix it; working edges follow, external ones last; one summary line
closes it. Colours come from rich and vanish when the output is not a TTY.
"""

from __future__ import annotations

import io
from collections import defaultdict
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from novadiag.model import BROKEN_STATUSES, DISPLAY_ORDER, Edge
from novadiag.report.core import Report

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

    By default only the edges that need a look (broken, unverified) are rows;
    the rest are counted per namespace in one closing table, so a cluster of
    tens of thousands of working edges prints what is wrong in a screenful
    (rich lays out every row of a table before printing it: 33,000 rows took
    15 s). ``all_edges`` lists every edge, as ``--all`` does.
    """
    by_ns: dict[str, list[Edge]] = defaultdict(list)
    for edge in report.edges:
        by_ns[edge.reference.namespace].append(edge)
    order = sorted(by_ns, key=lambda ns: (-sum(e.broken for e in by_ns[ns]), ns))
    rest: dict[str, list[Edge]] = {}
    for ns in order:
        edges = sorted(by_ns[ns], key=lambda e: (DISPLAY_ORDER[e.status], e.id))
        listed = edges if all_edges else [e for e in edges if _needs_a_look(e)]
        if len(listed) < len(edges):
            rest[ns] = [e for e in edges if not _needs_a_look(e)]
        if listed:
            broken = sum(e.broken for e in edges)
            title = f"namespace {ns} — {len(edges)} edge(s), {broken} broken"
            console.print(_table(title, listed))
    if rest:
        total = sum(len(edges) for edges in rest.values())
        console.print(Text(f"{total} other edge(s) by namespace (--all lists them)"))
        console.print(_counts_table(rest))
    for finding in report.findings:
        if finding.severity != "info":
            style = "red" if finding.severity == "error" else "yellow"
            console.print(Text(f"{finding.severity}: {finding.message}", style=style))
    for gap in report.gaps:
        console.print(Text(f"gap: {gap.summary()}", style="yellow"))
    style = "bold red" if report.broken else ("bold green" if report.complete else "bold yellow")
    console.print(Text(summary_line(report), style=style))


def _needs_a_look(edge: Edge) -> bool:
    return edge.broken or edge.status == "unverified"


def _counts_table(rest: dict[str, list[Edge]]) -> Table:
    """One row per namespace: how many of its edges were not listed, by status (``--all`` lists them)."""
    statuses = [s for s in DISPLAY_ORDER if any(e.status == s for edges in rest.values() for e in edges)]
    table = Table()
    table.add_column("namespace", overflow="fold")
    for status in statuses:
        table.add_column(status, justify="right", style=STATUS_STYLE[status])
    for ns, edges in rest.items():
        counts = defaultdict(int, ((s, 0) for s in statuses))
        for edge in edges:
            counts[edge.status] += 1
        table.add_row(ns, *(str(counts[s]) for s in statuses))
    return table


def _table(title: str, edges: list[Edge]) -> Table:
    probed = any(e.probe is not None for e in edges)
    table = Table(title=title, title_justify="left", show_lines=False, expand=False)
    table.add_column("status", no_wrap=True)
    if probed:
        table.add_column("probe", no_wrap=True)
    # Only the short status columns may refuse to wrap: when the no-wrap columns alone are wider
    # than the console, rich crops the row, and the fix (the text to copy) was what got cut.
    table.add_column("source", overflow="fold")
    table.add_column("env", overflow="fold")
    table.add_column("host", overflow="fold", max_width=56)
    table.add_column("target", overflow="fold")
    table.add_column("fix / note", overflow="fold")
    for edge in edges:
        ref = edge.reference
        target = edge.target or edge.resolves_to
        target_text = f"{target.namespace}/{target.name}" if target else "-"
        note = _note(edge)
        if edge.probe is not None and edge.probe.error:
            note += f" [probe: {edge.probe.error}]"
        source = (
            ref.workload.name if ref.workload.kind == "Deployment" else f"{ref.workload.name} ({ref.workload.kind})"
        )
        if ref.container and ref.container != ref.workload.name:
            source += f" [{ref.container}]"
        cells: list[Text | str] = [Text(edge.status, style=STATUS_STYLE[edge.status])]
        if probed:
            cells.append(_probe_cell(edge))
        table.add_row(
            *cells,
            source,
            ref.slot,
            ref.host if ref.port is None else f"{ref.host}:{ref.port}",
            target_text,
            note,
        )
    return table


def _probe_cell(edge: Edge) -> Text:
    """What the probe pod saw: DNS answer and connect, ✓ when it matches the prediction."""
    probe = edge.probe
    if probe is None:
        return Text("-", style="dim")
    if probe.dns in ("error", "not-run"):
        return Text("not run" if probe.dns == "not-run" else "error", style="yellow")
    seen = probe.dns if probe.dns != "ok" else f"connect {probe.connect}"
    if probe.health != "skipped":
        seen += f", health {probe.health}"
    if probe.agrees is None:
        return Text(seen, style="cyan")  # nothing to agree with: the static verdict was unverified
    mark, style = ("✓", "green") if probe.agrees else ("✗ disagrees", "bold yellow")
    return Text(f"{seen} {mark}", style=style)


def _note(edge: Edge) -> str:
    """Broken: the fix first, then why. Working: only what is surprising (libc notes)."""
    if edge.broken:
        return f"→{edge.fix}\n{edge.detail}" if edge.fix else edge.detail  # no space: the arrow stays with the fix
    if edge.status == "unverified":
        return edge.detail
    if edge.status == "external":
        return ""
    return edge.detail[edge.detail.index(" (") + 2 : -1] if " (glibc" in edge.detail else ""


def summary_line(report: Report) -> str:
    """One line: how many edges are broken and why first, then what else was found and what was read."""
    s = report.summary()
    broken = [f"{n} {status}" for status, n in s["by_status"].items() if status in BROKEN_STATUSES]
    fine = [f"{n} {status}" for status, n in s["by_status"].items() if status not in BROKEN_STATUSES | {"unverified"}]
    if report.broken:
        head = f"BROKEN: {s['broken']} of {s['edges']} edges ({', '.join(broken)})"
    else:
        head = f"{'OK' if report.complete else 'INCOMPLETE'}: none of {s['edges']} edges broken"
    return (
        head
        + _incomplete_summary(report)
        + (f"; {', '.join(fine)}" if fine else "")
        + f"; {s['cross_namespace']} cross-namespace"
        + f"; read {s['namespaces']} namespaces, {s['workloads']} workloads, {s['services']} services"
        + (f"; {len(report.gaps)} gap(s)" if report.gaps else "")
        + _probe_summary(report)
    )


def _incomplete_summary(report: Report) -> str:
    """What the audit could not verify; after a BROKEN head it starts with INCOMPLETE too."""
    parts = [report.nothing_read] if report.nothing_read else []
    if report.unverified:
        parts.append(f"{len(report.unverified)} unverified (their verdict needs objects that could not be read)")
    if not parts:
        return ""
    return ("; INCOMPLETE: " if report.broken else ", ") + "; ".join(parts)


def _probe_summary(report: Report) -> str:
    probes = report.probes
    if not probes:
        return ""
    observed = [e for e in report.edges if e.probe is not None and e.probe.dns not in ("error", "not-run")]
    disagree = sum(1 for e in observed if e.probe is not None and e.probe.agrees is False)
    text = (
        f"; probed {len(observed)} edges with {probes.get('pods_created', 0)} pod(s) in {probes.get('wall_seconds')}s"
    )
    if disagree:
        text += f", {disagree} disagree with the prediction"
    if probes.get("failed"):
        text += f", {len(probes['failed'])} probe pod(s) failed"
    if probes.get("forbidden"):
        text += f", {len(probes['forbidden'])} namespace(s) where probe pods are forbidden"
    return text
