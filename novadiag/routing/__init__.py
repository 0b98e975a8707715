"""Edges from routing objects: Ingresses, Gateway API routes and Istio VirtualServices name Services too.

Every Service backend of an Ingress (:mod:`~novadiag.routing.ingress`), a
Gateway API route (:mod:`~novadiag.routing.gateway`) or an Istio
VirtualService (:mod:`~novadiag.routing.istio`) is an edge whose source is the
routing object itself, judged by :mod:`~novadiag.routing.backends`.
The edges flow through every report like any other. The controller that
follows them (an ingress controller, a Gateway's data plane) is found by
:mod:`~novadiag.routing.dataplane`, and probes check them from its namespace.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from novadiag.model import Edge, Finding
from novadiag.routing.backends import judge_backend
from novadiag.routing.gateway import GATEWAY_ROUTE_KINDS, GatewayRules, grant_refusal, route_backends
from novadiag.routing.ingress import ingress_backends
from novadiag.routing.istio import judge_virtual_services
from novadiag.snapshot import Snapshot
from novadiag.verdicts import VerdictContext

__all__ = ["judge_routes"]


def judge_routes(
    snapshot: Snapshot, ctx: VerdictContext, *, namespaces: Iterable[str] | None = None
) -> tuple[list[Edge], list[Finding]]:
    """One edge per Service backend of every Ingress and route (of ``namespaces`` when given), and findings."""
    wanted = None if namespaces is None else set(namespaces)
    findings: list[Finding] = []
    edges: list[Edge] = []
    for ingress in _in(snapshot.of("Ingress"), wanted):
        edges.extend(judge_backend(backend, ctx) for backend in ingress_backends(ingress, findings))
    rules = GatewayRules(snapshot)
    for kind in GATEWAY_ROUTE_KINDS:
        for route in _in(snapshot.of(kind), wanted):
            edges.extend(_route_edges(route, rules, ctx, findings))
    edges.extend(judge_virtual_services(snapshot, ctx, findings, wanted))
    return edges, findings


def _route_edges(route: Any, rules: GatewayRules, ctx: VerdictContext, findings: list[Finding]) -> list[Edge]:
    backends = list(route_backends(route, findings))
    if not backends:
        return []
    source = backends[0].source
    spec = route.get("spec") or {}
    detached = rules.attachment(source, spec if isinstance(spec, dict) else {})
    if detached is not None:
        findings.append(Finding("warning", "route-not-attached", f"{detached.detail}; fix: {detached.fix}", source))
    return [judge_backend(b, ctx, detached or grant_refusal(b, rules)) for b in backends]


def _in(objects: Iterable[Any], wanted: set[str] | None) -> Iterable[Any]:
    if wanted is None:
        return objects
    return [o for o in objects if (o.get("metadata") or {}).get("namespace") in wanted]
