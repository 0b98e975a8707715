"""Edges → probe groups and the probe pods' specs (pure).

Why groups: every edge from one namespace whose pods share DNS settings sees
the same resolv.conf, so one probe pod answers for all of them. Probe pods are
therefore created per (namespace, dnsPolicy, dnsConfig, hostNetwork) — never per
edge — and each carries the deduplicated list of (host, port, protocol) checks
of its group in a ConfigMap next to the probe program.

The pod spec passes Pod Security "restricted" so it can run in locked-down
namespaces, and copies exactly the DNS-relevant fields of the source.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from novadiag.index import ClusterIndex
from novadiag.model import Edge, ObjectRef
from novadiag.workloads import Workload

MANAGED_BY = "app.kubernetes.io/managed-by"
RUN_ID = "novadiag.dev/run-id"
GROUP = "novadiag.dev/group"
CREATED = "novadiag.dev/created"
DEFAULT_IMAGE = "python:3.12-slim"
PROBE_PREFIX = "novadiag-probe-"


@dataclass(frozen=True)
class ProbeSettings:
    """Options of a probe run (``--probe-*`` on the CLI)."""

    image: str = DEFAULT_IMAGE
    image_pull_secret: str | None = None
    timeout: float = 60.0
    """Seconds one probe pod may take from its creation (also its ``activeDeadlineSeconds``)."""
    check_timeout: float = 3.0
    concurrency: int = 8
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, Any]] = ()
    probe_external: bool = False


@dataclass(frozen=True)
class Check:
    """One (host, port, protocol) to test; several edges may share it."""

    id: str
    host: str
    port: int | None
    protocol: str
    edge_ids: tuple[str, ...]
    request: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The probe program's check: host, port, protocol, and for requests method/path/body/expectations."""
        return {"id": self.id, "host": self.host, "port": self.port, "protocol": self.protocol, **self.request}


class RouteProbe(Protocol):
    """Where and what to probe for one routing edge (made by :mod:`novadiag.routing.dataplane`).

    The probe pod of the controller's ``namespace``, with the DNS settings of
    the controller's ``pod_spec``, checks ``host`` (the backend Service's FQDN) on ``port``.
    """

    @property
    def namespace(self) -> str: ...

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int | None: ...

    @property
    def pod_spec(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class ProbeGroup:
    """Edges that one probe pod checks: same namespace, same DNS settings."""

    namespace: str
    dns: Mapping[str, Any]
    checks: tuple[Check, ...]
    sources: tuple[ObjectRef, ...]

    @property
    def edge_ids(self) -> tuple[str, ...]:
        return tuple(e for c in self.checks for e in c.edge_ids)


def group_edges(
    edges: Iterable[Edge],
    workloads: Mapping[ObjectRef, Workload],
    index: ClusterIndex,
    settings: ProbeSettings | None = None,
    routes: Mapping[str, RouteProbe] | None = None,
) -> list[ProbeGroup]:
    """Group probe-able edges by (namespace, DNS settings); external hosts only when asked.

    A routing edge is probed only when ``routes`` (by edge id) says from where: it
    joins the probe pod of its controller's namespace.
    """
    settings = settings or ProbeSettings()
    routes = routes or {}
    buckets: dict[tuple[str, str], dict[str, Any]] = {}
    for edge in edges:
        if edge.status == "external" and not settings.probe_external:
            continue
        where = _probe_point(edge, workloads, routes)
        if where is None:
            continue
        namespace, dns, host, port = where
        key = (namespace, json.dumps(dns, sort_keys=True))
        bucket = buckets.setdefault(key, {"dns": dns, "checks": {}, "sources": set()})
        bucket["sources"].add(edge.source)
        check_key = (host, port, protocol_of(edge, index, port))
        bucket["checks"].setdefault(check_key, []).append(edge.id)
    groups = []
    for (namespace, _), bucket in sorted(buckets.items()):
        checks = tuple(
            Check(f"c{i}", host, port, proto, tuple(ids))
            for i, ((host, port, proto), ids) in enumerate(sorted(bucket["checks"].items(), key=_check_order))
        )
        groups.append(ProbeGroup(namespace, bucket["dns"], checks, tuple(sorted(bucket["sources"]))))
    return groups


def _probe_point(
    edge: Edge, workloads: Mapping[ObjectRef, Workload], routes: Mapping[str, RouteProbe]
) -> tuple[str, dict[str, Any], str, int | None] | None:
    """(namespace, DNS fields, host, port) an edge is checked with; None when it is not probed."""
    route = routes.get(edge.id)
    if route is not None:
        return route.namespace, dns_fields(route.pod_spec), route.host, route.port
    workload = workloads.get(edge.source)
    if workload is None:
        return None
    return edge.reference.namespace, dns_fields(workload.pod_spec), edge.reference.host, edge.reference.port


def _check_order(item: tuple[tuple[str, int | None, str], list[str]]) -> tuple[str, int, str]:
    (host, port, proto), _ = item
    return (host, port or 0, proto)


def dns_fields(pod_spec: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a pod spec that decide its resolv.conf and network.

    ``dnsPolicy: ClusterFirst`` is the default an API server writes into every
    pod spec: it is left out, so a pod spec written without it (a controller's,
    a manifest's) shares the probe pod of one read back from the cluster.
    """
    out: dict[str, Any] = {}
    for name in ("dnsPolicy", "dnsConfig", "hostNetwork"):
        if pod_spec.get(name) not in (None, False, "ClusterFirst"):
            out[name] = pod_spec[name]
    return out


def protocol_of(edge: Edge, index: ClusterIndex, checked: int | None = None) -> str:
    """http or grpc when the target port is named (or appProtocol'd) so; else tcp.

    ``checked``: the port checked, when it is not the one written (a routing edge's named port, resolved).
    """
    wanted = edge.reference.port if checked is None else checked
    target = edge.resolves_to or edge.target
    if target is None or target.namespace is None:
        return "tcp"
    svc = index.service(target.namespace, target.name)
    if svc is None:
        return "tcp"
    for sp in svc.ports:
        if wanted in (sp.port, sp.target_port) or (wanted is None and len(svc.ports) == 1):
            hint = (sp.app_protocol or sp.name or "").lower()
            if hint.startswith("grpc") or hint.startswith("kubernetes.io/h2c"):
                return "grpc"
            if hint.startswith("http") and not hint.startswith("https"):
                return "http"
    return "tcp"


def checks_document(group: ProbeGroup, run_id: str, settings: ProbeSettings) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "group": group.namespace,
        "timeout": settings.check_timeout,
        "checks": [c.to_dict() for c in group.checks],
    }


def resource_names(run_id: str, index: int) -> str:
    return f"{run_prefix(run_id)}{index}"


def run_prefix(run_id: str) -> str:
    """How the names of one run's probe objects begin: ``novadiag cleanup`` deletes nothing else."""
    return f"{PROBE_PREFIX}{run_id}-"


PROBE_LABELS = {MANAGED_BY: "novadiag", "app.kubernetes.io/name": "novadiag-probe"}
"""What NetworkPolicies see of a probe pod (the run and group labels are never selected by a cluster's own)."""


def labels(run_id: str, index: int) -> dict[str, str]:
    return {**PROBE_LABELS, RUN_ID: run_id, GROUP: str(index)}


def configmap_spec(group: ProbeGroup, run_id: str, index: int, settings: ProbeSettings, created: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": resource_names(run_id, index),
            "namespace": group.namespace,
            "labels": labels(run_id, index),
            "annotations": {CREATED: created},
        },
        "data": {
            "probe.py": probe_program(),
            "checks.json": json.dumps(checks_document(group, run_id, settings)),
        },
    }


def pod_spec(group: ProbeGroup, run_id: str, index: int, settings: ProbeSettings, created: str) -> dict[str, Any]:
    """A restricted, self-deleting-on-deadline probe pod with the source's DNS settings."""
    name = resource_names(run_id, index)
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": max(5, int(settings.timeout)),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 0,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "runAsGroup": 65534,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "probe",
                "image": settings.image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["python3", "/probe/probe.py", "/probe/checks.json"],
                "env": [
                    {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
                    # the probe connects from its own address (see probe.py source_address)
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                ],
                "volumeMounts": [{"name": "probe", "mountPath": "/probe", "readOnly": True}],
                "resources": {
                    "requests": {"cpu": "10m", "memory": "32Mi"},
                    "limits": {"cpu": "200m", "memory": "128Mi"},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "runAsNonRoot": True,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
        "volumes": [{"name": "probe", "configMap": {"name": name}}],
        **group.dns,
    }
    if settings.image_pull_secret:
        spec["imagePullSecrets"] = [{"name": settings.image_pull_secret}]
    if settings.node_selector:
        spec["nodeSelector"] = dict(settings.node_selector)
    if settings.tolerations:
        spec["tolerations"] = [dict(t) for t in settings.tolerations]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": group.namespace,
            "labels": labels(run_id, index),
            "annotations": {CREATED: created},
        },
        "spec": spec,
    }


def probe_program() -> str:
    """The probe program's source: shipped in the wheel, or from the repository checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_probe" / "probe.py", package.parent / "probes" / "probe.py"):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    raise FileNotFoundError("probe program not found (neither novadiag/_probe/probe.py nor probes/probe.py)")
