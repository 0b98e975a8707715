"""``dnsPolicy: None`` with explicit nameservers: cluster DNS, another server, or not knowable.

The expected verdicts are worked out by hand from the resolv.conf the kubelet
writes for such a pod: only ``dnsConfig`` (``nameserver 10.96.0.10``,
``search nova-content.svc.cluster.local``, ``options ndots:1`` unless given).
"""

from __future__ import annotations

import json

import pytest
import yaml

import novadiag
from novadiag.cli import main
from novadiag.model import SourceInfo
from novadiag.pipeline import audit_snapshot
from novadiag.snapshot import build_snapshot

CLUSTER_DNS_IP = "10.96.0.10"


def namespace(name):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def service(ns, name, port, *, cluster_ip="10.96.1.1", selector=True):
    spec = {"clusterIP": cluster_ip, "ports": [{"port": port, "targetPort": port}]}
    if selector:
        spec["selector"] = {"app": name}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def deployment(ns, name, *, env=(), pod_spec=None):
    container = {"name": name, "env": [{"name": k, "value": v} for k, v in env], "ports": [{"containerPort": 9081}]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [container], **(pod_spec or {})},
            },
        },
    }


def objects(nameserver, *, kube_dns):
    """user-service (nova-backend, dnsPolicy None) names content-service (nova-content) four ways."""
    dns_config = {"nameservers": [nameserver], "searches": ["nova-content.svc.cluster.local"]}
    env = [
        ("SHORT", "content-service:9081"),
        ("WITH_NS", "content-service.nova-content:9081"),
        ("FQDN", "content-service.nova-content.svc.cluster.local:9081"),
        ("NOBODY", "no-such-service:80"),
        ("EXTERNAL", "api.stripe.com:443"),
    ]
    objs = [
        namespace("nova-backend"),
        namespace("nova-content"),
        namespace("kube-system"),
        deployment("nova-content", "content-service"),
        service("nova-content", "content-service", 9081),
        deployment("nova-backend", "user-service", env=env, pod_spec={"dnsPolicy": "None", "dnsConfig": dns_config}),
    ]
    if kube_dns:
        objs.append(service("kube-system", "kube-dns", 53, cluster_ip=CLUSTER_DNS_IP, selector=False))
    return objs


def verdicts(nameserver, *, kube_dns, cluster_dns=None):
    snap = build_snapshot(objects(nameserver, kube_dns=kube_dns), SourceInfo("manifests"))
    report = audit_snapshot(snap, cluster_dns=cluster_dns)
    return {e.reference.env: e for e in report.edges if e.reference.namespace == "nova-backend"}


def test_nameserver_that_is_kube_dns_resolves_with_the_pods_own_search_list():
    edges = verdicts(CLUSTER_DNS_IP, kube_dns=True)
    # search nova-content.svc.cluster.local: the short name finds the Service of the other namespace
    assert edges["SHORT"].status == "ok"
    assert "content-service.nova-content.svc.cluster.local" in edges["SHORT"].detail
    # one dot >= ndots 1: asked as is (not a cluster name), then content-service.nova-content.nova-content.svc...
    assert edges["WITH_NS"].status == "dns-unresolvable"
    assert edges["WITH_NS"].fix == "content-service:9081"  # the shortest name this resolver maps to it
    assert edges["FQDN"].status == "ok"
    assert edges["NOBODY"].status == "unknown-target"
    assert edges["EXTERNAL"].status == "external"


def test_cluster_dns_option_stands_in_for_a_missing_kube_dns_service():
    edges = verdicts(CLUSTER_DNS_IP, kube_dns=False, cluster_dns=CLUSTER_DNS_IP)
    assert {env: e.status for env, e in edges.items()} == {
        "SHORT": "ok",
        "WITH_NS": "dns-unresolvable",
        "FQDN": "ok",
        "NOBODY": "unknown-target",
        "EXTERNAL": "external",
    }


def test_another_nameserver_resolves_no_cluster_name():
    edges = verdicts("8.8.8.8", kube_dns=True)
    for env in ("SHORT", "WITH_NS", "FQDN"):
        assert edges[env].status == "dns-unresolvable", env
        assert "does not query the cluster DNS" in edges[env].detail
        assert edges[env].fix is None
    assert edges["EXTERNAL"].status == "external"


def test_cluster_dns_option_other_than_the_nameserver_leaves_it_outside_the_cluster():
    edges = verdicts(CLUSTER_DNS_IP, kube_dns=False, cluster_dns="10.0.0.53")
    assert edges["FQDN"].status == "dns-unresolvable"


def test_unknown_cluster_dns_address_leaves_the_verdict_open_and_names_what_is_missing():
    edges = verdicts(CLUSTER_DNS_IP, kube_dns=False)
    for env in ("SHORT", "FQDN"):
        edge = edges[env]
        assert edge.status == "unverified", env
        assert not edge.broken and edge.fix is None
        assert "whether nameserver 10.96.0.10 is the cluster DNS" in edge.detail
        assert "kube-system/kube-dns" in edge.detail and "--cluster-dns" in edge.detail
        assert "from what was read: ok:" in edge.detail and "(if it is)" in edge.detail
    # fails whichever server it is: still broken, but no fix is offered on a guess
    assert edges["WITH_NS"].status == "dns-unresolvable"
    assert edges["WITH_NS"].fix is None and "no fix offered" in edges["WITH_NS"].detail
    assert edges["NOBODY"].status == "unknown-target"
    assert edges["EXTERNAL"].status == "external"


@pytest.mark.parametrize("value", ["kube-dns", "10.96.0", ""])
def test_cluster_dns_option_must_be_an_ip_address(capsys, value):
    with pytest.raises(SystemExit) as exited:
        main(["audit", "--cluster-dns", value])
    assert exited.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "argument --cluster-dns: not an IP address" in lines[0], lines


def test_cluster_dns_option_reaches_the_audit_from_the_command_line(tmp_path, capsys):
    manifests = tmp_path / "cluster.yaml"
    manifests.write_text(yaml.safe_dump_all(objects(CLUSTER_DNS_IP, kube_dns=False)))
    statuses = {}
    for extra in ([], ["--cluster-dns", CLUSTER_DNS_IP]):
        main(["audit", "--manifests", str(manifests), "--format", "json", "--fail-on", "never", *extra])
        edges = json.loads(capsys.readouterr().out)["edges"]
        statuses[bool(extra)] = next(e["status"] for e in edges if e["env"] == "SHORT")
    assert statuses == {False: "unverified", True: "ok"}


def test_snapshot_save_refuses_cluster_dns_in_one_line(tmp_path, capsys):
    manifests = tmp_path / "cluster.yaml"
    manifests.write_text(yaml.safe_dump_all(objects(CLUSTER_DNS_IP, kube_dns=False)))
    saved = str(tmp_path / "s.json")
    code = main(["snapshot", "save", saved, "--manifests", str(manifests), "--cluster-dns", "10.0.0.1"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--cluster-dns" in err[0] and "audit, plan or policies" in err[0]
    assert not (tmp_path / "s.json").exists()


def feed_objects():
    """user-service (nova-backend, dnsPolicy None: cluster DNS, search nova-content only) calls feed-service."""
    dns_config = {"nameservers": [CLUSTER_DNS_IP], "searches": ["nova-content.svc.cluster.local"]}
    return [
        namespace("nova-backend"),
        namespace("nova-feed"),
        deployment("nova-feed", "feed-service"),
        service("nova-feed", "feed-service", 9081),
        deployment(
            "nova-backend",
            "user-service",
            env=[("FEED", "feed-service:9081")],
            pod_spec={"dnsPolicy": "None", "dnsConfig": dns_config},
        ),
    ]


def test_a_plan_judges_its_result_with_the_cluster_dns_the_audit_was_given():
    report = audit_snapshot(build_snapshot(feed_objects(), SourceInfo("manifests")), cluster_dns=CLUSTER_DNS_IP)
    (edge,) = report.broken
    assert edge.status == "dns-unresolvable"
    plan = novadiag.plan(report, "rewrite")
    assert plan.verification is not None
    assert (plan.verification.broken_after, plan.verification.fixed) == (0, (edge.id,))
    assert plan.options.to_dict()["cluster_dns"] == CLUSTER_DNS_IP


def test_consolidation_names_the_moved_service_as_the_dns_policy_none_pod_resolves_it():
    report = audit_snapshot(build_snapshot(feed_objects(), SourceInfo("manifests")), cluster_dns=CLUSTER_DNS_IP)
    plan = novadiag.plan(report, "consolidate", into="nova-backend")
    assert plan.verification is not None and plan.verification.broken_after == 0
    # ndots 1 and a search list without nova-backend: only the full name reaches the moved Service.
    assert [r.new_host for r in plan.rewrites if r.changed] == ["feed-service.nova-backend.svc.cluster.local"]
