"""The lab's NetworkPolicy engine: which TCP ports one pod may open on another.

A CNI plugin reads NetworkPolicies and decides, per connection, whether it passes.
This module is the lab's plugin brain, written from the Kubernetes documentation
("Network Policies" and the ``networking.k8s.io/v1`` API reference) and on
purpose sharing no code with novadiag's own evaluator (the import-linter "lab"
contract forbids it): the audit's verdicts are checked against a second,
independent reading of the same rules, as a real cluster would check them.

The rules, as implemented:

- A policy selects the pods of its own namespace that match ``spec.podSelector``
  (``{}`` selects all of them).
- ``policyTypes`` when absent: ``Ingress``, plus ``Egress`` when ``spec.egress``
  has rules (the API server's defaulting).
- A pod is isolated for ingress (egress) when at least one policy selecting it
  has that type; a pod that is not isolated in a direction allows everything in
  it. An isolated pod allows what at least one rule of one of its policies admits:
  rules only add, there is no order and no deny rule.
- A connection needs both: the source's egress allows it *and* the destination's
  ingress allows it.
- A rule with no ``from``/``to`` (or an empty list) admits every peer; no
  ``ports`` (or an empty list) admits every port.
- A peer is ``podSelector`` (pods of the policy's namespace), ``namespaceSelector``
  (every pod of the matching namespaces), both in one peer (matching pods *in*
  matching namespaces), or ``ipBlock`` (``cidr`` minus ``except``). ipBlock is
  matched against the pod's own IP, as plugins that do not NAT pod traffic do.
- A port has a protocol (default TCP), a number or a name (resolved against the
  *destination* pod's container ports of that protocol; a pod without the name
  is not admitted by that entry), and optionally ``endPort`` (a numeric range).
  A protocol without a port admits every port of that protocol.
- Only running pods with a pod IP count, on either end. ``hostNetwork`` pods are
  never isolated and are not pods to a selector: their traffic is the node's.

Only TCP is judged (the lab's firewall filters TCP); a port entry for UDP or SCTP
admits no TCP port. Answers are sets of port ranges, so a caller can turn "what is
allowed" into "what is denied" without enumerating 65,535 ports.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from novadiag.lab.controllers import label_selector_matches

Obj = Mapping[str, Any]
PortRanges = tuple[tuple[int, int], ...]
"""Disjoint, sorted, inclusive ``(first, last)`` TCP port ranges."""

ALL_PORTS: PortRanges = ((1, 65535),)
NO_PORTS: PortRanges = ()
NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class LabPod:
    """What the policy engine needs of one running pod."""

    namespace: str
    name: str
    ip: str
    labels: dict[str, str]
    ports: tuple[tuple[str, int, str], ...]
    """Container ports as ``(name, number, protocol)``."""

    def named_port(self, name: str, protocol: str) -> int | None:
        return next((number for n, number, proto in self.ports if n == name and proto == protocol), None)


def lab_pod(pod: Obj) -> LabPod | None:
    """A running, IP-holding, pod-network pod; None for every other pod."""
    status, spec, meta = pod.get("status") or {}, pod.get("spec") or {}, pod.get("metadata") or {}
    if status.get("phase") != "Running" or not status.get("podIP") or spec.get("hostNetwork"):
        return None
    ports = tuple(
        (str(p.get("name") or ""), int(p["containerPort"]), str(p.get("protocol") or "TCP"))
        for c in spec.get("containers") or [] for p in c.get("ports") or [] if p.get("containerPort")
    )
    return LabPod(namespace=str(meta.get("namespace")), name=str(meta.get("name")), ip=str(status["podIP"]),
                  labels=dict(meta.get("labels") or {}), ports=ports)


# -- port ranges ------------------------------------------------------------------------------


def union(*sets: PortRanges) -> PortRanges:
    ranges = sorted(r for s in sets for r in s)
    merged: list[tuple[int, int]] = []
    for first, last in ranges:
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return tuple(merged)


def intersect(a: PortRanges, b: PortRanges) -> PortRanges:
    out = [(max(f1, f2), min(l1, l2)) for f1, l1 in a for f2, l2 in b if max(f1, f2) <= min(l1, l2)]
    return union(tuple(out))


def complement(ports: PortRanges) -> PortRanges:
    """The TCP ports (1-65535) not in ``ports``."""
    out, start = [], 1
    for first, last in union(ports):
        if first > start:
            out.append((start, first - 1))
        start = last + 1
    if start <= 65535:
        out.append((start, 65535))
    return tuple(out)


def contains(ports: PortRanges, port: int) -> bool:
    return any(first <= port <= last for first, last in ports)


# -- policies ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Policy:
    namespace: str
    spec: Mapping[str, Any]

    @property
    def types(self) -> frozenset[str]:
        declared = self.spec.get("policyTypes")
        if declared:
            return frozenset(str(t) for t in declared)
        return frozenset({"Ingress", "Egress"} if self.spec.get("egress") else {"Ingress"})

    def selects(self, pod: LabPod) -> bool:
        return pod.namespace == self.namespace and label_selector_matches(
            self.spec.get("podSelector") or {}, pod.labels)


class PolicyEngine:
    """NetworkPolicy decisions for one view of the cluster (policies, namespaces, pods)."""

    def __init__(self, policies: Iterable[Obj], namespaces: Iterable[Obj]) -> None:
        self._policies = [_Policy(str(p["metadata"]["namespace"]), p.get("spec") or {}) for p in policies]
        self._namespace_labels: dict[str, dict[str, str]] = {}
        for ns in namespaces:
            name = str(ns["metadata"]["name"])
            self._namespace_labels[name] = {**(ns["metadata"].get("labels") or {}), NAME_LABEL: name}
        self._selecting: dict[tuple[str, str, str], list[_Policy]] = {}
        self._allowed: dict[tuple[str, str], PortRanges] = {}

    def isolated(self, pod: LabPod, direction: str) -> bool:
        """Whether some policy selecting ``pod`` has ``direction`` (``Ingress``/``Egress``)."""
        return bool(self._policies_for(pod, direction))

    def allowed_ports(self, source: LabPod, destination: LabPod) -> PortRanges:
        """The TCP ports ``source`` may connect to on ``destination``: egress AND ingress.

        Remembered per pair: a firewall update asks for pod pairs and again for each Service's backends.
        """
        key = (source.ip, destination.ip)
        if key not in self._allowed:
            self._allowed[key] = self._decide_ports(source, destination)
        return self._allowed[key]

    def _decide_ports(self, source: LabPod, destination: LabPod) -> PortRanges:
        if source.ip == destination.ip:
            return ALL_PORTS  # a pod's connection to itself stays inside it: no plugin sees it
        egress = self._direction_ports(source, destination, destination, "Egress", "to")
        if not egress:
            return NO_PORTS
        return intersect(egress, self._direction_ports(destination, source, destination, "Ingress", "from"))

    def allows(self, source: LabPod, destination: LabPod, port: int) -> bool:
        return contains(self.allowed_ports(source, destination), port)

    def _policies_for(self, pod: LabPod, direction: str) -> list[_Policy]:
        key = (pod.namespace, pod.name, direction)
        if key not in self._selecting:
            self._selecting[key] = [p for p in self._policies if direction in p.types and p.selects(pod)]
        return self._selecting[key]

    def _direction_ports(self, subject: LabPod, peer: LabPod, destination: LabPod,
                         direction: str, peers_key: str) -> PortRanges:
        """What ``subject``'s policies of ``direction`` admit for traffic with ``peer``."""
        policies = self._policies_for(subject, direction)
        if not policies:
            return ALL_PORTS
        rules_key = "ingress" if direction == "Ingress" else "egress"
        admitted = []
        for policy in policies:
            for rule in policy.spec.get(rules_key) or []:
                peers = rule.get(peers_key) or []
                if not peers or any(self._peer_matches(policy.namespace, p, peer) for p in peers):
                    admitted.append(_rule_ports(rule.get("ports") or [], destination))
        return union(*admitted)

    def _peer_matches(self, policy_namespace: str, peer: Mapping[str, Any], pod: LabPod) -> bool:
        if "ipBlock" in peer:
            return _in_block(peer["ipBlock"] or {}, pod.ip)
        pod_selector, ns_selector = peer.get("podSelector"), peer.get("namespaceSelector")
        if ns_selector is None:
            in_namespace = pod.namespace == policy_namespace
        else:
            in_namespace = label_selector_matches(ns_selector, self._namespace_labels.get(pod.namespace, {
                NAME_LABEL: pod.namespace}))
        if not in_namespace:
            return False
        return pod_selector is None or label_selector_matches(pod_selector, pod.labels)


def _rule_ports(entries: Iterable[Mapping[str, Any]], destination: LabPod) -> PortRanges:
    entries = list(entries)
    if not entries:
        return ALL_PORTS
    return union(*(_entry_ports(entry, destination) for entry in entries))


def _entry_ports(entry: Mapping[str, Any], destination: LabPod) -> PortRanges:
    protocol = str(entry.get("protocol") or "TCP")
    if protocol != "TCP":
        return NO_PORTS
    port = entry.get("port")
    if port is None:
        return ALL_PORTS
    if isinstance(port, str) and not port.isdigit():
        number = destination.named_port(port, protocol)
        return NO_PORTS if number is None else ((number, number),)
    first = int(port)
    last = int(entry.get("endPort") or first)
    return ((first, last),) if first <= last else NO_PORTS


def _in_block(block: Mapping[str, Any], ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
        if address not in ipaddress.ip_network(str(block.get("cidr")), strict=False):
            return False
        return not any(address in ipaddress.ip_network(str(e), strict=False) for e in block.get("except") or [])
    except ValueError:
        return False
