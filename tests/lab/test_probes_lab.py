"""Live probes against the Nova lab: what probe pods observe, merged into the audit.

The probe pods run the real probe program in the lab's pods, so name
resolution is glibc's own walk of the search list against the lab DNS.
After every run the lab must hold no novadiag object.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import novadiag
from novadiag.cli import main
from novadiag.kube import KubeClient, KubeSettings
from novadiag.lab import Lab
from novadiag.probing import ProbeSettings
from novadiag.probing.groups import MANAGED_BY

pytestmark = pytest.mark.lab

NOVA = Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova"


def leftovers(kubeconfig: str) -> list[str]:
    with KubeClient(KubeSettings(kubeconfig=kubeconfig)) as client:
        return [
            f"{kind} {o['metadata']['namespace']}/{o['metadata']['name']}"
            for kind in ("Pod", "ConfigMap")
            for o in client.list_raw(kind, label_selector=f"{MANAGED_BY}=novadiag")
        ]


def variant(tmp: Path, **changes: object) -> Path:
    """A copy of the Nova scenario with scenario.yaml fields changed."""
    target = tmp / "nova-variant"
    shutil.copytree(NOVA, target)
    scenario = yaml.safe_load((target / "scenario.yaml").read_text())
    scenario.update(changes)
    scenario["name"] = "nova-variant"
    (target / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    return target


@pytest.fixture(scope="module")
def nova_lab() -> Iterator[Lab]:
    with Lab(scenario="nova", state_dir=tempfile.mkdtemp(prefix="nd-probes-")) as lab:
        yield lab


@pytest.fixture(scope="module")
def probed(nova_lab: Lab) -> novadiag.Report:
    return novadiag.audit(kubeconfig=nova_lab.kubeconfig, probe=True)


def test_cross_namespace_short_names_are_nxdomain_from_the_source_pod(probed):
    broken = {e.reference.env: e for e in probed.edges if e.status == "dns-unresolvable"}
    assert set(broken) == {"CONTENT_SERVICE_URL", "FEED_SERVICE_URL", "AUTH_SERVICE_URL", "MEDIA_SERVICE_URL"}
    for edge in broken.values():
        assert edge.verdict_from == "probe"
        assert edge.probe.dns == "nxdomain"
        assert edge.probe.tried[0] == (f"{edge.reference.host}.nova-backend.svc.cluster.local", "nxdomain")


def test_auditing_one_namespace_judges_it_against_the_whole_cluster(nova_lab, probed):
    """``-n nova-backend``: its edges lead to other namespaces, which must be read to judge them."""
    one = novadiag.audit(kubeconfig=nova_lab.kubeconfig, namespaces=["nova-backend"], probe=True)
    expected = {e.id: (e.status, e.target, e.fix) for e in probed.edges if e.reference.namespace == "nova-backend"}
    assert {e.id: (e.status, e.target, e.fix) for e in one.edges} == expected
    content = next(e for e in one.edges if e.reference.env == "CONTENT_SERVICE_URL")
    assert content.status == "dns-unresolvable" and content.target.namespace == "nova-content"
    assert one.probes["ran"] == one.probes["groups"] >= 1
    assert all(e.probe is not None and e.probe.agrees for e in one.edges if e.status != "external")
    about = {(f.object.namespace, f.object.name) for f in one.findings if f.object is not None and f.object.namespace}
    reached = {(r.namespace, r.name) for e in one.edges for r in (e.target, e.resolves_to) if r is not None}
    assert all(ns == "nova-backend" or (ns, name) in reached for ns, name in about), about
    assert leftovers(nova_lab.kubeconfig) == []


def test_working_names_resolve_and_connect(probed):
    for edge in probed.edges:
        if edge.status == "ok" and not edge.reference.routing:
            assert edge.probe.dns == "ok" and edge.probe.connect == "ok", edge.id
            assert edge.probe.answered_by.endswith(".svc.cluster.local")


def test_grpc_health_is_checked_on_grpc_ports(probed):
    edge = next(e for e in probed.edges if e.reference.host == "content-service.nova-content")
    assert edge.probe.health == "ok"


def test_every_edge_agrees_with_the_prediction(probed):
    assert [e.id for e in probed.edges if e.probe and not e.probe.agrees and not e.reference.routing] == []
    assert not [f for f in probed.findings if f.code == "probe-disagrees"]


def test_one_probe_pod_per_namespace_and_dns_settings(probed):
    groups = {(e.reference.namespace, e.probe.pod) for e in probed.edges if e.probe is not None and e.probe.pod}
    pods = {pod for _, pod in groups}
    # eight namespaces with env edges, and ingress-nginx for the Ingress's backend
    assert probed.probes["pods_created"] == probed.probes["groups"] == len(pods) == 9


def test_the_ingress_backend_is_probed_from_the_ingress_controllers_namespace(probed):
    edge = next(e for e in probed.edges if e.source.kind == "Ingress")
    observed = (edge.status, edge.verdict_from, edge.probe.dns, edge.probe.connect, edge.probe.agrees)
    assert observed == ("ok", "probe", "ok", "ok", True)
    assert edge.probe.answered_by == "graphql-gateway.nova-gateway.svc.cluster.local"
    controller_group = next(
        e.probe.pod
        for e in probed.edges
        if e.probe and e.reference.namespace == "nova-gateway" and not e.reference.routing
    )
    assert edge.probe.pod != controller_group  # not nova-gateway's own probe pod: ingress-nginx's


def test_a_route_refused_by_the_gateway_api_stays_blocked_the_probe_only_reaching_its_service(probed):
    edge = next(e for e in probed.edges if e.source.kind == "HTTPRoute")
    assert (edge.status, edge.probe.dns, edge.probe.connect, edge.probe.agrees) == ("blocked", "ok", "ok", None)
    assert edge.verdict_from == "static"
    assert edge.probe.answered_by == "content-service.nova-content.svc.cluster.local"
    assert "no ReferenceGrant in nova-content allows HTTPRoute from nova-gateway" in edge.detail
    assert "the Gateway API's refusal is the data plane's, and stands as predicted" in edge.detail
    assert not [f for f in probed.findings if f.code == "probe-disagrees" and edge.id in f.message]


def test_an_ingress_from_namespace_that_does_not_exist_is_not_created_and_the_edge_says_so(nova_lab, capsys):
    argv = ["audit", "--kubeconfig", nova_lab.kubeconfig, "--ingress-from", "edge-nowhere", "--format", "json"]
    assert main(argv) == 1  # the broken edges of Nova, as ever
    document = json.loads(capsys.readouterr().out)
    routing = {e["source"]["kind"]: e for e in document["edges"] if e["env"] is None}
    for edge in routing.values():
        assert (edge["probe"]["dns"], edge["probe"]["agrees"]) == ("not-run", None)
        assert edge["probe"]["error"] == (
            "not probed: the controller's namespace edge-nowhere does not exist (or was not read), "
            "and a probe never creates one; pass --ingress-from NS"
        )
    with KubeClient(KubeSettings(kubeconfig=nova_lab.kubeconfig)) as client:
        assert "edge-nowhere" not in {n["metadata"]["name"] for n in client.list_raw("Namespace")}
    assert leftovers(nova_lab.kubeconfig) == []


def test_cluster_domain_is_detected_from_the_probe_resolv_conf(probed):
    assert probed.probes["detected_cluster_domain"] == "cluster.local"


def test_no_probe_object_is_left_behind(nova_lab, probed):
    assert leftovers(nova_lab.kubeconfig) == []


def test_crash_loop_is_reported_with_its_cause(probed):
    crash = next(f for f in probed.findings if f.code == "crashloop")
    assert "nova-backend/user-service" in crash.message
    assert "CONTENT_SERVICE_URL (dns-unresolvable, needed at start-up)" in crash.message


def test_a_dns_rewrite_makes_observation_disagree_and_is_explained(tmp_path):
    scenario = variant(
        tmp_path,
        dns={
            "rewrites": [
                {
                    "from": "content-service.nova-backend.svc.cluster.local",
                    "to": "content-service.nova-content.svc.cluster.local",
                }
            ]
        },
    )
    with Lab(scenario=str(scenario), state_dir=tempfile.mkdtemp(prefix="nd-rewrite-")) as lab:
        report = novadiag.audit(kubeconfig=lab.kubeconfig)
        assert leftovers(lab.kubeconfig) == []
    edge = next(e for e in report.edges if e.reference.env == "CONTENT_SERVICE_URL")
    assert edge.predicted == "dns-unresolvable"
    assert edge.status == "ok" and edge.probe.agrees is False
    finding = next(f for f in report.findings if f.code == "probe-disagrees" and edge.id in f.message)
    assert "rewrite" in finding.message


def test_unpullable_probe_image_keeps_static_verdicts_and_leaves_nothing(tmp_path):
    scenario = variant(tmp_path, images={"unpullable": ["registry.invalid/*"]})
    with Lab(scenario=str(scenario), state_dir=tempfile.mkdtemp(prefix="nd-pull-")) as lab:
        settings = ProbeSettings(image="registry.invalid/probe:1", timeout=20)
        report = novadiag.audit(kubeconfig=lab.kubeconfig, probe_settings=settings)
        assert leftovers(lab.kubeconfig) == []
    assert report.probes["ran"] == 0
    for edge in report.edges:
        if edge.probe is not None and not edge.reference.routing:
            assert edge.verdict_from == "static"
            assert "ImagePullBackOff" in edge.probe.error
    assert len(report.broken) == 8  # 7 from workloads, the route without its ReferenceGrant


def test_cli_exits_2_when_no_probe_pod_could_run(tmp_path, capsys):
    from novadiag.cli import main

    scenario = variant(tmp_path, images={"unpullable": ["registry.invalid/*"]})
    with Lab(scenario=str(scenario), state_dir=tempfile.mkdtemp(prefix="nd-pull2-")) as lab:
        code = main(
            [
                "audit",
                "--kubeconfig",
                lab.kubeconfig,
                "--probe-image",
                "registry.invalid/p:1",
                "--format",
                "json",
                "-o",
                str(tmp_path / "r.json"),
            ]
        )
        assert leftovers(lab.kubeconfig) == []
    assert code == 2
    assert "no probe pod could run" in capsys.readouterr().err
