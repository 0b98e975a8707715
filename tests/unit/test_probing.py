"""Probe groups, probe pod specs and merging observations (the pure parts)."""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import novadiag
from novadiag.index import build_index
from novadiag.netpol.evaluation import build_policy_index
from novadiag.probing import ProbeSettings, group_edges, merge_observations
from novadiag.probing.groups import configmap_spec, pod_spec, probe_program
from novadiag.probing.merge import observed_status
from novadiag.probing.runner import GroupOutcome

NOVA = Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova" / "manifests"


@pytest.fixture(scope="module")
def nova():
    report = novadiag.audit(manifests=[NOVA])
    index = build_index(report.snapshot)
    workloads = {w.ref: w for w in report.snapshot.workloads}
    return report, index, workloads


def test_one_group_per_namespace_and_dns_settings(nova):
    report, index, workloads = nova
    groups = group_edges(report.edges, workloads, index)
    keys = [(g.namespace, json.dumps(g.dns, sort_keys=True)) for g in groups]
    assert len(keys) == len(set(keys))
    # nova-backend has cdn-service with its own dnsConfig (ndots 2): two groups there
    backend = [g for g in groups if g.namespace == "nova-backend"]
    assert len(backend) == 2
    assert any(g.dns.get("dnsConfig") for g in backend)


def test_every_non_external_edge_from_a_workload_is_in_exactly_one_group(nova):
    report, index, workloads = nova
    groups = group_edges(report.edges, workloads, index)
    grouped = [e for g in groups for e in g.edge_ids]
    assert sorted(grouped) == sorted(e.id for e in report.edges if e.status != "external" and not e.reference.routing)


def test_routing_edges_are_not_probed_and_say_why(nova):
    report, index, workloads = nova
    routing = [e for e in report.edges if e.reference.routing]
    assert {e.source.kind for e in routing} == {"Ingress", "HTTPRoute"}
    group = group_edges(report.edges, workloads, index)[0]
    edges, _ = merge_observations(report.edges, [_outcome(group, [_result(c) for c in group.checks])], index)
    merged = [e for e in edges if e.reference.routing]
    assert [(e.status, e.probe.dns, e.probe.agrees, e.verdict_from) for e in merged] == [
        (e.status, "not-run", None, "static") for e in routing
    ]
    assert all("reached by its controller" in e.probe.error for e in merged)


def test_same_host_port_from_one_group_is_checked_once(nova):
    report, index, workloads = nova
    for group in group_edges(report.edges, workloads, index):
        triples = [(c.host, c.port, c.protocol) for c in group.checks]
        assert len(triples) == len(set(triples))


def test_grpc_and_http_ports_get_health_checks(nova):
    report, index, workloads = nova
    protocols = {(c.host, c.protocol) for g in group_edges(report.edges, workloads, index) for c in g.checks}
    assert ("content-service", "grpc") in protocols
    assert ("feed-service", "http") in protocols
    assert ("postgres", "tcp") in protocols


def test_probe_pod_passes_pod_security_restricted(nova):
    report, index, workloads = nova
    group = group_edges(report.edges, workloads, index)[0]
    pod = pod_spec(group, "abcd1234", 0, ProbeSettings(image_pull_secret="regcred"), "2026-01-01T00:00:00Z")
    spec = pod["spec"]
    container = spec["containers"][0]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["automountServiceAccountToken"] is False
    assert container["resources"]["limits"] and container["resources"]["requests"]
    assert spec["restartPolicy"] == "Never" and spec["activeDeadlineSeconds"] > 0
    assert pod["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "novadiag"
    assert pod["metadata"]["labels"]["novadiag.dev/run-id"] == "abcd1234"
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]


def test_probe_pod_copies_the_source_dns_settings(nova):
    report, index, workloads = nova
    group = next(g for g in group_edges(report.edges, workloads, index) if g.dns)
    spec = pod_spec(group, "r", 1, ProbeSettings(), "t")["spec"]
    assert spec["dnsConfig"] == group.dns["dnsConfig"]


def test_configmap_carries_program_and_checks(nova):
    report, index, workloads = nova
    group = group_edges(report.edges, workloads, index)[0]
    cm = configmap_spec(group, "r", 0, ProbeSettings(), "t")
    assert cm["data"]["probe.py"] == probe_program()
    checks = json.loads(cm["data"]["checks.json"])["checks"]
    assert len(checks) == len(group.checks)


def test_probe_program_reads_resolv_conf_and_detects_cluster_domain(tmp_path):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(
        "nameserver 127.0.0.1\nsearch a.svc.corp.internal svc.corp.internal corp.internal\noptions ndots:5\n"
    )
    checks = tmp_path / "checks.json"
    checks.write_text(json.dumps({"resolv_conf": str(resolv), "checks": [], "timeout": 0.2}))
    program = Path(novadiag.__file__).parent.parent / "probes" / "probe.py"
    out = subprocess.run([sys.executable, str(program), str(checks)], capture_output=True, text=True, check=True)
    doc = json.loads(out.stdout)
    assert doc["schema"] == "novadiag.probe/v1"
    assert doc["cluster_domain"] == "corp.internal"
    assert doc["resolv_conf"]["ndots"] == 5


def test_pod_spec_gives_the_probe_its_pod_ip(nova):
    report, index, workloads = nova
    group = group_edges(report.edges, workloads, index)[0]
    env = pod_spec(group, "r", 0, ProbeSettings(), "t")["spec"]["containers"][0]["env"]
    assert {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in env


class _RecordingServer(http.server.ThreadingHTTPServer):
    """Answers 200 to every GET and remembers the source address of each connection."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Ok)
        self.peers: list[str] = []

    def get_request(self):
        conn, addr = super().get_request()
        self.peers.append(addr[0])
        return conn, addr


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the name http.server dispatches to
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def _probe_peers(tmp_path, pod_ip):
    """Run the probe program against a local HTTP server; the source address of each connection."""
    server = _RecordingServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    check = {"id": "e1", "host": "127.0.0.1", "port": server.server_address[1], "protocol": "http",
             "skip_candidates": True}
    checks = tmp_path / "checks.json"
    checks.write_text(json.dumps({"checks": [check], "timeout": 2}))
    program = Path(novadiag.__file__).parent.parent / "probes" / "probe.py"
    try:
        out = subprocess.run([sys.executable, str(program), str(checks)], capture_output=True, text=True,
                             check=True, env={**os.environ, "POD_IP": pod_ip}, timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    result = json.loads(out.stdout)["results"][0]
    assert (result["connect"], result["health"]) == ("ok", "ok"), result
    return server.peers


def test_probe_connects_from_its_pod_ip_so_the_lab_firewall_knows_the_pod(tmp_path):
    """Both the connect check and the HTTP request leave from POD_IP, not the kernel's 127.0.0.1."""
    assert _probe_peers(tmp_path, "127.0.0.2") == ["127.0.0.2", "127.0.0.2"]


def test_probe_falls_back_to_an_unbound_socket_when_pod_ip_is_not_local(tmp_path):
    """192.0.2.1 (TEST-NET-1) is no address of this machine: bind fails, the check still runs."""
    assert _probe_peers(tmp_path, "192.0.2.1") == ["127.0.0.1", "127.0.0.1"]


def _outcome(group, results):
    return GroupOutcome(group, 0, "novadiag-probe-x-0", phase="Succeeded", document={"results": results})


def _result(check, *, dns="ok", connect="ok", addresses=("127.1.128.5",), answered=None):
    return {
        "id": check.id,
        "system": {"status": dns, "addresses": list(addresses) if dns == "ok" else [], "error": None},
        "candidates": [{"name": answered, "result": "ok"}] if answered else [],
        "connect": connect,
        "health": "skipped",
    }


def test_observation_that_matches_prediction_agrees(nova):
    report, index, workloads = nova
    broken = next(e for e in report.broken)
    group = next(g for g in group_edges(report.edges, workloads, index) if broken.id in g.edge_ids)
    results = [_result(c, dns="nxdomain") for c in group.checks]
    edges, findings = merge_observations(report.edges, [_outcome(group, results)], index)
    merged = next(e for e in edges if e.id == broken.id)
    assert merged.status == "dns-unresolvable" and merged.probe.agrees and merged.verdict_from == "probe"
    assert not [f for f in findings if broken.id in f.message]


def test_disagreement_keeps_observation_and_explains_it(nova):
    report, index, workloads = nova
    broken = next(e for e in report.broken if e.reference.host == "content-service")
    group = next(g for g in group_edges(report.edges, workloads, index) if broken.id in g.edge_ids)
    results = [_result(c, answered="content-service.nova-backend.svc.cluster.local.") for c in group.checks]
    edges, findings = merge_observations(report.edges, [_outcome(group, results)], index)
    merged = next(e for e in edges if e.id == broken.id)
    assert merged.status == "ok" and merged.predicted == "dns-unresolvable"
    assert merged.probe.agrees is False
    finding = next(f for f in findings if broken.id in f.message)
    assert finding.code == "probe-disagrees" and "rewrite" in finding.message


def test_failed_probe_pod_keeps_static_status_with_error(nova):
    report, index, workloads = nova
    group = group_edges(report.edges, workloads, index)[0]
    outcome = GroupOutcome(group, 0, "p", error="probe pod x/p cannot start: ImagePullBackOff")
    edges, _ = merge_observations(report.edges, [outcome], index)
    for edge in edges:
        if edge.id in group.edge_ids:
            assert edge.probe.error.endswith("ImagePullBackOff")
            assert edge.verdict_from == "static"


@pytest.mark.parametrize(
    ("predicted", "connect", "observed"),
    [
        ("no-endpoints", "skipped", "no-endpoints"),  # no port to connect to: DNS alone cannot refute it
        ("blocked", "skipped", "blocked"),
        ("ok", "skipped", "ok"),
        ("no-endpoints", "ok", "ok"),  # a real connection proves a ready pod
        ("ok", "refused", "no-endpoints"),
        ("ok", "timeout", "blocked"),
    ],
)
def test_what_a_probe_without_a_connection_can_contradict(nova, predicted, connect, observed):
    report, index, _ = nova
    edge = dataclasses.replace(next(e for e in report.edges if e.status == "ok"), status=predicted)
    result = {"system": {"status": "ok", "addresses": ["127.1.128.5"]}, "connect": connect}
    assert observed_status(edge, result, index) == observed


def _without_endpoints(report, index, *, headless):
    """An edge to a Service of Nova, judged no-endpoints (as if its pods were gone)."""
    for edge in report.edges:
        svc = edge.resolves_to and index.service(edge.resolves_to.namespace, edge.resolves_to.name)
        if edge.status == "ok" and svc is not None and svc.headless == headless:
            return dataclasses.replace(edge, status="no-endpoints", detail="selects no ready pod")
    raise AssertionError(f"Nova has no ok edge to a {'headless' if headless else 'ClusterIP'} Service")


def test_nxdomain_from_a_headless_service_without_endpoints_agrees_with_no_endpoints(nova):
    report, index, workloads = nova
    edge = _without_endpoints(report, index, headless=True)
    group = next(g for g in group_edges(report.edges, workloads, index) if edge.id in g.edge_ids)
    results = [_result(c, dns="nxdomain") for c in group.checks]
    edges, findings = merge_observations([edge], [_outcome(group, results)], index)
    assert edges[0].status == "no-endpoints" and edges[0].probe.agrees is True
    assert findings == []


def test_nxdomain_from_a_clusterip_service_still_disagrees_with_no_endpoints(nova):
    report, index, workloads = nova
    edge = _without_endpoints(report, index, headless=False)
    result = {"system": {"status": "nxdomain", "addresses": []}, "connect": "skipped"}
    assert observed_status(edge, result, index) == "dns-unresolvable"


def test_a_probe_pod_that_never_ran_says_not_run_and_names_the_reason(nova):
    report, index, workloads = nova
    group = group_edges(report.edges, workloads, index)[0]
    reason = "probe pod nova-auth/p cannot start: Unschedulable: 0/1 nodes are available"
    edges, findings = merge_observations(report.edges, [GroupOutcome(group, 0, "p", error=reason)], index)
    probed = [e for e in edges if e.id in group.edge_ids]
    assert probed and all(e.probe.dns == "not-run" and e.probe.agrees is None for e in probed)
    assert all(e.probe.to_dict()["agrees"] is None for e in probed)
    [finding] = findings
    assert finding.code == "probe-not-run" and finding.message.startswith(reason)
    assert f"{len(group.edge_ids)} edge(s) from {group.namespace} keep their static verdict" in finding.message


def test_a_probe_refused_by_rbac_has_no_not_run_finding(nova):
    report, index, workloads = nova
    group = group_edges(report.edges, workloads, index)[0]
    outcome = GroupOutcome(group, 0, "p", error="cannot create probe pod in x: forbidden", forbidden=True)
    edges, findings = merge_observations(report.edges, [outcome], index)
    assert findings == [], "a missing permission is a gap, reported by the pipeline"
    assert all(e.probe.dns == "not-run" for e in edges if e.id in group.edge_ids)


def test_an_unverified_edge_has_nothing_to_agree_with(nova):
    report, index, workloads = nova
    edge = dataclasses.replace(next(e for e in report.edges if e.status == "ok"), status="unverified")
    group = next(g for g in group_edges(report.edges, workloads, index) if edge.id in g.edge_ids)
    results = [_result(c, connect="ok") for c in group.checks]
    edges, findings = merge_observations([edge], [_outcome(group, results)], index)
    assert edges[0].status == "ok" and edges[0].probe.agrees is None and edges[0].predicted == "unverified"
    assert findings == []


def test_a_timeout_the_policies_cause_for_the_probe_pod_alone_is_not_compared(nova):
    """Nova's policies admit callers by app label: they admit the workload, not the probe pod."""
    report, index, workloads = nova
    policies = build_policy_index(report.snapshot, index)
    edge = next(e for e in report.edges if e.status == "ok" and e.cross_namespace and not e.reference.routing)
    group = next(g for g in group_edges(report.edges, workloads, index) if edge.id in g.edge_ids)
    results = [_result(c, connect="timeout") for c in group.checks]
    edges, findings = merge_observations(report.edges, [_outcome(group, results)], index, policies=policies)
    merged = next(e for e in edges if e.id == edge.id)
    assert (merged.status, merged.probe.connect, merged.probe.agrees) == ("ok", "timeout", True)
    assert merged.probe.error.startswith("connect not compared: NetworkPolicies deny the probe pod")
    assert not [f for f in findings if edge.id in f.message]
    # Without the policies to explain it, the same timeout is a disagreement.
    edges, findings = merge_observations(report.edges, [_outcome(group, results)], index)
    merged = next(e for e in edges if e.id == edge.id)
    assert (merged.status, merged.probe.agrees) == ("blocked", False)


def test_a_timeout_the_policies_do_not_explain_stays_a_disagreement(nova):
    report, index, workloads = nova
    edge = next(e for e in report.edges if e.status == "ok" and e.cross_namespace and not e.reference.routing)
    target = edge.resolves_to
    allow_all = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-all", "namespace": target.namespace},
        "spec": {"podSelector": {}, "ingress": [{}], "policyTypes": ["Ingress"]},
    }
    objects = {**report.snapshot.objects, "NetworkPolicy": (allow_all,)}
    permissive = dataclasses.replace(report.snapshot, objects=objects)
    policies = build_policy_index(permissive, build_index(permissive))
    group = next(g for g in group_edges(report.edges, workloads, index) if edge.id in g.edge_ids)
    results = [_result(c, connect="timeout") for c in group.checks]
    edges, _ = merge_observations(report.edges, [_outcome(group, results)], index, policies=policies)
    merged = next(e for e in edges if e.id == edge.id)
    assert (merged.status, merged.probe.agrees) == ("blocked", False)
