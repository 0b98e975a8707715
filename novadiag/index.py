"""Indexes over a Snapshot, built once, so per-edge work is a dict lookup.

A cluster with 20,000 Services and 50,000 workloads makes hundreds of thousands
of edges; anything that scans Services or namespaces per edge is quadratic and
slow. Every question the DNS model and the verdicts ask — "which Services are
named X", "what answers for this FQDN", "which pods does this selector pick" —
is answered from the maps built here in one pass over the snapshot.

The same questions come back edge after edge (every workload of a namespace
names the same few Services; the musl lookup of a name repeats the glibc one),
so the index also keeps small memos for the DNS model, the target inference and
selector matches. They assume what ``build_index`` returns is not changed
afterwards, and are bounded (:data:`MEMO_LIMIT` entries, then cleared) so a
huge cluster does not pay for them in memory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from novadiag.model import ObjectRef
from novadiag.snapshot import Snapshot
from novadiag.workloads import Workload

MEMO_LIMIT = 1 << 15
"""Entries a memo keeps before it starts over; references of one namespace come together."""

V = TypeVar("V")


def remember(memo: dict[Hashable, V], key: Hashable, value: V) -> V:
    """Store ``value`` under ``key`` in a bounded memo and return it."""
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[key] = value
    return value


@dataclass(frozen=True)
class ServicePort:
    name: str | None
    port: int
    target_port: int | str | None
    protocol: str
    app_protocol: str | None = None


@dataclass(frozen=True)
class ServiceInfo:
    """The parts of a Service that DNS and verdicts care about."""

    ref: ObjectRef
    type: str
    cluster_ip: str | None
    ports: tuple[ServicePort, ...]
    selector: Mapping[str, str] | None
    external_name: str | None = None

    @property
    def namespace(self) -> str:
        return self.ref.namespace or "default"

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def headless(self) -> bool:
        return self.type != "ExternalName" and self.cluster_ip in ("None", "none")


@dataclass(frozen=True)
class EndpointInfo:
    """Ready addresses of a Service as a live cluster reports them."""

    ready: tuple[str, ...]
    hostnames: frozenset[str]


@dataclass
class ClusterIndex:
    """Lookups over one snapshot; build with :func:`build_index`."""

    cluster_domain: str
    namespaces: frozenset[str]
    services: dict[tuple[str, str], ServiceInfo] = field(default_factory=dict)
    services_by_name: dict[str, list[ServiceInfo]] = field(default_factory=dict)
    services_by_ip: dict[str, ServiceInfo] = field(default_factory=dict)
    workloads_by_ns: dict[str, list[Workload]] = field(default_factory=dict)
    static_hostnames: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    stateful_sets: dict[tuple[str, str], list[Workload]] = field(default_factory=dict)
    """StatefulSets per (namespace, headless Service) that names them in ``serviceName`` and selects their pods."""
    endpoints: dict[tuple[str, str], EndpointInfo] = field(default_factory=dict)
    live: bool = False
    memo: dict[Hashable, Any] = field(default_factory=dict, repr=False, compare=False)
    """Answers of :mod:`novadiag.resolver` and :mod:`novadiag.targets` (see the module docstring)."""
    _selected: dict[tuple[str, str], tuple[Workload, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def service(self, namespace: str, name: str) -> ServiceInfo | None:
        return self.services.get((namespace, name))

    def hostnames(self, namespace: str, service: str) -> set[str]:
        """Per-pod DNS hostnames under a headless Service (StatefulSet pods, live endpoints)."""
        names = set(self.static_hostnames.get((namespace, service), ()))
        live = self.endpoints.get((namespace, service))
        if live is not None:
            names |= live.hostnames
        return names

    def stateful_sets_of(self, svc: ServiceInfo) -> list[Workload]:
        """The StatefulSets whose pods get DNS names under ``svc`` (``POD.SVC.NS.svc.<zone>``)."""
        return list(self.stateful_sets.get((svc.namespace, svc.name), ()))

    def selected_workloads(self, svc: ServiceInfo) -> list[Workload]:
        """Workloads in the Service's namespace whose pod template its selector matches."""
        if not svc.selector:
            return []
        key = (svc.namespace, svc.name)
        indexed = self.services.get(key) is svc  # a ServiceInfo built elsewhere may select differently
        found = self._selected.get(key) if indexed else None
        if found is None:
            selector = svc.selector.items()
            found = tuple(
                w
                for w in self.workloads_by_ns.get(svc.namespace, ())
                if all(w.pod_labels.get(k) == v for k, v in selector)
            )
            if indexed:
                self._selected[key] = found
        return list(found)


API_SERVER_SERVICE = ServiceInfo(
    ref=ObjectRef("Service", "default", "kubernetes"),
    type="ClusterIP",
    cluster_ip=None,
    ports=(ServicePort("https", 443, 6443, "TCP"),),
    selector=None,
)
"""``default/kubernetes``: the API server's Service, which every cluster has whether or not it was listed."""


def build_index(snapshot: Snapshot, *, cluster_domain: str | None = None) -> ClusterIndex:
    """One pass over Services, workloads and endpoints.

    Manifests never declare ``default/kubernetes`` (the API server makes it), so
    it is added when the snapshot lacks it: ``kubernetes.default.svc`` is always
    there, and a pod that talks to the API server has no broken edge for it.
    """
    index = ClusterIndex(
        cluster_domain=(cluster_domain or snapshot.source.cluster_domain).strip(".").lower(),
        namespaces=snapshot.namespaces | {"default"},
        live=snapshot.source.live,
    )
    by_name: dict[str, list[ServiceInfo]] = defaultdict(list)
    listed = [service_info(obj) for obj in snapshot.of("Service")]
    if not any(info.ref == API_SERVER_SERVICE.ref for info in listed):
        listed.append(API_SERVER_SERVICE)
    for info in listed:
        index.services[(info.namespace, info.name)] = info
        by_name[info.name].append(info)
        if info.cluster_ip and info.cluster_ip not in ("None", "none"):
            index.services_by_ip[info.cluster_ip] = info
    index.services_by_name = dict(by_name)
    by_ns: dict[str, list[Workload]] = defaultdict(list)
    for workload in snapshot.workloads:
        by_ns[workload.namespace].append(workload)
        if _names_pods_under(workload, index):
            assert workload.service_name is not None
            key = (workload.namespace, workload.service_name)
            index.stateful_sets.setdefault(key, []).append(workload)
            hosts = index.static_hostnames.setdefault(key, set())
            hosts.update(f"{workload.ref.name}-{i}" for i in range(workload.replicas))
    index.workloads_by_ns = dict(by_ns)
    index.endpoints = _endpoints(snapshot)
    return index


def _names_pods_under(workload: Workload, index: ClusterIndex) -> bool:
    """Whether the StatefulSet's pods get hostnames under its ``serviceName``.

    The pod records come from the Service's endpoints, so the Service must exist,
    be headless and select the pods; a ``serviceName`` alone names nothing.
    """
    if workload.ref.kind != "StatefulSet" or not workload.service_name:
        return False
    svc = index.service(workload.namespace, workload.service_name)
    if svc is None or not svc.headless or not svc.selector:
        return False
    return all(workload.pod_labels.get(k) == v for k, v in svc.selector.items())


def service_info(obj: Mapping[str, Any]) -> ServiceInfo:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    ports = tuple(
        ServicePort(
            name=p.get("name"),
            port=int(p.get("port", 0) or 0),
            target_port=p.get("targetPort", p.get("port")),
            protocol=str(p.get("protocol") or "TCP"),
            app_protocol=p.get("appProtocol"),
        )
        for p in spec.get("ports") or ()
        if isinstance(p, Mapping) and isinstance(p.get("port"), int)
    )
    selector = spec.get("selector")
    return ServiceInfo(
        ref=ObjectRef("Service", meta.get("namespace") or "default", str(meta.get("name"))),
        type=str(spec.get("type") or "ClusterIP"),
        cluster_ip=spec.get("clusterIP"),
        ports=ports,
        selector={str(k): str(v) for k, v in selector.items()} if isinstance(selector, Mapping) else None,
        external_name=spec.get("externalName"),
    )


def _endpoints(snapshot: Snapshot) -> dict[tuple[str, str], EndpointInfo]:
    """Ready addresses per Service: EndpointSlices when present, else Endpoints."""
    ready: dict[tuple[str, str], list[str]] = defaultdict(list)
    hosts: dict[tuple[str, str], set[str]] = defaultdict(set)
    seen_slices: set[tuple[str, str]] = set()
    for sl in snapshot.of("EndpointSlice"):
        meta = sl.get("metadata") or {}
        svc = (meta.get("labels") or {}).get("kubernetes.io/service-name")
        if not svc:
            continue
        key = (meta.get("namespace") or "default", svc)
        seen_slices.add(key)
        hosts.setdefault(key, set())
        for ep in sl.get("endpoints") or ():  # type: ignore[attr-defined]
            if (ep.get("conditions") or {}).get("ready", True):
                ready[key].extend(ep.get("addresses") or ())
            if ep.get("hostname"):
                hosts[key].add(ep["hostname"])
    for ep in snapshot.of("Endpoints"):
        meta = ep.get("metadata") or {}
        key = (meta.get("namespace") or "default", str(meta.get("name")))
        if key in seen_slices:
            continue
        hosts.setdefault(key, set())
        for subset in ep.get("subsets") or ():  # type: ignore[attr-defined]
            for addr in subset.get("addresses") or ():
                ready[key].append(addr.get("ip", ""))
                if addr.get("hostname"):
                    hosts[key].add(addr["hostname"])
    keys = set(ready) | set(hosts)
    return {k: EndpointInfo(tuple(ready.get(k, ())), frozenset(hosts.get(k, ()))) for k in keys}
