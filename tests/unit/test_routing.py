"""Edges from routing objects: Ingress backends, Gateway API routes, ReferenceGrants, allowedRoutes.

Every expectation here is written by hand from the Kubernetes and Gateway API
rules (an Ingress reaches only its own namespace; a cross-namespace backendRef
needs a ReferenceGrant in the target namespace; a listener accepts routes from
``Same`` namespace unless ``allowedRoutes`` says otherwise), not read back from
the code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from novadiag.kube import KINDS, NotFoundError
from novadiag.listing import load_cluster_snapshot
from novadiag.model import NOT_SERVED, OPTIONAL_KINDS, Edge, Gap, ObjectRef, SourceInfo
from novadiag.pipeline import audit_snapshot
from novadiag.report.core import Report
from novadiag.snapshot import build_snapshot

GW = "gateway.networking.k8s.io"


def ns(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def deployment(namespace: str, name: str, *, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": name}]}},
        },
    }


def service(namespace: str, name: str, *ports: tuple[str | None, int], **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ports": [{"name": n, "port": p} if n else {"port": p} for n, p in ports], **spec}
    if spec.get("type") != "ExternalName":
        body["selector"] = {"app": name}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace}, "spec": body}


def alias(namespace: str, name: str, points_at: str) -> dict[str, Any]:
    return service(namespace, name, type="ExternalName", externalName=points_at)


def ingress(namespace: str, name: str, *paths: dict[str, Any], default: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "rules": [
            {
                "host": "shop.example.com",
                "http": {"paths": [{"path": f"/{i}", "pathType": "Prefix", "backend": b} for i, b in enumerate(paths)]},
            }
        ]
    }
    if default is not None:
        spec["defaultBackend"] = default
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def backend(name: str, *, number: int | None = None, port_name: str | None = None) -> dict[str, Any]:
    port = {"number": number} if number is not None else {"name": port_name}
    return {"service": {"name": name, "port": port}}


def gateway(namespace: str, name: str, *listeners: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GW}/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"gatewayClassName": "lab", "listeners": list(listeners)},
    }


def listener(name: str = "http", protocol: str = "HTTP", **allowed: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "protocol": protocol, "port": 80}
    if allowed:
        body["allowedRoutes"] = allowed
    return body


def route(
    namespace: str,
    name: str,
    *refs: dict[str, Any],
    kind: str = "HTTPRoute",
    parents: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    version = "v1alpha2" if kind in ("TLSRoute", "TCPRoute") else "v1"
    return {
        "apiVersion": f"{GW}/{version}",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "parentRefs": parents if parents is not None else [{"name": "edge", "namespace": "infra"}],
            "rules": [{"backendRefs": list(refs)}],
        },
    }


def ref(name: str, port: int, namespace: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "port": port}
    if namespace:
        body["namespace"] = namespace
    return body


def grant(
    namespace: str, *, from_kind: str = "HTTPRoute", from_ns: str = "shop", to_name: str | None = None
) -> dict[str, Any]:
    to: dict[str, Any] = {"group": "", "kind": "Service"}
    if to_name:
        to["name"] = to_name
    return {
        "apiVersion": f"{GW}/v1beta1",
        "kind": "ReferenceGrant",
        "metadata": {"name": "allow", "namespace": namespace},
        "spec": {"from": [{"group": GW, "kind": from_kind, "namespace": from_ns}], "to": [to]},
    }


BASE = [
    ns("shop", team="shop"),
    ns("catalog"),
    ns("infra"),
    deployment("shop", "web"),
    service("shop", "web", ("http", 80), ("metrics", 9090)),
    deployment("catalog", "catalog"),
    service("catalog", "catalog", ("grpc", 50051)),
    deployment("shop", "idle", replicas=0),
    service("shop", "idle", (None, 80)),
]
OPEN_GATEWAY = gateway("infra", "edge", listener(namespaces={"from": "All"}))


def audit(*objects: dict[str, Any]) -> Report:
    return audit_snapshot(build_snapshot([*BASE, *objects], SourceInfo("manifests")))


def route_edges(report: Report) -> list[Edge]:
    return [e for e in report.edges if e.reference.routing]


def only(report: Report) -> Edge:
    edges = route_edges(report)
    assert len(edges) == 1, [e.id for e in edges]
    return edges[0]


def codes(report: Report) -> list[str]:
    return [f.code for f in report.findings]


# -- Ingress ---------------------------------------------------------------------------------------


def test_ingress_backend_by_number_is_an_edge_from_the_ingress() -> None:
    edge = only(audit(ingress("shop", "front", backend("web", number=80))))
    assert edge.status == "ok"
    assert edge.source == ObjectRef("Ingress", "shop", "front")
    assert edge.target == ObjectRef("Service", "shop", "web")
    doc = edge.to_dict()
    assert doc["source"] == {"kind": "Ingress", "namespace": "shop", "name": "front", "container": ""}
    assert (doc["env"], doc["origin"], doc["location"]) == (None, "ingress", "rules[0].http.paths[0]")
    assert (doc["host"], doc["port"], doc["reference"]) == ("web", 80, "web:80")
    assert doc["cross_namespace"] is False


def test_ingress_default_backend_and_every_path_are_edges_in_order() -> None:
    report = audit(
        ingress(
            "shop", "front", backend("web", number=80), backend("web", number=9090), default=backend("web", number=80)
        )
    )
    assert [e.reference.location for e in route_edges(report)] == [
        "defaultBackend",
        "rules[0].http.paths[0]",
        "rules[0].http.paths[1]",
    ]
    assert {e.status for e in route_edges(report)} == {"ok"}


def test_ingress_named_port_the_service_names_is_ok() -> None:
    edge = only(audit(ingress("shop", "front", backend("web", port_name="metrics"))))
    assert edge.status == "ok"
    assert edge.reference.port is None and edge.reference.reference == "web:metrics"


def test_ingress_named_port_the_service_does_not_name_is_port_mismatch() -> None:
    edge = only(audit(ingress("shop", "front", backend("web", port_name="https"))))
    assert edge.status == "port-mismatch"
    assert "port name 'https'" in edge.detail and "http, metrics" in edge.detail
    assert edge.fix == "set rules[0].http.paths[0].backend.service.port.name to one of http, metrics"


def test_ingress_port_number_not_exposed_is_port_mismatch_naming_the_field() -> None:
    edge = only(audit(ingress("shop", "front", backend("web", number=8080))))
    assert edge.status == "port-mismatch"
    assert edge.fix == "set rules[0].http.paths[0].backend.service.port.number to one of 80, 9090"


def test_ingress_port_of_a_single_port_service_suggests_that_port() -> None:
    edge = only(audit(ingress("shop", "front", backend("idle", number=8080))))
    assert edge.status == "port-mismatch"
    assert edge.fix == "set rules[0].http.paths[0].backend.service.port.number to 80"


def test_ingress_reaches_only_its_own_namespace_even_when_the_name_exists_elsewhere() -> None:
    report = audit(ingress("shop", "front", backend("catalog", number=50051)))
    edge = only(report)
    assert edge.status == "unknown-target" and edge.target is None
    assert "a Service catalog exists in catalog" in edge.detail
    assert "ExternalName Service catalog -> catalog.catalog.svc.cluster.local" in (edge.fix or "")
    assert "missing-namespace" not in codes(report)


def test_ingress_to_a_misspelt_service_suggests_the_close_name() -> None:
    edge = only(audit(ingress("shop", "front", backend("webb", number=80))))
    assert edge.status == "unknown-target"
    assert edge.fix == "set rules[0].http.paths[0].backend.service.name to web"


def test_ingress_to_a_service_without_ready_pods_is_no_endpoints() -> None:
    edge = only(audit(ingress("shop", "front", backend("idle", number=80))))
    assert edge.status == "no-endpoints"
    assert edge.target == ObjectRef("Service", "shop", "idle")


def test_ingress_to_an_externalname_alias_is_judged_by_the_service_behind_it() -> None:
    edge = only(
        audit(
            alias("shop", "catalog", "catalog.catalog.svc.cluster.local"),
            ingress("shop", "front", backend("catalog", number=50051)),
        )
    )
    assert edge.status == "ok"
    assert edge.resolves_to == ObjectRef("Service", "catalog", "catalog")
    assert "via ExternalName Service shop/catalog" in edge.detail


def test_ingress_backend_without_a_service_name_is_a_finding_not_a_crash() -> None:
    report = audit(ingress("shop", "front", {"service": {"port": {"number": 80}}}))
    assert route_edges(report) == []
    found = [f for f in report.findings if f.code == "malformed-route"]
    assert [f.message for f in found] == [
        "Ingress shop/front rules[0].http.paths[0]: backend names no Service (backend.service.name is missing); skipped"
    ]


def test_a_routing_object_of_the_wrong_shape_is_skipped_with_a_finding_naming_the_field() -> None:
    broken = ingress("shop", "front", backend("web", number=80))
    broken["spec"]["rules"][0]["http"]["paths"] = "web:80"
    report = audit(broken, route("shop", "r", ref("web", 80)) | {"spec": {"rules": [{"backendRefs": {"name": "web"}}]}})
    messages = [f.message for f in report.findings if f.code == "invalid-object"]
    assert messages == [
        "skipped Ingress 'front': spec.rules[0].http.paths is a string, not a list",
        "skipped HTTPRoute 'r': spec.rules[0].backendRefs is a mapping, not a list",
    ]
    assert route_edges(report) == []


def test_ingress_resource_backend_names_no_service_and_makes_no_edge() -> None:
    report = audit(
        ingress("shop", "front", {"resource": {"apiGroup": "k8s.example.com", "kind": "Bucket", "name": "b"}})
    )
    assert report.snapshot is not None and len(report.snapshot.of("Ingress")) == 1  # read, not skipped
    assert route_edges(report) == [] and "malformed-route" not in codes(report)


def test_audit_of_some_namespaces_keeps_only_their_routing_objects() -> None:
    snapshot = build_snapshot(
        [
            *BASE,
            ingress("shop", "front", backend("web", number=80)),
            ingress("catalog", "api", backend("catalog", number=50051)),
        ],
        SourceInfo("manifests"),
    )
    report = audit_snapshot(snapshot, namespaces=["catalog"])
    assert [e.source for e in route_edges(report)] == [ObjectRef("Ingress", "catalog", "api")]


# -- ExternalName chains ---------------------------------------------------------------------------


def test_externalname_chain_is_followed_to_its_last_service() -> None:
    report = audit(
        alias("shop", "catalog", "catalog.infra.svc.cluster.local"),
        alias("infra", "catalog", "catalog.catalog.svc.cluster.local"),
        ingress("shop", "front", backend("catalog", number=50051)),
    )
    edge = only(report)
    assert edge.status == "ok" and edge.resolves_to == ObjectRef("Service", "catalog", "catalog")


def test_externalname_loop_is_a_finding_and_breaks_the_edges_through_it() -> None:
    report = audit(
        alias("shop", "a", "b.infra.svc.cluster.local"),
        alias("infra", "b", "a.shop.svc.cluster.local"),
        ingress("shop", "front", backend("a", number=80)),
    )
    edge = only(report)
    assert edge.status == "dns-unresolvable"
    assert "loops" in edge.detail and "shop/a -> infra/b -> shop/a" in edge.detail
    loops = [f for f in report.findings if f.code == "externalname-loop"]
    assert [(f.severity, f.message) for f in loops] == [
        ("error", "ExternalName Services name each other in a loop (infra/b -> shop/a -> infra/b)")
    ]


def test_externalname_naming_a_missing_service_is_a_warning() -> None:
    report = audit(alias("shop", "gone", "gone.catalog.svc.cluster.local"))
    found = [f for f in report.findings if f.code == "externalname-dangling"]
    assert [f.message for f in found] == ["ExternalName shop/gone names catalog/gone, which does not exist"]


# -- Gateway API: ReferenceGrant --------------------------------------------------------------------


def test_cross_namespace_backend_ref_without_grant_is_blocked_with_the_grant_as_fix() -> None:
    edge = only(audit(OPEN_GATEWAY, route("shop", "r", ref("catalog", 50051, "catalog"))))
    assert edge.status == "blocked"
    assert edge.cross_namespace and edge.target == ObjectRef("Service", "catalog", "catalog")
    assert "no ReferenceGrant in catalog allows HTTPRoute from shop" in edge.detail
    assert edge.fix == "add ReferenceGrant in catalog: from HTTPRoute in shop to Service catalog"
    assert edge.to_dict()["origin"] == "httproute" and edge.reference.location == "rules[0].backendRefs[0]"


def test_reference_grant_for_the_route_kind_and_namespace_allows_it() -> None:
    assert (
        only(audit(OPEN_GATEWAY, grant("catalog"), route("shop", "r", ref("catalog", 50051, "catalog")))).status == "ok"
    )
    named = grant("catalog", to_name="catalog")
    assert only(audit(OPEN_GATEWAY, named, route("shop", "r", ref("catalog", 50051, "catalog")))).status == "ok"


def test_reference_grant_for_another_kind_namespace_or_service_does_not_allow_it() -> None:
    for wrong in (
        grant("catalog", from_kind="GRPCRoute"),
        grant("catalog", from_ns="infra"),
        grant("catalog", to_name="other"),
        grant("shop"),  # in the route's namespace, not the target's
    ):
        edge = only(audit(OPEN_GATEWAY, wrong, route("shop", "r", ref("catalog", 50051, "catalog"))))
        assert edge.status == "blocked", wrong


def test_a_refusal_resting_on_grants_or_gateways_that_could_not_be_read_is_unverified() -> None:
    forbidden = "forbidden: referencegrants is forbidden"
    snapshot = build_snapshot(
        [*BASE, OPEN_GATEWAY, route("shop", "r", ref("catalog", 50051, "catalog"))],
        SourceInfo("manifests"),
        gaps=[Gap("ReferenceGrant", "catalog", forbidden)],
    )
    edge = only(audit_snapshot(snapshot))
    assert edge.status == "unverified" and edge.fix is None
    assert edge.detail.startswith("cannot be verified (list referencegrants in catalog: forbidden")
    assert "from what was read: blocked: " in edge.detail
    hidden_gateway = build_snapshot(
        [*BASE, route("shop", "r", ref("web", 80))], SourceInfo("manifests"), gaps=[Gap("Gateway", None, forbidden)]
    )
    assert only(audit_snapshot(hidden_gateway)).status == "unverified"


def test_same_namespace_backend_ref_needs_no_grant() -> None:
    assert only(audit(OPEN_GATEWAY, route("shop", "r", ref("web", 80)))).status == "ok"


def test_backend_ref_layers_before_the_grant_come_first() -> None:
    assert only(audit(OPEN_GATEWAY, route("shop", "r", ref("catalog", 1, "catalog")))).status == "port-mismatch"
    assert only(audit(OPEN_GATEWAY, route("shop", "r", ref("nothing", 80, "catalog")))).status == "unknown-target"


# -- Gateway API: allowedRoutes ----------------------------------------------------------------------


def test_listener_accepts_only_its_own_namespace_by_default() -> None:
    report = audit(gateway("infra", "edge", listener()), route("shop", "r", ref("web", 80)))
    edge = only(report)
    assert edge.status == "blocked"
    assert (
        "HTTPRoute shop/r is not attached: listener http of Gateway infra/edge accepts routes "
        "from its own namespace infra only" in edge.detail
    )
    assert edge.fix is not None and edge.fix.startswith(
        "set listener http of Gateway infra/edge: allowedRoutes.namespaces.from to All"
    )
    assert "route-not-attached" in codes(report)


def test_listener_from_same_accepts_a_route_of_the_gateway_namespace() -> None:
    report = audit(
        gateway("shop", "edge", listener(namespaces={"from": "Same"})),
        route("shop", "r", ref("web", 80), parents=[{"name": "edge"}]),
    )
    assert only(report).status == "ok" and "route-not-attached" not in codes(report)


def test_listener_from_selector_accepts_namespaces_whose_labels_match() -> None:
    matching = gateway(
        "infra", "edge", listener(namespaces={"from": "Selector", "selector": {"matchLabels": {"team": "shop"}}})
    )
    assert only(audit(matching, route("shop", "r", ref("web", 80)))).status == "ok"
    other = gateway(
        "infra", "edge", listener(namespaces={"from": "Selector", "selector": {"matchLabels": {"team": "x"}}})
    )
    edge = only(audit(other, route("shop", "r", ref("web", 80))))
    assert edge.status == "blocked" and "namespaces matching its selector only" in edge.detail


def test_listener_selector_matches_the_automatic_name_label() -> None:
    by_name = {"from": "Selector", "selector": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}}}
    assert (
        only(audit(gateway("infra", "edge", listener(namespaces=by_name)), route("shop", "r", ref("web", 80)))).status
        == "ok"
    )


def test_listener_allowed_kinds_refuse_other_route_kinds_with_the_kind_to_add() -> None:
    grpc_only = gateway("infra", "edge", listener(namespaces={"from": "All"}, kinds=[{"kind": "GRPCRoute"}]))
    edge = only(audit(grpc_only, route("shop", "r", ref("web", 80))))
    assert edge.status == "blocked"
    assert "accepts GRPCRoute, not HTTPRoute" in edge.detail
    assert edge.fix == "add {kind: HTTPRoute} to listener http of Gateway infra/edge: allowedRoutes.kinds"
    assert only(audit(grpc_only, route("shop", "g", ref("web", 80), kind="GRPCRoute"))).status == "ok"


def test_listener_protocol_decides_the_kinds_when_none_are_listed() -> None:
    tcp = gateway("infra", "edge", listener("tcp", "TCP", namespaces={"from": "All"}))
    assert only(audit(tcp, route("shop", "r", ref("web", 80)))).status == "blocked"
    assert only(audit(tcp, route("shop", "t", ref("web", 80), kind="TCPRoute"))).status == "ok"


def test_section_name_picks_the_listener_that_must_accept() -> None:
    gw = gateway("infra", "edge", listener("open", namespaces={"from": "All"}), listener("closed"))
    to_closed = route(
        "shop", "r", ref("web", 80), parents=[{"name": "edge", "namespace": "infra", "sectionName": "closed"}]
    )
    to_open = route(
        "shop", "r", ref("web", 80), parents=[{"name": "edge", "namespace": "infra", "sectionName": "open"}]
    )
    assert only(audit(gw, to_closed)).status == "blocked"
    assert only(audit(gw, to_open)).status == "ok"


def test_route_to_a_gateway_that_does_not_exist_is_not_attached() -> None:
    edge = only(audit(route("shop", "r", ref("web", 80))))
    assert edge.status == "blocked"
    assert "parentRefs[0] Gateway infra/edge does not exist" in edge.detail


def test_one_accepting_parent_is_enough() -> None:
    parents = [{"name": "closed", "namespace": "infra"}, {"name": "edge", "namespace": "infra"}]
    report = audit(
        gateway("infra", "closed", listener()), OPEN_GATEWAY, route("shop", "r", ref("web", 80), parents=parents)
    )
    assert only(report).status == "ok"


def test_backend_ref_to_another_kind_is_said_and_skipped() -> None:
    other = {"group": "multicluster.x-k8s.io", "kind": "ServiceImport", "name": "web", "port": 80}
    report = audit(OPEN_GATEWAY, route("shop", "r", other))
    assert route_edges(report) == [] and "route-backend-not-read" in codes(report)


# -- listing from a cluster that does not serve the routing kinds ------------------------------------


class NoGatewayApiClient:
    """A cluster without the Gateway API or Istio CRDs, Ingress or NetworkPolicy: every such list is a 404."""

    context_name = "fake"
    host = "https://127.0.0.1:6443"

    def __init__(self) -> None:
        self.asked: list[str] = []

    def list_raw(self, kind: str, *, namespace: str | None = None, **_: Any) -> Iterator[dict[str, Any]]:
        self.asked.append(kind)
        if kind in OPTIONAL_KINDS or kind == "NetworkPolicy":
            raise NotFoundError(f"GET {KINDS[kind].path(namespace)}: 404 page not found", status=404)
        if kind == "Namespace":
            yield {"kind": "Namespace", "metadata": {"name": "shop"}}


def test_routing_kinds_a_cluster_does_not_serve_are_none_not_gaps() -> None:
    client = NoGatewayApiClient()
    snapshot = load_cluster_snapshot(client, workers=2)  # type: ignore[arg-type]
    assert OPTIONAL_KINDS <= set(client.asked)
    assert [(g.kind, g.reason) for g in snapshot.gaps] == [("NetworkPolicy", NOT_SERVED)]
    assert all(snapshot.of(kind) == () for kind in OPTIONAL_KINDS)


# -- Istio -----------------------------------------------------------------------------------------

ISTIO = "networking.istio.io/v1beta1"


def virtual_service(namespace: str, name: str, *destinations: dict[str, Any], **spec: Any) -> dict[str, Any]:
    routes = [{"route": [{"destination": d}]} for d in destinations]
    body = {"hosts": ["web"], "http": routes, **spec}
    return {
        "apiVersion": ISTIO,
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def destination_rule(namespace: str, host: str, *subsets: str, **spec: Any) -> dict[str, Any]:
    body = {"host": host, "subsets": [{"name": s, "labels": {"version": s}} for s in subsets], **spec}
    return {
        "apiVersion": ISTIO,
        "kind": "DestinationRule",
        "metadata": {"name": "dr", "namespace": namespace},
        "spec": body,
    }


def service_entry(namespace: str, host: str, **spec: Any) -> dict[str, Any]:
    body = {
        "hosts": [host],
        "location": "MESH_EXTERNAL",
        "ports": [{"number": 443, "name": "https", "protocol": "TLS"}],
        **spec,
    }
    return {
        "apiVersion": ISTIO,
        "kind": "ServiceEntry",
        "metadata": {"name": "se", "namespace": namespace},
        "spec": body,
    }


def test_istio_short_host_means_the_namespace_of_the_rule() -> None:
    edge = only(audit(virtual_service("shop", "vs", {"host": "web", "port": {"number": 80}})))
    assert edge.status == "ok" and edge.target == ObjectRef("Service", "shop", "web")
    assert (edge.source.kind, edge.reference.origin, edge.reference.location) == (
        "VirtualService",
        "virtualservice",
        "http[0].route[0].destination",
    )
    # the same short name from a rule in another namespace means a Service there: none
    other = only(audit(virtual_service("catalog", "vs", {"host": "web"}, hosts=["catalog"])))
    assert other.status == "unknown-target" and "read as web.catalog.svc.cluster.local" in other.detail


def test_istio_dotted_host_is_not_expanded_and_the_fix_is_the_full_name() -> None:
    edge = only(audit(virtual_service("shop", "vs", {"host": "catalog.catalog"})))
    assert edge.status == "unknown-target"
    assert "Istio does not expand a dotted host" in edge.detail
    assert edge.fix == "write the host as catalog.catalog.svc.cluster.local"
    full = only(audit(virtual_service("shop", "vs", {"host": "catalog.catalog.svc.cluster.local"})))
    assert full.status == "ok" and full.cross_namespace


def test_istio_destination_port_not_exposed_is_port_mismatch() -> None:
    edge = only(audit(virtual_service("shop", "vs", {"host": "web", "port": {"number": 8080}})))
    assert edge.status == "port-mismatch"
    assert edge.fix == "set http[0].route[0].destination.port.number to one of 80, 9090"


def test_istio_subset_needs_a_destination_rule_that_defines_it() -> None:
    vs = virtual_service("shop", "vs", {"host": "web", "subset": "v2"})
    missing = only(audit(vs))
    assert missing.status == "no-endpoints" and "names subset v2 of web" in missing.detail
    assert only(audit(vs, destination_rule("shop", "web", "v1", "v2"))).status == "ok"
    assert only(audit(vs, destination_rule("shop", "web", "v1"))).status == "no-endpoints"
    # a DestinationRule elsewhere names the host by its full name to mean the same Service
    assert only(audit(vs, destination_rule("infra", "web.shop.svc.cluster.local", "v2"))).status == "ok"
    assert only(audit(vs, destination_rule("infra", "web", "v2"))).status == "no-endpoints"  # web.infra: not it


def test_istio_export_to_limits_where_rules_and_services_are_seen() -> None:
    vs = virtual_service("shop", "vs", {"host": "web", "subset": "v2"})
    private = destination_rule("infra", "web.shop.svc.cluster.local", "v2", exportTo=["."])
    assert only(audit(vs, private)).status == "no-endpoints"
    named = destination_rule("infra", "web.shop.svc.cluster.local", "v2", exportTo=["shop"])
    assert only(audit(vs, named)).status == "ok"
    hidden = service("catalog", "catalog", ("grpc", 50051))
    hidden["metadata"]["annotations"] = {"networking.istio.io/exportTo": "."}
    snapshot = build_snapshot(
        [
            *(o for o in BASE if o.get("metadata", {}).get("name") != "catalog" or o["kind"] != "Service"),
            hidden,
            virtual_service("shop", "vs", {"host": "catalog.catalog.svc.cluster.local"}),
        ],
        SourceInfo("manifests"),
    )
    edge = only(audit_snapshot(snapshot))
    assert edge.status == "unknown-target" and "not exported to shop" in edge.detail
    assert edge.fix == "add shop to the networking.istio.io/exportTo annotation of Service catalog/catalog"


def test_istio_service_entry_host_is_external_where_it_is_exported() -> None:
    vs = virtual_service("shop", "vs", {"host": "api.payments.example.com"}, hosts=["api.payments.example.com"])
    assert only(audit(vs, service_entry("infra", "api.payments.example.com"))).status == "external"
    private = service_entry("infra", "api.payments.example.com", exportTo=["."])
    assert only(audit(vs, private)).status == "unknown-target"


def test_istio_hosts_and_destination_rule_hosts_that_name_nothing_are_findings() -> None:
    report = audit(
        virtual_service("shop", "vs", {"host": "web"}, hosts=["wbe"]), destination_rule("shop", "gone", "v1")
    )
    messages = sorted(f.message for f in report.findings if f.code == "istio-host-unknown")
    assert messages == [
        "DestinationRule shop/dr host gone (read as gone.shop.svc.cluster.local) names no Service or ServiceEntry: "
        "its subsets apply to nothing",
        "VirtualService shop/vs hosts wbe (read as wbe.shop.svc.cluster.local) names no Service or ServiceEntry: "
        "the rule applies to nothing",
    ]
