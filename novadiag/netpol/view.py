"""The ``novadiag policies`` view: NetworkPolicies tied to the dependency graph.

The audit says which edges a policy blocks. Before changing policies — adding a
default deny, deleting a stale allow, consolidating namespaces — the question
is the reverse: for each policy, which workloads does it select and which graph
edges does it let through or stop? This view answers it per namespace, from the
same verdict machinery (:mod:`novadiag.netpol.evaluation`), so it never disagrees with
the audit. Edges whose name does not resolve yet are judged against the Service
they mean: fixing the name should not run into a policy next.

It also lists the workloads no policy selects (an ``info`` finding per
workload, or one per namespace without any policy). That finding lives here and
not in the audit: on most clusters it would be every pod, and drown the report.

``allows`` counts a policy when one of its rules admits the edge's connection;
``denies`` when it selects an endpoint of a denied direction (a denial has no
single author: every policy isolating the pod shares it). DNS lookups count too:
a policy that isolates egress without admitting DNS denies every edge of the pods
it selects.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from novadiag.addresses import is_ip_literal
from novadiag.errors import ConfigError
from novadiag.index import ClusterIndex, build_index
from novadiag.model import Edge, Finding, ObjectRef
from novadiag.netpol.evaluation import (
    Decision,
    PolicyIndex,
    build_policy_index,
    evaluate_dns,
    evaluate_external,
    evaluate_service,
)
from novadiag.netpol.policy import DIRECTIONS, Direction
from novadiag.outputs import visible
from novadiag.report.core import Report
from novadiag.report.plaintable import aligned_lines
from novadiag.resolver import resolver_config
from novadiag.targets import intended_target
from novadiag.workloads import Workload

POLICIES_SCHEMA = "novadiag.policies/v1"
POLICY_FORMATS = ("table", "json")


@dataclass(frozen=True)
class PolicyEntry:
    """One NetworkPolicy: what it selects and the graph edges it allows or denies."""

    ref: ObjectRef
    types: tuple[Direction, ...]
    selects: tuple[ObjectRef, ...]
    allows: tuple[str, ...] = ()
    denies: tuple[str, ...] = ()
    dns_for: tuple[ObjectRef, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.ref.name,
            "namespace": self.ref.namespace,
            "policy_types": [t.capitalize() for t in self.types],
            "selects": [w.to_dict() for w in self.selects],
            "allows": list(self.allows),
            "denies": list(self.denies),
            "allows_dns_for": [w.to_dict() for w in self.dns_for],
        }


@dataclass(frozen=True)
class NamespacePolicies:
    namespace: str
    policies: tuple[PolicyEntry, ...]
    unprotected: tuple[ObjectRef, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "policies": [p.to_dict() for p in self.policies],
            "unprotected": [w.to_dict() for w in self.unprotected],
        }


@dataclass(frozen=True)
class PolicyView:
    """The whole view; ``edges`` maps edge ids to a short label for display."""

    namespaces: tuple[NamespacePolicies, ...]
    findings: tuple[Finding, ...]
    edges: dict[str, str]

    def namespace(self, name: str) -> NamespacePolicies:
        for ns in self.namespaces:
            if ns.namespace == name:
                return ns
        raise KeyError(name)

    def policy(self, namespace: str, name: str) -> PolicyEntry:
        for entry in self.namespace(namespace).policies:
            if entry.ref.name == name:
                return entry
        raise KeyError(f"{namespace}/{name}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": POLICIES_SCHEMA,
            "namespaces": [ns.to_dict() for ns in self.namespaces],
            "findings": [f.to_dict() for f in self.findings],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def policy_view(report: Report, *, namespaces: Sequence[str] | None = None) -> PolicyView:
    """The policies view of an audited snapshot (``report.snapshot`` is required)."""
    if report.snapshot is None:
        raise ConfigError("the policies view needs the report's snapshot")
    snap = report.snapshot
    index = build_index(snap, cluster_domain=report.source.cluster_domain)
    policies = build_policy_index(snap, index)
    workloads = {w.ref: w for w in snap.workloads}
    allows: dict[ObjectRef, list[str]] = defaultdict(list)
    denies: dict[ObjectRef, list[str]] = defaultdict(list)
    for edge in report.edges:
        workload = workloads.get(edge.source)
        decision = None if workload is None else _decision(edge, workload, index, policies)
        if decision is not None:
            _attribute(edge.id, decision, allows, denies)
    dns_for: dict[ObjectRef, list[ObjectRef]] = defaultdict(list)
    for workload in snap.workloads:
        if _uses_cluster_dns(workload, index):
            for ref in evaluate_dns(policies, policies.endpoint(workload)).egress.allowing:
                dns_for[ref].append(workload.ref)
    wanted = set(namespaces or ()) or set(snap.namespaces)
    attributed = _Attributed(allows, denies, dns_for)
    entries = [_namespace(ns, policies, index.workloads_by_ns.get(ns, []), attributed) for ns in sorted(wanted)]
    shown = tuple(e for e in entries if e.policies or e.unprotected)
    return PolicyView(shown, tuple(_findings(shown, policies)), {e.id: _edge_label(e) for e in report.edges})


@dataclass(frozen=True)
class _Attributed:
    allows: dict[ObjectRef, list[str]]
    denies: dict[ObjectRef, list[str]]
    dns_for: dict[ObjectRef, list[ObjectRef]]


def _uses_cluster_dns(workload: Workload, index: ClusterIndex) -> bool:
    return resolver_config(workload.pod_spec, workload.namespace, index.cluster_domain).uses_cluster_dns


def _decision(edge: Edge, workload: Workload, index: ClusterIndex, policies: PolicyIndex) -> Decision | None:
    source = policies.endpoint(workload)
    ref = edge.reference
    if not is_ip_literal(ref.host) and _uses_cluster_dns(workload, index):
        dns = evaluate_dns(policies, source)
        if not dns.allowed:
            return dns
    meant = edge.resolves_to or edge.target
    if meant is None:
        return evaluate_external(policies, source, ref.host, port=ref.port) if edge.status != "unknown-target" else None
    svc = index.service(meant.namespace or "default", meant.name)
    if svc is None:
        return None
    if svc.type == "ExternalName":
        return evaluate_external(policies, source, svc.external_name or svc.name, port=ref.port)
    hostname = intended_target(ref.host, ref.namespace, index).hostname
    return evaluate_service(policies, source, svc, port=ref.port, hostname=hostname)


def _attribute(
    edge_id: str, decision: Decision, allows: dict[ObjectRef, list[str]], denies: dict[ObjectRef, list[str]]
) -> None:
    for side in (decision.egress, decision.ingress):
        if side is None:
            continue
        if side.allowed and not decision.dns:
            for ref in side.allowing:
                allows[ref].append(edge_id)
        elif not side.allowed:
            for ref in side.selecting:
                denies[ref].append(edge_id)


def _namespace(
    ns: str,
    policies: PolicyIndex,
    workloads: Iterable[Workload],
    attributed: _Attributed,
) -> NamespacePolicies:
    selected: dict[ObjectRef, list[ObjectRef]] = defaultdict(list)
    unprotected: list[ObjectRef] = []
    for workload in workloads:
        pod = policies.endpoint(workload)
        chosen = {p.ref for d in DIRECTIONS for p in policies.selecting(pod, d)}
        for ref in chosen:
            selected[ref].append(workload.ref)
        if not chosen:
            unprotected.append(workload.ref)
    entries = tuple(
        PolicyEntry(
            p.ref,
            tuple(d for d in DIRECTIONS if d in p.types),
            tuple(sorted(selected.get(p.ref, ()))),
            tuple(dict.fromkeys(attributed.allows.get(p.ref, ()))),
            tuple(dict.fromkeys(attributed.denies.get(p.ref, ()))),
            tuple(sorted(attributed.dns_for.get(p.ref, ()))),
        )
        for p in sorted(policies.by_namespace.get(ns, ()), key=lambda p: p.ref.name)
    )
    return NamespacePolicies(ns, entries, tuple(sorted(unprotected)))


def _findings(namespaces: Iterable[NamespacePolicies], policies: PolicyIndex) -> list[Finding]:
    out = []
    for ns in namespaces:
        if not ns.unprotected:
            continue
        if not policies.by_namespace.get(ns.namespace):
            message = (
                f"namespace {ns.namespace} has no NetworkPolicy: its {len(ns.unprotected)} workload(s) "
                "accept and send any traffic"
            )
            out.append(Finding("info", "no-network-policy", message, ObjectRef("Namespace", None, ns.namespace)))
            continue
        for ref in ns.unprotected:
            message = f"{ref}: no NetworkPolicy selects its pods; they accept and send any traffic"
            out.append(Finding("info", "no-network-policy", message, ref))
    return out


def _edge_label(edge: Edge) -> str:
    port = "" if edge.reference.port is None else f":{edge.reference.port}"
    return f"{edge.source.namespace}/{edge.source.name} → {edge.reference.host}{port}"


# -- rendering -------------------------------------------------------------------------------------

POLICY_COLUMNS = ("policy", "types", "selects", "allows", "denies")
"""The columns of a namespace's table, on a terminal (rich) and in plain text alike."""

NONE_CELL = "—"
EDGES_PER_CELL = 6
"""Edges an ``allows``/``denies`` cell lists before ``… N more``: the JSON output has them all."""


def render_policies(view: PolicyView, fmt: str = "table") -> str:
    """The view as ``table`` (plain aligned text, what ``-o`` writes) or ``json``."""
    if fmt == "json":
        return view.to_json() + "\n"
    if fmt != "table":
        raise ConfigError(f"unknown policies format {fmt!r}; choose one of {', '.join(POLICY_FORMATS)}")
    return "".join(plain_policy_lines(view))


def plain_policy_lines(view: PolicyView) -> Iterator[str]:
    """The table as plain aligned text, one line at a time: for a file, a pipe or a CI log.

    The same titles, rows and closing line as rich's table on a terminal
    (:func:`novadiag.cli.terminal.print_policies`), without rich: a pipe gets
    text that ``grep`` and ``less -S`` read, and no box drawing. Every cell
    passes through :func:`novadiag.outputs.visible` (edge labels hold hosts
    written in env values).
    """
    for ns in view.namespaces:
        yield visible(namespace_title(ns)) + "\n"
        if ns.policies:
            header = [[column] for column in POLICY_COLUMNS]
            rows = [[visible(cell).split("\n") for cell in row] for row in policy_rows(ns, view.edges)]
            yield from aligned_lines([header, *rows])
        unselected = unselected_line(ns)
        if unselected is not None:
            yield visible(unselected) + "\n"
        yield "\n"
    yield closing_line(view) + "\n"


def namespace_title(ns: NamespacePolicies) -> str:
    """The line above a namespace's table, or the whole entry of a namespace without policies."""
    if not ns.policies:
        return f"namespace {ns.namespace} — no NetworkPolicy"
    return f"namespace {ns.namespace} — {len(ns.policies)} NetworkPolicies"


def unselected_line(ns: NamespacePolicies) -> str | None:
    """The workloads no policy of a namespace with policies selects (the title says it when there are none)."""
    if not ns.unprotected or not ns.policies:
        return None
    return "  no policy selects: " + ", ".join(f"{w.kind} {w.name}" for w in ns.unprotected)


def closing_line(view: PolicyView) -> str:
    total = sum(len(ns.policies) for ns in view.namespaces)
    bare = sum(len(ns.unprotected) for ns in view.namespaces)
    return f"{total} NetworkPolicies in {len(view.namespaces)} namespace(s); {bare} workload(s) unselected"


def policy_rows(ns: NamespacePolicies, labels: dict[str, str]) -> list[tuple[str, str, str, str, str]]:
    """One row per policy, in :data:`POLICY_COLUMNS` order; a cell of several edges holds one per line."""
    return [
        (
            entry.ref.name,
            ",".join(t.capitalize() for t in entry.types),
            ", ".join(w.name for w in entry.selects) or NONE_CELL,
            _edges(entry.allows, labels, dns=len(entry.dns_for)),
            _edges(entry.denies, labels),
        )
        for entry in ns.policies
    ]


def _edges(ids: Sequence[str], labels: dict[str, str], *, dns: int = 0) -> str:
    lines = [f"DNS lookups of {dns} workload(s)"] if dns else []
    if not ids and not lines:
        return NONE_CELL
    lines += [labels.get(i, i) for i in ids[:EDGES_PER_CELL]]
    if len(ids) > EDGES_PER_CELL:
        lines.append(f"… {len(ids) - EDGES_PER_CELL} more")
    return "\n".join(lines)
