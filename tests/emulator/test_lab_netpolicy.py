"""The lab's own NetworkPolicy engine, rule by rule, against answers written by hand.

Each case is one sentence of the Kubernetes "Network Policies" page; the expected
answer is worked out from that sentence, not from any implementation. No root needed.
"""

from __future__ import annotations

from typing import Any

import pytest

from novadiag.lab.netpolicy import (
    ALL_PORTS,
    NO_PORTS,
    LabPod,
    PolicyEngine,
    complement,
    intersect,
    lab_pod,
    union,
)


def pod(ns: str, name: str, ip: str, ports: tuple[tuple[str, int, str], ...] = (), **labels: str) -> LabPod:
    return LabPod(namespace=ns, name=name, ip=ip, labels={"app": name, **labels}, ports=ports)


def policy(ns: str, name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("podSelector", {})
    return {"kind": "NetworkPolicy", "metadata": {"namespace": ns, "name": name}, "spec": spec}


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"kind": "Namespace", "metadata": {"name": name, "labels": labels}}


NAMESPACES = [namespace("front", env="prod"), namespace("back", env="prod"), namespace("lab", env="dev")]
WEB = pod("front", "web", "127.9.1.1")
API = pod("back", "api", "127.9.1.2", (("http", 8080, "TCP"), ("metrics", 9090, "TCP"), ("dns", 53, "UDP")))
DB = pod("back", "db", "127.9.1.3", (("pg", 5432, "TCP"),))
TOY = pod("lab", "api", "127.9.1.4", (("http", 8081, "TCP"),))


def engine(*policies: dict[str, Any]) -> PolicyEngine:
    return PolicyEngine(policies, NAMESPACES)


# -- isolation ---------------------------------------------------------------------------------


def test_a_pod_no_policy_selects_allows_everything() -> None:
    assert engine().allowed_ports(WEB, API) == ALL_PORTS


def test_default_deny_ingress_isolates_the_namespace_and_only_for_ingress() -> None:
    deny = engine(policy("back", "deny", policyTypes=["Ingress"]))
    assert deny.allowed_ports(WEB, API) == NO_PORTS
    assert deny.allowed_ports(API, WEB) == ALL_PORTS, "back's egress is not isolated"
    assert deny.allowed_ports(WEB, TOY) == ALL_PORTS, "another namespace is not selected"


def test_policy_types_default_to_ingress_plus_egress_when_egress_rules_exist() -> None:
    only_egress_rules = engine(policy("back", "p", egress=[{"to": [{"podSelector": {}}]}]))
    assert only_egress_rules.isolated(API, "Ingress") and only_egress_rules.isolated(API, "Egress")
    assert only_egress_rules.allowed_ports(WEB, API) == NO_PORTS, "no ingress rule: isolated for ingress"
    assert only_egress_rules.allowed_ports(API, DB) == NO_PORTS, "db is isolated for ingress too"
    empty_egress = engine(policy("back", "p", egress=[]))
    assert empty_egress.isolated(API, "Ingress") and not empty_egress.isolated(API, "Egress")
    assert empty_egress.allowed_ports(API, WEB) == ALL_PORTS


def test_egress_isolation_without_rules_denies_every_destination() -> None:
    deny = engine(policy("front", "deny", policyTypes=["Egress"]))
    assert deny.allowed_ports(WEB, API) == NO_PORTS
    assert deny.allowed_ports(API, WEB) == ALL_PORTS, "ingress to web is not isolated"


def test_rules_of_all_selecting_policies_add_up() -> None:
    two = engine(
        policy("back", "http", ingress=[{"ports": [{"port": 8080}]}]),
        policy("back", "metrics", podSelector={"matchLabels": {"app": "api"}},
               ingress=[{"ports": [{"port": 9090}]}]),
    )
    assert two.allowed_ports(WEB, API) == ((8080, 8080), (9090, 9090))
    assert two.allowed_ports(WEB, DB) == ((8080, 8080),), "the metrics policy does not select db"


def test_a_connection_needs_the_source_egress_and_the_destination_ingress() -> None:
    egress_8080 = policy("front", "out", policyTypes=["Egress"], egress=[{"ports": [{"port": 8080}]}])
    ingress_9090 = policy("back", "in", ingress=[{"ports": [{"port": 9090}]}])
    assert engine(egress_8080).allowed_ports(WEB, API) == ((8080, 8080),)
    assert engine(ingress_9090).allowed_ports(WEB, API) == ((9090, 9090),)
    assert engine(egress_8080, ingress_9090).allowed_ports(WEB, API) == NO_PORTS


# -- peers ---------------------------------------------------------------------------------


def test_missing_or_empty_from_admits_every_source_and_empty_ports_every_port() -> None:
    for rule in ({}, {"from": []}, {"from": [], "ports": []}):
        assert engine(policy("back", "all", ingress=[rule])).allowed_ports(WEB, API) == ALL_PORTS


def test_pod_selector_alone_means_pods_of_the_policy_namespace() -> None:
    by_label = engine(policy("back", "p", ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "api"}}}]}]))
    assert by_label.allowed_ports(API, DB) == ALL_PORTS
    assert by_label.allowed_ports(TOY, DB) == NO_PORTS, "app=api in another namespace is not selected"


def test_namespace_selector_alone_means_every_pod_of_matching_namespaces() -> None:
    prod = engine(policy("back", "p", ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"env": "prod"}}}]}]))
    assert prod.allowed_ports(WEB, API) == ALL_PORTS
    assert prod.allowed_ports(TOY, API) == NO_PORTS
    by_name = engine(policy("back", "p", ingress=[{"from": [{"namespaceSelector": {
        "matchLabels": {"kubernetes.io/metadata.name": "lab"}}}]}]))
    assert by_name.allowed_ports(TOY, API) == ALL_PORTS, "namespaces carry their name as a label"
    assert by_name.allowed_ports(WEB, API) == NO_PORTS


def test_both_selectors_in_one_peer_are_and_in_two_peers_are_or() -> None:
    ns_prod = {"namespaceSelector": {"matchLabels": {"env": "prod"}}}
    app_api = {"podSelector": {"matchLabels": {"app": "api"}}}
    anded = engine(policy("back", "p", podSelector={"matchLabels": {"app": "db"}},
                          ingress=[{"from": [{**ns_prod, **app_api}]}]))
    ored = engine(policy("back", "p", podSelector={"matchLabels": {"app": "db"}},
                         ingress=[{"from": [ns_prod, app_api]}]))
    assert anded.allowed_ports(API, DB) == ALL_PORTS
    assert anded.allowed_ports(WEB, DB) == NO_PORTS, "prod namespace but app=web"
    assert anded.allowed_ports(TOY, DB) == NO_PORTS, "app=api but a dev namespace"
    assert ored.allowed_ports(WEB, DB) == ALL_PORTS, "prod namespace is enough"
    assert ored.allowed_ports(TOY, DB) == NO_PORTS, "app=api only counts in back itself"


def test_match_expressions_select() -> None:
    not_web = engine(policy("back", "p", ingress=[{"from": [{"namespaceSelector": {}, "podSelector": {
        "matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}}]}]))
    assert not_web.allowed_ports(TOY, API) == ALL_PORTS
    assert not_web.allowed_ports(WEB, API) == NO_PORTS


def test_ip_block_admits_its_cidr_minus_the_exceptions() -> None:
    block = engine(policy("back", "p", ingress=[{"from": [{"ipBlock": {
        "cidr": "127.9.1.0/24", "except": ["127.9.1.4/32"]}}]}]))
    assert block.allowed_ports(WEB, API) == ALL_PORTS
    assert block.allowed_ports(TOY, API) == NO_PORTS
    outside = {"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}
    egress = engine(policy("front", "p", policyTypes=["Egress"], egress=[outside]))
    assert egress.allowed_ports(WEB, API) == NO_PORTS


# -- ports ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("entry", "expected"), [
    ({"port": 8080}, ((8080, 8080),)),
    ({"port": "8080"}, ((8080, 8080),)),
    ({"port": "http"}, ((8080, 8080),)),
    ({"port": "http", "protocol": "TCP"}, ((8080, 8080),)),
    ({"port": "pg"}, NO_PORTS),  # db's name, not api's: resolved against the destination
    ({"port": "dns"}, NO_PORTS),  # api's dns port is UDP
    ({"port": 8000, "endPort": 8100}, ((8000, 8100),)),
    ({"protocol": "TCP"}, ALL_PORTS),
    ({"protocol": "UDP"}, NO_PORTS),
    ({"protocol": "UDP", "port": 8080}, NO_PORTS),
    ({"protocol": "SCTP", "port": 8080}, NO_PORTS),
])
def test_port_entries(entry: dict[str, Any], expected: tuple[tuple[int, int], ...]) -> None:
    assert engine(policy("back", "p", ingress=[{"ports": [entry]}])).allowed_ports(WEB, API) == expected


def test_named_egress_ports_are_resolved_against_each_destination() -> None:
    named = engine(policy("front", "p", policyTypes=["Egress"], egress=[{"ports": [{"port": "http"}]}]))
    assert named.allowed_ports(WEB, API) == ((8080, 8080),)
    assert named.allowed_ports(WEB, TOY) == ((8081, 8081),)
    assert named.allowed_ports(WEB, DB) == NO_PORTS


def test_a_pod_talking_to_itself_is_never_filtered() -> None:
    assert engine(policy("back", "deny", policyTypes=["Ingress", "Egress"])).allowed_ports(API, API) == ALL_PORTS


# -- which pods count --------------------------------------------------------------------------


def raw_pod(phase: str, ip: str | None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": "back", "name": "x", "labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 80}]}], **spec},
            "status": {"phase": phase, **({"podIP": ip} if ip else {})}}


def test_only_running_pods_on_the_pod_network_count() -> None:
    running = lab_pod(raw_pod("Running", "127.9.1.9"))
    assert running is not None and running.ports == (("http", 80, "TCP"),) and running.labels == {"app": "x"}
    assert lab_pod(raw_pod("Pending", "127.9.1.9")) is None
    assert lab_pod(raw_pod("Running", None)) is None
    assert lab_pod(raw_pod("Succeeded", "127.9.1.9")) is None
    assert lab_pod(raw_pod("Running", "127.9.0.1", hostNetwork=True)) is None


def test_port_range_arithmetic() -> None:
    assert union(((5, 9),), ((1, 4),), ((20, 30),)) == ((1, 9), (20, 30))
    assert intersect(((1, 100),), ((50, 60), (90, 200))) == ((50, 60), (90, 100))
    assert complement(((80, 80), (443, 443))) == ((1, 79), (81, 442), (444, 65535))
    assert complement(ALL_PORTS) == NO_PORTS and complement(NO_PORTS) == ALL_PORTS
