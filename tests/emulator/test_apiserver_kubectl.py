"""The lab API server driven by the machine's ``kubectl``, unmodified.

kubectl is the harshest client: it discovers resources before anything else, asks
for server-side Tables, checks OpenAPI v3 before ``apply``, paginates with
``limit``/``continue``, waits on deletions with watches. Every command below runs
plain, with only ``--kubeconfig`` and a private ``--cache-dir``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_apiserver_support import VIEWER_TOKEN, RunningLab, running_lab

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
]

APP = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: cart
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: cart}
  template:
    metadata:
      labels: {app: cart}
    spec:
      containers:
        - name: cart
          image: shop/cart:1.0
          ports: [{name: http, containerPort: 8080}]
          env: [{name: CATALOG_URL, value: "catalog:8080"}]
---
apiVersion: v1
kind: Service
metadata:
  name: cart
  namespace: shop
spec:
  selector: {app: cart}
  ports: [{name: http, port: 80, targetPort: http}]
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLab]:
    with running_lab(tmp_path_factory.mktemp("apiserver-kubectl"), block=202) as running:
        yield running


@pytest.fixture(autouse=True)
def _no_faults(lab: RunningLab) -> Iterator[None]:
    yield
    lab.clear_faults()


def kubectl(lab: RunningLab, *args: str, stdin: str | None = None, check: bool = True,
            kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    cache = lab.kubeconfig.parent / "kubectl-cache"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig or lab.kubeconfig)}
    result = subprocess.run(
        ["kubectl", "--cache-dir", str(cache), *args], input=stdin, capture_output=True,
        text=True, timeout=30, env=env, check=False)
    if check and result.returncode != 0:
        pytest.fail(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


@pytest.fixture(scope="module")
def shop(lab: RunningLab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    manifest = tmp_path_factory.mktemp("manifests") / "shop.yaml"
    manifest.write_text(APP)
    out = kubectl(lab, "apply", "-f", str(manifest)).stdout
    assert out.splitlines() == ["namespace/shop created", "deployment.apps/cart created",
                                "service/cart created"]
    return manifest


def test_plain_apply_creates_then_reconfigures(lab: RunningLab, shop: Path) -> None:
    changed = shop.with_name("shop-v2.yaml")
    changed.write_text(APP.replace("replicas: 2", "replicas: 3").replace("cart:1.0", "cart:1.1"))
    out = kubectl(lab, "apply", "-f", str(changed)).stdout
    assert "deployment.apps/cart configured" in out and "service/cart unchanged" in out
    deployment = json.loads(kubectl(lab, "get", "deploy", "cart", "-n", "shop", "-o",
                                    "json").stdout)
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "shop/cart:1.1"
    assert deployment["metadata"]["generation"] == 2


def test_get_prints_server_side_tables(lab: RunningLab, shop: Path) -> None:
    services = kubectl(lab, "get", "svc", "-n", "shop").stdout.splitlines()
    assert services[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert services[1].split()[:5] == ["cart", "ClusterIP", services[1].split()[2], "<none>",
                                       "80/TCP"]
    namespaces = kubectl(lab, "get", "ns").stdout
    assert "shop" in namespaces and "Active" in namespaces


def test_get_json_has_cluster_fields(lab: RunningLab, shop: Path) -> None:
    listing = json.loads(kubectl(lab, "get", "svc", "-n", "shop", "-o", "json").stdout)
    assert listing["kind"] == "List"
    svc = listing["items"][0]
    assert svc["spec"]["clusterIP"].startswith("127.202.")
    assert svc["metadata"]["uid"] and svc["metadata"]["resourceVersion"]


def test_get_pods_all_namespaces_paginates(lab: RunningLab) -> None:
    for i in range(7):
        lab.store.create({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": f"p{i}", "namespace": "default"}, "spec": {"containers": [
                {"name": "c", "image": "x:1"}]}, "status": {"phase": "Running"}})
    result = kubectl(lab, "get", "pods", "-A", "--chunk-size=3", "-v=6")
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert [r[1] for r in rows] == [f"p{i}" for i in range(7)]
    assert all(r[0] == "default" and r[3] == "Running" for r in rows)
    assert result.stderr.count("continue=") == 2


def test_logs(lab: RunningLab) -> None:
    lab.store.create({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "talker", "namespace": "default"}, "spec": {"containers": [
            {"name": "main", "image": "x:1"}, {"name": "side", "image": "y:1"}]}})
    lab.logs[("default", "talker", "main")] = "started\nready\n"
    assert kubectl(lab, "logs", "talker", "-c", "main").stdout == "started\nready\n"
    assert kubectl(lab, "logs", "talker", "-c", "main", "--tail=1").stdout == "ready\n"
    defaulted = kubectl(lab, "logs", "talker")
    assert defaulted.stdout == "started\nready\n"
    assert 'Defaulted container "main" out of: main, side' in defaulted.stderr
    waiting = kubectl(lab, "logs", "talker", "-c", "side", check=False)
    assert "is waiting to start" in waiting.stderr


def test_watch_prints_events(lab: RunningLab) -> None:
    kubectl(lab, "apply", "-f", "-", stdin=json.dumps({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "watched"}}))
    env = {**os.environ, "KUBECONFIG": str(lab.kubeconfig)}
    watcher = subprocess.Popen(
        ["kubectl", "--cache-dir", str(lab.kubeconfig.parent / "kubectl-cache"), "get", "cm",
         "-n", "watched", "--watch-only", "--output-watch-events", "--request-timeout=3s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(1.0)
        kubectl(lab, "apply", "-f", "-", stdin=json.dumps({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "seen", "namespace": "watched"}, "data": {"k": "v"}}))
        kubectl(lab, "delete", "cm", "seen", "-n", "watched")
        out, _ = watcher.communicate(timeout=15)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    events = [line.split()[:2] for line in out.splitlines()[1:]]
    assert events == [["ADDED", "seen"], ["DELETED", "seen"]]


def test_delete_namespace_waits_until_gone(lab: RunningLab, shop: Path) -> None:
    out = kubectl(lab, "delete", "-f", str(shop)).stdout
    assert 'namespace "shop" deleted' in out
    assert "No resources found" in kubectl(lab, "get", "all", "-n", "shop").stderr
    assert "shop" not in kubectl(lab, "get", "ns", "-o", "name").stdout


def test_forbidden_and_unauthorized(lab: RunningLab) -> None:
    viewer = lab.kubeconfig_for(VIEWER_TOKEN)
    denied = kubectl(lab, "get", "pods", "-A", kubeconfig=viewer, check=False)
    assert denied.returncode == 1
    assert ('Error from server (Forbidden): pods is forbidden: User "viewer" cannot list '
            'resource "pods" in API group "" at the cluster scope') in denied.stderr
    stranger = kubectl(lab, "get", "pods", kubeconfig=lab.kubeconfig_for("nobody"), check=False)
    assert "Unauthorized" in stranger.stderr


def test_injected_500_and_429(lab: RunningLab) -> None:
    lab.add_fault(status=500, verb="list", resource="configmaps", message="etcd is on fire")
    failed = kubectl(lab, "get", "cm", "-n", "default", check=False)
    assert failed.returncode == 1
    assert "Error from server (InternalError)" in failed.stderr
    assert "etcd is on fire" in failed.stderr
    lab.clear_faults()
    lab.add_fault(status=429, retry_after=1, verb="list", resource="configmaps", times=1)
    started = time.monotonic()
    recovered = kubectl(lab, "get", "cm", "-n", "default")
    assert recovered.returncode == 0 and time.monotonic() - started >= 1.0


def test_generators_send_protobuf_that_the_lab_decodes(lab: RunningLab) -> None:
    kubectl(lab, "create", "namespace", "gen")
    kubectl(lab, "create", "configmap", "cfg", "-n", "gen", "--from-literal=URL=db:5432")
    kubectl(lab, "create", "secret", "generic", "pw", "-n", "gen", "--from-literal=pw=s3cret")
    kubectl(lab, "create", "deployment", "api", "-n", "gen", "--image=api:1", "--port=8080",
            "--replicas=0")
    kubectl(lab, "create", "service", "clusterip", "api", "-n", "gen", "--tcp=80:8080")
    cfg = json.loads(kubectl(lab, "get", "cm", "cfg", "-n", "gen", "-o", "json").stdout)
    assert cfg["data"] == {"URL": "db:5432"}
    secret = json.loads(kubectl(lab, "get", "secret", "pw", "-n", "gen", "-o", "json").stdout)
    assert secret["data"] == {"pw": "czNjcmV0"} and secret["type"] == "Opaque"
    deploy = json.loads(kubectl(lab, "get", "deploy", "api", "-n", "gen", "-o", "json").stdout)
    assert deploy["spec"]["replicas"] == 0
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "api:1" and container["ports"][0]["containerPort"] == 8080
    svc = json.loads(kubectl(lab, "get", "svc", "api", "-n", "gen", "-o", "json").stdout)
    assert svc["spec"]["ports"][0]["targetPort"] == 8080
    assert svc["spec"]["selector"] == {"app": "api"}


def test_auth_can_i(lab: RunningLab) -> None:
    assert kubectl(lab, "auth", "can-i", "list", "pods", "-A").stdout.strip() == "yes"
    locked = kubectl(lab, "auth", "can-i", "get", "secrets", "-n", "locked", check=False)
    assert locked.stdout.strip() == "no"
    viewer = lab.kubeconfig_for(VIEWER_TOKEN)
    assert kubectl(lab, "auth", "can-i", "list", "pods", "-n", "team-a",
                   kubeconfig=viewer).stdout.strip() == "yes"
    assert kubectl(lab, "auth", "can-i", "delete", "pods", "-n", "team-a", kubeconfig=viewer,
                   check=False).stdout.strip() == "no"
