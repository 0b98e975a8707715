"""Dependency order: what must run before what, with cycles moved as one unit.

The audit's graph says who references whom; a migration must bring up what a
workload needs before the workload itself (postgres and redis before the
services using them, the gateway last), or the new copy starts against
nothing and crash-loops exactly like the old one. A dependency cycle (A calls B,
B calls A) has no such order: its strongly connected component moves as one
unit, created together and waited for together, and the plan names it.

Ties are broken by depth (how long the chain of dependencies below a workload
is), then by name, so the order is deterministic and reads bottom-up; gateways
go last among what is free to go, because switching them is what moves the
traffic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import networkx as nx

from novadiag.model import ObjectRef


def dependency_order(
    nodes: Iterable[ObjectRef],
    needs: Mapping[ObjectRef, Iterable[ObjectRef]],
    *,
    last: Iterable[ObjectRef] = (),
) -> list[tuple[tuple[ObjectRef, ...], bool]]:
    """Units in dependency-first order: (members, is_cycle); self-references are ignored."""
    graph = nx.DiGraph()
    members = sorted(set(nodes))
    graph.add_nodes_from(members)
    for node, deps in needs.items():
        for dep in deps:
            if node in graph and dep in graph and dep != node:
                graph.add_edge(dep, node)
    condensed = nx.condensation(graph)
    depth = _depths(condensed)
    late = set(last)

    def key(c: int) -> tuple[int, int, str]:
        units = condensed.nodes[c]["members"]
        return (int(any(m in late for m in units)), depth[c], min(str(m) for m in units))

    order = []
    for c in nx.lexicographical_topological_sort(condensed, key=key):
        units = tuple(sorted(condensed.nodes[c]["members"]))
        order.append((units, len(units) > 1))
    return order


def _depths(dag: nx.DiGraph) -> dict[int, int]:
    """Length of the longest chain of dependencies below each node (0 for nodes that need nothing)."""
    depth: dict[int, int] = {}
    for node in nx.topological_sort(dag):
        depth[node] = 1 + max((depth[p] for p in dag.predecessors(node)), default=-1)
    return depth
