"""Which Service a host name *means*, independent of whether it resolves.

A verdict needs two facts: the object the author of an env var meant, and what
the source pod's DNS actually gives. The first is inferred here from the name's
shape and the cluster's Services: ``content-service`` means the one Service of
that name (preferring the caller's namespace), ``svc.ns`` and ``svc.ns.svc``
name a namespace, ``host.svc.ns`` a StatefulSet pod under a headless Service
(``host.svc`` too, from any namespace when a headless Service of that name
names pods), and a name ending in the cluster domain is in-cluster by definition. Anything
else with dots is outside the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from novadiag.addresses import is_ip_literal
from novadiag.index import ClusterIndex, ServiceInfo, remember


@dataclass(frozen=True)
class Intent:
    """The Service a name means; ``in_cluster`` False for external hosts."""

    in_cluster: bool
    service: ServiceInfo | None = None
    hostname: str | None = None
    missing_namespace: str | None = None
    candidates: tuple[ServiceInfo, ...] = ()

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1


EXTERNAL = Intent(in_cluster=False)


def intended_target(host: str, source_namespace: str, index: ClusterIndex) -> Intent:
    """Infer the meant Service from the name's shape; never raises (memoized on the index)."""
    key = ("intent", host, source_namespace)
    found: Intent | None = index.memo.get(key)
    if found is None:
        found = remember(index.memo, key, _intended_target(host, source_namespace, index))
    return found


def _intended_target(host: str, source_namespace: str, index: ClusterIndex) -> Intent:
    name = host.rstrip(".").lower()
    forced = False
    zone = index.cluster_domain
    if name.endswith("." + zone):
        name, forced = name[: -len(zone) - 1], True
    if is_ip_literal(name):
        svc = index.services_by_ip.get(name.strip("[]"))
        return Intent(True, svc) if svc else EXTERNAL
    labels = name.split(".")
    intent = _by_shape(labels, source_namespace, index)
    if intent is None:
        return Intent(True) if forced else EXTERNAL
    return intent


def _by_shape(labels: list[str], source_ns: str, index: ClusterIndex) -> Intent | None:
    if len(labels) == 1:
        return _short_name(labels[0], source_ns, index)
    if len(labels) == 2:
        return _two_labels(labels[0], labels[1], source_ns, index)
    if len(labels) == 3 and labels[2] == "svc":
        return _in_namespace(labels[0], labels[1], index)
    if len(labels) == 3 and labels[2] in index.namespaces:
        return _pod_hostname(labels[0], labels[1], labels[2], index)
    if len(labels) == 4 and labels[3] == "svc":
        return _pod_hostname(labels[0], labels[1], labels[2], index) or Intent(True)
    return None


def _short_name(name: str, source_ns: str, index: ClusterIndex) -> Intent:
    candidates = index.services_by_name.get(name, [])
    own = index.service(source_ns, name)
    if own is not None:
        return Intent(True, own, candidates=tuple(candidates))
    if not candidates:
        return Intent(True)
    ordered = sorted(candidates, key=lambda s: s.namespace)
    return Intent(True, ordered[0], candidates=tuple(ordered))


def _two_labels(first: str, second: str, source_ns: str, index: ClusterIndex) -> Intent | None:
    if second in index.namespaces:
        return _in_namespace(first, second, index)
    if index.service(source_ns, second) is not None:
        return _pod_hostname(first, second, source_ns, index) or Intent(True)
    elsewhere = _pod_of_headless_elsewhere(first, second, index)
    if elsewhere is not None:
        return elsewhere
    if first in index.services_by_name:
        return Intent(True, missing_namespace=second)
    return None


def _in_namespace(name: str, namespace: str, index: ClusterIndex) -> Intent:
    if namespace not in index.namespaces:
        return Intent(True, missing_namespace=namespace)
    return Intent(True, index.service(namespace, name))


def _pod_of_headless_elsewhere(host: str, service: str, index: ClusterIndex) -> Intent | None:
    """``kafka-0.kafka-headless`` written in another namespace than the Service's: a pod name, not a domain.

    Only a headless Service that gives its pods names (a StatefulSet's
    ``serviceName``, or live endpoints with hostnames) makes the second label a
    Service; the one that has a pod of that name wins, then the first namespace.
    """
    named = [
        svc
        for svc in index.services_by_name.get(service, ())
        if svc.headless and (index.stateful_sets_of(svc) or index.hostnames(svc.namespace, svc.name))
    ]
    if not named:
        return None
    ordered = sorted(named, key=lambda s: (host not in index.hostnames(s.namespace, s.name), s.namespace))
    return Intent(True, ordered[0], hostname=host, candidates=tuple(ordered))


def _pod_hostname(host: str, service: str, namespace: str, index: ClusterIndex) -> Intent | None:
    svc = index.service(namespace, service)
    if svc is None or not svc.headless:
        return None
    return Intent(True, svc, hostname=host)


