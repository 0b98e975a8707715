"""What the table shows, apart from how it is drawn: sections, cells, closing lines.

Two renderers draw it: :mod:`novadiag.report.table` with rich, for a terminal
(colours, wrapped cells), and :mod:`novadiag.report.plaintable` as aligned plain
text, for a file or a pipe, where rich's layout of each row (about 0.8 ms a row)
made a large cluster's table take longer than its audit. Both take their
sections, cells and lines from here, so they cannot disagree on what is listed,
in which order, or what a cell says. Nothing here imports rich.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from novadiag.model import BROKEN_STATUSES, DISPLAY_ORDER, Edge
from novadiag.report.core import Report

EDGE_COLUMNS = ("status", "probe", "source", "slot", "host", "target", "fix / note")
"""The columns of a section; ``probe`` only when some edge of the section was probed.

``slot`` is where in the container the host is named (:attr:`~novadiag.model.Reference.slot`):
the env var, else ``args[2]``, ``line 3`` of a script, or a mounted file's ``ORIGIN:KEY PATH``.
"""


@dataclass(frozen=True)
class Section:
    """One source namespace: its title and the edges listed as rows (broken first)."""

    namespace: str
    title: str
    rows: tuple[Edge, ...]

    @property
    def probed(self) -> bool:
        return any(e.probe is not None for e in self.rows)


@dataclass(frozen=True)
class Layout:
    """The sections with rows, and the edges only counted, per namespace (``--all`` lists them)."""

    sections: tuple[Section, ...]
    counted: dict[str, list[Edge]]

    @property
    def counted_statuses(self) -> list[str]:
        """The statuses the per-namespace count has columns for, in display order."""
        present = {e.status for edges in self.counted.values() for e in edges}
        return [s for s in DISPLAY_ORDER if s in present]

    def count_rows(self) -> Iterator[tuple[str, list[int]]]:
        """(namespace, count per status of :attr:`counted_statuses`) for each namespace with counted edges."""
        statuses = self.counted_statuses
        for ns, edges in self.counted.items():
            counts = dict.fromkeys(statuses, 0)
            for edge in edges:
                counts[edge.status] += 1
            yield ns, [counts[s] for s in statuses]

    @property
    def counted_total(self) -> int:
        return sum(len(edges) for edges in self.counted.values())


def lay_out(report: Report, *, all_edges: bool = False) -> Layout:
    """Namespaces with the most broken edges first; in each, edges by status, then id.

    By default only the edges that need a look (broken, unverified) are rows;
    the rest are counted per namespace, so a cluster of tens of thousands of
    working edges prints what is wrong in a screenful. ``all_edges`` lists
    every edge, as ``--all`` does.
    """
    by_ns: dict[str, list[Edge]] = defaultdict(list)
    for edge in report.edges:
        by_ns[edge.reference.namespace].append(edge)
    broken = {ns: sum(e.broken for e in edges) for ns, edges in by_ns.items()}
    sections: list[Section] = []
    counted: dict[str, list[Edge]] = {}
    for ns in sorted(by_ns, key=lambda ns: (-broken[ns], ns)):
        edges = by_ns[ns]
        listed = list(edges) if all_edges else [e for e in edges if needs_a_look(e)]
        if len(listed) < len(edges):
            counted[ns] = [e for e in edges if not needs_a_look(e)]
        if listed:  # only rows are sorted: an edge that is only counted needs no id
            listed.sort(key=lambda e: (DISPLAY_ORDER[e.status], e.id))
            title = f"namespace {ns} — {len(edges)} edge(s), {broken[ns]} broken"
            sections.append(Section(ns, title, tuple(listed)))
    return Layout(tuple(sections), counted)


def needs_a_look(edge: Edge) -> bool:
    return edge.broken or edge.status == "unverified"


def counted_heading(layout: Layout) -> str:
    return f"{layout.counted_total} other edge(s) by namespace (--all lists them)"


def edge_cells(edge: Edge) -> tuple[str, str, str, str, str]:
    """The text columns of a row: source, slot, host, target, fix / note (status and probe are drawn apart)."""
    ref = edge.reference
    target = edge.target or edge.resolves_to
    note = note_of(edge)
    if edge.probe is not None and edge.probe.error:
        note += f" [probe: {edge.probe.error}]"
    source = ref.workload.name if ref.workload.kind == "Deployment" else f"{ref.workload.name} ({ref.workload.kind})"
    if ref.container and ref.container != ref.workload.name:
        source += f" [{ref.container}]"
    return (
        source,
        ref.slot,
        ref.host if ref.port is None else f"{ref.host}:{ref.port}",
        f"{target.namespace}/{target.name}" if target else "-",
        note,
    )


def probe_seen(edge: Edge) -> tuple[str, str]:
    """What the probe pod saw, ✓ when it matches the prediction, and the style a terminal shows it in."""
    probe = edge.probe
    if probe is None:
        return "-", "dim"
    if probe.dns in ("error", "not-run"):
        return ("not run" if probe.dns == "not-run" else "error"), "yellow"
    seen = probe.dns if probe.dns != "ok" else f"connect {probe.connect}"
    if probe.health != "skipped":
        seen += f", health {probe.health}"
    if probe.agrees is None:
        return seen, "cyan"  # nothing to agree with: the static verdict was unverified
    mark, style = ("✓", "green") if probe.agrees else ("✗ disagrees", "bold yellow")
    return f"{seen} {mark}", style


def note_of(edge: Edge) -> str:
    """Broken: the fix first, then why. Working: only what is surprising (libc notes)."""
    if edge.broken:
        return f"→{edge.fix}\n{edge.detail}" if edge.fix else edge.detail  # no space: the arrow stays with the fix
    if edge.status == "unverified":
        return edge.detail
    if edge.status == "external":
        return ""
    return edge.detail[edge.detail.index(" (") + 2 : -1] if " (glibc" in edge.detail else ""


def closing_lines(report: Report) -> Iterator[tuple[str, str]]:
    """(line, style) after the tables: findings worth a look, gaps, and the summary line."""
    for finding in report.findings:
        if finding.severity != "info":
            yield f"{finding.severity}: {finding.message}", "red" if finding.severity == "error" else "yellow"
    for gap in report.gaps:
        yield f"gap: {gap.summary()}", "yellow"
    style = "bold red" if report.broken else ("bold green" if report.complete else "bold yellow")
    yield summary_line(report), style


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
