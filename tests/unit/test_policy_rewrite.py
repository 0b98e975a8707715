"""Rewriting NetworkPolicies for a namespace move: the same edges stay allowed and denied."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import novadiag
from novadiag.index import build_index
from novadiag.model import SourceInfo
from novadiag.netpol.evaluation import build_policy_index, evaluate_service
from novadiag.netpol.policy import Selector
from novadiag.netpol.rewrite import rewrite_policies_for_move, rewrite_policy, rewrite_policy_for_move
from novadiag.snapshot import build_snapshot

NAME = "kubernetes.io/metadata.name"
NOVA = Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova" / "manifests"
LABELS = {
    "nova-backend": {"environment": "prod"},
    "nova-content": {"environment": "prod"},
    "nova-staging": {"environment": "staging"},
    "kafka": {"environment": "infra"},
}


def policy(ns, *peers, name="p", direction="ingress"):
    key = "from" if direction == "ingress" else "to"
    spec = {"podSelector": {}, "policyTypes": [direction.capitalize()], direction: [{key: list(peers)}]}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def peers(p, direction="ingress"):
    return p["spec"][direction][0]["from" if direction == "ingress" else "to"]


def by_name(*names):
    return {"namespaceSelector": {"matchExpressions": [{"key": NAME, "operator": "In", "values": list(names)}]}}


def test_match_labels_naming_a_moved_namespace_names_the_new_one():
    p = policy("kafka", {"namespaceSelector": {"matchLabels": {NAME: "nova-content"}}})
    out = rewrite_policy_for_move(p, {"nova-content": "nova-prod"}, LABELS)
    assert peers(out) == [{"namespaceSelector": {"matchLabels": {NAME: "nova-prod"}}}]


def test_in_values_are_mapped_and_deduplicated():
    p = policy("kafka", by_name("nova-backend", "nova-content", "nova-staging"))
    out = rewrite_policy_for_move(p, {"nova-backend": "nova-prod", "nova-content": "nova-prod"}, LABELS)
    assert peers(out) == [by_name("nova-prod", "nova-staging")]


def test_the_pod_selector_of_a_peer_is_kept():
    peer = {"namespaceSelector": {"matchLabels": {NAME: "nova-content"}}, "podSelector": {"matchLabels": {"app": "x"}}}
    out = rewrite_policy_for_move(policy("kafka", peer), {"nova-content": "nova-prod"}, LABELS)
    assert peers(out)[0]["podSelector"] == {"matchLabels": {"app": "x"}}


def test_not_in_values_are_mapped():
    expr = {"key": NAME, "operator": "NotIn", "values": ["nova-staging"]}
    p = policy("kafka", {"namespaceSelector": {"matchExpressions": [expr]}})
    out = rewrite_policy_for_move(p, {"nova-staging": "staging"}, LABELS)
    assert peers(out)[0]["namespaceSelector"]["matchExpressions"][0]["values"] == ["staging"]


def test_not_in_a_namespace_merged_with_a_matched_one_keeps_admitting_and_says_why():
    expr = {"key": NAME, "operator": "NotIn", "values": ["nova-staging"]}
    p = policy("kafka", {"namespaceSelector": {"matchExpressions": [expr]}})
    result = rewrite_policy(p, {"nova-staging": "nova-prod", "nova-backend": "nova-prod"}, LABELS)
    assert peers(result.policy) == [{"namespaceSelector": {}}]
    assert any("nova-staging merge into nova-prod" in n for n in result.notes)


def test_label_selector_gets_a_peer_for_a_new_namespace_without_the_label():
    p = policy("kafka", {"namespaceSelector": {"matchLabels": {"environment": "prod"}}})
    out = rewrite_policy_for_move(p, {"nova-content": "nova-prod"}, LABELS)
    assert peers(out) == [{"namespaceSelector": {"matchLabels": {"environment": "prod"}}}, by_name("nova-prod")]


def test_label_selector_stays_as_is_when_the_new_namespace_carries_the_label():
    p = policy("kafka", {"namespaceSelector": {"matchLabels": {"environment": "prod"}}})
    out = rewrite_policy_for_move(
        p, {"nova-content": "nova-prod"}, LABELS, target_labels={"nova-prod": {"environment": "prod"}}
    )
    assert peers(out) == peers(p)


def test_label_selector_that_would_newly_match_moved_pods_excludes_their_namespace():
    p = policy("kafka", {"namespaceSelector": {"matchLabels": {"environment": "prod"}}})
    out = rewrite_policy_for_move(
        p, {"nova-staging": "staging-v2"}, LABELS, target_labels={"staging-v2": {"environment": "prod"}}
    )
    selector = peers(out)[0]["namespaceSelector"]
    assert selector["matchExpressions"] == [{"key": NAME, "operator": "NotIn", "values": ["staging-v2"]}]


def test_the_policy_moves_with_its_namespace_and_the_input_is_untouched():
    p = policy("nova-content", {"podSelector": {}})
    before = copy.deepcopy(p)
    out = rewrite_policy_for_move(p, {"nova-content": "nova-prod"}, LABELS)
    assert out["metadata"]["namespace"] == "nova-prod"
    assert p == before


def test_peers_without_namespace_selector_and_ip_blocks_are_left_alone():
    same_ns = {"podSelector": {"matchLabels": {"app": "feed"}}}
    block = {"ipBlock": {"cidr": "10.0.0.0/8"}}
    out = rewrite_policy_for_move(policy("nova-content", same_ns, block), {"nova-content": "nova-prod"}, LABELS)
    assert peers(out) == [same_ns, block]


def test_a_merge_into_the_policys_namespace_is_noted():
    result = rewrite_policy(
        policy("nova-content", {"podSelector": {}}), {"nova-content": "nova-prod", "nova-backend": "nova-prod"}, LABELS
    )
    assert any("nova-prod also receives the pods of nova-backend" in n for n in result.notes)
    assert not rewrite_policy(policy("nova-content", {"podSelector": {}}), {"nova-content": "nova-prod"}, LABELS).notes


def test_egress_peers_are_rewritten_too():
    p = policy("kafka", {"namespaceSelector": {"matchLabels": {NAME: "nova-content"}}}, direction="egress")
    out = rewrite_policy_for_move(p, {"nova-content": "nova-prod"}, LABELS)
    assert peers(out, "egress") == [{"namespaceSelector": {"matchLabels": {NAME: "nova-prod"}}}]


def test_identical_policies_merged_into_one_namespace_are_kept_once_and_different_ones_renamed():
    deny_a, deny_b = policy("nova-backend", name="default-deny"), policy("nova-content", name="default-deny")
    other = policy("nova-content", {"podSelector": {"matchLabels": {"app": "x"}}}, name="default-deny")
    moves = {"nova-backend": "nova-prod", "nova-content": "nova-prod"}
    assert len(rewrite_policies_for_move([deny_a, deny_b], moves, LABELS).policies) == 1
    result = rewrite_policies_for_move([deny_a, other], moves, LABELS)
    assert sorted(p["metadata"]["name"] for p in result.policies) == ["default-deny", "default-deny-nova-content"]
    assert any("renamed default-deny-nova-content" in n for n in result.notes)


def test_a_policy_of_a_namespace_that_stays_keeps_its_name():
    stays = policy("nova-backend", {"podSelector": {}}, name="allow")
    moved = policy("nova-content", name="allow")
    result = rewrite_policies_for_move([moved, stays], {"nova-content": "nova-backend"}, LABELS)
    names = {p["metadata"]["name"]: peers(p) for p in result.policies}
    assert names["allow"] == [{"podSelector": {}}]


# -- property: every known namespace keeps its verdict ---------------------------------------------

NAMES = ["n0", "n1", "n2", "n3", "n4"]
label_sets = st.fixed_dictionaries(
    {}, optional={"env": st.sampled_from(["prod", "staging"]), "team": st.sampled_from(["a", "b"])}
)
selectors = st.one_of(
    st.builds(lambda n: {"matchLabels": {NAME: n}}, st.sampled_from(NAMES)),
    st.builds(
        lambda ns: {"matchExpressions": [{"key": NAME, "operator": "In", "values": ns}]},
        st.lists(st.sampled_from(NAMES), min_size=1, unique=True),
    ),
    st.builds(
        lambda ns: {"matchExpressions": [{"key": NAME, "operator": "NotIn", "values": ns}]},
        st.lists(st.sampled_from(NAMES), min_size=1, unique=True),
    ),
    st.builds(lambda e: {"matchLabels": {"env": e}}, st.sampled_from(["prod", "staging"])),
    st.builds(
        lambda op: {"matchExpressions": [{"key": "team", "operator": op}]}, st.sampled_from(["Exists", "DoesNotExist"])
    ),
    st.just({}),
)


@st.composite
def worlds(draw):
    labels = {n: draw(label_sets) for n in NAMES}
    movers = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=4))
    staying = [n for n in NAMES if n not in movers]
    targets = st.sampled_from(["t0", "t1", *staying])
    moves = {m: draw(targets) for m in movers}
    target_labels = {t: draw(label_sets) for t in ("t0", "t1") if draw(st.booleans())}
    return labels, moves, target_labels, draw(selectors)


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_every_namespace_keeps_its_verdict_unless_merged_with_a_different_one(world):
    labels, moves, target_labels, selector = world
    rewritten = peers(
        rewrite_policy_for_move(
            policy("n0", {"namespaceSelector": selector}), moves, labels, target_labels=target_labels
        )
    )

    def before(ns):
        return Selector.parse(selector).matches({**labels[ns], NAME: ns})

    def after_labels(ns):
        base = target_labels.get(ns, labels.get(ns, {}))
        return {**base, NAME: ns}

    def after(ns):
        return any(Selector.parse(p["namespaceSelector"]).matches(after_labels(ns)) for p in rewritten)

    f = {n: moves.get(n, n) for n in NAMES}
    for ns in NAMES:
        siblings = {before(o) for o in NAMES if f[o] == f[ns]}
        if len(siblings) == 1:
            assert after(f[ns]) == before(ns), (ns, f[ns])
        else:
            assert after(f[ns])  # mixed merge: keep admitting


# -- the Nova consolidation: policies rewritten, edges judged before and after -----------------------

MOVES = {
    ns: "nova-prod" for ns in ("nova-backend", "nova-gateway", "nova-content", "nova-feed", "nova-auth", "nova-media")
}
PROD = {"nova-prod": {"environment": "prod"}}
NON_EDGES = [  # (source namespace, workload, Service namespace, Service, port): denied before and after
    ("nova-staging", "graphql-gateway", "nova-backend", "user-service", 8080),
    ("nova-feed", "feed-service", "nova-backend", "postgres", 5432),
    ("nova-gateway", "graphql-gateway", "nova-content", "content-service", 9081),
    ("nova-backend", "cdn-service", "nova-media", "redis", 6379),
    ("nova-backend", "user-service", "nova-backend", "messaging-service", 8084),
    ("nova-staging", "graphql-gateway", "kafka", "kafka", 9092),
]


def nova_objects():
    return [d for p in sorted(NOVA.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]


def namespace_labels(objects):
    return {o["metadata"]["name"]: o["metadata"].get("labels") or {} for o in objects if o["kind"] == "Namespace"}


def consolidate(objects, policies):
    """The cluster after the move: objects re-namespaced (no DNS rewrite needed to judge policies)."""
    out = [o for o in objects if o["kind"] == "Namespace" and o["metadata"]["name"] not in MOVES]
    out.append(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "nova-prod", "labels": PROD["nova-prod"]}}
    )
    for o in objects:
        if o["kind"] in ("Namespace", "NetworkPolicy"):
            continue
        o = copy.deepcopy(o)
        if "namespace" in o["metadata"]:  # not for cluster-scoped kinds (the IngressClass)
            o["metadata"]["namespace"] = MOVES.get(o["metadata"]["namespace"], o["metadata"]["namespace"])
        out.append(o)
    return out + list(policies)


class Cluster:
    def __init__(self, objects):
        self.snapshot = build_snapshot(objects, SourceInfo("manifests"))
        self.index = build_index(self.snapshot)
        self.policies = build_policy_index(self.snapshot, self.index)
        self.workloads = {(w.namespace, w.ref.name): w for w in self.snapshot.workloads}

    def allowed(self, src_ns, workload, svc_ns, svc, port, *, moved=False):
        f = (lambda ns: MOVES.get(ns, ns)) if moved else (lambda ns: ns)
        source = self.policies.endpoint(self.workloads[(f(src_ns), workload)])
        decision = evaluate_service(self.policies, source, self.index.service(f(svc_ns), svc), port=port)
        return decision.allowed


def graph_edges():
    from novadiag.pipeline import audit_snapshot

    report = audit_snapshot(build_snapshot(nova_objects(), SourceInfo("manifests")))
    return [
        (
            e.source.namespace,
            e.source.name,
            (e.resolves_to or e.target).namespace,
            (e.resolves_to or e.target).name,
            e.reference.port,
        )
        for e in report.edges
        if (e.resolves_to or e.target) is not None and not e.reference.routing  # pod-to-pod edges only
    ]


def rewritten_nova():
    objects = nova_objects()
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    return objects, rewrite_policies_for_move(policies, MOVES, namespace_labels(objects), target_labels=PROD)


def test_consolidation_keeps_every_graph_edge_allowed_and_every_non_edge_denied():
    objects, result = rewritten_nova()
    before, after = Cluster(objects), Cluster(consolidate(objects, result.policies))
    edges = graph_edges()
    assert len(edges) == 23
    for edge in edges:
        assert before.allowed(*edge) and after.allowed(*edge, moved=True), edge
    for pair in NON_EDGES:
        assert not before.allowed(*pair) and not after.allowed(*pair, moved=True), pair


def test_consolidation_without_the_rewrite_denies_edges_that_were_allowed():
    objects = nova_objects()
    moved_only = []
    for o in objects:
        if o["kind"] == "NetworkPolicy":
            o = copy.deepcopy(o)
            o["metadata"]["namespace"] = MOVES.get(o["metadata"]["namespace"], o["metadata"]["namespace"])
            moved_only.append(o)
    after = Cluster(consolidate(objects, moved_only))
    denied = [e for e in graph_edges() if not after.allowed(*e, moved=True)]
    assert ("nova-feed", "feed-service", "nova-content", "content-service", 9081) in denied


def test_consolidation_rewrites_namespace_selectors_and_merges_the_duplicates():
    _, result = rewritten_nova()
    policies = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in result.policies}
    assert not any(ns in MOVES for ns, _ in policies)
    content = policies[("nova-prod", "content-service")]
    callers = [peer["namespaceSelector"] for peer in content["spec"]["ingress"][0]["from"]]
    assert callers == [{"matchLabels": {NAME: "nova-prod"}}] * 2
    kafka = policies[("kafka", "kafka")]
    assert kafka["spec"]["ingress"][0]["from"] == [{"namespaceSelector": {"matchLabels": {"environment": "prod"}}}]
    assert [name for ns, name in policies if ns == "nova-prod" and name in ("default-deny", "allow-dns")] == [
        "default-deny",
        "allow-dns",
    ]
    assert any("merge into nova-prod" in n for n in result.notes)  # user-service's upstream namespaces join its own
