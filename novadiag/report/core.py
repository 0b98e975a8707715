"""The Report value: what one audit found."""

from __future__ import annotations

import importlib
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from novadiag.errors import BrokenEdgesError
from novadiag.model import BROKEN_STATUSES, STATUSES, Edge, Finding, Gap, SourceInfo
from novadiag.snapshot import paused_gc
from novadiag.sourcelines import SourceLine, SourceLines, locate
from novadiag.visibility import Visibility

if TYPE_CHECKING:
    import networkx as nx
    import pandas as pd

    from novadiag.index import ClusterIndex
    from novadiag.snapshot import Snapshot

AUDIT_SCHEMA = "novadiag.audit/v1"

# The renderers import this module for the Report type, so the Report's convenience
# methods reach them by name, imported on first use: the dependency runs from the
# renderers down to the value, and pandas, rich or the SVG layout load only for the
# view asked for.
_VIEWS = {
    "to_frame": "novadiag.report.frame:to_frame",
    "namespace_matrix": "novadiag.report.frame:namespace_matrix",
    "draw": "novadiag.report.svg:draw_report",
    "repr_html": "novadiag.report.html:report_repr_html",
    "render": "novadiag.report.render:render",
}


def _view(name: str) -> Callable[..., Any]:
    module, attr = _VIEWS[name].split(":")
    return cast("Callable[..., Any]", getattr(importlib.import_module(module), attr))


class Figure:
    """An SVG picture that shows itself in Jupyter (``_repr_svg_``) and saves to a file.

    Returned by ``Report.draw()``. One type whatever is installed: Jupyter's
    display protocol needs only ``_repr_svg_``, so neither IPython nor
    matplotlib is a dependency.
    """

    def __init__(self, svg: str) -> None:
        self.svg = svg

    def _repr_svg_(self) -> str:
        return self.svg

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the SVG document (open it in any browser)."""
        Path(path).write_text(self.svg, encoding="utf-8")

    def __str__(self) -> str:
        return self.svg

    def __repr__(self) -> str:
        return f"<novadiag Figure: SVG, {len(self.svg)} characters>"


@dataclass(frozen=True)
class Report:
    """The result of one audit: one verdict per edge, findings, and what was not readable.

    >>> report = novadiag.audit(manifests=[NOVA])           # doctest: +SKIP
    >>> [e.reference.host for e in report.broken]           # doctest: +SKIP
    ['auth-service', 'content-service', 'feed-service', 'media-service']
    """

    source: SourceInfo
    edges: tuple[Edge, ...]
    findings: tuple[Finding, ...] = ()
    gaps: tuple[Gap, ...] = ()
    snapshot: Snapshot | None = field(default=None, compare=False, repr=False)
    probes: dict[str, Any] | None = field(default=None, compare=False)
    index: ClusterIndex | None = field(default=None, compare=False, repr=False)
    """The cluster the edges were judged against: what :attr:`graph` draws its nodes from."""
    whole: Report | None = field(default=None, compare=False, repr=False)
    """Set on a report that lists only some edges (:meth:`broken_only`): the audit whose counts it keeps."""

    @cached_property
    def graph(self) -> nx.DiGraph:
        """The dependency graph (:func:`novadiag.graph.build_graph`), built on first use.

        Only drawings (HTML, SVG, dot, Mermaid) and notebook users read it, so a
        table, JSON or a CI check does not pay for it (at the benchmark's size L:
        2 s and 126 MB). Built with the collector paused, as the audit runs: its
        341,305 edges on top of the audit's heap cost 8 s with it running. A
        report without an index has an empty graph.
        """
        # deferred: networkx takes longer to import than a small audit takes to run; only drawings need it
        import networkx as nx

        from novadiag.graph import build_graph

        if self.index is None:
            return nx.DiGraph()
        with paused_gc():
            return build_graph(self.edges, self.index)

    @property
    def broken(self) -> tuple[Edge, ...]:
        """Edges whose status is broken, in report order."""
        return tuple(e for e in self.edges if e.broken)

    @property
    def unverified(self) -> tuple[Edge, ...]:
        """Edges whose verdict rests on objects the audit could not read (see :mod:`novadiag.visibility`).

        A report listing only broken edges (:meth:`broken_only`) gives the whole audit's.
        """
        if self.whole is not None:
            return self.whole.unverified
        return tuple(e for e in self.edges if e.status == "unverified")

    @cached_property
    def nothing_read(self) -> str | None:
        """Why the audit saw nothing at all (no workload or no Service could be read), or None."""
        if self.whole is not None:
            return self.whole.nothing_read
        s = self.summary_counts()
        return Visibility.of(self.gaps).nothing_read(workloads=s["workloads"], services=s["services"])

    @property
    def complete(self) -> bool:
        """False when what could not be read decides verdicts: unverified edges, or nothing read at all.

        Gaps that no verdict depends on (Secrets of an unreferenced namespace)
        leave an audit complete; they are still listed in :attr:`gaps`.
        """
        if self.whole is not None:
            return self.whole.complete
        return self.nothing_read is None and not self.unverified

    @property
    def ok(self) -> bool:
        """True when no edge is broken and the audit is complete: a blind audit is never OK.

        :meth:`raise_for_broken` is about broken edges only.
        """
        return self.complete and not any(e.broken for e in self.edges)

    @property
    def cross_namespace(self) -> tuple[Edge, ...]:
        return tuple(e for e in self.edges if e.cross_namespace)

    def edge(self, edge_id: str) -> Edge:
        for e in self.edges:
            if e.id == edge_id:
                return e
        raise KeyError(edge_id)

    def raise_for_broken(self) -> None:
        """Raise :class:`~novadiag.errors.BrokenEdgesError` when any edge is broken."""
        broken = self.broken
        if broken:
            first = broken[0]
            raise BrokenEdgesError(
                f"{len(broken)} broken edge(s); first: {first.id}: {first.status}: {first.detail}",
                edges=broken,
            )

    def namespace_graph(self) -> nx.DiGraph:
        """Namespaces as nodes, edges with counts by status (``cross_namespace`` marked)."""
        from novadiag.graph import namespace_graph  # deferred: networkx, as in graph

        return namespace_graph(self.graph)

    def summary_counts(self) -> dict[str, int]:
        """What was read: namespaces, workloads and Services."""
        namespaces = (
            self.snapshot.namespaces if self.snapshot is not None else {e.reference.namespace for e in self.edges}
        )
        workloads = len(self.snapshot.workloads) if self.snapshot is not None else len({e.source for e in self.edges})
        services = len(self.snapshot.of("Service")) if self.snapshot is not None else 0
        return {"namespaces": len(namespaces), "workloads": workloads, "services": services}

    def broken_only(self) -> Report:
        """This report listing only its broken edges; the summary still counts every edge.

        For reports of large clusters where the working edges are noise: the
        JSON ``summary`` keeps the whole audit's counts and says ``listed``
        (how many edges the ``edges`` array holds) and ``only: "broken"``.
        """
        whole = self.whole or self
        return Report(
            source=self.source,
            edges=whole.broken,
            findings=self.findings,
            gaps=self.gaps,
            snapshot=self.snapshot,
            probes=self.probes,
            index=self.index,
            whole=whole,
        )

    def source_line(self, edge: Edge) -> SourceLine | None:
        """The manifest file and line where the edge's reference was written; None unless audited from YAML."""
        lines = self._source_lines
        return None if lines is None else locate(lines, edge)

    @cached_property
    def _source_lines(self) -> SourceLines | None:
        if self.snapshot is None:
            return None
        lines: SourceLines | None = self.snapshot.extra.get("source_lines")
        return lines or None

    def edge_dict(self, edge: Edge) -> dict[str, Any]:
        """One edge of the JSON contract, with ``source.file``/``source.line`` when it came from a manifest."""
        doc = edge.to_dict()
        where = self.source_line(edge)
        if where is not None:
            doc["source"]["file"] = where.file
            doc["source"]["line"] = where.line
        return doc

    def edge_dicts(self) -> Iterator[dict[str, Any]]:
        """The contract's edges one at a time, for writers that stream them."""
        return map(self.edge_dict, self.edges)

    def summary(self) -> dict[str, Any]:
        if self.whole is not None:
            return {**self.whole.summary(), "listed": len(self.edges), "only": "broken"}
        by_status = Counter(e.status for e in self.edges)
        return {
            **self.summary_counts(),
            "edges": len(self.edges),
            "broken": sum(n for s, n in by_status.items() if s in BROKEN_STATUSES),
            "unverified": by_status["unverified"],
            "complete": self.complete,
            "cross_namespace": sum(1 for e in self.edges if e.cross_namespace),
            "by_status": {s: by_status[s] for s in STATUSES if by_status[s]},
        }

    def to_dict(self, *, edges: bool = True) -> dict[str, Any]:
        """The ``novadiag.audit/v1`` document (see docs/report-contract.md).

        ``edges=False`` leaves the ``edges`` key out, for writers that stream
        them (:mod:`novadiag.report.jsonstream`).
        """
        doc: dict[str, Any] = {
            "schema": AUDIT_SCHEMA,
            "source": self.source.to_dict(),
            "summary": self.summary(),
        }
        if edges:
            doc["edges"] = list(self.edge_dicts())
        doc |= {
            "findings": [f.to_dict() for f in self.findings],
            "gaps": [g.to_dict() for g in self.gaps],
        }
        if self.probes is not None:
            doc["probes"] = self.probes
        return doc

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    def to_frame(self) -> pd.DataFrame:
        """One row per edge with typed columns (see :mod:`novadiag.report.frame`); needs pandas."""
        return cast("pd.DataFrame", _view("to_frame")(self))

    def namespace_matrix(self, *, status: str | None = None) -> pd.DataFrame:
        """Edge counts by (source, target) namespace and status; ``status=...`` gives the square form."""
        return cast("pd.DataFrame", _view("namespace_matrix")(self, status=status))

    def draw(self) -> Figure:
        """The dependency graph as an SVG figure: namespaces as boxes, broken edges red."""
        return cast(Figure, _view("draw")(self))

    def _repr_html_(self) -> str:
        return str(_view("repr_html")(self))

    def render(self, fmt: str = "table", **options: Any) -> str:
        """The report in one of the formats of :data:`novadiag.report.render.FORMATS`."""
        return str(_view("render")(self, fmt, **options))
