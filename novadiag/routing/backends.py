"""One backend of a routing object, judged: the Service it names, its port, its ready endpoints.

An Ingress or a Gateway API route names a Service by namespace and name, not
by a DNS name: the controller looks the Service up through the API, so there
is no resolver and no search list here. What can still break is the same as
for an env var: the Service does not exist (``unknown-target``), the port is
not one it exposes (``port-mismatch``), no pod is ready behind it
(``no-endpoints``), and, for routes, the Gateway API's own rules refuse the
reference (``blocked``: a missing ReferenceGrant, a Gateway that does not
accept the route). An ExternalName backend is judged by the Service at the end
of its alias chain, as DNS would answer it.

Each backend becomes a :class:`~novadiag.model.Reference` whose ``workload``
is the routing object, ``container`` is empty, ``env`` None, ``origin`` the
kind in lower case and ``location`` the path of the backend in the object.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from novadiag.index import ServiceInfo
from novadiag.model import Edge, ObjectRef, Reference, Status
from novadiag.resolver import follow_aliases
from novadiag.verdicts import VerdictContext


@dataclass(frozen=True)
class Backend:
    """A Service named by a routing object: where, which, and which port (number, name, or unset)."""

    source: ObjectRef
    location: str
    namespace: str
    name: str
    port: int | str | None
    name_field: str
    """Where the Service's name is written, relative to ``location`` (for fixes)."""
    port_field: str

    @property
    def host(self) -> str:
        """The Service's name, with its namespace when that is not the routing object's own."""
        return self.name if self.namespace == self.source.namespace else f"{self.name}.{self.namespace}"

    def reference(self) -> Reference:
        written = self.host if self.port is None else f"{self.host}:{self.port}"
        return Reference(
            workload=self.source,
            container="",
            env=None,
            origin=self.source.kind.lower(),
            reference=written,
            host=self.host,
            port=self.port if isinstance(self.port, int) else None,
            location=self.location,
        )

    @property
    def label(self) -> str:
        return f"{self.source} {self.location}"


@dataclass(frozen=True)
class Refusal:
    """The Gateway API's own refusal of a route's backend: why, what to add or change, what it rests on."""

    detail: str
    fix: str
    read: tuple[tuple[str, str], ...] = ()
    """(kind, namespace) of the objects whose absence the refusal rests on: unread (RBAC), it is unverified."""


def judge_backend(backend: Backend, ctx: VerdictContext, refusal: Refusal | None = None) -> Edge:
    """The verdict of one backend, first failing layer first (docs/report-contract.md order)."""
    ref = backend.reference()
    svc = ctx.index.service(backend.namespace, backend.name)
    if svc is None:
        return _missing(backend, ref, ctx)
    field = f"{backend.location}.{backend.port_field}"
    return judge_service(ref, backend.label, svc, backend.port, field, ctx, refusal)


def judge_service(
    ref: Reference,
    label: str,
    svc: ServiceInfo,
    port: int | str | None,
    port_field: str,
    ctx: VerdictContext,
    refusal: Refusal | None = None,
) -> Edge:
    """The layers after the Service is found: its alias chain, the port, ready endpoints, then a refusal."""
    chain = follow_aliases(svc, ctx.index)
    if chain.final is None:
        detail = f"{label} names ExternalName Service {_label(svc)}, whose chain {chain.describe()} " + (
            "loops" if chain.loop else "ends at a Service that does not exist"
        )
        return Edge(ref, "dns-unresolvable", detail, svc.ref, None, "point the alias at a Service that is not an alias")
    reached = chain.final
    via = "" if reached is svc else f" via ExternalName {_label(svc)}"
    port_problem = _port_problem(label, port, port_field, reached)
    if port_problem is not None:
        detail, fix = port_problem
        return Edge(ref, "port-mismatch", detail + via, svc.ref, reached.ref, fix)
    if reached.type != "ExternalName" and not ctx.has_endpoints(reached):
        detail = f"{label} routes to {_label(reached)}{via}, which selects no ready pod"
        status: Status = "unverified" if ctx.visibility.endpoints(reached.namespace) else "no-endpoints"
        return Edge(ref, status, detail, svc.ref, reached.ref)
    if refusal is not None:
        hidden = [text for kind, namespace in refusal.read for text in ctx.visibility.unread(kind, [namespace])]
        if hidden:
            detail = f"cannot be verified ({'; '.join(dict.fromkeys(hidden))}); from what was read: blocked: "
            return Edge(ref, "unverified", detail + refusal.detail, svc.ref, reached.ref)
        return Edge(ref, "blocked", refusal.detail, svc.ref, reached.ref, refusal.fix)
    shown = "" if port is None else f" port {port}"
    return Edge(ref, "ok", f"{label} routes to {_label(reached)}{shown}{via}", svc.ref, reached.ref)


def _missing(backend: Backend, ref: Reference, ctx: VerdictContext) -> Edge:
    """``unknown-target``, with the Service of that name elsewhere or a close name when there is one."""
    detail = f"{backend.label} names Service {backend.namespace}/{backend.name}, which does not exist"
    hidden = ctx.visibility.unread("Service", [backend.namespace])
    if hidden:
        return Edge(ref, "unverified", f"cannot be verified ({'; '.join(hidden)}); {detail}")
    field = f"{backend.location}.{backend.name_field}"
    same_name = sorted(s.namespace for s in ctx.index.services_by_name.get(backend.name, ()))
    known = sorted(name for (ns, name) in ctx.index.services if ns == backend.namespace)
    close = difflib.get_close_matches(backend.name, known, n=1, cutoff=0.75)
    if close:
        fix = f"set {field} to {close[0]}"
    elif same_name and backend.source.kind == "Ingress":
        elsewhere = ", ".join(same_name)
        detail += f" (a Service {backend.name} exists in {elsewhere}; an Ingress reaches only its own namespace)"
        fix = (
            f"move the Ingress to {same_name[0]}, or create in {backend.namespace} an ExternalName Service "
            f"{backend.name} -> {backend.name}.{same_name[0]}.svc.{ctx.index.cluster_domain}"
        )
    elif same_name:
        fix = f"set {backend.location}.namespace to {same_name[0]} (a Service {backend.name} exists there)"
    else:
        fix = f"create Service {backend.namespace}/{backend.name}, or name an existing Service in {field}"
    return Edge(ref, "unknown-target", detail, fix=fix)


def _port_problem(label: str, port: int | str | None, field: str, svc: ServiceInfo) -> tuple[str, str] | None:
    """(detail, fix) when the port (number or name) is not one the Service exposes; None when fine or unknowable."""
    if port is None or svc.type == "ExternalName" or not svc.ports:
        return None
    if isinstance(port, int):
        exposed = {p.port for p in svc.ports}
        if port in exposed:
            return None
        what = f"port {port}"
        offered = ", ".join(str(p) for p in sorted(exposed))
        target = next((p.port for p in svc.ports if p.target_port == port), None)
        if target is None and len(svc.ports) == 1:
            target = svc.ports[0].port
        suggestion = None if target is None else str(target)
    else:
        names = {p.name for p in svc.ports if p.name}
        if port in names:
            return None
        what = f"port name {port!r}"
        offered = ", ".join(sorted(names)) or "no named port"
        only = [p for p in svc.ports if p.name] if len(svc.ports) == 1 else []
        suggestion = only[0].name if only else None
    detail = f"{label} asks {_label(svc)} for {what}, which it does not expose (it exposes {offered})"
    fix = f"set {field} to {suggestion}" if suggestion else f"set {field} to one of {offered}"
    return detail, fix


def _label(svc: ServiceInfo) -> str:
    return f"Service {svc.namespace}/{svc.name}"
