"""NetworkPolicy evaluation: does a policy drop a connection that DNS, ports and endpoints allow?

An edge can resolve, hit an exposed port with ready pods behind it, and still be
dropped by a NetworkPolicy; and a namespace consolidation silently changes what
policies select. This module evaluates the standard ``networking.k8s.io/v1``
semantics (the Kubernetes "Network Policies" page and the API reference) for one
connection, naming the policies that decide it:

- A policy selects pods of its own namespace by ``spec.podSelector`` (``{}``: all).
- ``policyTypes`` is explicit, or implied as the API server defaults it: Ingress
  always, Egress when ``spec.egress`` is non-empty.
- A pod is isolated for a direction once any policy selecting it has that type;
  then only what some rule of those policies admits passes (rules add up, there
  are no deny rules, order does not matter). A connection needs the egress of its
  source *and* the ingress of its destination.
- A rule without ``from``/``to`` (or with an empty list) admits every peer;
  without ``ports``, every port. A peer is ``podSelector`` (pods of the policy's
  namespace), ``namespaceSelector`` (every pod of matching namespaces), both in
  one peer (matching pods in matching namespaces), or ``ipBlock``. Namespaces
  carry ``kubernetes.io/metadata.name`` (set by the API server since 1.21).
- Ports by number, by name (resolved against the *destination* pod's container
  ports, protocol included), ``endPort`` ranges; protocol defaults to TCP.
- Traffic to a ClusterIP is judged after the Service's translation: against the
  pods behind it and the Service's ``targetPort``.
- ``ipBlock`` is evaluated for external addresses. For pod traffic it is
  implementation-dependent (NAT, and the docs call ipBlock meant for
  cluster-external IPs), so it never admits pod traffic here and a note says
  when it might.
- Pods with ``hostNetwork`` are not isolated by policies (most plugins ignore them).
- Names are looked up at the cluster DNS pods (kube-system, ``k8s-app: kube-dns``
  unless the snapshot shows the kube-dns Service's pods) on UDP 53: a source whose
  egress denies that resolves nothing, so every edge from it is blocked.

Speed: a :class:`PolicyIndex` is built once per snapshot. Policies are grouped by
namespace, the policies selecting a pod are cached per (namespace, labels), and
each namespaceSelector is matched once per namespace; no per-edge work scans all
policies, so 2,000 namespaces with a policy each stay linear.

Probes and these verdicts: a probe pod runs in the source namespace with novadiag's labels, not the source
workload's, so only namespace-wide policies (``podSelector: {}``) apply to it as
they apply to the workload. An edge judged ``ok`` here can time out from a probe
when policies admit the workload's labels only (the probe reports ``blocked``,
"a NetworkPolicy or the CNI dropped it"), and a ``blocked`` verdict can connect
from a probe when the denying policy selects the workload's labels only; a
timeout with a ``blocked`` verdict confirms it. Plugins that ignore NetworkPolicy
(e.g. plain flannel) let everything through. The lab enforces policies with an
engine of its own (``novadiag.lab.netpolicy``) unless its scenario only stores them,
as the bundled Nova does for this reason.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import yaml

from novadiag.addresses import is_ip_literal
from novadiag.index import ClusterIndex, ServiceInfo
from novadiag.model import ObjectRef
from novadiag.netpol.policy import (
    DNS_LABELS,
    DNS_NAMESPACE,
    DNS_PORT,
    Direction,
    Endpoint,
    Peer,
    Policy,
    Traffic,
    parse_policy,
)
from novadiag.selector import NAME_LABEL, Selector
from novadiag.snapshot import Snapshot
from novadiag.workloads import Workload

# -- the index --------------------------------------------------------------------------------


class PolicyIndex:
    """Policies by namespace plus the caches that keep per-edge work constant."""

    def __init__(
        self,
        policies: Iterable[Policy],
        namespace_labels: Mapping[str, Mapping[str, str]],
        *,
        cluster: ClusterIndex | None = None,
        dns_pods: Sequence[Endpoint] = (),
    ) -> None:
        by_ns: dict[str, list[Policy]] = defaultdict(list)
        for policy in policies:
            by_ns[policy.namespace].append(policy)
        self.by_namespace: dict[str, tuple[Policy, ...]] = {ns: tuple(ps) for ns, ps in by_ns.items()}
        self._ns_labels = {ns: {**labels, NAME_LABEL: ns} for ns, labels in namespace_labels.items()}
        self.cluster = cluster
        self.dns_pods: tuple[Endpoint, ...] = tuple(dns_pods) or (default_dns_pod(),)
        self._selecting: dict[tuple[object, ...], tuple[Policy, ...]] = {}
        self._ns_match: dict[tuple[Selector, str], bool] = {}
        self._endpoints: dict[ObjectRef, Endpoint] = {}
        self._targets: dict[tuple[str, str, str | None], tuple[Endpoint, ...]] = {}
        self._dns: dict[tuple[object, ...], Decision] = {}
        self._label_keys = _selected_label_keys(self.by_namespace.values())
        self._dns_allowed: dict[tuple[object, ...], bool] = {}
        self._passed: set[tuple[object, ...]] = set()

    def __len__(self) -> int:
        return sum(len(ps) for ps in self.by_namespace.values())

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        labels = self._ns_labels.get(namespace)
        if labels is None:
            labels = self._ns_labels[namespace] = {NAME_LABEL: namespace}
        return labels

    def namespace_matches(self, selector: Selector, namespace: str) -> bool:
        key = (selector, namespace)
        known = self._ns_match.get(key)
        if known is None:
            known = self._ns_match[key] = selector.matches(self.namespace_labels(namespace))
        return known

    def selecting(self, pod: Endpoint, direction: Direction) -> tuple[Policy, ...]:
        """Policies of the pod's namespace that select it for ``direction``."""
        key = (*pod.key, direction)
        found = self._selecting.get(key)
        if found is None:
            found = tuple(
                p
                for p in self.by_namespace.get(pod.namespace, ())
                if direction in p.types and p.pod_selector.matches(pod.labels)
            )
            self._selecting[key] = found
        return found

    def pod_class(self, pod: Endpoint) -> tuple[object, ...]:
        """All that any policy here can tell about a pod: its namespace, hostNetwork, the labels selectors name.

        Two pods of one class are selected by the same policies and admitted by
        the same peers, so a yes/no decision about one holds for the other. Most
        pods differ only in labels no selector looks at (``app: <name>``), which
        is what lets the audit judge policies once per class instead of per edge.
        """
        return (pod.namespace, pod.host_network, tuple(pod.labels.get(k) for k in self._label_keys))

    def dns_allowed(self, pod: Endpoint) -> bool:
        """Whether the pod's egress (and the DNS pods' ingress) admit its queries; once per pod class."""
        key = self.pod_class(pod)
        known = self._dns_allowed.get(key)
        if known is None:
            known = self._dns_allowed[key] = evaluate_dns(self, pod).allowed
        return known

    def endpoint(self, workload: Workload) -> Endpoint:
        found = self._endpoints.get(workload.ref)
        if found is None:
            found = self._endpoints[workload.ref] = Endpoint.from_workload(workload)
        return found

    def service_pods(self, svc: ServiceInfo, hostname: str | None = None) -> tuple[Endpoint, ...]:
        """The pods behind a Service (one StatefulSet's when a pod hostname is named)."""
        key = (svc.namespace, svc.name, hostname)
        found = self._targets.get(key)
        if found is None:
            selected = self.cluster.selected_workloads(svc) if self.cluster is not None else []
            running = [w for w in selected if w.replicas > 0] or selected
            if hostname:
                owner = hostname.rsplit("-", 1)[0]
                running = [w for w in running if w.ref.name == owner] or running
            sel = dict(svc.selector or {})
            found = tuple(
                Endpoint(e.namespace, e.labels, e.name, e.ports, e.host_network, sel)
                for e in (self.endpoint(w) for w in running)
            )
            self._targets[key] = found
        return found


def default_dns_pod() -> Endpoint:
    """CoreDNS as every distribution deploys it, for snapshots without kube-system."""
    ports = (("dns", DNS_PORT, "UDP"), ("dns-tcp", DNS_PORT, "TCP"), ("metrics", 9153, "TCP"))
    return Endpoint(DNS_NAMESPACE, dict(DNS_LABELS), "kube-dns", ports, selector=dict(DNS_LABELS))


def build_policy_index(
    snapshot: Snapshot, cluster: ClusterIndex, *, policies: Iterable[Mapping[str, Any]] | None = None
) -> PolicyIndex:
    """One pass over NetworkPolicies and Namespaces; the DNS pods from kube-system/kube-dns.

    ``policies`` replaces the snapshot's NetworkPolicies: how a generated set is judged
    on the cluster it was generated for, as if it were the only one.
    """
    labels = {
        str((o.get("metadata") or {}).get("name")): dict((o.get("metadata") or {}).get("labels") or {})
        for o in snapshot.of("Namespace")
    }
    raw = snapshot.of("NetworkPolicy") if policies is None else policies
    index = PolicyIndex((parse_policy(o) for o in raw), labels, cluster=cluster)
    dns = cluster.service(DNS_NAMESPACE, "kube-dns")
    if dns is not None:
        pods = index.service_pods(dns)
        if pods:
            index.dns_pods = pods
    return index


# -- decisions --------------------------------------------------------------------------------


class _Admission(IntEnum):
    NO = 0
    IPBLOCK_POD = 1  # only an ipBlock could admit pod traffic: implementation-dependent
    MAYBE = 2  # an ipBlock may hold the external host's address: cannot tell statically
    YES = 3


@dataclass(frozen=True)
class DirectionDecision:
    """One side of a connection: the policies isolating the pod and those admitting the traffic."""

    direction: Direction
    pod: Endpoint
    allowed: bool
    selecting: tuple[ObjectRef, ...] = ()
    allowing: tuple[ObjectRef, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def isolated(self) -> bool:
        return bool(self.selecting)


@dataclass(frozen=True)
class SuggestedRule:
    """The minimal rule that admits a denied connection, and where it goes."""

    namespace: str
    policy: str
    direction: Direction
    rule: Mapping[str, Any]
    new_policy: Mapping[str, Any] | None = None

    def __str__(self) -> str:
        if self.new_policy is not None:
            return f"add NetworkPolicy {self.namespace}/{self.policy}: {_flow(self.new_policy)}"
        return f"add to NetworkPolicy {self.namespace}/{self.policy} spec.{self.direction}: {_flow(self.rule)}"


@dataclass(frozen=True)
class Decision:
    """Whether policies let one connection through, who decided, and the rule that would fix it."""

    allowed: bool
    egress: DirectionDecision
    ingress: DirectionDecision | None
    traffic: Traffic
    peer: str
    dns: bool = False
    fixes: tuple[SuggestedRule, ...] = ()
    denied_pods: int = 0
    pods: int = 1

    @property
    def denied(self) -> tuple[DirectionDecision, ...]:
        return tuple(d for d in (self.egress, self.ingress) if d is not None and not d.allowed)

    @property
    def responsible(self) -> tuple[tuple[ObjectRef, Direction], ...]:
        """The policies that deny, with the direction they deny."""
        return tuple((ref, d.direction) for d in self.denied for ref in d.selecting)

    @property
    def notes(self) -> tuple[str, ...]:
        sides = (self.egress, self.ingress)
        return tuple(dict.fromkeys(n for d in sides if d is not None for n in d.notes))

    @property
    def detail(self) -> str:
        if self.dns and not self.egress.allowed:
            refs = _refs(self.egress.selecting, "egress")
            text = (
                f"DNS egress is denied by NetworkPolicy {refs}: {self.egress.pod.label} cannot reach the cluster "
                f"DNS ({self.peer}) on UDP {DNS_PORT}, so no name resolves"
            )
        elif self.dns and self.ingress is not None:
            refs = _refs(self.ingress.selecting, "ingress")
            text = (
                f"DNS is denied by NetworkPolicy {refs}: the cluster DNS ({self.peer}) does not admit UDP {DNS_PORT} "
                f"from {self.egress.pod.label}, so no name resolves"
            )
        else:
            parts = [self._side(d) for d in self.denied]
            text = "; ".join(parts) if parts else f"NetworkPolicies admit {self.traffic} to {self.peer}"
        if self.pods > 1 and 0 < self.denied_pods < self.pods:
            text += f" (for {self.denied_pods} of the {self.pods} workloads behind the Service)"
        return text + "".join(f"; {n}" for n in self.notes)

    def _side(self, d: DirectionDecision) -> str:
        if d.direction == "egress":
            head = f"egress from {d.pod.label}"
            tail = f"no rule admits {self.traffic} to {self.peer}"
        else:
            head = f"ingress to {d.pod.label}"
            tail = f"no rule admits {self.traffic} from {self.egress.pod.label}"
        return f"{head} is denied by NetworkPolicy {_refs(d.selecting, d.direction)}: {tail}"

    @property
    def fix(self) -> str | None:
        return "; ".join(str(f) for f in self.fixes) or None


def _refs(refs: Iterable[ObjectRef], direction: Direction) -> str:
    return ", ".join(f"{r.namespace}/{r.name} ({direction})" for r in refs)


def evaluate(
    index: PolicyIndex, source: Endpoint, target: Endpoint, *, port: int | None, protocol: str = "TCP"
) -> Decision:
    """Pod to pod: ``port`` is the destination pod's port (after any Service translation)."""
    traffic = Traffic(protocol.upper(), port)
    egress = _decide(index, source, "egress", target, None, traffic, target)
    ingress = _decide(index, target, "ingress", source, None, traffic, target)
    decision = Decision(egress.allowed and ingress.allowed, egress, ingress, traffic, target.label)
    return _with_fixes(index, decision, source, target)


def evaluate_external(
    index: PolicyIndex, source: Endpoint, host: str, *, port: int | None, protocol: str = "TCP"
) -> Decision:
    """Source egress to a host outside the cluster (only ipBlock peers and open rules can admit it)."""
    traffic = Traffic(protocol.upper(), port)
    egress = _decide(index, source, "egress", None, host, traffic, None)
    decision = Decision(egress.allowed, egress, None, traffic, host)
    return _with_fixes(index, decision, source, None, host=host)


def evaluate_dns(index: PolicyIndex, source: Endpoint) -> Decision:
    """Can the source reach the cluster DNS pods on UDP 53? Cached per (namespace, labels)."""
    found = index._dns.get(source.key)
    if found is None:
        decisions = [evaluate(index, source, pod, port=DNS_PORT, protocol="UDP") for pod in index.dns_pods]
        worst = next((d for d in decisions if not d.allowed), decisions[0])
        found = Decision(
            worst.allowed,
            worst.egress,
            worst.ingress,
            worst.traffic,
            f"{index.dns_pods[0].namespace}/{index.dns_pods[0].name} pods",
            dns=True,
            fixes=_dns_fixes(index, worst),
        )
        index._dns[source.key] = found
    return found


def evaluate_service(
    index: PolicyIndex, source: Endpoint, svc: ServiceInfo, *, port: int | None, hostname: str | None = None
) -> Decision | None:
    """Traffic to a Service port, judged against every workload behind it; None when no pod is known."""
    pods = index.service_pods(svc, hostname)
    if not pods:
        return None
    decisions = [evaluate(index, source, pod, **_translate(svc, port, pod, hostname)) for pod in pods]
    if len(decisions) == 1:
        return decisions[0]
    denied = [d for d in decisions if not d.allowed]
    first = denied[0] if denied else decisions[0]
    return Decision(
        first.allowed,
        first.egress,
        first.ingress,
        first.traffic,
        f"{svc.namespace}/{svc.name}",
        fixes=first.fixes,
        denied_pods=len(denied),
        pods=len(pods),
    )


def service_denial(
    index: PolicyIndex, source: Endpoint, svc: ServiceInfo, *, port: int | None, hostname: str | None = None
) -> Decision | None:
    """The decision when policies deny the Service traffic, else None.

    The audit asks this for every edge and nearly all pass: a plain yes/no per
    pod comes first, remembered per source pod class (:meth:`PolicyIndex.pod_class`),
    and the full :class:`Decision` is only built for a denial.
    """
    key = (index.pod_class(source), svc.namespace, svc.name, port, hostname)
    if key in index._passed:
        return None
    pods = index.service_pods(svc, hostname)
    if all(_passes(index, source, pod, Traffic(**_translate(svc, port, pod, hostname))) for pod in pods):
        index._passed.add(key)
        return None
    return evaluate_service(index, source, svc, port=port, hostname=hostname)


def _passes(index: PolicyIndex, source: Endpoint, target: Endpoint, traffic: Traffic) -> bool:
    """True when both sides admit the traffic outright (no notes to tell); False means: look closer."""
    sides: tuple[tuple[Endpoint, Direction, Endpoint], ...] = ((source, "egress", target), (target, "ingress", source))
    for pod, direction, other in sides:
        if pod.host_network:
            return False
        selecting = index.selecting(pod, direction)
        admits = (_policy_admits(index, p, direction, other, None, traffic, target) for p in selecting)
        if selecting and _Admission.YES not in admits:
            return False
    return True


def _selected_label_keys(policies: Iterable[Iterable[Policy]]) -> tuple[str, ...]:
    """Every label key a pod selector of these policies looks at (their own podSelector and their peers')."""
    keys: set[str] = set()
    for group in policies:
        for policy in group:
            selectors = [policy.pod_selector]
            selectors += [peer.pods for rule in (*policy.ingress, *policy.egress) for peer in rule.peers if peer.pods]
            for selector in selectors:
                keys.update(k for k, _ in selector.labels)
                keys.update(k for k, _, _ in selector.expressions)
    return tuple(sorted(keys))


def pod_traffic(svc: ServiceInfo, port: int | None, pod: Endpoint, *, hostname: str | None = None) -> Traffic:
    """What ``pod`` sees of a connection to the Service's ``port``: its own port (named targetPort resolved)."""
    return Traffic(**_translate(svc, port, pod, hostname))


def _translate(svc: ServiceInfo, port: int | None, pod: Endpoint, hostname: str | None) -> dict[str, Any]:
    """The Service port → the pod's port and protocol (a pod hostname or headless name skips the Service)."""
    for sp in svc.ports:
        if sp.port == port and not hostname:
            target = sp.target_port
            if isinstance(target, str):
                target = int(target) if target.isdigit() else pod.named_port(target, sp.protocol)
            return {"port": target if isinstance(target, int) else port, "protocol": sp.protocol}
    protocol = next((proto for _, n, proto in pod.ports if n == port), "TCP")
    return {"port": port, "protocol": protocol}


def _decide(
    index: PolicyIndex,
    pod: Endpoint,
    direction: Direction,
    other: Endpoint | None,
    host: str | None,
    traffic: Traffic,
    destination: Endpoint | None,
) -> DirectionDecision:
    if pod.host_network:
        return DirectionDecision(
            direction, pod, True, notes=(f"{pod.label} uses hostNetwork: policies do not isolate it",)
        )
    selecting = index.selecting(pod, direction)
    if not selecting:
        return DirectionDecision(direction, pod, True)
    verdicts = [(p, _policy_admits(index, p, direction, other, host, traffic, destination)) for p in selecting]
    best = max(a for _, a in verdicts)
    notes: list[str] = []
    refs = tuple(p.ref for p in selecting)
    if best is _Admission.YES:
        return DirectionDecision(direction, pod, True, refs, tuple(p.ref for p, a in verdicts if a is _Admission.YES))
    maybes = tuple(p.ref for p, a in verdicts if a >= _Admission.IPBLOCK_POD)
    if best is _Admission.MAYBE:
        notes.append(f"allowed only if {host} resolves into an ipBlock of {_refs(maybes, direction)}")
        return DirectionDecision(direction, pod, True, refs, maybes, tuple(notes))
    if best is _Admission.IPBLOCK_POD:
        notes.append(
            f"an ipBlock in {_refs(maybes, direction)} might cover the pod IPs; "
            "whether ipBlock applies to pod traffic depends on the network plugin"
        )
    if other is not None and other.host_network:
        notes.append(f"{other.label} uses hostNetwork: its traffic carries the node's IP, which pod selectors miss")
    return DirectionDecision(direction, pod, False, refs, (), tuple(notes))


def _policy_admits(
    index: PolicyIndex,
    policy: Policy,
    direction: Direction,
    other: Endpoint | None,
    host: str | None,
    traffic: Traffic,
    destination: Endpoint | None,
) -> _Admission:
    best = _Admission.NO
    for rule in policy.rules(direction):
        if rule.ports and not any(p.admits(traffic, destination) for p in rule.ports):
            continue
        if not rule.peers:
            return _Admission.YES
        for peer in rule.peers:
            best = max(best, _peer_admits(index, peer, policy.namespace, other, host))
            if best is _Admission.YES:
                return best
    return best


def _peer_admits(
    index: PolicyIndex, peer: Peer, policy_ns: str, other: Endpoint | None, host: str | None
) -> _Admission:
    if peer.ip_block is not None:
        if other is not None:
            return _Admission.IPBLOCK_POD
        assert host is not None
        if not is_ip_literal(host):
            return _Admission.MAYBE
        return _Admission.YES if peer.ip_block.contains(host.strip("[]")) else _Admission.NO
    if other is None or other.host_network:
        return _Admission.NO
    if peer.namespaces is None:
        in_namespace = other.namespace == policy_ns
    else:
        in_namespace = index.namespace_matches(peer.namespaces, other.namespace)
    pods_match = peer.pods is None or peer.pods.matches(other.labels)
    return _Admission.YES if in_namespace and pods_match else _Admission.NO


# -- fixes --------------------------------------------------------------------------------------


def _with_fixes(
    index: PolicyIndex, decision: Decision, source: Endpoint, target: Endpoint | None, *, host: str | None = None
) -> Decision:
    if decision.allowed:
        return decision
    ports = [{"port": decision.traffic.port, "protocol": decision.traffic.protocol}] if decision.traffic.port else []
    fixes: list[SuggestedRule] = []
    for side in decision.denied:
        if side.direction == "egress":
            peer = _peer_for(source.namespace, target) if target is not None else _ip_peer(host or "")
            rule = {"to": [peer], **({"ports": ports} if ports else {})}
            fixes.append(_place(index, side, rule, f"allow-{source.name}-to-{target.name if target else 'external'}"))
        else:
            assert target is not None
            rule = {"from": [_peer_for(target.namespace, source)], **({"ports": ports} if ports else {})}
            fixes.append(_place(index, side, rule, f"allow-{source.name}-to-{target.name}"))
    return Decision(
        decision.allowed,
        decision.egress,
        decision.ingress,
        decision.traffic,
        decision.peer,
        decision.dns,
        tuple(fixes),
        decision.denied_pods,
        decision.pods,
    )


def _peer_for(policy_ns: str, pod: Endpoint) -> dict[str, Any]:
    peer: dict[str, Any] = {}
    if pod.namespace != policy_ns:
        peer["namespaceSelector"] = {"matchLabels": {NAME_LABEL: pod.namespace}}
    peer["podSelector"] = {"matchLabels": pod.identifying_labels()}
    return peer


def _ip_peer(host: str) -> dict[str, Any]:
    if is_ip_literal(host):
        ip = ipaddress.ip_address(host.strip("[]"))
        return {"ipBlock": {"cidr": f"{ip}/{ip.max_prefixlen}"}}
    return {"ipBlock": {"cidr": "0.0.0.0/0"}}


def _place(
    index: PolicyIndex, side: DirectionDecision, rule: dict[str, Any], new_name: str, *, namespace_wide: bool = False
) -> SuggestedRule:
    """Add to the most specific denying policy that already has rules of this direction, else a new one.

    A rule added to a ``podSelector: {}`` policy opens the path for every pod of
    the namespace: right for namespace-wide needs (DNS), too wide for one edge.
    """
    pod = side.pod
    candidates = [
        p
        for p in index.selecting(pod, side.direction)
        if p.rules(side.direction) and p.pod_selector.empty == namespace_wide
    ]
    if candidates:
        best = max(candidates, key=lambda p: (len(p.pod_selector.labels) + len(p.pod_selector.expressions), p.ref))
        return SuggestedRule(pod.namespace, best.ref.name, side.direction, rule)
    selector = {} if namespace_wide else {"matchLabels": pod.identifying_labels()}
    policy = {"podSelector": selector, "policyTypes": [side.direction.capitalize()], side.direction: [rule]}
    return SuggestedRule(pod.namespace, new_name, side.direction, rule, policy)


def _dns_fixes(index: PolicyIndex, decision: Decision) -> tuple[SuggestedRule, ...]:
    """DNS is a namespace-wide need: one egress rule to the DNS pods, UDP and TCP 53."""
    fixes: list[SuggestedRule] = []
    for side in decision.denied:
        if side.direction != "egress":
            fixes.extend(f for f in decision.fixes if f.direction == side.direction)
            continue
        dns = index.dns_pods[0]
        peer = _peer_for("", dns)
        ports = [{"port": DNS_PORT, "protocol": "UDP"}, {"port": DNS_PORT, "protocol": "TCP"}]
        fixes.append(_place(index, side, {"to": [peer], "ports": ports}, "allow-dns", namespace_wide=True))
    return tuple(fixes)


def _flow(value: Mapping[str, Any]) -> str:
    text = yaml.safe_dump(dict(value), default_flow_style=True, sort_keys=False, width=10_000)
    return str(text).strip()
