"""Which namespace a routing object's traffic comes from, and how its edges are probed from there."""

from __future__ import annotations

from typing import Any

from novadiag.index import build_index
from novadiag.model import ObjectRef, SourceInfo
from novadiag.pipeline import audit_snapshot
from novadiag.probing import group_edges, merge_observations
from novadiag.probing.runner import GroupOutcome
from novadiag.routing.dataplane import find_controller, route_probes
from novadiag.snapshot import build_snapshot

NGINX_LABELS = {
    "app.kubernetes.io/name": "ingress-nginx",
    "app.kubernetes.io/component": "controller",
    "app.kubernetes.io/instance": "ingress-nginx",
}
INGRESS = ObjectRef("Ingress", "back", "shop")
ROUTE = ObjectRef("HTTPRoute", "back", "shop")


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def deployment(ns: str, name: str, labels: dict[str, str], env: dict[str, str] | None = None, **spec: Any):
    container = {
        "name": name,
        "image": "example/app:1",
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container], **spec}},
        },
    }


def ingress_class(name: str, controller: str, *, default: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if default:
        meta["annotations"] = {"ingressclass.kubernetes.io/is-default-class": "true"}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": meta,
        "spec": {"controller": controller},
    }


def ingress(class_name: str | None, port: dict[str, Any]) -> dict[str, Any]:
    backend = {"service": {"name": "api", "port": port}}
    spec: dict[str, Any] = {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}]}
    if class_name:
        spec["ingressClassName"] = class_name
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "shop", "namespace": "back"},
        "spec": spec,
    }


def backend() -> list[dict[str, Any]]:
    """Service back/api (port 80 named web -> the pod's 8080, and 9090 named admin) and its Deployment."""
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "api", "namespace": "back"},
        "spec": {
            "clusterIP": "127.1.0.50",
            "selector": {"app": "api"},
            "ports": [{"name": "web", "port": 80, "targetPort": "http"}, {"name": "admin", "port": 9090}],
        },
    }
    return [namespace("back"), deployment("back", "api", {"app": "api"}), svc]


def nginx(ns: str = "ingress-nginx", **spec: Any) -> list[dict[str, Any]]:
    return [namespace(ns), deployment(ns, "ingress-nginx-controller", NGINX_LABELS, **spec)]


def http_route(gateway_ns: str, backend_ns: str = "back") -> list[dict[str, Any]]:
    listener = {"name": "http", "protocol": "HTTP", "port": 80, "allowedRoutes": {"namespaces": {"from": "All"}}}
    gateway = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "edge", "namespace": gateway_ns},
        "spec": {"gatewayClassName": "any", "listeners": [listener]},
    }
    ref = {"name": "api", "namespace": backend_ns, "port": 80}
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "shop", "namespace": "back"},
        "spec": {"parentRefs": [{"name": "edge", "namespace": gateway_ns}], "rules": [{"backendRefs": [ref]}]},
    }
    return [namespace(gateway_ns), gateway, route]


def snapshot_of(objects: list[dict[str, Any]]):
    return build_snapshot(objects, SourceInfo("manifests"))


def report_of(objects: list[dict[str, Any]]):
    return audit_snapshot(snapshot_of(objects))


def test_an_ingress_controller_is_found_by_its_ingress_class_and_chart_labels():
    snap = snapshot_of([*backend(), *nginx(), ingress_class("nginx", "k8s.io/ingress-nginx"), ingress("nginx", {})])
    found = find_controller(snap, INGRESS)
    assert found.namespaces == ("ingress-nginx",)
    assert [str(w.ref) for w in found.workloads] == ["Deployment ingress-nginx/ingress-nginx-controller"]
    assert found.unknown is None


def test_an_ingress_without_a_class_uses_the_default_class():
    objects = [*backend(), *nginx("edge"), ingress_class("nginx", "k8s.io/ingress-nginx", default=True)]
    assert find_controller(snapshot_of([*objects, ingress(None, {})]), INGRESS).namespaces == ("edge",)


def test_an_ingress_whose_controller_is_not_known_by_labels_says_what_to_pass():
    objects = [*backend(), *nginx(), ingress_class("acme", "example.com/acme-ingress"), ingress("acme", {})]
    found = find_controller(snapshot_of(objects), INGRESS)
    assert found.namespaces == ()
    assert found.unknown == (
        "the pods of controller example.com/acme-ingress (IngressClass acme) are not known by their labels; "
        "pass --ingress-from NS"
    )


def test_an_ingress_class_that_was_not_read_leaves_the_controller_unknown():
    found = find_controller(snapshot_of([*backend(), *nginx(), ingress("nginx", {})]), INGRESS)
    assert found.namespaces == ()
    assert found.unknown == "IngressClass nginx of Ingress back/shop was not read; pass --ingress-from NS"


def test_the_users_choice_wins_and_keeps_the_controller_workloads_found_there():
    snap = snapshot_of([*backend(), *nginx(), ingress_class("nginx", "k8s.io/ingress-nginx"), ingress("nginx", {})])
    assert find_controller(snap, INGRESS, ("other",)).namespaces == ("other",)
    assert find_controller(snap, INGRESS, ("other",)).workloads == ()
    chosen = find_controller(snap, INGRESS, ("ingress-nginx",))
    assert [w.ref.name for w in chosen.workloads] == ["ingress-nginx-controller"]


def test_a_route_comes_from_its_gateways_namespace_without_labelled_data_plane_pods():
    found = find_controller(snapshot_of([*backend(), *http_route("infra")]), ROUTE)
    assert found.namespaces == ("infra",)
    assert found.workloads == ()


def test_a_gateways_labelled_data_plane_pods_name_the_namespace_they_run_in():
    plane = {
        "gateway.networking.k8s.io/gateway-name": "edge",
        "gateway.envoyproxy.io/owning-gateway-namespace": "infra",
    }
    other = {"gateway.networking.k8s.io/gateway-name": "edge"}  # a Gateway "edge" of another namespace
    objects = [
        *backend(),
        *http_route("infra"),
        namespace("envoy-gateway-system"),
        deployment("envoy-gateway-system", "envoy-infra-edge", plane),
        namespace("elsewhere"),
        deployment("elsewhere", "envoy-elsewhere-edge", other),
    ]
    found = find_controller(snapshot_of(objects), ROUTE)
    assert found.namespaces == ("envoy-gateway-system",)
    assert [w.ref.name for w in found.workloads] == ["envoy-infra-edge"]


def test_a_routing_edge_is_checked_by_fqdn_and_service_port_with_the_controllers_dns():
    dns = {"dnsPolicy": "ClusterFirst", "dnsConfig": {"options": [{"name": "ndots", "value": "2"}]}}
    objects = [
        *backend(),
        *nginx(**dns),
        ingress_class("nginx", "k8s.io/ingress-nginx"),
        ingress("nginx", {"name": "web"}),
    ]
    report = report_of(objects)
    edge = next(e for e in report.edges if e.reference.routing)
    probes, reasons = route_probes(report.edges, report.snapshot, build_index(report.snapshot))
    assert reasons == {}
    probe = probes[edge.id]
    assert (probe.namespace, probe.host, probe.port) == ("ingress-nginx", "api.back.svc.cluster.local", 80)
    groups = group_edges(
        report.edges, {w.ref: w for w in report.snapshot.workloads}, build_index(report.snapshot), routes=probes
    )
    group = next(g for g in groups if edge.id in g.edge_ids)
    assert group.namespace == "ingress-nginx"
    assert group.dns == {"dnsConfig": dns["dnsConfig"]}  # ClusterFirst is the default, left out
    assert [(c.host, c.port, c.protocol) for c in group.checks] == [("api.back.svc.cluster.local", 80, "tcp")]


def test_routing_and_env_edges_of_one_namespace_share_its_probe_pod():
    objects = [
        *backend(),
        *nginx(),
        deployment("ingress-nginx", "helper", {"app": "helper"}, {"API": "api.back:9090"}),
        ingress_class("nginx", "k8s.io/ingress-nginx"),
        ingress("nginx", {"number": 80}),
    ]
    report = report_of(objects)
    index = build_index(report.snapshot)
    probes, _ = route_probes(report.edges, report.snapshot, index)
    groups = group_edges(report.edges, {w.ref: w for w in report.snapshot.workloads}, index, routes=probes)
    assert [(g.namespace, sorted(c.host for c in g.checks)) for g in groups] == [
        ("ingress-nginx", ["api.back", "api.back.svc.cluster.local"])
    ]


def test_without_a_known_controller_the_edge_is_not_run_with_what_to_pass():
    report = report_of([*backend(), ingress(None, {"number": 80})])
    edge = next(e for e in report.edges if e.reference.routing)
    index = build_index(report.snapshot)
    probes, reasons = route_probes(report.edges, report.snapshot, index)
    assert probes == {}
    merged, _ = merge_observations(report.edges, [], index, route_reasons=reasons)
    observed = next(e for e in merged if e.id == edge.id)
    assert (observed.status, observed.probe.dns, observed.probe.agrees) == ("ok", "not-run", None)
    assert observed.probe.error == (
        "not probed: Ingress back/shop names no IngressClass and none is the default; pass --ingress-from NS"
    )


def test_a_controller_namespace_that_does_not_exist_is_not_probed_from():
    report = report_of([*backend(), ingress(None, {"number": 80})])
    edge = next(e for e in report.edges if e.reference.routing)
    _, reasons = route_probes(report.edges, report.snapshot, build_index(report.snapshot), ("ingress-nginx",))
    assert reasons[edge.id] == (
        "not probed: the controller's namespace ingress-nginx does not exist (or was not read), "
        "and a probe never creates one; pass --ingress-from NS"
    )


def _probe(report, ingress_from=()):
    """The routing edge's group as route_probes places it, and merge of a probe that resolved and connected."""
    index = build_index(report.snapshot)
    probes, reasons = route_probes(report.edges, report.snapshot, index, ingress_from)
    groups = group_edges(report.edges, {w.ref: w for w in report.snapshot.workloads}, index, routes=probes)
    results = [
        {
            "id": c.id,
            "system": {"status": "ok", "addresses": ["127.1.0.50"]},
            "candidates": [],
            "connect": "ok",
            "health": "skipped",
        }
        for g in groups
        for c in g.checks
    ]
    outcomes = [
        GroupOutcome(g, i, f"p{i}", phase="Succeeded", document={"results": results}) for i, g in enumerate(groups)
    ]
    return merge_observations(report.edges, outcomes, index, route_reasons=reasons)


def test_a_probe_that_connects_agrees_with_an_ok_routing_edge():
    objects = [*backend(), *nginx(), ingress_class("nginx", "k8s.io/ingress-nginx"), ingress("nginx", {"number": 80})]
    merged, findings = _probe(report_of(objects))
    edge = next(e for e in merged if e.reference.routing)
    assert (edge.status, edge.probe.dns, edge.probe.connect, edge.probe.agrees) == ("ok", "ok", "ok", True)
    assert edge.verdict_from == "probe" and findings == []


def test_a_gateway_api_refusal_stays_blocked_when_the_probe_gets_through():
    report = report_of([*backend(), *http_route("infra", backend_ns="back"), *_cross_namespace_route()])
    refused = next(e for e in report.edges if e.source.name == "cross")
    assert refused.status == "blocked"
    merged, findings = _probe(report)
    edge = next(e for e in merged if e.id == refused.id)
    assert (edge.status, edge.probe.dns, edge.probe.connect, edge.probe.agrees) == ("blocked", "ok", "ok", None)
    assert edge.verdict_from == "static"
    assert "the Gateway API's refusal is the data plane's" in edge.detail
    assert edge.detail.startswith(refused.detail)
    assert not any(refused.id in f.message for f in findings)


def _cross_namespace_route() -> list[dict[str, Any]]:
    """An HTTPRoute infra/cross naming Service back/api with no ReferenceGrant in back."""
    ref = {"name": "api", "namespace": "back", "port": 80}
    return [
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "cross", "namespace": "infra"},
            "spec": {"parentRefs": [{"name": "edge"}], "rules": [{"backendRefs": [ref]}]},
        }
    ]


def test_a_route_without_known_data_plane_pods_shares_the_probe_pod_of_its_gateways_namespace():
    """A Deployment read back from a cluster carries dnsPolicy: ClusterFirst; the route's probe has none: same pod."""
    objects = [
        *backend(),
        *http_route("infra"),
        deployment("infra", "helper", {"app": "helper"}, {"API": "api.back:9090"}, dnsPolicy="ClusterFirst"),
    ]
    report = report_of(objects)
    index = build_index(report.snapshot)
    probes, _ = route_probes(report.edges, report.snapshot, index)
    groups = group_edges(report.edges, {w.ref: w for w in report.snapshot.workloads}, index, routes=probes)
    assert [(g.namespace, g.dns, sorted(c.host for c in g.checks)) for g in groups] == [
        ("infra", {}, ["api.back", "api.back.svc.cluster.local"])
    ]
