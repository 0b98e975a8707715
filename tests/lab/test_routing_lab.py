"""Routing objects in the Nova lab, through the real client and kubectl.

The lab API server serves Ingress and the Gateway API kinds, so the audit
lists them exactly as it would from a cluster: the Ingress for graphql-gateway
routes to a Service of its own namespace (ok), the HTTPRoute names
content-service in nova-content without a ReferenceGrant (blocked, the grant
as fix). Creating that grant with kubectl makes the next audit say ok.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import novadiag
from novadiag.lab import Lab

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
]

ROUTE_ID = (
    "nova-gateway/httproute/content-api//httproute:rules[0].backendRefs[0]/content-service.nova-content:9081"
)
GRANT = {
    "apiVersion": "gateway.networking.k8s.io/v1beta1",
    "kind": "ReferenceGrant",
    "metadata": {"name": "content-api", "namespace": "nova-content"},
    "spec": {
        "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "nova-gateway"}],
        "to": [{"group": "", "kind": "Service", "name": "content-service"}],
    },
}


@pytest.fixture(scope="module")
def nova_lab() -> Iterator[Lab]:
    with Lab(scenario="nova", state_dir=tempfile.mkdtemp(prefix="nd-routing-")) as lab:
        yield lab


def kubectl(lab: Lab, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    cache = Path(lab.state_dir) / "kubectl-cache"
    return subprocess.run(
        ["kubectl", "--kubeconfig", lab.kubeconfig, "--cache-dir", str(cache), *args],
        input=stdin, capture_output=True, text=True, timeout=60, check=False,
    )


def routing(report: novadiag.Report) -> dict[str, novadiag.Edge]:
    return {e.id: e for e in report.edges if e.reference.routing}


def test_kubectl_lists_ingresses_and_routes_by_their_short_names(nova_lab: Lab) -> None:
    done = kubectl(nova_lab, "get", "ingress,httproutes,gateways", "-A", "-o", "name")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "ingress.networking.k8s.io/graphql-gateway",
        "httproute.gateway.networking.k8s.io/content-api",
        "gateway.gateway.networking.k8s.io/nova-edge",
    ]


def test_kubectl_finds_the_istio_kinds_the_lab_serves(nova_lab: Lab) -> None:
    done = kubectl(nova_lab, "get", "virtualservices,destinationrules,serviceentries", "-A", "-o", "name")
    assert (done.returncode, done.stdout) == (0, ""), done.stderr


def test_the_audit_judges_the_ingress_and_the_route_through_the_real_client(nova_lab: Lab) -> None:
    report = novadiag.audit(kubeconfig=nova_lab.kubeconfig, probe=False)
    edges = routing(report)
    ingress = edges["nova-gateway/ingress/graphql-gateway//ingress:rules[0].http.paths[0]/graphql-gateway:-"]
    assert ingress.status == "ok" and ingress.resolves_to == novadiag.ObjectRef(
        "Service", "nova-gateway", "graphql-gateway"
    )
    route = edges[ROUTE_ID]
    assert route.status == "blocked" and route.cross_namespace
    assert "no ReferenceGrant in nova-content allows HTTPRoute from nova-gateway" in route.detail
    assert route.fix == "add ReferenceGrant in nova-content: from HTTPRoute in nova-gateway to Service content-service"
    assert not [g for g in report.gaps if g.kind in ("Ingress", "HTTPRoute", "Gateway", "ReferenceGrant")]


def test_the_grant_applied_with_kubectl_makes_the_route_ok(nova_lab: Lab) -> None:
    done = kubectl(nova_lab, "apply", "-f", "-", stdin=json.dumps(GRANT))
    assert done.returncode == 0, done.stderr
    try:
        route = routing(novadiag.audit(kubeconfig=nova_lab.kubeconfig, probe=False))[ROUTE_ID]
        assert route.status == "ok", route.detail
    finally:
        kubectl(nova_lab, "delete", "referencegrant", "-n", "nova-content", "content-api")
