"""Least-privilege NetworkPolicies generated from the verified dependency graph.

The audit knows which edges work. This module turns the ``ok`` edges into
NetworkPolicies that admit exactly that traffic, and proves it with the same
evaluation the audit uses (:mod:`novadiag.netpol.evaluation`) before anything
is printed. Per audited namespace:

- ``novadiag-default-deny``: every pod isolated for ingress and egress;
- ``novadiag-allow-dns``: egress to the cluster DNS pods on 53/UDP and 53/TCP;
- ``novadiag-egress-<workload>``: the source pods (podSelector: their pod template
  labels) to each target's pods (namespaceSelector on ``kubernetes.io/metadata.name``
  plus the Service's selector) on the port the target pod sees (a named
  ``targetPort`` resolved against the pod's container ports);
- ``novadiag-ingress-<workload>``: the matching rule on the target's side.

An ``ok`` edge from a routing object (Ingress, Gateway API route, VirtualService)
has no pod of its own to start from: the traffic comes from the ingress
controller or the Gateway's data plane. Its backend's pods get an ingress rule
admitting every pod of the controller's namespace on the port the backend pod
sees (the controller as
:func:`~novadiag.routing.dataplane.find_controller` finds it: ``ingress_from``,
an IngressClass's recognised controller pods, a route's parent Gateways and
their labelled data planes); without one, the edge is noted as a backend its
controller could not reach. When the controller's namespace is audited, its
default deny would cut the controller's own egress: the controller's workloads
(every workload there when none is recognised) get egress rules to the backend
pods, proven like the rest.

Rules are merged without widening: one policy per workload and direction,
peers with the same ports share a rule (a rule admits every peer on every
port it lists, so only identical port sets merge). Each policy carries the
edge ids its rules admit in the ``novadiag.io/edges`` annotation.

The proof (:func:`prove`) judges the generated set as if it were the only one
in the cluster: every ``ok`` edge must stay allowed (DNS first, then the
connection, as the audit judges it), and every other (source pod, target pod,
port) among the audited namespaces must be denied. Pod labels that cannot
tell two workloads apart make that impossible; the generator then refuses
with the pair it cannot deny rather than print a wider policy. Routing edges are
judged from a pod of each controller namespace: admitted to the backends on
their ports, denied everywhere else.

Never admitted: ``external`` edges (egress to outside the cluster is dropped
by the default deny), broken and ``unverified`` edges, edges whose source is
not a pod-running workload and not a routing object, routing edges whose
controller namespace is unknown, and ``ok`` edges to an ExternalName Service
(outside traffic again).
Each skipped edge is named in ``notes``. ``kube-system`` gets no policy: it
holds the DNS pods every generated policy relies on.

With ``include_planned`` the edges a plan fixes are admitted too, where their
target Service lives today; a consolidation's own policy rewrite then carries
the generated policies along with the workloads.
"""

from __future__ import annotations

import difflib
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml

from novadiag.errors import ConfigError, PolicyProofError
from novadiag.index import ClusterIndex, ServiceInfo, build_index
from novadiag.model import WORKLOAD_KINDS, Edge, ObjectRef
from novadiag.netpol.evaluation import (
    PolicyIndex,
    build_policy_index,
    evaluate,
    evaluate_dns,
    evaluate_service,
    pod_traffic,
)
from novadiag.netpol.policy import DNS_NAMESPACE, DNS_PORT, Endpoint, Peer
from novadiag.report.core import Report
from novadiag.resolver import resolver_config
from novadiag.routing.dataplane import Controller, find_controller, service_port
from novadiag.selector import NAME_LABEL
from novadiag.snapshot import Snapshot
from novadiag.targets import intended_target
from novadiag.workloads import Workload

EDGES_ANNOTATION = "novadiag.io/edges"
GENERATED_LABEL = "novadiag.io/generated"
DEFAULT_DENY = "novadiag-default-deny"
ALLOW_DNS = "novadiag-allow-dns"

Port = tuple[int, str]
"""(port the destination pod sees, protocol)."""
Pair = tuple[Workload, Workload, int, str]
"""(source workload, target workload, port, protocol): one connection the policies decide."""


class PlannedFix(Protocol):
    """What the generator reads of a plan's fix (``novadiag.planning.EdgeFix``)."""

    @property
    def edge(self) -> str: ...

    @property
    def fixed(self) -> bool: ...


class PlanVerification(Protocol):
    """What the generator reads of a plan's verification: the edges its re-audit found fixed."""

    @property
    def fixed(self) -> tuple[str, ...]: ...

    @property
    def still_broken(self) -> tuple[str, ...]: ...


class FixingPlan(Protocol):
    """What the generator reads of a ``novadiag.Plan``.

    A Protocol, not the class: the planner imports this package's rewrite, so this
    package cannot import the planner back.
    """

    @property
    def fixes(self) -> Sequence[PlannedFix]: ...

    @property
    def verification(self) -> PlanVerification | None: ...


@dataclass(frozen=True)
class Allowance:
    """One connection an edge needs: source pods to one target workload's pods on one port."""

    edge: str
    source: Workload
    target: Workload
    service: ServiceInfo
    port: int
    protocol: str
    service_port: int | None = None
    hostname: str | None = None


@dataclass(frozen=True)
class ControllerAllowance:
    """One connection a routing edge needs: any pod of the controller's namespace to one backend's pods."""

    edge: str
    controller: str
    target: Workload
    port: int
    protocol: str
    sources: tuple[Workload, ...] = ()
    """The controller's workloads in ``controller`` (every workload there when none is known):
    under that namespace's default deny, their egress to the backend is admitted too."""


@dataclass(frozen=True)
class GeneratedPolicies:
    """The generated NetworkPolicies, the ones they replace, and what was left out and why.

    ``policies`` and ``existing`` are raw manifests sorted by (namespace, name);
    ``edges`` the ids the policies admit; ``notes`` one line per edge or source
    left out.
    """

    namespaces: tuple[str, ...]
    policies: tuple[dict[str, Any], ...]
    existing: tuple[dict[str, Any], ...] = ()
    edges: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def by_namespace(self) -> dict[str, tuple[dict[str, Any], ...]]:
        """Generated manifests per namespace."""
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for policy in self.policies:
            out[policy["metadata"]["namespace"]].append(policy)
        return {ns: tuple(ps) for ns, ps in out.items()}

    def to_yaml(self) -> str:
        """Every policy as one YAML document, preceded by a comment naming the edges it admits."""
        return "".join(f"---\n{_comment(p)}{_dump(p)}" for p in self.policies)

    def diff(self) -> str:
        """A unified diff from the audited namespaces' policies today to the generated ones."""
        before = "".join(f"---\n{_dump(_comparable(p))}" for p in self.existing)
        after = "".join(f"---\n{_dump(_comparable(p))}" for p in self.policies)
        lines = difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), "existing", "generated"
        )
        return "".join(lines)


def generate_policies(
    report: Report,
    *,
    include_planned: bool = False,
    plan: FixingPlan | None = None,
    namespaces: Sequence[str] | None = None,
    ingress_from: Sequence[str] = (),
) -> GeneratedPolicies:
    """NetworkPolicies that admit exactly the report's ``ok`` edges, proven before they are returned.

    Args:
        report: an audit (it carries the snapshot).
        include_planned: admit the edges ``plan`` fixes too.
        plan: ``novadiag.plan(report, ...)``, required with ``include_planned``.
        namespaces: the namespaces to generate for (default: every namespace holding a
            workload, ``kube-system`` aside).
        ingress_from: namespaces the ingress controllers / Gateway data planes run in: the
            backends of ``ok`` routing edges admit their pods (default for a Gateway API
            route: its parent Gateways' namespaces).

    Raises:
        PolicyProofError: the generated set would deny a needed edge or admit other traffic.
        ConfigError: ``include_planned`` without a plan, or a report without its snapshot.

    >>> generated = novadiag.generate_policies(novadiag.audit(lab="nova"))   # doctest: +SKIP
    >>> print(generated.to_yaml())                                           # doctest: +SKIP
    """
    if include_planned and plan is None:
        raise ConfigError("include_planned needs the plan: pass plan=novadiag.plan(report, ...)")
    if report.snapshot is None:
        raise ConfigError("generating NetworkPolicies needs the report's snapshot: build it with novadiag.audit")
    snap = report.snapshot
    cluster = report.index or build_index(snap, cluster_domain=report.source.cluster_domain)
    workloads = {w.ref: w for w in snap.workloads}
    audited = _audited(workloads.values(), namespaces)
    index = build_policy_index(snap, cluster)
    notes: list[str] = []
    wanted = [e for e in report.edges if e.status == "ok"]
    if include_planned:
        assert plan is not None
        wanted += _planned(report, plan, notes)
    allowances = [
        a for e in wanted if not e.reference.routing for a in _allowances(e, workloads, cluster, index, notes)
    ]
    everyone = list(workloads.values())
    controllers: dict[ObjectRef, Controller] = {}

    def controller_of(route: ObjectRef) -> Controller:  # a route with several backends is looked up once
        if route not in controllers:
            controllers[route] = find_controller(snap, route, ingress_from)
        return controllers[route]

    routed = [
        a
        for e in wanted
        if e.reference.routing
        for a in _controller_allowances(e, controller_of(e.source), everyone, cluster, index, notes)
    ]
    notes += [
        f"edge {e.id}: {e.status}, not admitted"
        for e in report.edges
        if e.status in ("external", "unverified") and e.source.namespace in audited
    ]
    notes += [
        f"{w.ref} uses hostNetwork: NetworkPolicies do not isolate its pods"
        for w in workloads.values()
        if w.host_network and w.namespace in audited
    ]
    policies = _policies(audited, allowances, routed, index)
    existing = _existing(snap, audited)
    prove(report, policies, allowances, audited, routed)
    edges = tuple(sorted({a.edge for a in allowances} | {r.edge for r in routed}))
    return GeneratedPolicies(tuple(audited), tuple(policies), existing, edges, tuple(notes))


def _audited(workloads: Iterable[Workload], namespaces: Sequence[str] | None) -> list[str]:
    found = {w.namespace for w in workloads} if not namespaces else set(namespaces)
    return sorted(found - {DNS_NAMESPACE})


def _planned(report: Report, planned: FixingPlan, notes: list[str]) -> list[Edge]:
    """The broken edges the plan fixes: its fixes, less what its verification found still broken.

    A rewrite changes an edge's id (the host is part of it), so the verification's
    ``fixed`` list does not name every fixed edge by its id before the plan.
    """
    fixed = {f.edge for f in planned.fixes if f.fixed}
    if planned.verification is not None:
        fixed = (fixed | set(planned.verification.fixed)) - set(planned.verification.still_broken)
    out = []
    for edge in report.edges:
        if edge.id in fixed and edge.broken:
            if edge.target is None:
                notes.append(f"edge {edge.id}: the plan fixes it but names no Service, not admitted")
                continue
            out.append(edge)
    return out


def _allowances(
    edge: Edge, workloads: Mapping[ObjectRef, Workload], cluster: ClusterIndex, index: PolicyIndex, notes: list[str]
) -> list[Allowance]:
    """The pod-to-pod connections one edge needs; a note instead when policies cannot name them."""
    source = workloads.get(edge.source)
    if source is None or edge.source.kind not in WORKLOAD_KINDS:
        notes.append(f"edge {edge.id}: source {edge.source} runs no pod, not admitted")
        return []
    meant = edge.resolves_to if edge.status == "ok" else edge.target
    svc = None if meant is None else cluster.service(meant.namespace or "default", meant.name)
    if svc is None or svc.type == "ExternalName" or not svc.selector:
        notes.append(f"edge {edge.id}: its Service selects no pods (ExternalName or no selector), not admitted")
        return []
    hostname = intended_target(edge.reference.host, edge.reference.namespace, cluster).hostname
    out = []
    behind = {(w.namespace, w.ref.name): w for w in cluster.selected_workloads(svc)}
    for pod in index.service_pods(svc, hostname):
        target = behind[(pod.namespace, pod.name)]
        traffic = pod_traffic(svc, edge.reference.port, pod, hostname=hostname)
        if traffic.port is None:
            notes.append(f"edge {edge.id}: no port to admit on {target.ref}, not admitted")
            continue
        out.append(
            Allowance(edge.id, source, target, svc, traffic.port, traffic.protocol, edge.reference.port, hostname)
        )
    return out


def _controller_allowances(
    edge: Edge,
    controller: Controller,
    everyone: Sequence[Workload],
    cluster: ClusterIndex,
    index: PolicyIndex,
    notes: list[str],
) -> list[ControllerAllowance]:
    """The backend pods a routing edge reaches, admitted from its controllers' namespaces; a note when unknown."""
    meant = edge.resolves_to if edge.status == "ok" else edge.target
    svc = None if meant is None else cluster.service(meant.namespace or "default", meant.name)
    if svc is None or svc.type == "ExternalName" or not svc.selector:
        notes.append(f"edge {edge.id}: its Service selects no pods (ExternalName or no selector), not admitted")
        return []
    if not controller.namespaces:
        notes.append(
            f"edge {edge.id}: Service {svc.ref.namespace}/{svc.ref.name} will be unreachable from the "
            f"controller of {edge.source} under the default deny; --ingress-from NS (the controller's "
            "namespace) admits it"
        )
        return []
    port = service_port(svc, edge.reference)
    behind = {(w.namespace, w.ref.name): w for w in cluster.selected_workloads(svc)}
    sources = {ns: _controller_pods(controller, ns, everyone) for ns in controller.namespaces}
    out = []
    for pod in index.service_pods(svc, None):
        target = behind[(pod.namespace, pod.name)]
        traffic = pod_traffic(svc, port, pod)
        if traffic.port is None:
            notes.append(f"edge {edge.id}: no port to admit on {target.ref}, not admitted")
            continue
        for ns in controller.namespaces:
            out.append(ControllerAllowance(edge.id, ns, target, traffic.port, traffic.protocol, sources[ns]))
    return out


def _controller_pods(controller: Controller, namespace: str, everyone: Sequence[Workload]) -> tuple[Workload, ...]:
    """The controller's workloads in ``namespace``; every pod-running workload there when none is known."""
    known = [w for w in controller.workloads if w.namespace == namespace]
    chosen = known or [w for w in everyone if w.namespace == namespace and w.ref.kind in WORKLOAD_KINDS]
    return tuple(sorted((w for w in chosen if not w.host_network), key=lambda w: w.ref))


# -- building the manifests ---------------------------------------------------------------------


@dataclass
class _Side:
    """One workload's rules of one direction: peer (as JSON) -> ports -> edge ids."""

    workload: Workload
    peers: dict[str, dict[Port, set[str]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(set)))

    def add(self, peer: Mapping[str, Any], port: Port, edge: str) -> None:
        self.peers[json.dumps(peer, sort_keys=True)][port].add(edge)


def _policies(
    audited: Sequence[str],
    allowances: Iterable[Allowance],
    routed: Iterable[ControllerAllowance],
    index: PolicyIndex,
) -> list[dict[str, Any]]:
    egress: dict[ObjectRef, _Side] = {}
    ingress: dict[ObjectRef, _Side] = {}
    for a in allowances:
        port = (a.port, a.protocol)
        if a.source.namespace in audited:
            target_peer = _peer(a.service.namespace, dict(a.service.selector or {}))
            egress.setdefault(a.source.ref, _Side(a.source)).add(target_peer, port, a.edge)
        if a.target.namespace in audited:
            source_peer = _peer(a.source.namespace, dict(a.source.pod_labels))
            ingress.setdefault(a.target.ref, _Side(a.target)).add(source_peer, port, a.edge)
    for r in routed:
        if r.target.namespace in audited:
            controller_peer = {"namespaceSelector": {"matchLabels": {NAME_LABEL: r.controller}}}
            ingress.setdefault(r.target.ref, _Side(r.target)).add(controller_peer, (r.port, r.protocol), r.edge)
        if r.controller in audited:
            backend_peer = _peer(r.target.namespace, dict(r.target.pod_labels))
            for source in r.sources:
                egress.setdefault(source.ref, _Side(source)).add(backend_peer, (r.port, r.protocol), r.edge)
    out = [p for ns in audited for p in _namespace_policies(ns, index)]
    clashes = _taken(egress), _taken(ingress)
    out += [_workload_policy(side, "egress", clashes[0]) for side in egress.values()]
    out += [_workload_policy(side, "ingress", clashes[1]) for side in ingress.values()]
    return sorted(out, key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))


def _namespace_policies(namespace: str, index: PolicyIndex) -> list[dict[str, Any]]:
    dns = index.dns_pods[0]
    dns_peer = _peer(dns.namespace, dns.identifying_labels())
    dns_ports = [{"protocol": "UDP", "port": DNS_PORT}, {"protocol": "TCP", "port": DNS_PORT}]
    return [
        _manifest(namespace, DEFAULT_DENY, {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, {}),
        _manifest(
            namespace,
            ALLOW_DNS,
            {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [dns_peer], "ports": dns_ports}]},
            {},
        ),
    ]


def _taken(sides: Mapping[ObjectRef, _Side]) -> set[tuple[str, str]]:
    """(namespace, name) pairs shared by two workloads of different kinds: their policies need the kind."""
    seen: dict[tuple[str, str], int] = defaultdict(int)
    for ref in sides:
        seen[(ref.namespace or "default", ref.name)] += 1
    return {key for key, n in seen.items() if n > 1}


def _workload_policy(side: _Side, direction: str, clashes: set[tuple[str, str]]) -> dict[str, Any]:
    """One policy: the workload's pods, one rule per set of ports its peers share, edges annotated."""
    w = side.workload
    name = f"novadiag-{direction}-{w.ref.name}"
    if (w.namespace, w.ref.name) in clashes:
        name = f"novadiag-{direction}-{w.ref.kind.lower()}-{w.ref.name}"
    by_ports: dict[tuple[Port, ...], list[str]] = defaultdict(list)
    for peer, peer_ports in side.peers.items():
        by_ports[tuple(sorted(peer_ports))].append(peer)
    rules: list[dict[str, Any]] = []
    edges: dict[str, list[str]] = {}
    key = "to" if direction == "egress" else "from"
    for i, (ports, peers) in enumerate(sorted(by_ports.items())):
        rules.append(
            {
                key: [json.loads(p) for p in sorted(peers)],
                "ports": [{"protocol": proto, "port": port} for port, proto in ports],
            }
        )
        ids = {e for p in peers for port in ports for e in side.peers[p][port]}
        edges[f"{direction}[{i}]"] = sorted(ids)
    spec = {
        "podSelector": {"matchLabels": dict(sorted(w.pod_labels.items()))},
        "policyTypes": [direction.capitalize()],
        direction: rules,
    }
    return _manifest(w.namespace, name, spec, edges)


def _peer(namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "namespaceSelector": {"matchLabels": {NAME_LABEL: namespace}},
        "podSelector": {"matchLabels": dict(sorted(labels.items()))},
    }


def _manifest(namespace: str, name: str, spec: dict[str, Any], edges: Mapping[str, list[str]]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": {GENERATED_LABEL: "true"}}
    if edges:
        metadata["annotations"] = {EDGES_ANNOTATION: json.dumps(dict(edges), sort_keys=True)}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": metadata, "spec": spec}


def _existing(snap: Snapshot, audited: Sequence[str]) -> tuple[dict[str, Any], ...]:
    found = [dict(p) for p in snap.of("NetworkPolicy") if (p.get("metadata") or {}).get("namespace") in audited]
    return tuple(sorted(found, key=lambda p: (p["metadata"]["namespace"], str(p["metadata"].get("name")))))


def _comparable(policy: Mapping[str, Any]) -> dict[str, Any]:
    """What a diff should show of a policy: kind, name, namespace and spec (not uid, resourceVersion, ...)."""
    meta = policy.get("metadata") or {}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
        "spec": policy.get("spec") or {},
    }


def _comment(policy: Mapping[str, Any]) -> str:
    raw = (policy["metadata"].get("annotations") or {}).get(EDGES_ANNOTATION)
    if not raw:
        return ""
    return "".join(f"# {rule} admits {edge}\n" for rule, ids in json.loads(raw).items() for edge in ids)


def _dump(value: Mapping[str, Any]) -> str:
    return str(yaml.safe_dump(dict(value), sort_keys=False, default_flow_style=False, width=10_000))


# -- the proof ----------------------------------------------------------------------------------


def prove(
    report: Report,
    policies: Sequence[Mapping[str, Any]],
    allowances: Sequence[Allowance],
    audited: Sequence[str],
    routed: Sequence[ControllerAllowance] = (),
) -> None:
    """Judge ``policies`` as the cluster's only ones: needed edges allowed, every other pair denied.

    Routing edges are judged from a pod of the controller's namespace, on the
    backend's ingress side; when that namespace is audited too, from each of the
    controller's workloads as well, DNS and egress included.

    Raises:
        PolicyProofError: naming the first edge denied or the first pair admitted without an edge.
    """
    assert report.snapshot is not None
    snap = report.snapshot
    cluster = report.index or build_index(snap, cluster_domain=report.source.cluster_domain)
    index = build_policy_index(snap, cluster, policies=policies)
    _prove_edges_allowed(index, cluster, allowances)
    needed = {(a.source.ref, a.target.ref, a.port, a.protocol) for a in allowances}
    needed |= {(s.ref, r.target.ref, r.port, r.protocol) for r in routed for s in r.sources}
    # policies do not isolate hostNetwork pods: there is nothing to prove about them
    pods = [w for w in snap.workloads if w.namespace in audited and not w.host_network]
    for source, target, port, protocol in _pairs(index, pods, allowances):
        if (source.ref, target.ref, port, protocol) in needed:
            continue
        if evaluate(index, index.endpoint(source), index.endpoint(target), port=port, protocol=protocol).allowed:
            raise PolicyProofError(
                f"the generated NetworkPolicies would admit {source.ref} -> {target.ref} on {protocol} {port}, "
                "which no ok edge uses (their pod labels cannot be told apart)"
            )
    _prove_controllers(index, pods, routed)
    _prove_controller_egress(index, cluster, [r for r in routed if r.controller in audited])


def _prove_controller_egress(index: PolicyIndex, cluster: ClusterIndex, routed: Sequence[ControllerAllowance]) -> None:
    """Each controller workload of an audited namespace resolves names and reaches its backends, egress and all."""
    for r in routed:
        for source in r.sources:
            endpoint = index.endpoint(source)
            if resolver_config(source.pod_spec, source.namespace, cluster.cluster_domain).uses_cluster_dns and not (
                evaluate_dns(index, endpoint).allowed
            ):
                raise PolicyProofError(f"the generated NetworkPolicies would deny DNS to {source.ref} (edge {r.edge})")
            decision = evaluate(index, endpoint, index.endpoint(r.target), port=r.port, protocol=r.protocol)
            if not decision.allowed:
                raise PolicyProofError(
                    f"the generated NetworkPolicies would deny edge {r.edge} from {source.ref}: {decision.detail}"
                )


def _prove_controllers(index: PolicyIndex, pods: Sequence[Workload], routed: Sequence[ControllerAllowance]) -> None:
    """A pod of each controller namespace reaches the backends on their ports, and no other pod or port."""
    needed = {(r.controller, r.target.ref, r.port, r.protocol): r.edge for r in routed}
    for controller in sorted({r.controller for r in routed}):
        pod = Endpoint(controller, {}, "(any pod)")
        for target in pods:
            ports = {(port, proto) for _, port, proto in Endpoint.from_workload(target).ports}
            ports |= {(r.port, r.protocol) for r in routed if r.target.ref == target.ref}
            for port, protocol in sorted(ports):
                edge = needed.get((controller, target.ref, port, protocol))
                decision = evaluate(index, pod, index.endpoint(target), port=port, protocol=protocol)
                admitted = decision.ingress is not None and decision.ingress.allowed
                if edge is not None and not admitted:
                    raise PolicyProofError(f"the generated NetworkPolicies would deny edge {edge}: {decision.detail}")
                if edge is None and admitted:
                    raise PolicyProofError(
                        f"the generated NetworkPolicies would admit {pod.label} -> {target.ref} on "
                        f"{protocol} {port}, which no ok routing edge uses"
                    )


def _prove_edges_allowed(index: PolicyIndex, cluster: ClusterIndex, allowances: Sequence[Allowance]) -> None:
    for a in allowances:
        source = index.endpoint(a.source)
        uses_dns = resolver_config(a.source.pod_spec, a.source.namespace, cluster.cluster_domain).uses_cluster_dns
        if uses_dns and not a.source.host_network and not evaluate_dns(index, source).allowed:
            raise PolicyProofError(f"the generated NetworkPolicies would deny DNS to edge {a.edge}")
        decision = evaluate(index, source, index.endpoint(a.target), port=a.port, protocol=a.protocol)
        if decision.allowed:
            # and as the audit judges the edge: through the Service, against every pod behind it
            decision = evaluate_service(index, source, a.service, port=a.service_port, hostname=a.hostname) or decision
        if not decision.allowed:
            raise PolicyProofError(f"the generated NetworkPolicies would deny edge {a.edge}: {decision.detail}")


def _pairs(index: PolicyIndex, pods: Sequence[Workload], allowances: Sequence[Allowance]) -> Iterator[Pair]:
    """Every (source, target, port) among ``pods`` that the source's egress might admit.

    Ports are the targets' container ports and the ports edges use. A target no
    peer of the source's egress policies can match is denied on every port (an
    egress-isolated pod reaches only what a peer names), so only the others are
    judged one by one: without this the proof is quadratic in workloads and
    takes minutes at a few thousand.
    """
    ports: dict[ObjectRef, set[Port]] = defaultdict(set)
    for w in pods:
        ports[w.ref].update((port, proto) for _, port, proto in Endpoint.from_workload(w).ports)
    for a in allowances:
        ports[a.target.ref].add((a.port, a.protocol))
    by_namespace: dict[str, list[Workload]] = defaultdict(list)
    everyone = sorted(pods, key=lambda w: w.ref)
    for w in everyone:
        by_namespace[w.namespace].append(w)
    for source in pods:
        candidates = _egress_candidates(index, index.endpoint(source), by_namespace)
        for target in everyone if candidates is None else candidates:
            for port, proto in sorted(ports[target.ref]):
                yield source, target, port, proto


def _egress_candidates(
    index: PolicyIndex, source: Endpoint, by_namespace: Mapping[str, Sequence[Workload]]
) -> list[Workload] | None:
    """The workloads some egress peer of the source's policies matches; None (all) when nothing isolates it."""
    selecting = index.selecting(source, "egress")
    if not selecting:
        return None
    found: dict[ObjectRef, Workload] = {}
    for policy in selecting:
        for rule in policy.egress:
            if not rule.peers:
                return None
            for peer in rule.peers:
                if peer.ip_block is not None:
                    continue  # the evaluation never lets an ipBlock admit pod traffic
                for ns in _peer_namespaces(index, peer, policy.namespace, by_namespace):
                    found.update(
                        (w.ref, w)
                        for w in by_namespace[ns]
                        if peer.pods is None or peer.pods.matches(index.endpoint(w).labels)
                    )
    return sorted(found.values(), key=lambda w: w.ref)


def _peer_namespaces(
    index: PolicyIndex, peer: Peer, own: str, by_namespace: Mapping[str, Sequence[Workload]]
) -> list[str]:
    """The namespaces (of ``by_namespace``) a peer admits pods of; a peer naming one namespace is a lookup."""
    if peer.namespaces is None:
        return [own] if own in by_namespace else []
    selector = peer.namespaces
    if not selector.expressions and len(selector.labels) == 1 and selector.labels[0][0] == NAME_LABEL:
        named = selector.labels[0][1]
        return [named] if named in by_namespace else []
    return [ns for ns in by_namespace if index.namespace_matches(selector, ns)]
