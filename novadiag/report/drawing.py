"""The drawing graph of a Report: the boxes and arrows the SVG, DOT and Mermaid outputs draw.

The drawing shows *components*, not Kubernetes objects: a Service that
selects exactly one workload of its namespace is drawn as that workload
(``user-service`` once, not a Service box plus a Deployment box), which is
how people think about their system. A Service that selects none (the
``no-endpoints`` case) or several stays a box of its own. Edge tooltips keep
the host as written, so nothing is lost. An edge whose host reaches no
Service is drawn in the pseudo namespace of :func:`~novadiag.report.views.target_namespace`.

Which Service selects which workload comes from the report's dependency graph
(networkx), so this module is apart from :mod:`novadiag.report.views`: the
renderers that draw load networkx, the others do not.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass

from novadiag.graph import host_node, service_node, workload_node, worst
from novadiag.model import DISPLAY_ORDER, Edge, Status
from novadiag.report.core import Report
from novadiag.report.views import matrix_namespaces, target_namespace


@dataclass(frozen=True)
class Node:
    """One box in the drawing: a workload, an unmerged Service, or a host."""

    id: str
    label: str
    group: str
    kind: str


@dataclass(frozen=True)
class Link:
    """All report edges between two drawn nodes; drawn once, in the colour of the worst."""

    source: str
    target: str
    edges: tuple[Edge, ...]

    @property
    def status(self) -> Status:
        return worst(e.status for e in self.edges)

    @property
    def broken(self) -> bool:
        return any(e.broken for e in self.edges)


@dataclass(frozen=True)
class Drawing:
    groups: tuple[str, ...]
    nodes: tuple[Node, ...]
    links: tuple[Link, ...]

    def nodes_in(self, group: str) -> list[Node]:
        return [n for n in self.nodes if n.group == group]


def build_drawing(report: Report) -> Drawing:
    """The component graph of a report: what the SVG, DOT and Mermaid outputs draw."""
    alias = _service_aliases(report)
    nodes: dict[str, Node] = {}
    grouped: dict[tuple[str, str], list[Edge]] = {}
    for edge in report.edges:
        source = _add_node(nodes, report, workload_node(edge.source))
        meant = edge.target or edge.resolves_to
        if meant is not None:
            target_id = service_node(meant)
            target = _add_node(nodes, report, alias.get(target_id, target_id))
        else:
            target = _add_host(nodes, edge)
        grouped.setdefault((source.id, target.id), []).append(edge)
    links = tuple(Link(s, t, tuple(sorted(es, key=lambda e: e.id))) for (s, t), es in sorted(grouped.items()))
    ordered = tuple(sorted(nodes.values(), key=lambda n: (n.group, n.label, n.id)))
    groups = matrix_namespaces({(n.group, n.group): Counter() for n in ordered})
    return Drawing(groups=tuple(groups), nodes=ordered, links=links)


def namespace_drawing(drawing: Drawing, *, edges_per_link: int = 20) -> Drawing:
    """The drawing collapsed to one box per namespace, for reports too large to draw component by component.

    A link keeps its worst edges (broken first), at most ``edges_per_link``,
    as its tooltip: listing all of them made the page of a large cluster
    tens of megabytes of tooltips.
    """
    group_of = {n.id: n.group for n in drawing.nodes}
    nodes = tuple(Node(id=f"namespace:{g}", label=g, group=g, kind="Namespace") for g in drawing.groups)
    grouped: dict[tuple[str, str], list[Edge]] = {}
    for link in drawing.links:
        key = (f"namespace:{group_of[link.source]}", f"namespace:{group_of[link.target]}")
        grouped.setdefault(key, []).extend(link.edges)
    links = tuple(Link(s, t, _worst_edges(es, edges_per_link)) for (s, t), es in sorted(grouped.items()))
    return Drawing(groups=drawing.groups, nodes=nodes, links=links)


def _worst_edges(edges: list[Edge], n: int) -> tuple[Edge, ...]:
    """The ``n`` edges first in display order, kept in the link's own order within a status.

    Sorting by status alone: an edge's id is built on each read, and sorting
    every edge of a large cluster by it cost more than the rest of the drawing.
    """
    return tuple(heapq.nsmallest(n, edges, key=lambda e: DISPLAY_ORDER[e.status]))


def broken_part(drawing: Drawing, *, max_nodes: int) -> Drawing:
    """Only the links with broken edges and the nodes they join, at most ``max_nodes`` (most broken first)."""
    broken = sorted((link for link in drawing.links if link.broken), key=lambda ln: -sum(e.broken for e in ln.edges))
    kept_ids: set[str] = set()
    links = []
    for link in broken:
        wanted = kept_ids | {link.source, link.target}
        if len(wanted) > max_nodes:
            break
        kept_ids = wanted
        links.append(link)
    nodes = tuple(n for n in drawing.nodes if n.id in kept_ids)
    groups = tuple(g for g in drawing.groups if any(n.group == g for n in nodes))
    return Drawing(groups=groups, nodes=nodes, links=tuple(links))


def _service_aliases(report: Report) -> dict[str, str]:
    """Service node → the one workload of its namespace it selects."""
    graph = report.graph
    alias: dict[str, str] = {}
    for node, data in graph.nodes(data=True):
        if data.get("type") != "service":
            continue
        selected = [
            v
            for v in graph.successors(node)
            if graph.edges[node, v].get("kind") == "selects" and graph.nodes[v].get("namespace") == data["namespace"]
        ]
        if len(selected) == 1:
            alias[node] = selected[0]
    return alias


def _add_node(nodes: dict[str, Node], report: Report, node_id: str) -> Node:
    if node_id in nodes:
        return nodes[node_id]
    data = report.graph.nodes[node_id] if node_id in report.graph else _parse_node_id(node_id)
    kind = str(data.get("kind", ""))
    nodes[node_id] = Node(id=node_id, label=str(data["name"]), group=str(data.get("namespace") or "default"), kind=kind)
    return nodes[node_id]


def _parse_node_id(node_id: str) -> dict[str, str]:
    """Node data from the id alone, for reports built without a graph."""
    prefix, _, rest = node_id.partition(":")
    if prefix == "workload":
        namespace, kind, name = rest.split("/", 2)
        return {"namespace": namespace, "kind": kind, "name": name}
    namespace, name = rest.split("/", 1)
    return {"namespace": namespace, "kind": "Service", "name": name}


def _add_host(nodes: dict[str, Node], edge: Edge) -> Node:
    group = target_namespace(edge)
    node_id = f"{host_node(edge.reference.host)}@{group}"
    if node_id not in nodes:
        nodes[node_id] = Node(id=node_id, label=edge.reference.host, group=group, kind="Host")
    return nodes[node_id]
