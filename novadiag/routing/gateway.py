"""Gateway API routes (HTTPRoute, GRPCRoute, TLSRoute, TCPRoute): backends, grants and attachment.

Two rules of the Gateway API break routes across namespaces, and neither shows
in DNS:

- A ``backendRef`` to a Service of another namespace is refused unless a
  ``ReferenceGrant`` in that namespace allows the route's kind from the
  route's namespace (``spec.from``) to that Service (``spec.to``, all Services
  when ``name`` is unset). The fix is the grant to add.
- A route attaches to a Gateway (``parentRefs``) only where a listener's
  ``allowedRoutes`` accepts it: ``namespaces.from`` is ``Same`` (the default:
  the Gateway's own namespace), ``All``, or ``Selector`` (a label selector on
  the route's Namespace); ``kinds``, when set, lists the route kinds accepted,
  else the listener's protocol decides (HTTP/HTTPS: HTTPRoute and GRPCRoute;
  TLS: TLSRoute and TCPRoute; TCP: TCPRoute). A route no parent accepts carries
  no traffic: its backends are ``blocked`` with the ``allowedRoutes`` change as
  the fix, and a ``route-not-attached`` finding says so once per route.

A route with a backend that fails an earlier layer (missing Service, wrong
port, no ready pod) gets that status first, as every edge does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

from novadiag.model import Finding, ObjectRef, RawObject
from novadiag.routing.backends import Backend, Refusal
from novadiag.selector import NAME_LABEL, Selector
from novadiag.snapshot import Snapshot

GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_ROUTE_KINDS: tuple[str, ...] = ("HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute")
_DEFAULT_KINDS: dict[str, frozenset[str]] = {
    "HTTP": frozenset({"HTTPRoute", "GRPCRoute"}),
    "HTTPS": frozenset({"HTTPRoute", "GRPCRoute"}),
    "TLS": frozenset({"TLSRoute", "TCPRoute"}),
    "TCP": frozenset({"TCPRoute"}),
    "UDP": frozenset({"UDPRoute"}),
}


class GatewayRules:
    """The Gateways, ReferenceGrants and Namespace labels of one snapshot, for judging routes."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._grants: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for grant in snapshot.of("ReferenceGrant"):
            spec = grant.get("spec")
            if isinstance(spec, Mapping):
                self._grants[str((grant.get("metadata") or {}).get("namespace") or "default")].append(spec)

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        obj = self._snapshot.get("Namespace", None, namespace) or {}
        labels = (obj.get("metadata") or {}).get("labels")
        return {**(labels if isinstance(labels, Mapping) else {}), NAME_LABEL: namespace}

    def granted(self, route: ObjectRef, namespace: str, service: str) -> bool:
        """Whether a ReferenceGrant in ``namespace`` lets ``route`` name Service ``service`` there."""
        for spec in self._grants.get(namespace, ()):
            if any(_from_matches(f, route) for f in _items(spec.get("from"))) and any(
                _to_matches(t, service) for t in _items(spec.get("to"))
            ):
                return True
        return False

    def attachment(self, route: ObjectRef, spec: Mapping[str, Any]) -> Refusal | None:
        """None when a parent Gateway accepts the route (or it names none); else why none does."""
        refusals: list[Refusal] = []
        for i, parent in enumerate(_items(spec.get("parentRefs"))):
            if not _names_a_gateway(parent):
                return None  # a parent this audit does not model (a Service for a mesh): assume attached
            refusal = self._parent_refusal(route, i, parent)
            if refusal is None:
                return None
            refusals.append(refusal)
        if not refusals:
            return None
        read = tuple(pair for r in refusals for pair in r.read)
        return Refusal("; ".join(r.detail for r in refusals), refusals[0].fix, read)

    def _parent_refusal(self, route: ObjectRef, index: int, parent: Mapping[str, Any]) -> Refusal | None:
        assert route.namespace is not None
        namespace = str(parent.get("namespace") or route.namespace)
        name = str(parent.get("name") or "")
        gateway = self._snapshot.get("Gateway", namespace, name)
        where = f"Gateway {namespace}/{name}"
        read = (("Gateway", namespace),)
        if gateway is None:
            detail = f"{route} is not attached: its parentRefs[{index}] {where} does not exist"
            fix = f"create {where}, or name an existing Gateway in parentRefs[{index}]"
            return Refusal(detail, fix, (("Gateway", namespace),))
        section = parent.get("sectionName")
        listeners = [
            listener
            for listener in _items((gateway.get("spec") or {}).get("listeners"))
            if section is None or listener.get("name") == section
        ]
        if not listeners:
            detail = f"{route} is not attached: {where} has no listener {section}"
            return Refusal(detail, f"name a listener of {where} in parentRefs[{index}].sectionName", read)
        problems = [self._listener_refusal(route, where, namespace, listener) for listener in listeners]
        if any(p is None for p in problems):
            return None
        first = problems[0]
        assert first is not None
        return Refusal(first.detail, first.fix, read)

    def _listener_refusal(
        self, route: ObjectRef, where: str, gateway_namespace: str, listener: Mapping[str, Any]
    ) -> Refusal | None:
        assert route.namespace is not None
        allowed = listener.get("allowedRoutes")
        allowed = allowed if isinstance(allowed, Mapping) else {}
        namespaces = allowed.get("namespaces")
        namespaces = namespaces if isinstance(namespaces, Mapping) else {}
        origin = str(namespaces.get("from") or "Same")
        label = f"listener {listener.get('name')} of {where}"
        field = f"{label}: allowedRoutes"
        if not self._namespace_allowed(origin, namespaces.get("selector"), route.namespace, gateway_namespace):
            detail = f"{route} is not attached: {label} accepts routes from {_from_text(origin, gateway_namespace)}"
            fix = (
                f"set {field}.namespaces.from to All, or to Selector with a selector matching namespace "
                f"{route.namespace} (kubernetes.io/metadata.name: {route.namespace})"
            )
            return Refusal(detail, fix)
        kinds = _accepted_kinds(allowed, listener)
        if route.kind not in kinds:
            accepted = ", ".join(sorted(kinds)) or "no route kind"
            detail = f"{route} is not attached: {label} accepts {accepted}, not {route.kind}"
            return Refusal(detail, f"add {{kind: {route.kind}}} to {field}.kinds")
        return None

    def _namespace_allowed(self, origin: str, selector: Any, namespace: str, gateway_namespace: str) -> bool:
        if origin == "All":
            return True
        if origin == "Selector":
            return Selector.parse(selector).matches(self.namespace_labels(namespace))
        return namespace == gateway_namespace


def route_backends(route: RawObject, findings: list[Finding]) -> Iterator[Backend]:
    """Every Service backendRef of one route; malformed ones and other kinds become findings."""
    meta = route.get("metadata") or {}
    namespace = str(meta.get("namespace") or "default")
    source = ObjectRef(str(route.get("kind")), namespace, str(meta.get("name")))
    spec = route.get("spec") or {}
    for i, rule in enumerate(_items(spec.get("rules") if isinstance(spec, Mapping) else None)):
        for j, ref in enumerate(_items(rule.get("backendRefs"))):
            location = f"rules[{i}].backendRefs[{j}]"
            name = ref.get("name")
            if ref.get("group", "") not in ("", "core") or ref.get("kind", "Service") != "Service":
                message = f"{source} {location}: a backendRef to a {ref.get('kind')} is not checked"
                findings.append(Finding("info", "route-backend-not-read", message, source))
            elif not isinstance(name, str) or not name:
                message = f"{source} {location}: backendRef has no name; skipped"
                findings.append(Finding("warning", "malformed-route", message, source))
            else:
                port = ref.get("port")
                number = port if isinstance(port, int) and not isinstance(port, bool) else None
                target_namespace = str(ref.get("namespace") or namespace)
                yield Backend(source, location, target_namespace, name, number, "name", "port")


def grant_refusal(backend: Backend, rules: GatewayRules) -> Refusal | None:
    """The missing ReferenceGrant of a cross-namespace backend, with the grant to add as the fix."""
    route = backend.source
    if backend.namespace == route.namespace or rules.granted(route, backend.namespace, backend.name):
        return None
    detail = (
        f"{route} {backend.location} names Service {backend.namespace}/{backend.name} in another namespace, "
        f"and no ReferenceGrant in {backend.namespace} allows {route.kind} from {route.namespace}"
    )
    fix = (
        f"add ReferenceGrant in {backend.namespace}: from {route.kind} in {route.namespace} "
        f"to Service {backend.name}"
    )
    return Refusal(detail, fix, (("ReferenceGrant", backend.namespace),))


def reference_grant(namespace: str, route_kind: str, route_namespace: str, services: list[str]) -> dict[str, Any]:
    """The ReferenceGrant in ``namespace`` that lets routes of one kind and namespace name ``services`` there."""
    return {
        "apiVersion": f"{GATEWAY_GROUP}/v1beta1",
        "kind": "ReferenceGrant",
        "metadata": {
            "name": f"{route_kind.lower()}-from-{route_namespace}",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "novadiag"},
        },
        "spec": {
            "from": [{"group": GATEWAY_GROUP, "kind": route_kind, "namespace": route_namespace}],
            "to": [{"group": "", "kind": "Service", "name": name} for name in sorted(set(services))],
        },
    }


def _from_matches(entry: Mapping[str, Any], route: ObjectRef) -> bool:
    return (
        entry.get("group") == GATEWAY_GROUP
        and entry.get("kind") == route.kind
        and entry.get("namespace") == route.namespace
    )


def _to_matches(entry: Mapping[str, Any], service: str) -> bool:
    return (
        entry.get("group", "") in ("", "core")
        and entry.get("kind") == "Service"
        and entry.get("name")
        in (
            None,
            "",
            service,
        )
    )


def _accepted_kinds(allowed: Mapping[str, Any], listener: Mapping[str, Any]) -> frozenset[str]:
    kinds = allowed.get("kinds")
    if isinstance(kinds, list) and kinds:
        return frozenset(str(k.get("kind")) for k in _items(kinds) if k.get("group", GATEWAY_GROUP) == GATEWAY_GROUP)
    return _DEFAULT_KINDS.get(str(listener.get("protocol") or "").upper(), frozenset())


def _from_text(origin: str, gateway_namespace: str) -> str:
    if origin == "Selector":
        return "namespaces matching its selector only"
    return f"its own namespace {gateway_namespace} only"


def gateway_parents(route: ObjectRef, spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(namespace, name) of each Gateway the route names in ``parentRefs``, sorted, once each."""
    found = {
        (str(parent.get("namespace") or route.namespace or "default"), str(parent["name"]))
        for parent in _items(spec.get("parentRefs"))
        if _names_a_gateway(parent) and parent.get("name")
    }
    return sorted(found)


def _names_a_gateway(parent: Mapping[str, Any]) -> bool:
    return bool(parent.get("group", GATEWAY_GROUP) == GATEWAY_GROUP and parent.get("kind", "Gateway") == "Gateway")


def _items(value: Any) -> list[Mapping[str, Any]]:
    """The mappings of a list field; anything else in it names nothing and is ignored."""
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []
