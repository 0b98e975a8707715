"""NetworkPolicies enforced on the wire by the lab (nftables), seen by live probes.

The lab's firewall drops what its own policy engine denies, so a probe pod's connect
times out where a real plugin would drop it; the audit's static policy verdict must
agree with what the probe sees. Needs root and ``nft`` (the lab says when it cannot).
"""

from __future__ import annotations

import json
import os
import shutil
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

pytestmark = pytest.mark.lab

NOVA = Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova"
needs_nft = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None,
                               reason="enforcement needs root and nft")


def deployment(ns: str, name: str, port: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    container = {"name": name, "image": f"shop/{name}:1", "ports": [{"name": "http", "containerPort": port}],
                 "env": [{"name": k, "value": v} for k, v in (env or {}).items()]}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}}}


def service(ns: str, name: str, port: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": port, "targetPort": "http"}]}}


DENY_INGRESS = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "default-deny", "namespace": "server"},
                "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}


def shop_objects() -> list[dict[str, Any]]:
    """client/web calls server/api (denied by a default deny) and client/cache (no policy)."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "client"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "server"}},
        deployment("server", "api", 8080), service("server", "api", 8080),
        deployment("client", "cache", 6380), service("client", "cache", 6380),
        deployment("client", "web", 8000, {"API_URL": "http://api.server:8080", "CACHE_ADDR": "cache:6380"}),
        DENY_INGRESS,
    ]


@pytest.fixture(scope="module")
def shop_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    scenario = tmp_path_factory.mktemp("netpol") / "shop"
    scenario.mkdir()
    (scenario / "cluster.yaml").write_text(yaml.safe_dump_all(shop_objects()))
    with Lab(scenario=str(scenario), state_dir=tempfile.mkdtemp(prefix="nd-netpol-")) as lab:
        yield lab


def edges_by_env(report: novadiag.Report) -> dict[str, novadiag.Edge]:
    return {e.reference.env or "": e for e in report.edges if e.reference.namespace == "client"}


def lab_info(lab: Lab) -> dict[str, Any]:
    return json.loads((Path(lab.state_dir) / "lab.json").read_text())


@needs_nft
def test_a_probe_into_a_default_deny_namespace_times_out_as_the_audit_predicts(shop_lab):
    assert lab_info(shop_lab)["network_policies"] == "enforced"
    static = edges_by_env(novadiag.audit(kubeconfig=shop_lab.kubeconfig, probe=False))
    live = edges_by_env(novadiag.audit(kubeconfig=shop_lab.kubeconfig, probe=True))
    assert static["API_URL"].status == "blocked"
    api = live["API_URL"]
    assert (api.status, api.verdict_from, api.probe.dns, api.probe.connect, api.probe.agrees) == (
        "blocked", "probe", "ok", "timeout", True)
    cache = live["CACHE_ADDR"]
    assert (cache.status, cache.probe.connect, cache.probe.agrees) == ("ok", "ok", True)


@needs_nft
def test_deleting_the_policy_lets_the_probe_through_within_seconds(shop_lab):
    api = client.NetworkingV1Api(config.new_client_from_config(config_file=shop_lab.kubeconfig))
    api.delete_namespaced_network_policy("default-deny", "server")
    try:
        started = time.monotonic()
        edge = edges_by_env(novadiag.audit(kubeconfig=shop_lab.kubeconfig, probe=True))["API_URL"]
        assert (edge.status, edge.probe.connect, edge.probe.agrees) == ("ok", "ok", True)
        assert time.monotonic() - started < 15
    finally:
        api.create_namespaced_network_policy("server", DENY_INGRESS)


@pytest.fixture(scope="module")
def enforced_nova(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    target = tmp_path_factory.mktemp("nova-enforced") / "nova-enforced"
    shutil.copytree(NOVA, target)
    meta = yaml.safe_load((target / "scenario.yaml").read_text())
    meta.update(name="nova-enforced", network_policies="enforce")
    (target / "scenario.yaml").write_text(yaml.safe_dump(meta))
    with Lab(scenario=str(target), state_dir=tempfile.mkdtemp(prefix="nd-nova-enforced-")) as lab:
        yield lab


@needs_nft
def test_enforced_nova_drops_the_probes_and_the_audit_knows_why(enforced_nova):
    """Nova's policies admit workloads by app label; a probe pod has novadiag's labels instead.

    Every Nova namespace has a default deny for egress with DNS allowed only, so each probe
    still resolves its names, then times out connecting where the static audit (for the
    workload) says ok. The audit's own engine says the policies deny the probe pod, so the
    timeout is left out of the comparison: the edge stays ok and agrees on what DNS showed.
    Refusals (no ready endpoint) are unchanged: nothing listens there.
    """
    static = {e.id: e for e in novadiag.audit(kubeconfig=enforced_nova.kubeconfig, probe=False).edges}
    live = novadiag.audit(kubeconfig=enforced_nova.kubeconfig, probe=True)
    connected = [e for e in live.edges if e.probe is not None and e.probe.connect not in ("skipped",)]
    assert connected, "some probes reached the connect step"
    timed_out = 0
    for edge in connected:
        if static[edge.id].status == "ok":
            # A policy that admits any source (nova-gateway's, on 4000) lets the probe through too.
            assert (edge.probe.dns, edge.status, edge.probe.agrees) == ("ok", "ok", True), edge.id
            if edge.probe.connect == "timeout":
                timed_out += 1
                assert "connect not compared: NetworkPolicies deny the probe pod" in (edge.probe.error or ""), edge.id
            else:
                assert edge.probe.connect == "ok" and edge.probe.error is None, edge.id
        elif static[edge.id].status == "no-endpoints":
            assert edge.probe.connect == "refused" and edge.probe.agrees, edge.id
        else:  # the HTTPRoute a missing ReferenceGrant refuses: nothing a probe can see, the verdict stands
            assert edge.status == static[edge.id].status == "blocked" and edge.verdict_from == "static", edge.id
    assert timed_out >= 10
    assert not [f for f in live.findings if f.code == "probe-disagrees" and "timed out" in f.message]
    assert live.probes["leftovers"] == []
