"""NetworkPolicy semantics, case by case, each rule with an allowed and a denied result."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

import novadiag
from novadiag.index import ServiceInfo, ServicePort
from novadiag.model import ObjectRef
from novadiag.netpol.evaluation import (
    PolicyIndex,
    evaluate,
    evaluate_dns,
    evaluate_external,
    evaluate_service,
)
from novadiag.netpol.policy import Endpoint, parse_policy

NAME = "kubernetes.io/metadata.name"
NOVA = Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova" / "manifests"
NAMESPACES = {
    "nova-backend": {"environment": "prod", "team": "core"},
    "nova-content": {"environment": "prod"},
    "nova-staging": {"environment": "staging"},
}


def pod(ns, app, *ports, host_network=False, **labels):
    """An Endpoint; ports as ``name:number[/PROTO]`` or numbers."""
    parsed = []
    for p in ports:
        name, _, rest = str(p).rpartition(":")
        number, _, proto = rest.partition("/")
        parsed.append((name, int(number), proto or "TCP"))
    return Endpoint(ns, {"app": app, **labels}, app, tuple(parsed), host_network)


def np(ns, name="p", *, pods=None, types=None, ingress=None, egress=None):
    spec = {"podSelector": pods if pods is not None else {}}
    if types is not None:
        spec["policyTypes"] = types
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def index(*policies, namespaces=NAMESPACES):
    return PolicyIndex([parse_policy(p) for p in policies], namespaces)


def app(name):
    return {"matchLabels": {"app": name}}


def ns_named(name):
    return {"matchLabels": {NAME: name}}


USER = pod("nova-backend", "user-service", "http:8080")
CONTENT = pod("nova-content", "content-service", "grpc:9081", "metrics:9090")


def allowed(idx, source=USER, target=CONTENT, port=9081, protocol="TCP"):
    return evaluate(idx, source, target, port=port, protocol=protocol).allowed


# -- isolation and policy types -------------------------------------------------------------


def test_without_any_policy_everything_is_allowed_and_nothing_isolated():
    decision = evaluate(index(), USER, CONTENT, port=9081)
    assert decision.allowed
    assert not decision.egress.isolated and not decision.ingress.isolated


def test_ingress_default_deny_blocks_and_names_the_policy_and_direction():
    decision = evaluate(index(np("nova-content", "default-deny", types=["Ingress"])), USER, CONTENT, port=9081)
    assert not decision.allowed
    assert decision.responsible == ((ObjectRef("NetworkPolicy", "nova-content", "default-deny"), "ingress"),)
    assert "nova-content/default-deny (ingress)" in decision.detail


def test_a_policy_isolates_only_the_pods_its_pod_selector_selects():
    other = np("nova-content", pods=app("search"), types=["Ingress"])
    assert allowed(index(other))
    mine = np("nova-content", pods=app("content-service"), types=["Ingress"])
    assert not allowed(index(mine))


def test_policy_in_another_namespace_does_not_isolate():
    assert allowed(index(np("nova-staging", types=["Ingress", "Egress"])))


def test_implied_policy_types_ingress_only_leave_egress_open():
    ingress_only = np("nova-backend", ingress=[])  # no policyTypes: Ingress is implied, Egress is not
    assert allowed(index(ingress_only))
    assert not allowed(index(ingress_only), source=CONTENT, target=USER, port=8080)


def test_implied_policy_types_add_egress_when_egress_rules_exist():
    with_egress = np("nova-backend", egress=[{"to": [{"podSelector": app("postgres")}]}])
    decision = evaluate(index(with_egress), USER, CONTENT, port=9081)
    assert not decision.allowed
    assert decision.egress.isolated and decision.ingress is not None and not decision.ingress.isolated


def test_an_empty_egress_list_does_not_imply_egress():
    assert allowed(index(np("nova-backend", egress=[])))


def test_explicit_egress_type_without_rules_denies_all_egress():
    decision = evaluate(index(np("nova-backend", "deny-out", types=["Egress"])), USER, CONTENT, port=9081)
    assert not decision.allowed
    assert [d.direction for d in decision.denied] == ["egress"]
    assert "egress from nova-backend/user-service" in decision.detail


def test_rules_of_several_policies_add_up():
    deny = np("nova-content", "default-deny", types=["Ingress"])
    allow = np(
        "nova-content",
        "allow-backend",
        pods=app("content-service"),
        ingress=[{"from": [{"namespaceSelector": ns_named("nova-backend")}]}],
    )
    decision = evaluate(index(deny, allow), USER, CONTENT, port=9081)
    assert decision.allowed
    assert [r.name for r in decision.ingress.allowing] == ["allow-backend"]


def test_both_directions_must_allow():
    out = np("nova-backend", "out", types=["Egress"], egress=[{}])
    deny_in = np("nova-content", "in", types=["Ingress"])
    decision = evaluate(index(out, deny_in), USER, CONTENT, port=9081)
    assert not decision.allowed
    assert decision.responsible == ((ObjectRef("NetworkPolicy", "nova-content", "in"), "ingress"),)


# -- peers ---------------------------------------------------------------------------------


def ingress_from(*peers, ports=None):
    rule = {"from": list(peers)}
    if ports is not None:
        rule["ports"] = ports
    return index(np("nova-content", types=["Ingress"], ingress=[rule]))


def test_pod_selector_peer_means_pods_of_the_policys_own_namespace():
    idx = ingress_from({"podSelector": app("user-service")})
    assert allowed(idx, source=pod("nova-content", "user-service"))
    assert not allowed(idx, source=USER)  # same labels, other namespace


def test_namespace_selector_by_metadata_name():
    idx = ingress_from({"namespaceSelector": ns_named("nova-backend")})
    assert allowed(idx)
    assert not allowed(idx, source=pod("nova-staging", "user-service"))


def test_metadata_name_label_exists_even_when_the_namespace_object_lacks_it():
    idx = index(
        np("nova-content", types=["Ingress"], ingress=[{"from": [{"namespaceSelector": ns_named("elsewhere")}]}]),
        namespaces={},
    )
    assert allowed(idx, source=pod("elsewhere", "x"))


def test_namespace_selector_by_namespace_labels():
    idx = ingress_from({"namespaceSelector": {"matchLabels": {"environment": "prod"}}})
    assert allowed(idx)
    assert not allowed(idx, source=pod("nova-staging", "user-service"))


def test_namespace_and_pod_selector_in_one_peer_must_both_match():
    idx = ingress_from({"namespaceSelector": ns_named("nova-backend"), "podSelector": app("user-service")})
    assert allowed(idx)
    assert not allowed(idx, source=pod("nova-backend", "cdn-service"))


def test_separate_peers_are_alternatives():
    idx = ingress_from({"namespaceSelector": ns_named("nova-staging")}, {"podSelector": app("user-service")})
    assert allowed(idx, source=pod("nova-staging", "anything"))
    assert allowed(idx, source=pod("nova-content", "user-service"))
    assert not allowed(idx, source=USER)


def test_empty_namespace_selector_matches_every_namespace():
    idx = ingress_from({"namespaceSelector": {}})
    assert allowed(idx, source=pod("anywhere", "x"))
    assert not allowed(ingress_from({"podSelector": {}}), source=pod("anywhere", "x"))


@pytest.mark.parametrize(
    ("expression", "admitted", "refused"),
    [
        ({"key": "tier", "operator": "In", "values": ["api", "web"]}, {"tier": "api"}, {"tier": "db"}),
        ({"key": "tier", "operator": "NotIn", "values": ["db"]}, {}, {"tier": "db"}),
        ({"key": "tier", "operator": "Exists"}, {"tier": "db"}, {}),
        ({"key": "tier", "operator": "DoesNotExist"}, {}, {"tier": "api"}),
    ],
)
def test_match_expressions(expression, admitted, refused):
    idx = ingress_from({"namespaceSelector": {}, "podSelector": {"matchExpressions": [expression]}})
    assert allowed(idx, source=pod("nova-backend", "user-service", **admitted))
    assert not allowed(idx, source=pod("nova-backend", "user-service", **refused))


def test_namespace_match_expressions_on_metadata_name():
    expr = {"key": NAME, "operator": "NotIn", "values": ["nova-staging"]}
    idx = ingress_from({"namespaceSelector": {"matchExpressions": [expr]}})
    assert allowed(idx)
    assert not allowed(idx, source=pod("nova-staging", "user-service"))


def test_an_unknown_operator_selects_nothing():
    expr = {"key": "app", "operator": "Matches", "values": ["user-service"]}
    assert not allowed(ingress_from({"namespaceSelector": {}, "podSelector": {"matchExpressions": [expr]}}))


def test_a_rule_without_from_admits_every_source():
    idx = index(np("nova-content", types=["Ingress"], ingress=[{"ports": [{"port": 9081}]}]))
    assert allowed(idx, source=pod("nova-staging", "x"))
    assert not allowed(idx, port=9090)


# -- ports ---------------------------------------------------------------------------------


def test_port_by_number():
    idx = ingress_from({"namespaceSelector": {}}, ports=[{"port": 9081}])
    assert allowed(idx, port=9081)
    assert not allowed(idx, port=9090)


def test_named_port_is_resolved_against_the_target_containers():
    idx = ingress_from({"namespaceSelector": {}}, ports=[{"port": "grpc"}])
    assert allowed(idx, port=9081)
    assert not allowed(idx, port=9090)
    assert not allowed(idx, target=pod("nova-content", "content-service", "http:9081"), port=9081)


def test_named_egress_port_is_resolved_against_the_destination_pod():
    out = np("nova-backend", types=["Egress"], egress=[{"ports": [{"port": "grpc"}]}])
    assert allowed(index(out), port=9081)
    assert not allowed(index(out), target=pod("nova-content", "x", "http:9081"), port=9081)


def test_end_port_admits_a_range():
    idx = ingress_from({"namespaceSelector": {}}, ports=[{"port": 9000, "endPort": 9085}])
    assert allowed(idx, port=9081)
    assert not allowed(idx, port=9090)


def test_protocol_must_match_and_defaults_to_tcp():
    udp = ingress_from({"namespaceSelector": {}}, ports=[{"port": 9081, "protocol": "UDP"}])
    assert not allowed(udp, port=9081)
    assert allowed(udp, port=9081, protocol="UDP")
    assert not allowed(ingress_from({"namespaceSelector": {}}, ports=[{"port": 9081}]), port=9081, protocol="UDP")


def test_protocol_without_port_admits_every_port_of_it():
    idx = ingress_from({"namespaceSelector": {}}, ports=[{"protocol": "TCP"}])
    assert allowed(idx, port=12345)
    assert not allowed(idx, port=53, protocol="UDP")


# -- Services: ClusterIP translated to the pods ----------------------------------------------


def service(ns, name, port, target_port, selector):
    return ServiceInfo(
        ObjectRef("Service", ns, name),
        "ClusterIP",
        "10.0.0.1",
        (ServicePort(None, port, target_port, "TCP"),),
        selector,
    )


class FakeCluster:
    """The ClusterIndex seam: which workloads a Service selects."""

    def __init__(self, *workloads):
        self.workloads = workloads

    def selected_workloads(self, svc):
        return [
            w
            for w in self.workloads
            if w.namespace == svc.namespace and all(w.pod_labels.get(k) == v for k, v in svc.selector.items())
        ]


def workload(ns, name, *ports, replicas=1):
    from novadiag.workloads import Workload

    containers = [{"name": name, "ports": [{"name": n, "containerPort": p} for n, p in ports]}]
    return Workload(ObjectRef("Deployment", ns, name), {"containers": containers}, {"app": name}, {}, replicas)


def service_index(*policies, workloads):
    idx = index(*policies)
    idx.cluster = FakeCluster(*workloads)  # type: ignore[assignment]
    return idx


def test_cluster_ip_traffic_is_judged_at_the_target_port_of_the_pods():
    rule = {"from": [{"namespaceSelector": {}}], "ports": [{"port": 8080}]}
    idx = service_index(
        np("nova-content", types=["Ingress"], ingress=[rule]),
        workloads=[workload("nova-content", "web", ("http", 8080))],
    )
    assert evaluate_service(idx, USER, service("nova-content", "web", 80, 8080, {"app": "web"}), port=80).allowed
    rule["ports"] = [{"port": 80}]
    idx = service_index(
        np("nova-content", types=["Ingress"], ingress=[rule]),
        workloads=[workload("nova-content", "web", ("http", 8080))],
    )
    assert not evaluate_service(idx, USER, service("nova-content", "web", 80, 8080, {"app": "web"}), port=80).allowed


def test_named_target_port_is_translated_through_the_container_port():
    rule = {"from": [{"namespaceSelector": {}}], "ports": [{"port": 8080}]}
    idx = service_index(
        np("nova-content", types=["Ingress"], ingress=[rule]),
        workloads=[workload("nova-content", "web", ("http", 8080))],
    )
    assert evaluate_service(idx, USER, service("nova-content", "web", 80, "http", {"app": "web"}), port=80).allowed


def test_denied_for_one_of_several_workloads_behind_a_service_is_blocked_and_says_so():
    canary_closed = np("nova-content", "canary", pods=app("web-canary"), types=["Ingress"], ingress=[])
    idx = service_index(
        canary_closed, workloads=[workload("nova-content", "web"), workload("nova-content", "web-canary")]
    )
    svc = service("nova-content", "web", 80, 80, {})
    decision = evaluate_service(idx, USER, svc, port=80)
    assert not decision.allowed
    assert "1 of the 2 workloads" in decision.detail
    assert "nova-content/canary (ingress)" in decision.detail


# -- DNS ----------------------------------------------------------------------------------------

DNS_RULE = {
    "to": [{"namespaceSelector": ns_named("kube-system"), "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
}


def test_egress_default_deny_denies_dns_and_says_so():
    decision = evaluate_dns(index(np("nova-backend", "default-deny", types=["Egress"])), USER)
    assert not decision.allowed
    assert decision.detail.startswith("DNS egress is denied by NetworkPolicy nova-backend/default-deny (egress)")
    assert "kube-system" in decision.fix and "UDP" in decision.fix


@pytest.mark.parametrize(
    "rule",
    [
        DNS_RULE,
        {"to": [{"namespaceSelector": {}}], "ports": [{"port": 53, "protocol": "UDP"}]},
        {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
        {"to": [{"namespaceSelector": {}}], "ports": [{"port": "dns", "protocol": "UDP"}]},
    ],
)
def test_dns_egress_rules_of_the_usual_shapes_admit_lookups(rule):
    policies = index(
        np("nova-backend", "default-deny", types=["Egress"]), np("nova-backend", "dns", types=["Egress"], egress=[rule])
    )
    assert evaluate_dns(policies, USER).allowed


def test_dns_pods_refusing_the_source_deny_its_lookups_too():
    refuse = np("kube-system", "dns-from-prod", pods={"matchLabels": {"k8s-app": "kube-dns"}}, types=["Ingress"])
    refuse["spec"]["ingress"] = [{"from": [{"namespaceSelector": {"matchLabels": {"environment": "prod"}}}]}]
    assert evaluate_dns(index(refuse), USER).allowed
    decision = evaluate_dns(index(refuse), pod("nova-staging", "gateway"))
    assert not decision.allowed
    assert decision.detail.startswith("DNS is denied by NetworkPolicy kube-system/dns-from-prod (ingress)")


def test_dns_on_tcp_only_is_not_enough():
    rule = {"ports": [{"port": 53, "protocol": "TCP"}]}
    assert not evaluate_dns(index(np("nova-backend", types=["Egress"], egress=[rule])), USER).allowed


# -- ipBlock ------------------------------------------------------------------------------------

EXTERNAL_ONLY = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}], "ports": [{"port": 443}]}


def test_ipblock_admits_an_external_address_inside_and_refuses_one_excepted():
    idx = index(np("nova-backend", types=["Egress"], egress=[EXTERNAL_ONLY]))
    assert evaluate_external(idx, USER, "203.0.113.7", port=443).allowed
    assert not evaluate_external(idx, USER, "10.1.2.3", port=443).allowed
    assert not evaluate_external(idx, USER, "203.0.113.7", port=80).allowed


def test_external_name_under_an_ipblock_cannot_be_judged_and_stays_allowed_with_a_note():
    decision = evaluate_external(
        index(np("nova-backend", types=["Egress"], egress=[EXTERNAL_ONLY])), USER, "api.example.com", port=443
    )
    assert decision.allowed
    assert "api.example.com resolves into an ipBlock" in decision.detail


def test_external_traffic_is_denied_when_only_pod_peers_are_admitted():
    rule = {"to": [{"namespaceSelector": {}}]}
    decision = evaluate_external(
        index(np("nova-backend", "internal-only", types=["Egress"], egress=[rule])), USER, "api.example.com", port=443
    )
    assert not decision.allowed
    assert "ipBlock" in decision.fix


def test_ipblock_is_implementation_dependent_for_pod_traffic():
    rule = {"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}
    decision = evaluate(index(np("nova-content", types=["Ingress"], ingress=[rule])), USER, CONTENT, port=9081)
    assert not decision.allowed
    assert "depends on the network plugin" in decision.detail


def test_host_network_pods_are_not_isolated():
    target = pod("nova-content", "content-service", "grpc:9081", host_network=True)
    decision = evaluate(index(np("nova-content", types=["Ingress"])), USER, target, port=9081)
    assert decision.allowed
    assert "hostNetwork" in decision.ingress.notes[0]


# -- fixes: the minimal rule, and it works --------------------------------------------------------


def apply(policies, decision):
    """Apply the decision's suggested rules to raw policies."""
    out = copy.deepcopy(list(policies))
    for fix in decision.fixes:
        if fix.new_policy is not None:
            out.append(
                {
                    "kind": "NetworkPolicy",
                    "metadata": {"name": fix.policy, "namespace": fix.namespace},
                    "spec": dict(fix.new_policy),
                }
            )
            continue
        target = next(p for p in out if p["metadata"] == {"name": fix.policy, "namespace": fix.namespace})
        target["spec"].setdefault(fix.direction, []).append(dict(fix.rule))
    return out


def test_fix_adds_the_missing_peer_to_the_specific_policy():
    raw = [
        np("nova-content", "default-deny", types=["Ingress"]),
        np(
            "nova-content",
            "content-service",
            pods=app("content-service"),
            types=["Ingress"],
            ingress=[{"from": [{"podSelector": app("feed")}]}],
        ),
    ]
    decision = evaluate(index(*raw), USER, CONTENT, port=9081)
    assert decision.fix == (
        "add to NetworkPolicy nova-content/content-service spec.ingress: {from: [{namespaceSelector: {matchLabels: "
        "{kubernetes.io/metadata.name: nova-backend}}, podSelector: {matchLabels: {app: user-service}}}], "
        "ports: [{port: 9081, protocol: TCP}]}"
    )
    assert evaluate(index(*apply(raw, decision)), USER, CONTENT, port=9081).allowed


def test_fix_for_a_namespace_wide_deny_is_a_new_policy_for_the_target_only():
    raw = [
        np("nova-content", "default-deny", types=["Ingress", "Egress"]),
        np("nova-backend", "default-deny", types=["Egress"]),
    ]
    decision = evaluate(index(*raw), USER, CONTENT, port=9081)
    assert [f.direction for f in decision.fixes] == ["egress", "ingress"]
    assert all(f.new_policy is not None and f.new_policy["podSelector"] for f in decision.fixes)
    fixed = index(*apply(raw, decision))
    assert evaluate(fixed, USER, CONTENT, port=9081).allowed
    assert not evaluate(fixed, pod("nova-backend", "cdn-service"), CONTENT, port=9081).allowed


def test_dns_fix_opens_dns_for_the_whole_namespace():
    specific = np(
        "nova-backend", "user-service", pods=app("user-service"), types=["Egress"], egress=[{"ports": [{"port": 9081}]}]
    )
    raw = [np("nova-backend", "default-deny", types=["Egress"]), specific]
    decision = evaluate_dns(index(*raw), USER)
    assert [(f.policy, f.new_policy["podSelector"]) for f in decision.fixes] == [("allow-dns", {})]
    assert evaluate_dns(index(*apply(raw, decision)), pod("nova-backend", "cdn-service")).allowed


# -- scale ----------------------------------------------------------------------------------------


def test_index_work_grows_linearly_with_namespaces(monkeypatch):
    from novadiag.netpol import policy as module

    calls = {"n": 0}
    original = module.Selector.matches

    def counting(self, labels):
        calls["n"] += 1
        return original(self, labels)

    monkeypatch.setattr(module.Selector, "matches", counting)

    def work(n):
        calls["n"] = 0
        shared = {"namespaceSelector": {"matchLabels": {"generated": "true"}}}
        raw = [
            np(f"ns-{i}", types=["Ingress"], ingress=[{"from": [{"podSelector": {}}]}, {"from": [shared]}])
            for i in range(n)
        ]
        idx = index(*raw, namespaces={f"ns-{i}": {"generated": "true"} for i in range(n)})
        for i in range(n):
            for j in range(5):
                source = pod(f"ns-{i}", f"w{j}")
                assert allowed(idx, source=source, target=pod(f"ns-{(i + 1) % n}", f"w{(j + 1) % 5}"), port=80)
        return calls["n"]

    small, large = work(50), work(200)
    assert large <= 4.5 * small


# -- the audit: blocked edges in a Nova variant ------------------------------------------------------


def nova_objects():
    return [d for p in sorted(NOVA.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]


def audit_objects(objects):
    from novadiag.model import SourceInfo
    from novadiag.pipeline import audit_snapshot
    from novadiag.snapshot import build_snapshot

    return audit_snapshot(build_snapshot(objects, SourceInfo("manifests")))


def without(objects, ns, name):
    return [
        o for o in objects if not (o["kind"] == "NetworkPolicy" and o["metadata"] == {"name": name, "namespace": ns})
    ]


def policy_blocked(report):
    """Edges a NetworkPolicy blocks (Nova's HTTPRoute is blocked by a missing ReferenceGrant instead)."""
    return [e for e in report.edges if e.status == "blocked" and not e.reference.routing]


def test_nova_variant_without_feeds_redis_egress_blocks_that_edge_and_names_the_policies():
    objects = copy.deepcopy(nova_objects())
    feed = next(
        o
        for o in objects
        if o["kind"] == "NetworkPolicy" and o["metadata"] == {"name": "feed-service", "namespace": "nova-feed"}
    )
    feed["spec"]["egress"] = feed["spec"]["egress"][:1]  # keep content-service, drop redis
    report = audit_objects(objects)
    blocked = policy_blocked(report)
    assert [(e.source.name, e.reference.host) for e in blocked] == [("feed-service", "redis.nova-media")]
    edge = blocked[0]
    assert "egress from nova-feed/feed-service is denied by NetworkPolicy" in edge.detail
    assert "nova-feed/feed-service (egress)" in edge.detail and "nova-feed/default-deny (egress)" in edge.detail
    assert edge.fix.startswith("add to NetworkPolicy nova-feed/feed-service spec.egress:")
    assert edge.resolves_to == ObjectRef("Service", "nova-media", "redis")


def test_nova_variant_without_dns_egress_blocks_every_edge_from_the_namespace():
    report = audit_objects(without(nova_objects(), "nova-feed", "allow-dns"))
    from_feed = [e for e in report.edges if e.source.namespace == "nova-feed"]
    assert from_feed and all(e.status == "blocked" for e in from_feed)
    assert all("DNS egress is denied by NetworkPolicy nova-feed/default-deny (egress)" in e.detail for e in from_feed)
    assert not [e for e in policy_blocked(report) if e.source.namespace != "nova-feed"]


def test_nova_variant_without_an_ingress_allow_blocks_the_callers():
    report = audit_objects(without(nova_objects(), "nova", "postgres"))
    blocked = sorted((e.source.name, e.reference.host) for e in policy_blocked(report))
    assert blocked == [("auth-service", "postgres.nova"), ("messaging-service", "postgres.nova")]
    assert all(
        "ingress to nova/postgres is denied by NetworkPolicy nova/default-deny (ingress)" in e.detail
        for e in policy_blocked(report)
    )


def test_nova_variant_whose_staging_egress_admits_no_address_blocks_its_external_edge():
    objects = copy.deepcopy(nova_objects())
    staging = next(
        o
        for o in objects
        if o["kind"] == "NetworkPolicy" and o["metadata"] == {"name": "graphql-gateway", "namespace": "nova-staging"}
    )
    staging["spec"]["egress"][0]["to"] = [{"namespaceSelector": {}}]  # pods only: nothing outside the cluster
    edge = next(e for e in audit_objects(objects).edges if e.source.namespace == "nova-staging")
    assert edge.status == "blocked" and edge.target is None
    assert "egress from nova-staging/graphql-gateway is denied" in edge.detail and "ipBlock" in edge.fix


def test_a_failing_earlier_layer_wins_over_blocked():
    report = audit_objects(without(nova_objects(), "nova-content", "content-service"))
    content = [e for e in report.edges if e.reference.host.startswith("content-service") and not e.reference.routing]
    assert sorted(e.status for e in content) == ["blocked", "dns-unresolvable"]  # user-service's short name fails first


def test_nova_policies_keep_the_expected_audit_and_are_really_evaluated():
    report = audit_objects(nova_objects())
    assert {e.status for e in report.edges if not e.reference.routing} == {"ok", "dns-unresolvable", "external"}
    assert len([o for o in nova_objects() if o["kind"] == "NetworkPolicy"]) > 9


def test_generated_cluster_policies_keep_every_verdict():
    """The generator's policies admit every edge it makes: the policy layer must not change a verdict.

    (The cost of the layer at 2,000 namespaces is measured by benchmarks/run.py, not asserted here.)
    """
    from novadiag.index import build_index
    from novadiag.lab.generate import generate_manifests
    from novadiag.model import SourceInfo
    from novadiag.netpol.evaluation import build_policy_index
    from novadiag.references import discover_references
    from novadiag.snapshot import build_snapshot
    from novadiag.verdicts import VerdictContext, judge_all

    snap = build_snapshot(generate_manifests(namespaces=100, workloads_per_namespace=10), SourceInfo("manifests"))
    cluster = build_index(snap)
    refs, _ = discover_references(snap)
    workloads = {w.ref: w for w in snap.workloads}
    plain = judge_all(refs, workloads, VerdictContext(cluster))
    judged = judge_all(refs, workloads, VerdictContext(cluster, policies=build_policy_index(snap, cluster)))
    assert len(judged) > 1000
    assert [e.status for e in judged] == [e.status for e in plain]
