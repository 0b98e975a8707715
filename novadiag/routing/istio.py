"""Istio (``networking.istio.io``): VirtualService destinations, DestinationRule subsets, ServiceEntries.

Istio names hosts, not Services, and reads them its own way:

- A short host (no dot) in a VirtualService or DestinationRule means
  ``host.<namespace of the rule>.svc.<zone>``, whatever namespace the caller is
  in; a dotted host is taken as written (``reviews.prod`` is *not* expanded, so
  it matches no Service unless a ServiceEntry declares it).
- ``exportTo`` limits where a VirtualService, DestinationRule or ServiceEntry is
  seen: ``*`` (the default) everywhere, ``.`` its own namespace, or names; a
  Service's annotation ``networking.istio.io/exportTo`` does the same for it.

Every ``route[].destination`` of a VirtualService's ``http``, ``tcp`` and ``tls``
rules is an edge from the VirtualService: ``unknown-target`` when the host is
neither a Service nor a ServiceEntry host visible from the VirtualService's
namespace; ``port-mismatch`` when ``destination.port.number`` is not a port of
the Service; ``no-endpoints`` when a ``subset`` is named that no visible
DestinationRule for that host defines (the proxy has no endpoints for it) or
the Service selects no ready pod. A ServiceEntry host is ``external``. The
VirtualService's ``hosts`` and a DestinationRule's ``host`` that name nothing
visible become findings.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from novadiag.index import ServiceInfo
from novadiag.model import Edge, Finding, ObjectRef, RawObject, Reference
from novadiag.routing.backends import judge_service
from novadiag.snapshot import Snapshot
from novadiag.verdicts import VerdictContext

EXPORT_ANNOTATION = "networking.istio.io/exportTo"
_RULE_KINDS = ("http", "tcp", "tls")


def visible(export_to: Any, owner_namespace: str, viewer_namespace: str) -> bool:
    """Whether an object of ``owner_namespace`` with this ``exportTo`` is seen from ``viewer_namespace``."""
    names = [str(n) for n in export_to] if isinstance(export_to, list) and export_to else ["*"]
    return "*" in names or viewer_namespace in names or ("." in names and owner_namespace == viewer_namespace)


@dataclass(frozen=True)
class _Rule:
    ref: ObjectRef
    spec: Mapping[str, Any]

    @property
    def namespace(self) -> str:
        return self.ref.namespace or "default"

    def seen_from(self, namespace: str) -> bool:
        return visible(self.spec.get("exportTo"), self.namespace, namespace)


class IstioRules:
    """The DestinationRules, ServiceEntries and Service export annotations of one snapshot."""

    def __init__(self, snapshot: Snapshot, ctx: VerdictContext) -> None:
        self._ctx = ctx
        self._snapshot = snapshot
        self.destination_rules = list(_rules(snapshot, "DestinationRule"))
        self.entries = list(_rules(snapshot, "ServiceEntry"))

    def fqdn(self, host: str, namespace: str) -> str:
        """A short host means the rule's namespace; a dotted one is taken as written."""
        host = host.rstrip(".").lower()
        return f"{host}.{namespace}.svc.{self._ctx.index.cluster_domain}" if "." not in host else host

    def service(self, fqdn: str, viewer: str) -> ServiceInfo | None:
        """The Service an FQDN names, when its export annotation lets ``viewer`` see it."""
        suffix = f".svc.{self._ctx.index.cluster_domain}"
        labels = fqdn[: -len(suffix)].split(".") if fqdn.endswith(suffix) else []
        svc = self._ctx.index.service(labels[1], labels[0]) if len(labels) == 2 else None
        if svc is None:
            return None
        obj = self._snapshot.get("Service", svc.namespace, svc.name) or {}
        annotation = ((obj.get("metadata") or {}).get("annotations") or {}).get(EXPORT_ANNOTATION)
        export = [n.strip() for n in annotation.split(",")] if isinstance(annotation, str) else None
        return svc if visible(export, svc.namespace, viewer) else None

    def entry(self, fqdn: str, viewer: str) -> ObjectRef | None:
        for rule in self.entries:
            hosts = [str(h).lower() for h in rule.spec.get("hosts") or () if isinstance(h, str)]
            if fqdn in hosts and rule.seen_from(viewer):
                return rule.ref
        return None

    def subsets(self, fqdn: str, viewer: str) -> set[str]:
        """The subsets that DestinationRules visible from ``viewer`` define for the host."""
        found: set[str] = set()
        for rule in self.destination_rules:
            host = rule.spec.get("host")
            if isinstance(host, str) and self.fqdn(host, rule.namespace) == fqdn and rule.seen_from(viewer):
                found |= {str(s.get("name")) for s in rule.spec.get("subsets") or () if isinstance(s, Mapping)}
        return found


def judge_virtual_services(snapshot: Snapshot, ctx: VerdictContext, findings: list[Finding], wanted: Any) -> list[Edge]:
    """One edge per destination of every VirtualService (of ``wanted`` namespaces when a set), plus findings."""
    rules = IstioRules(snapshot, ctx)
    edges: list[Edge] = []
    for vs in _rules(snapshot, "VirtualService"):
        if wanted is not None and vs.namespace not in wanted:
            continue
        edges.extend(_destination_edge(vs, location, dest, rules, ctx) for location, dest in _destinations(vs))
        if not vs.spec.get("gateways"):
            findings.extend(_unknown_hosts(vs, rules))
    for dr in rules.destination_rules:
        if wanted is None or dr.namespace in wanted:
            findings.extend(_unknown_destination_rule_host(dr, rules))
    return edges


def _destinations(vs: _Rule) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for kind in _RULE_KINDS:
        for i, rule in enumerate(_dicts(vs.spec.get(kind))):
            for j, route in enumerate(_dicts(rule.get("route"))):
                destination = route.get("destination")
                if isinstance(destination, Mapping) and isinstance(destination.get("host"), str):
                    yield f"{kind}[{i}].route[{j}].destination", destination


def _destination_edge(
    vs: _Rule, location: str, destination: Mapping[str, Any], rules: IstioRules, ctx: VerdictContext
) -> Edge:
    host = str(destination["host"])
    port_field = destination.get("port")
    number = port_field.get("number") if isinstance(port_field, Mapping) else None
    port = number if isinstance(number, int) and not isinstance(number, bool) else None
    ref = Reference(
        workload=vs.ref,
        container="",
        env=None,
        origin="virtualservice",
        reference=host if port is None else f"{host}:{port}",
        host=host,
        port=port,
        location=location,
    )
    label = f"{vs.ref} {location}"
    fqdn = rules.fqdn(host, vs.namespace)
    svc = rules.service(fqdn, vs.namespace)
    if svc is None:
        entry = rules.entry(fqdn, vs.namespace)
        if entry is not None:
            return Edge(ref, "external", f"{label}: {host} is declared by ServiceEntry {entry}; not checked further")
        return _unknown(ref, label, host, fqdn, vs.namespace, rules, ctx)
    subset = destination.get("subset")
    if isinstance(subset, str) and subset and subset not in rules.subsets(fqdn, vs.namespace):
        detail = (
            f"{label} names subset {subset} of {host}, which no DestinationRule visible from {vs.namespace} defines"
        )
        fix = f"add subset {subset} to a DestinationRule for {fqdn}, or remove {location}.subset"
        return Edge(ref, "no-endpoints", detail, svc.ref, svc.ref, fix)
    return judge_service(ref, label, svc, port, f"{location}.port.number", ctx)


def _unknown(
    ref: Reference, label: str, host: str, fqdn: str, namespace: str, rules: IstioRules, ctx: VerdictContext
) -> Edge:
    """A host Istio does not know from here: the likely meaning, when there is one, as the fix."""
    name = host.rstrip(".").lower().removesuffix(f".svc.{ctx.index.cluster_domain}").removesuffix(".svc")
    labels = name.split(".")
    detail = f"{label}: {host} (read as {fqdn}) is no Service or ServiceEntry host visible from {namespace}"
    fix = None
    if len(labels) == 2 and ctx.index.service(labels[1], labels[0]) is not None:
        full = f"{labels[0]}.{labels[1]}.svc.{ctx.index.cluster_domain}"
        if rules.service(full, namespace) is not None:
            detail += " (Istio does not expand a dotted host)"
            fix = f"write the host as {full}"
        else:
            detail += f" (Service {labels[1]}/{labels[0]} is not exported to {namespace})"
            fix = f"add {namespace} to the {EXPORT_ANNOTATION} annotation of Service {labels[1]}/{labels[0]}"
    return Edge(ref, "unknown-target", detail, fix=fix)


def _unknown_hosts(vs: _Rule, rules: IstioRules) -> list[Finding]:
    out = []
    for host in vs.spec.get("hosts") or ():
        if not isinstance(host, str) or "*" in host:
            continue
        fqdn = rules.fqdn(host, vs.namespace)
        if rules.service(fqdn, vs.namespace) is None and rules.entry(fqdn, vs.namespace) is None:
            message = (
                f"{vs.ref} hosts {host} (read as {fqdn}) names no Service or ServiceEntry: the rule applies to nothing"
            )
            out.append(Finding("warning", "istio-host-unknown", message, vs.ref))
    return out


def _unknown_destination_rule_host(dr: _Rule, rules: IstioRules) -> list[Finding]:
    host = dr.spec.get("host")
    if not isinstance(host, str) or "*" in host:
        return []
    fqdn = rules.fqdn(host, dr.namespace)
    if rules.service(fqdn, dr.namespace) is not None or rules.entry(fqdn, dr.namespace) is not None:
        return []
    message = f"{dr.ref} host {host} (read as {fqdn}) names no Service or ServiceEntry: its subsets apply to nothing"
    return [Finding("warning", "istio-host-unknown", message, dr.ref)]


def _rules(snapshot: Snapshot, kind: str) -> Iterator[_Rule]:
    for obj in snapshot.of(kind):
        spec = obj.get("spec")
        yield _Rule(_ref(obj), spec if isinstance(spec, Mapping) else {})


def _ref(obj: RawObject) -> ObjectRef:
    meta = obj.get("metadata") or {}
    return ObjectRef(str(obj.get("kind")), str(meta.get("namespace") or "default"), str(meta.get("name")))


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []
