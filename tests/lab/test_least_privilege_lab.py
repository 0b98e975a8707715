"""Generated least-privilege NetworkPolicies on the live Nova lab, after its consolidation.

The consolidation plan is applied to a running Nova lab that enforces NetworkPolicies
(a copy of the scenario with ``network_policies: enforce``); then the audited
namespaces' policies are replaced with the generated ones through the official
``kubernetes`` client, and the cluster is audited again. No in-cluster verdict may
change; the one external edge becomes ``blocked``, by design: the generated default
deny admits no egress out of the cluster.

The proof on the wire: the lab's firewall (its own policy engine, not novadiag's)
must let every ``ok`` edge connect from an address of its source workload's pods,
and drop a connection the graph does not hold. The test connects from the source
pod's IP itself: a probe pod would not do, it carries novadiag's labels, which the
generated policies (rightly) admit nowhere.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

import novadiag
from novadiag.lab import Lab
from novadiag.planning import apply_plan

pytestmark = [pytest.mark.lab, pytest.mark.slow]

NOVA = Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova"


def replace_policies(kubeconfig: str, generated: novadiag.GeneratedPolicies) -> None:
    api = client.NetworkingV1Api(config.new_client_from_config(config_file=kubeconfig))
    for policy in generated.existing:
        api.delete_namespaced_network_policy(policy["metadata"]["name"], policy["metadata"]["namespace"])
    for policy in generated.policies:
        api.create_namespaced_network_policy(policy["metadata"]["namespace"], policy)


@pytest.fixture(scope="module")
def consolidated() -> Iterator[dict[str, Any]]:
    scenario = Path(tempfile.mkdtemp(prefix="nd-leastpriv-scenario-")) / "nova-enforced"
    shutil.copytree(NOVA, scenario)
    meta = yaml.safe_load((scenario / "scenario.yaml").read_text())
    meta.update(name="nova-enforced", network_policies="enforce")
    (scenario / "scenario.yaml").write_text(yaml.safe_dump(meta))
    with Lab(scenario=str(scenario), state_dir=tempfile.mkdtemp(prefix="nd-leastpriv-")) as lab:
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
            probe=True,  # policies deny the probe pods (novadiag's labels): the audit knows, and compares DNS only
            out=lambda _: None,
        )
        assert result.ok, f"{result.stopped_at}: {result.reason}"
        after_plan = novadiag.audit(kubeconfig=lab.kubeconfig, probe=False)
        generated = novadiag.generate_policies(after_plan)
        replace_policies(lab.kubeconfig, generated)
        after_policies = novadiag.audit(kubeconfig=lab.kubeconfig, probe=False)
        info = json.loads((Path(lab.state_dir) / "lab.json").read_text())
        yield {"plan": after_plan, "generated": generated, "policies": after_policies,
               "enforced": info["network_policies"] == "enforced"}


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


def connect_from(source_ip: str, address: str, port: int, timeout: float = 1.5) -> str:
    """A TCP connect from ``source_ip`` (a pod's address): ok, refused or timeout."""
    with socket.socket() as sock:
        sock.bind((source_ip, 0))
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
        except TimeoutError:
            return "timeout"
        except OSError:
            return "refused"
        return "ok"


def wire_targets(report: novadiag.Report) -> tuple[dict[str, list[str]], list[tuple[str, str, int]]]:
    """Running pod IPs per workload ref, and (source ref, ClusterIP, port) of each ok edge to a ClusterIP."""
    snapshot = report.snapshot
    pods = [p for p in snapshot.of("Pod") if (p.get("status") or {}).get("phase") == "Running"]
    ips: dict[str, list[str]] = {}
    for workload in snapshot.workloads:
        ips[str(workload.ref)] = [
            p["status"]["podIP"] for p in pods
            if p["metadata"]["namespace"] == workload.namespace and workload.pod_labels
            and workload.pod_labels.items() <= (p["metadata"].get("labels") or {}).items()]
    cluster_ips = {(s["metadata"]["namespace"], s["metadata"]["name"]): s["spec"].get("clusterIP")
                   for s in snapshot.of("Service")}
    edges = []
    for edge in report.edges:
        target = edge.resolves_to
        if edge.status != "ok" or edge.reference.routing or target is None or not edge.reference.port:
            continue
        ip = cluster_ips.get((target.namespace, target.name))
        if ip and ip != "None" and ips.get(str(edge.source)):
            edges.append((str(edge.source), ip, edge.reference.port))
    return ips, edges


def test_every_ok_edge_connects_on_the_wire_and_an_unlisted_one_is_dropped(consolidated):
    if not consolidated["enforced"]:
        pytest.skip("the lab cannot enforce NetworkPolicies here (needs root and nft)")
    ips, edges = wire_targets(consolidated["policies"])
    assert len(edges) >= 5, edges
    failed = [(s, ip, port, r) for s, ip, port in edges
              if (r := connect_from(ips[s][0], ip, port)) != "ok"]
    assert failed == []
    admitted = {(s, ip, port) for s, ip, port in edges}
    unlisted = [(s, ip, port) for s in sorted({s for s, _, _ in edges})
                for _, ip, port in edges if (s, ip, port) not in admitted]
    assert unlisted, "some source has no edge to some target"
    source, ip, port = unlisted[0]
    assert connect_from(ips[source][0], ip, port) == "timeout", (source, ip, port)


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
