"""Generated least-privilege NetworkPolicies on the live Nova lab, after its consolidation.

The consolidation plan is applied to a running Nova lab; then the audited
namespaces' policies are replaced with the generated ones through the official
``kubernetes`` client, and the cluster is audited again. The lab stores
NetworkPolicies but does not enforce them on the wire (its pods share the
loopback), so what changes is the audit's own policy verdict: no in-cluster
edge may change it. The one external edge becomes ``blocked``, by design: the
generated default deny admits no egress out of the cluster.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config

import novadiag
from novadiag.lab import Lab
from novadiag.planning import apply_plan

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def replace_policies(kubeconfig: str, generated: novadiag.GeneratedPolicies) -> None:
    api = client.NetworkingV1Api(config.new_client_from_config(config_file=kubeconfig))
    for policy in generated.existing:
        api.delete_namespaced_network_policy(policy["metadata"]["name"], policy["metadata"]["namespace"])
    for policy in generated.policies:
        api.create_namespaced_network_policy(policy["metadata"]["namespace"], policy)


@pytest.fixture(scope="module")
def consolidated() -> Iterator[dict[str, Any]]:
    with Lab(scenario="nova", state_dir=tempfile.mkdtemp(prefix="nd-leastpriv-")) as lab:
        time.sleep(2)
        before = novadiag.audit(kubeconfig=lab.kubeconfig, probe=False)
        plan = novadiag.plan(
            before,
            "consolidate",
            into="nova-prod",
            keep=["kafka", "nova-staging"],
            prefer=["nova-backend/postgres"],
            wait_timeout=120,
        )
        result = apply_plan(
            plan,
            kubeconfig=lab.kubeconfig,
            yes=True,
            allow_delete=True,
            skip_grace=True,
            ack_manual=True,
            out=lambda _: None,
        )
        assert result.ok, f"{result.stopped_at}: {result.reason}"
        after_plan = novadiag.audit(kubeconfig=lab.kubeconfig, probe=False)
        generated = novadiag.generate_policies(after_plan)
        replace_policies(lab.kubeconfig, generated)
        after_policies = novadiag.audit(kubeconfig=lab.kubeconfig, probe=False)
        yield {"plan": after_plan, "generated": generated, "policies": after_policies}


def test_generated_policies_change_no_in_cluster_verdict(consolidated):
    before = {e.id: e.status for e in consolidated["plan"].edges}
    after = {e.id: e.status for e in consolidated["policies"].edges}
    assert set(before) == set(after)
    assert "ok" in before.values()
    changed = {i: (before[i], after[i]) for i in before if before[i] != after[i]}
    assert changed == {i: ("external", "blocked") for i, s in before.items() if s == "external"}


def test_the_cluster_holds_exactly_the_generated_policies(consolidated):
    generated = consolidated["generated"]
    snapshot = consolidated["policies"].snapshot
    live = {
        (p["metadata"]["namespace"], p["metadata"]["name"])
        for p in snapshot.of("NetworkPolicy")
        if p["metadata"]["namespace"] in generated.namespaces
    }
    assert live == {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in generated.policies}
    assert "nova-prod" in generated.namespaces and "nova-backend" not in generated.namespaces
    assert all(p["metadata"]["labels"]["novadiag.io/generated"] == "true" for p in generated.policies)


def test_the_ingress_controller_keeps_its_way_to_the_moved_gateway(consolidated):
    """ingress-nginx stays put (a controller's namespace is not consolidated) and, audited, gets its own egress."""
    generated = consolidated["generated"]
    ingress = next(e for e in consolidated["plan"].edges if e.source.kind == "Ingress")
    assert (ingress.status, ingress.source.namespace) == ("ok", "nova-prod")
    assert ingress.id in generated.edges
    assert "ingress-nginx" in generated.namespaces
    names = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in generated.policies}
    egress = names[("ingress-nginx", "novadiag-egress-ingress-nginx-controller")]
    assert egress["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "ingress-nginx"
    assert egress["spec"]["egress"] == [
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "nova-prod"}},
                    "podSelector": {"matchLabels": {"app": "graphql-gateway"}},
                }
            ],
            "ports": [{"protocol": "TCP", "port": 4000}],
        }
    ]
