"""NetworkPolicies and pods as values: what a policy says, parsed once from the raw object.

A raw ``networking.k8s.io/v1`` NetworkPolicy becomes a frozen :class:`Policy`
(selectors, peers, port rules, with ``policyTypes`` filled in as the API server
defaults them), and a pod template becomes an :class:`Endpoint` (namespace,
labels, container ports, hostNetwork): the two things every policy question is
asked about. Which traffic the values admit is :mod:`novadiag.netpol.evaluation`;
how to rewrite them for a namespace move is :mod:`novadiag.netpol.rewrite`.

Parsing is lenient where the API server is strict: a selector with an unknown
operator, or a peer with nothing in it, would be rejected on create, so here it
parses as one that selects nothing rather than failing the whole audit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from novadiag.model import ObjectRef
from novadiag.selector import NAME_LABEL, Selector
from novadiag.snapshot import Snapshot
from novadiag.workloads import Workload

Direction = Literal["ingress", "egress"]
DIRECTIONS: tuple[Direction, ...] = ("ingress", "egress")
DNS_NAMESPACE = "kube-system"
DNS_LABELS: Mapping[str, str] = {"k8s-app": "kube-dns"}
DNS_PORT = 53
_IDENTIFYING = (("app.kubernetes.io/name", "app.kubernetes.io/instance"), ("app",), ("k8s-app",), ("name",))
_IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network



# -- policies as values ----------------------------------------------------------------------


@dataclass(frozen=True)
class IPBlock:
    cidr: _IPNet
    excepted: tuple[_IPNet, ...] = ()

    def contains(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        if ip.version != self.cidr.version or ip not in self.cidr:
            return False
        return not any(ip.version == e.version and ip in e for e in self.excepted)


@dataclass(frozen=True)
class Peer:
    """One ``from``/``to`` entry; ``pods`` None means the peer has no podSelector."""

    pods: Selector | None = None
    namespaces: Selector | None = None
    ip_block: IPBlock | None = None


@dataclass(frozen=True)
class PortRule:
    protocol: str = "TCP"
    port: int | str | None = None
    end_port: int | None = None

    def admits(self, traffic: Traffic, destination: Endpoint | None) -> bool:
        if self.protocol != traffic.protocol:
            return False
        if self.port is None or traffic.port is None:
            return True
        if isinstance(self.port, str):
            return destination is not None and destination.named_port(self.port, self.protocol) == traffic.port
        if self.end_port is not None:
            return self.port <= traffic.port <= self.end_port
        return self.port == traffic.port


@dataclass(frozen=True)
class Rule:
    """An ingress or egress rule; empty ``peers``/``ports`` admit all."""

    peers: tuple[Peer, ...] = ()
    ports: tuple[PortRule, ...] = ()


@dataclass(frozen=True)
class Policy:
    ref: ObjectRef
    pod_selector: Selector
    types: frozenset[Direction]
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()

    @property
    def namespace(self) -> str:
        return self.ref.namespace or "default"

    def rules(self, direction: Direction) -> tuple[Rule, ...]:
        return self.ingress if direction == "ingress" else self.egress


def parse_policy(obj: Mapping[str, Any]) -> Policy:
    """A raw NetworkPolicy as a value, with its implied policyTypes filled in."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    ingress = tuple(_rule(r, "from") for r in spec.get("ingress") or () if isinstance(r, Mapping))
    egress = tuple(_rule(r, "to") for r in spec.get("egress") or () if isinstance(r, Mapping))
    return Policy(
        ref=ObjectRef("NetworkPolicy", meta.get("namespace") or "default", str(meta.get("name"))),
        pod_selector=Selector.parse(spec.get("podSelector") or {}),
        types=policy_types(spec),
        ingress=ingress,
        egress=egress,
    )


def policy_types(spec: Mapping[str, Any]) -> frozenset[Direction]:
    """Explicit ``policyTypes``, or as defaulted: Ingress, plus Egress when egress rules exist."""
    declared = spec.get("policyTypes")
    if declared:
        return frozenset(d for d in DIRECTIONS if d.capitalize() in declared)
    return frozenset({"ingress", "egress"} if spec.get("egress") else {"ingress"})


def _rule(raw: Mapping[str, Any], peers_key: str) -> Rule:
    peers = tuple(_peer(p) for p in raw.get(peers_key) or () if isinstance(p, Mapping))
    ports = tuple(_port(p) for p in raw.get("ports") or () if isinstance(p, Mapping))
    return Rule(peers, ports)


def _peer(raw: Mapping[str, Any]) -> Peer:
    pods = Selector.parse(raw["podSelector"]) if raw.get("podSelector") is not None else None
    nss = Selector.parse(raw["namespaceSelector"]) if raw.get("namespaceSelector") is not None else None
    block = raw.get("ipBlock")
    ip_block = None
    if isinstance(block, Mapping) and block.get("cidr"):
        try:
            ip_block = IPBlock(
                ipaddress.ip_network(str(block["cidr"]), strict=False),
                tuple(ipaddress.ip_network(str(e), strict=False) for e in block.get("except") or ()),
            )
        except ValueError:
            ip_block = None
    if pods is None and nss is None and ip_block is None:
        return Peer(pods=Selector(valid=False))  # an invalid peer matches nothing
    return Peer(pods, nss, ip_block)


def _port(raw: Mapping[str, Any]) -> PortRule:
    port = raw.get("port")
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    end = raw.get("endPort")
    return PortRule(
        protocol=str(raw.get("protocol") or "TCP").upper(),
        port=port if isinstance(port, int | str) else None,
        end_port=end if isinstance(end, int) and isinstance(port, int) else None,
    )


# -- pods as policies see them ---------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Endpoint:
    """A pod template as policies see it: namespace, labels, container ports."""

    namespace: str
    labels: Mapping[str, str]
    name: str
    ports: tuple[tuple[str, int, str], ...] = ()
    host_network: bool = False
    selector: Mapping[str, str] | None = None
    key: tuple[str, frozenset[tuple[str, str]], bool] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", (self.namespace, frozenset(self.labels.items()), self.host_network))

    @classmethod
    def from_workload(cls, workload: Workload) -> Endpoint:
        ports: list[tuple[str, int, str]] = []
        for container in workload.pod_spec.get("containers") or ():
            for p in container.get("ports") or ():
                if isinstance(p, Mapping) and isinstance(p.get("containerPort"), int):
                    ports.append((str(p.get("name") or ""), p["containerPort"], str(p.get("protocol") or "TCP")))
        return cls(workload.namespace, workload.pod_labels, workload.ref.name, tuple(ports), workload.host_network)

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}"

    def named_port(self, name: str, protocol: str) -> int | None:
        return next((n for pname, n, proto in self.ports if pname == name and proto == protocol), None)

    def identifying_labels(self) -> dict[str, str]:
        """The labels a rule should name: the selector that built it, or the usual app labels."""
        if self.selector:
            return dict(self.selector)
        for keys in _IDENTIFYING:
            picked = {k: self.labels[k] for k in keys if k in self.labels}
            if picked:
                return picked
        return dict(self.labels)


@dataclass(frozen=True)
class Traffic:
    """What the destination pod sees: protocol and port after any Service translation."""

    protocol: str = "TCP"
    port: int | None = None

    def __str__(self) -> str:
        return f"{self.protocol} {self.port}" if self.port is not None else f"{self.protocol} (any port)"


def namespace_labels(snapshot: Snapshot) -> dict[str, dict[str, str]]:
    """Every namespace of the snapshot with its labels, ``kubernetes.io/metadata.name`` included."""
    out = {ns: {NAME_LABEL: ns} for ns in snapshot.namespaces}
    for obj in snapshot.of("Namespace"):
        name = str(obj["metadata"]["name"])
        labels = {str(k): str(v) for k, v in (obj["metadata"].get("labels") or {}).items()}
        out[name] = {**labels, NAME_LABEL: name}
    return out
