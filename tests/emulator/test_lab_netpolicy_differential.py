"""Two readings of NetworkPolicy v1 must agree: the audit's evaluator and the lab's engine.

``novadiag.netpol.evaluation`` judges edges statically; ``novadiag.lab.netpolicy`` is
the lab's plugin, written separately from the Kubernetes documentation. Over
generated policies (selectors, both kinds of peer, ports by number, name, range and
protocol, defaulted and explicit policyTypes) every (source pod, destination pod,
port) must get the same answer from both. ipBlock is left out on purpose: for pod
traffic the audit treats it as implementation-dependent and never admits it, the
lab matches the pod's IP as a non-NAT plugin does. A pod talking to itself is left
out too (the lab never filters it; the audit has no such edge).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from novadiag.lab.netpolicy import LabPod, PolicyEngine
from novadiag.netpol.evaluation import PolicyIndex, evaluate
from novadiag.netpol.policy import Endpoint, parse_policy

NAMESPACES = {"a": {"team": "red"}, "b": {"team": "blue"}}
PODS = [
    ("a", "web", {"app": "web", "tier": "front"}, (("http", 80, "TCP"),)),
    ("a", "api", {"app": "api", "tier": "back"}, (("http", 8080, "TCP"), ("metrics", 9090, "TCP"))),
    ("b", "db", {"app": "db", "tier": "back"}, (("sql", 5432, "TCP"), ("http", 8081, "TCP"))),
    ("b", "dns", {"app": "dns"}, (("dns", 53, "UDP"), ("metrics", 9090, "TCP"))),
]
PORTS = (53, 80, 443, 5432, 8080, 8081, 9090)

labels = st.sampled_from([{}, {"app": "web"}, {"app": "api"}, {"app": "db"}, {"tier": "back"}, {"tier": "front"}])
expressions = st.sampled_from([
    {"key": "app", "operator": "In", "values": ["api", "db"]},
    {"key": "tier", "operator": "NotIn", "values": ["front"]},
    {"key": "tier", "operator": "Exists"},
    {"key": "tier", "operator": "DoesNotExist"},
    {"key": "team", "operator": "In", "values": ["red"]},
])


@st.composite
def selectors(draw: st.DrawFn) -> dict[str, Any]:
    selector: dict[str, Any] = {}
    match = draw(labels)
    if match:
        selector["matchLabels"] = match
    if draw(st.booleans()):
        selector["matchExpressions"] = [draw(expressions)]
    return selector


@st.composite
def namespace_selectors(draw: st.DrawFn) -> dict[str, Any]:
    return draw(st.sampled_from([
        {}, {"matchLabels": {"team": "red"}}, {"matchLabels": {"kubernetes.io/metadata.name": "b"}},
        {"matchExpressions": [{"key": "team", "operator": "In", "values": ["blue"]}]},
    ]))


@st.composite
def peers(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["pod", "namespace", "both"]))
    peer: dict[str, Any] = {}
    if kind in ("pod", "both"):
        peer["podSelector"] = draw(selectors())
    if kind in ("namespace", "both"):
        peer["namespaceSelector"] = draw(namespace_selectors())
    return peer


@st.composite
def port_entries(draw: st.DrawFn) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    protocol = draw(st.sampled_from([None, "TCP", "UDP"]))
    if protocol:
        entry["protocol"] = protocol
    kind = draw(st.sampled_from(["none", "number", "name", "range"]))
    if kind == "number":
        entry["port"] = draw(st.sampled_from(PORTS))
    elif kind == "name":
        entry["port"] = draw(st.sampled_from(["http", "metrics", "sql", "dns"]))
    elif kind == "range":
        entry["port"] = draw(st.sampled_from([80, 5000, 8000]))
        entry["endPort"] = entry["port"] + draw(st.sampled_from([0, 100, 1000]))
    return entry


@st.composite
def rules(draw: st.DrawFn, peers_key: str) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    if draw(st.booleans()):
        rule[peers_key] = draw(st.lists(peers(), max_size=2))
    if draw(st.booleans()):
        rule["ports"] = draw(st.lists(port_entries(), max_size=2))
    return rule


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": draw(selectors())}
    if draw(st.booleans()):
        spec["ingress"] = draw(st.lists(rules("from"), max_size=2))
    if draw(st.booleans()):
        spec["egress"] = draw(st.lists(rules("to"), max_size=2))
    types = draw(st.sampled_from([None, ["Ingress"], ["Egress"], ["Ingress", "Egress"]]))
    if types:
        spec["policyTypes"] = types
    name = f"p{draw(st.integers(0, 10_000))}"
    return {"kind": "NetworkPolicy", "metadata": {"namespace": draw(st.sampled_from(["a", "b"])), "name": name},
            "spec": spec}


def audit_answer(index: PolicyIndex, source: tuple[Any, ...], destination: tuple[Any, ...], port: int) -> bool:
    ns_s, name_s, labels_s, ports_s = source
    ns_d, name_d, labels_d, ports_d = destination
    src = Endpoint(ns_s, labels_s, name_s, ports_s)
    dst = Endpoint(ns_d, labels_d, name_d, ports_d)
    return evaluate(index, src, dst, port=port).allowed


@settings(max_examples=150, deadline=None)
@given(st.lists(policies(), max_size=4))
def test_the_audit_and_the_lab_agree_on_every_connection(generated: list[dict[str, Any]]) -> None:
    namespaces = [{"metadata": {"name": n, "labels": dict(lbl)}} for n, lbl in NAMESPACES.items()]
    lab = PolicyEngine(generated, namespaces)
    index = PolicyIndex([parse_policy(p) for p in generated], NAMESPACES)
    pods = {p[1]: LabPod(p[0], p[1], f"127.9.1.{i + 1}", dict(p[2]), p[3]) for i, p in enumerate(PODS)}
    differences = [
        (s[1], d[1], port)
        for s in PODS for d in PODS if s is not d
        for port in PORTS
        if lab.allows(pods[s[1]], pods[d[1]], port) != audit_answer(index, s, d, port)
    ]
    assert differences == []
