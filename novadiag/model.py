"""Plain values that flow through the pipeline.

Everything here is a frozen dataclass or a closed ``Literal`` set, so a value can
be hashed, compared, put in a set and shared between threads without copies.
Raw Kubernetes JSON stays a ``dict`` (described by TypedDicts where a module
reads deep into it) until it is converted into these values at the edge of the
module that understands it.

The JSON shape of each value is the ``novadiag.audit/v1`` contract described in
``docs/report-contract.md``; ``to_dict`` methods produce exactly those fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, get_args

Status = Literal[
    "ok",
    "dns-unresolvable",
    "unknown-target",
    "port-mismatch",
    "no-endpoints",
    "blocked",
    "external",
    "unverified",
]
"""Verdict of one edge; the first failing layer wins, in the order listed in docs/report-contract.md.

``unverified``: the verdict depends on objects the audit could not read (RBAC),
so it is neither ``ok`` nor broken; ``detail`` names the missing permission.
"""

STATUSES: tuple[Status, ...] = get_args(Status)

DISPLAY_ORDER: dict[Status, int] = {
    "dns-unresolvable": 0,
    "unknown-target": 1,
    "port-mismatch": 2,
    "no-endpoints": 3,
    "blocked": 4,
    "unverified": 5,
    "ok": 6,
    "external": 7,
}
"""Broken first (in the order a reader fixes them), then unverified, then working, then external."""
assert set(DISPLAY_ORDER) == set(STATUSES)

BROKEN_STATUSES: frozenset[Status] = frozenset(
    {"dns-unresolvable", "unknown-target", "port-mismatch", "no-endpoints", "blocked"}
)

Severity = Literal["error", "warning", "info"]

SourceKind = Literal["cluster", "manifests", "snapshot", "lab"]
LIVE_SOURCE_KINDS: frozenset[SourceKind | None] = frozenset({"cluster", "lab"})

WORKLOAD_KINDS: tuple[str, ...] = (
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "Pod",
)

SNAPSHOT_KINDS: tuple[str, ...] = (
    "Namespace",
    "Service",
    "Endpoints",
    "EndpointSlice",
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "ConfigMap",
    "Secret",
    "NetworkPolicy",
    "ServiceAccount",
    "PersistentVolumeClaim",
    "Role",
    "RoleBinding",
    "Ingress",
    "IngressClass",
    "Gateway",
    "HTTPRoute",
    "GRPCRoute",
    "TLSRoute",
    "TCPRoute",
    "ReferenceGrant",
    "VirtualService",
    "DestinationRule",
    "ServiceEntry",
)
"""Kinds a snapshot holds, in the order they are listed from a cluster."""

ROUTING_KINDS: tuple[str, ...] = (
    "Ingress",
    "HTTPRoute",
    "GRPCRoute",
    "TLSRoute",
    "TCPRoute",
    "Gateway",
    "ReferenceGrant",
)
"""Kubernetes routing kinds (Ingress, the Gateway API): a consolidation copies them with the namespaces they name."""

ROUTE_KINDS: tuple[str, ...] = (*ROUTING_KINDS[:5], "VirtualService")
"""Routing objects that name Services as backends (the first five above, and Istio's VirtualService):
each backend is an edge with the object as its source."""

ISTIO_KINDS: tuple[str, ...] = ("VirtualService", "DestinationRule", "ServiceEntry")
"""Istio's routing kinds: judged, but not copied by a consolidation (its hosts are names, rewritten by hand)."""

OPTIONAL_KINDS: frozenset[str] = frozenset((*ROUTING_KINDS, *ISTIO_KINDS, "IngressClass"))
"""Kinds many clusters do not serve (Gateway API CRDs not installed): not served means none, not a gap.

IngressClass (cluster-scoped) only tells which controller follows an Ingress: without it, that is unknown."""


class RawObject(TypedDict, total=False):
    """Any Kubernetes object as JSON; modules that read deeper define their own."""

    apiVersion: str
    kind: str
    metadata: dict[str, Any]
    spec: dict[str, Any]
    status: dict[str, Any]
    data: dict[str, Any]


@dataclass(frozen=True, order=True)
class ObjectRef:
    """Names one Kubernetes object; ``namespace`` is None for cluster-scoped kinds."""

    kind: str
    namespace: str | None
    name: str

    def __str__(self) -> str:
        if self.namespace is None:
            return f"{self.kind} {self.name}"
        return f"{self.kind} {self.namespace}/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name}

    def to_target_dict(self) -> dict[str, Any]:
        """The contract's ``target``/``resolves_to`` shape: namespace and name only."""
        return {"namespace": self.namespace, "name": self.name}


@dataclass(frozen=True, order=True)
class Reference:
    """One place where a workload names a host: one env var, argument, script line or file key; one host.

    ``reference`` is the value as written with credentials redacted; the raw value
    never leaves the parser. ``port_env`` names the second variable when host and
    port are split across two (``DB_HOST`` + ``DB_PORT``). ``env`` is None when
    the host is not named in an env var (a command argument, a shell script, a
    mounted config file); ``location`` then says where inside it: ``args[3]``,
    the script's ``line 2``, or the key path inside a file (``exporters.otlp.endpoint``).
    """

    workload: ObjectRef
    container: str
    env: str | None
    origin: str
    reference: str
    host: str
    port: int | None
    scheme: str | None = None
    init_container: bool = False
    port_env: str | None = None
    startup: bool = False
    location: str | None = None

    @property
    def slot(self) -> str:
        """Where in the container the host is named: the env var, else the origin and location.

        >>> Reference(ObjectRef("Deployment", "a", "w"), "c", None, "args", "db:5432", "db", 5432,
        ...           location="args[2]").slot
        'args[2]'
        """
        if self.env is not None:
            return self.env
        if self.location is None:
            return self.origin
        if self.origin in ("command", "args", "init-script"):
            return self.location
        return f"{self.origin}:{self.location}"

    @property
    def namespace(self) -> str:
        return self.workload.namespace or "default"

    @property
    def routing(self) -> bool:
        """True when the source is a routing object (an Ingress or a route), not a workload's container."""
        return self.workload.kind in ROUTE_KINDS

    @property
    def edge_id(self) -> str:
        """Stable, readable id: one edge per (workload, container, slot, host, port); slot: env var or location."""
        port = "-" if self.port is None else str(self.port)
        w = self.workload
        return f"{w.namespace}/{w.kind.lower()}/{w.name}/{self.container}/{self.slot}/{self.host}:{port}"


ProbeDNS = Literal["ok", "nxdomain", "servfail", "timeout", "error", "not-run"]
"""``not-run``: the probe pod never observed this edge (not created, Pending, failed); ``error`` says why."""
ProbeConnect = Literal["ok", "refused", "timeout", "skipped"]
ProbeHealth = Literal["ok", "failed", "skipped"]


@dataclass(frozen=True)
class ProbeObservation:
    """What a probe pod saw for one edge, from the source namespace's DNS settings."""

    dns: ProbeDNS
    addresses: tuple[str, ...] = ()
    answered_by: str | None = None
    connect: ProbeConnect = "skipped"
    health: ProbeHealth = "skipped"
    agrees: bool | None = True
    """None when there is nothing to compare: the probe did not run, or the static verdict was unverified."""
    error: str | None = None
    tried: tuple[tuple[str, str], ...] = ()
    pod: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "dns": self.dns,
            "addresses": list(self.addresses),
            "answered_by": self.answered_by,
            "connect": self.connect,
            "health": self.health,
            "agrees": self.agrees,
            "error": self.error,
            "tried": [{"name": n, "result": r} for n, r in self.tried],
            "pod": self.pod,
        }


@dataclass(frozen=True)
class Edge:
    """One dependency edge with its verdict: the unit every report is made of."""

    reference: Reference
    status: Status
    detail: str
    target: ObjectRef | None = None
    resolves_to: ObjectRef | None = None
    fix: str | None = None
    probe: ProbeObservation | None = None
    predicted: Status | None = None
    verdict_from: Literal["static", "probe"] = "static"
    fix_host: str | None = None
    """The name a fix uses (``fix`` is the whole value to write); None when ``fix`` is not a name."""
    fix_port: int | None = None
    """The port a fix uses; with ``port_env`` set, the value for that variable."""

    @property
    def id(self) -> str:
        return self.reference.edge_id

    @property
    def source(self) -> ObjectRef:
        return self.reference.workload

    @property
    def broken(self) -> bool:
        return self.status in BROKEN_STATUSES

    @property
    def cross_namespace(self) -> bool:
        """True when the Service meant lives outside the source's namespace."""
        meant = self.target or self.resolves_to
        return meant is not None and meant.namespace != self.reference.namespace

    def _repr_html_(self) -> str:
        # The one import that runs up the layers: Jupyter asks the value itself for its HTML,
        # and the renderer lives with the report's; deferred so the model never loads it otherwise.
        from novadiag.report.html import edge_repr_html

        return edge_repr_html(self)

    def to_dict(self) -> dict[str, Any]:
        ref = self.reference
        return {
            "id": self.id,
            "source": {
                "kind": ref.workload.kind,
                "namespace": ref.workload.namespace,
                "name": ref.workload.name,
                "container": ref.container,
            },
            "env": ref.env,
            "origin": ref.origin,
            "location": ref.location,
            "reference": ref.reference,
            "host": ref.host,
            "port": ref.port,
            "target": None if self.target is None else self.target.to_target_dict(),
            "resolves_to": None if self.resolves_to is None else self.resolves_to.to_target_dict(),
            "cross_namespace": self.cross_namespace,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
            "fix_host": self.fix_host,
            "fix_port": self.fix_port,
            "probe": None if self.probe is None else self.probe.to_dict(),
            "predicted": self.predicted or self.status,
            "verdict_from": self.verdict_from,
            "init_container": ref.init_container,
            "port_env": ref.port_env,
        }


@dataclass(frozen=True)
class Finding:
    """Something worth telling that is not an edge verdict (ambiguity, skipped object...)."""

    severity: Severity
    code: str
    message: str
    object: ObjectRef | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "code": self.code,
            "object": None if self.object is None else self.object.to_dict(),
            "message": self.message,
        }


GapVerb = Literal["list", "create"]

NOT_SERVED = "the API server does not serve this kind"
"""A gap's reason when the kind does not exist on the cluster: nothing of it can be hidden."""


@dataclass(frozen=True)
class Gap:
    """A part of the cluster the run could not read (RBAC, errors), or a probe it could not create.

    ``namespace`` None: the kind was not read cluster-wide. ``read_in`` then
    names the namespaces it was read in after all (a namespace-scoped role
    lists them one by one); everywhere else it is unknown. ``verb`` is ``list``
    for what could not be read and ``create`` for probe pods that could not
    be created (the edges of that namespace keep their static verdicts).
    """

    kind: str
    namespace: str | None
    reason: str
    read_in: tuple[str, ...] = ()
    verb: GapVerb = "list"

    def covers(self, kind: str, namespace: str | None) -> bool:
        """Whether objects of ``kind`` in ``namespace`` went unread because of this gap."""
        if self.verb != "list" or self.kind != kind:
            return False
        if self.namespace is None:
            return namespace is None or namespace not in self.read_in
        return self.namespace == namespace

    def summary(self) -> str:
        """``Service in nova-auth not read: forbidden: …``, as every renderer prints a gap."""
        if self.namespace is not None:
            where = f" in {self.namespace}"
        elif self.read_in:
            where = f" outside {', '.join(self.read_in)}"
        else:
            where = ""
        if self.verb == "create":
            return f"probe {self.kind}{where} not created: {self.reason}"
        return f"{self.kind}{where} not read: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "reason": self.reason,
            "read_in": list(self.read_in),
            "verb": self.verb,
        }


@dataclass(frozen=True)
class SourceInfo:
    """Where a snapshot came from."""

    kind: SourceKind
    context: str | None = None
    cluster_domain: str = "cluster.local"
    locations: tuple[str, ...] = field(default=())
    saved_from: SourceKind | None = None
    """For a snapshot file: the source it was saved from (its Endpoints are as live as that source's)."""
    cluster_dns: str | None = None
    """The cluster DNS address the audit was given (``--cluster-dns``), for the audits a plan runs again."""

    @property
    def live(self) -> bool:
        """True when the objects were listed from a running cluster, directly or through a saved snapshot.

        Only then do Endpoints say which pods are ready; manifests carry none, so
        readiness has to be guessed from replica counts.
        """
        return self.kind in LIVE_SOURCE_KINDS or self.saved_from in LIVE_SOURCE_KINDS

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "context": self.context, "cluster_domain": self.cluster_domain}
