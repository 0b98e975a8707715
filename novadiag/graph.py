"""The dependency graph: workloads and Services as nodes, references as edges.

A ``networkx.DiGraph`` so users get the whole networkx toolbox (cycles,
topological order, centrality) in a notebook. Node ids are strings:
``workload:<ns>/<Kind>/<name>``, ``service:<ns>/<name>``, and ``host:<name>``
for names that reach nothing known (unknown targets, external hosts).

Several references can join the same pair of nodes (two env vars of one
workload naming one Service); a DiGraph holds one edge per pair, so each edge
carries the list of :class:`~novadiag.model.Edge` verdicts under ``edges`` and
the worst status under ``status``. Services also point at the workloads they
select (``kind="selects"``), which is what makes "dependencies first" a plain
topological order for the planner.
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from novadiag.index import ClusterIndex
from novadiag.model import DISPLAY_ORDER, Edge, ObjectRef, Status


def workload_node(ref: ObjectRef) -> str:
    return f"workload:{ref.namespace}/{ref.kind}/{ref.name}"


def service_node(ref: ObjectRef) -> str:
    return f"service:{ref.namespace}/{ref.name}"


def host_node(host: str) -> str:
    return f"host:{host}"


def worst(statuses: Iterable[Status]) -> Status:
    """The status an aggregate graph edge shows: the first in display order (what a reader fixes first)."""
    return min(statuses, key=DISPLAY_ORDER.__getitem__, default="ok")


def build_graph(edges: Iterable[Edge], index: ClusterIndex) -> nx.DiGraph:
    """Workload → Service reference edges plus Service → workload ``selects`` edges."""
    graph = nx.DiGraph()
    for workloads in index.workloads_by_ns.values():
        for w in workloads:
            graph.add_node(
                workload_node(w.ref), type="workload", kind=w.ref.kind, namespace=w.namespace, name=w.ref.name
            )
    for svc in index.services.values():
        node = service_node(svc.ref)
        graph.add_node(node, type="service", kind="Service", namespace=svc.namespace, name=svc.name)
        for w in index.selected_workloads(svc):
            graph.add_edge(node, workload_node(w.ref), kind="selects")
    for edge in edges:
        _add_reference(graph, edge)
    return graph


def _add_reference(graph: nx.DiGraph, edge: Edge) -> None:
    source = workload_node(edge.source)
    if source not in graph:  # a routing object (Ingress, HTTPRoute...): a source that is not a workload
        ref = edge.source
        graph.add_node(source, type="route", kind=ref.kind, namespace=ref.namespace, name=ref.name)
    meant = edge.target or edge.resolves_to
    if meant is not None:
        target = service_node(meant)
    else:
        target = host_node(edge.reference.host)
        graph.add_node(target, type="host", kind="Host", namespace=None, name=edge.reference.host)
    data = graph.get_edge_data(source, target)
    if data is None:
        graph.add_edge(
            source, target, kind="references", edges=[edge], status=edge.status, cross_namespace=edge.cross_namespace
        )
    else:
        data["edges"].append(edge)
        data["status"] = worst((data["status"], edge.status))  # the worst so far, without a rescan of the list
        data["cross_namespace"] = data["cross_namespace"] or edge.cross_namespace


def namespace_graph(graph: nx.DiGraph) -> nx.DiGraph:
    """Namespaces as nodes; an edge per pair with reference counts by status."""
    view = nx.DiGraph()
    for _node, data in graph.nodes(data=True):
        if data.get("namespace"):
            view.add_node(data["namespace"])
    for u, v, data in graph.edges(data=True):
        if data.get("kind") != "references":
            continue
        src_ns = graph.nodes[u].get("namespace")
        dst_ns = graph.nodes[v].get("namespace")
        if not src_ns or not dst_ns:
            continue
        if not view.has_edge(src_ns, dst_ns):
            view.add_edge(src_ns, dst_ns, counts={}, edges=0, broken=0, cross_namespace=src_ns != dst_ns)
        agg = view.edges[src_ns, dst_ns]
        for edge in data["edges"]:
            agg["counts"][edge.status] = agg["counts"].get(edge.status, 0) + 1
            agg["edges"] += 1
            agg["broken"] += int(edge.broken)
    return view
