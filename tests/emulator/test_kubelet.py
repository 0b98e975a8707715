"""The lab kubelet: workloads become real processes with real resolvers and listeners.

One kubelet (with the real lab DNS) serves the whole module; each test works in its
own namespaces. As root the pods run in private mount namespaces, so the checks of
name resolution are glibc's own; without root only the degraded-mode test runs.
Every test module run ends by checking that no process it started survives.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from novadiag.lab import podproc
from novadiag.lab.container import StubResolver, parse_target
from novadiag.lab.controllers import template_hash
from novadiag.lab.daemon import BlockLease
from novadiag.lab.dns import LabDns
from novadiag.lab.endpoints import group_endpoints
from novadiag.lab.kubelet import Kubelet, image_unpullable
from novadiag.lab.network import LabNetwork
from novadiag.lab.store import NotFound, Obj, Store

pytestmark = pytest.mark.lab

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="private mount namespaces and port 53 need root")
ZONE = "cluster.local"
NEEDS = "lab.novadiag.dev/startup-needs"


# -- helpers -----------------------------------------------------------------------------


def wait_for(check: Callable[[], Any], timeout: float = 8.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
            "status": {"phase": "Active"}}


def deployment(ns: str, name: str, ports: list[tuple[str, int]], *, replicas: int = 1,
               env: dict[str, str] | None = None, needs: str | None = None) -> dict[str, Any]:
    template_meta: dict[str, Any] = {"labels": {"app": name}}
    if needs:
        template_meta["annotations"] = {NEEDS: needs}
    container = {"name": name, "image": f"nova/{name}:1.0",
                 "ports": [{"name": n, "containerPort": p} for n, p in ports],
                 "env": [{"name": k, "value": v} for k, v in (env or {}).items()]}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": template_meta, "spec": {"containers": [container]}}}}


def service(ns: str, name: str, ports: list[tuple[str, int]], ip: str | None,
            selector: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": selector or {"app": name}, "type": "ClusterIP",
                            "ports": [{"name": n, "port": p, "targetPort": n, "protocol": "TCP"}
                                      for n, p in ports]}
    if ip is not None:
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


def bare_pod(ns: str, name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": spec.pop("image", "python:3.12-slim"),
                 "command": command, **spec.pop("container", {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"restartPolicy": "Never", "containers": [container], **spec},
            "status": {"phase": "Pending"}}


@dataclass
class Cluster:
    store: Store
    network: LabNetwork
    kubelet: Kubelet
    state_dir: Path

    def create(self, obj: dict[str, Any]) -> Obj:
        if obj["kind"] == "Service" and "clusterIP" not in obj["spec"]:
            obj["spec"]["clusterIP"] = self.network.allocate_service_ip()
            obj["spec"]["clusterIPs"] = [obj["spec"]["clusterIP"]]
        return self.store.create(obj)

    def pods(self, ns: str, prefix: str = "") -> list[Obj]:
        return [p for p in self.store.list("Pod", ns)[0] if p["metadata"]["name"].startswith(prefix)]

    def pod(self, ns: str, name: str) -> Obj | None:
        try:
            return self.store.get("Pod", ns, name)
        except NotFound:
            return None

    def phase(self, ns: str, name: str) -> str | None:
        pod = self.pod(ns, name)
        return None if pod is None else (pod.get("status") or {}).get("phase")

    def ready_pods(self, ns: str, prefix: str) -> list[Obj]:
        return [p for p in self.pods(ns, prefix) if all(
            cs.get("ready") for cs in (p.get("status") or {}).get("containerStatuses") or [{}])]


def lab_processes(state_dir: Path, *, descendants: bool) -> list[str]:
    """Anything naming the state dir, and (if asked) every descendant of this process."""
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat[0] == "Z":
            continue
        if str(state_dir) in cmdline or (descendants and _descends_from(int(entry.name), me)):
            found.append(f"{entry.name}: {cmdline}")
    return found


def _descends_from(pid: int, ancestor: int) -> bool:
    for _ in range(64):
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid == ancestor:
            return True
        if pid <= 1:
            return False
    return False


def lease_block() -> BlockLease:
    for block in range(230, 254):
        lease = BlockLease(block)
        if lease.acquire():
            return lease
    pytest.fail("no free address block among 127.230-253.0.0/16: other labs hold them all", pytrace=False)


def start_cluster(tmp: Path, *, mode: str, scenario: Any = None) -> tuple[Cluster, LabDns, BlockLease]:
    lease = lease_block()
    store, network = Store(), LabNetwork(lease.block)
    dns = LabDns(store, address=(network.dns_ip, 53 if mode == "root" else 0), cluster_domain=ZONE)
    dns.start()
    kubelet = Kubelet(store, network=network, state_dir=tmp, dns_address=dns.address,
                      cluster_domain=ZONE, mode=mode, scenario=scenario,  # type: ignore[arg-type]
                      backoff_initial=0.3, backoff_max=1.0)
    kubelet.start()
    return Cluster(store, network, kubelet, tmp), dns, lease


def stop_cluster(cluster: Cluster, dns: LabDns, lease: BlockLease, *, last: bool) -> None:
    cluster.kubelet.stop()
    dns.stop()
    lease.release()
    leftovers = lab_processes(cluster.state_dir, descendants=last)
    assert not leftovers, f"processes survived the kubelet: {leftovers}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not ROOT:
        pytest.skip("root mode needs uid 0")
    scenario = {"images": {"unpullable": ["registry.example.com/private:*"]}}
    running, dns, lease = start_cluster(tmp_path_factory.mktemp("kubelet"), mode="root",
                                        scenario=scenario)
    try:
        yield running
    finally:
        stop_cluster(running, dns, lease, last=True)


@pytest.fixture(scope="module")
def nova(cluster: Cluster) -> Cluster:
    """user-service in nova-backend needs content-service, which lives in nova-content."""
    for ns in ("nova-backend", "nova-content"):
        cluster.create(namespace(ns))
    cluster.create(deployment("nova-content", "content-service", [("grpc", 9081)], replicas=2))
    cluster.create(service("nova-content", "content-service", [("grpc", 9081)], None))
    cluster.create(deployment("nova-backend", "user-service", [("http", 8080)],
                              env={"CONTENT_SERVICE_URL": "content-service:9081"},
                              needs="CONTENT_SERVICE_URL"))
    cluster.create(service("nova-backend", "user-service", [("http", 8080)], None))
    assert cluster.kubelet.wait_ready(15)
    return cluster


# -- the Nova story, for real ----------------------------------------------------------------


@needs_root
def test_deployments_get_replicasets_pods_ips_and_endpoint_slices(nova: Cluster) -> None:
    rs = nova.store.list("ReplicaSet", "nova-content")[0]
    assert [r["metadata"]["name"] for r in rs] == [
        f"content-service-{rs[0]['metadata']['labels']['pod-template-hash']}"]
    pods = wait_for(lambda: len(nova.ready_pods("nova-content", "content-service")) == 2 and
                    nova.pods("nova-content"), what="content-service ready")
    for pod in pods:
        assert pod["metadata"]["name"].startswith(rs[0]["metadata"]["name"] + "-")
        assert len(pod["metadata"]["name"].rsplit("-", 1)[1]) == 5
        assert pod["spec"]["nodeName"] == "lab-node"
        assert nova.network.contains(pod["status"]["podIP"])
        conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert conditions["Ready"] == conditions["PodScheduled"] == "True"
    slices = wait_for(lambda: [s for s in nova.store.list("EndpointSlice", "nova-content")[0]
                               if len([e for e in s["endpoints"] if e["conditions"]["ready"]]) == 2],
                      what="two ready endpoints")
    assert slices[0]["ports"] == [{"name": "grpc", "port": 9081, "protocol": "TCP"}]
    assert {e["targetRef"]["name"] for e in slices[0]["endpoints"]} == {
        p["metadata"]["name"] for p in pods}
    deploy = nova.store.get("Deployment", "nova-content", "content-service")
    assert wait_for(lambda: nova.store.get("Deployment", "nova-content", "content-service")
                    ["status"].get("readyReplicas") == 2, what="deployment status")
    assert deploy["status"]["observedGeneration"] == 1


@needs_root
def test_grpc_health_answers_serving_through_the_cluster_ip(nova: Cluster) -> None:
    ip = nova.store.get("Service", "nova-content", "content-service")["spec"]["clusterIP"]
    wait_for(lambda: (ip, 9081) in nova.kubelet.proxy.listening, what="proxy listener")
    with grpc.insecure_channel(f"ipv4:{ip}:9081") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                          timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


@needs_root
def test_glibc_in_a_pod_fails_the_short_name_and_resolves_the_namespaced_one(nova: Cluster) -> None:
    ip = nova.store.get("Service", "nova-content", "content-service")["spec"]["clusterIP"]
    nova.create(bare_pod("nova-backend", "getent-short", ["getent", "ahostsv4", "content-service"],
                         image="busybox:1.36"))
    nova.create(bare_pod("nova-backend", "getent-ns", ["getent", "ahostsv4",
                                                       "content-service.nova-content"],
                         image="busybox:1.36"))
    wait_for(lambda: nova.phase("nova-backend", "getent-short") == "Failed", what="short fails")
    wait_for(lambda: nova.phase("nova-backend", "getent-ns") == "Succeeded", what="ns resolves")
    assert ip in (nova.kubelet.read_log("nova-backend", "getent-ns") or "")
    failed = nova.pod("nova-backend", "getent-short")
    assert failed is not None
    assert failed["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 2


@needs_root
def test_user_service_crash_loops_until_content_service_resolves_from_its_namespace(
        nova: Cluster) -> None:
    def crash_looping() -> Obj | None:
        for pod in nova.pods("nova-backend", "user-service"):
            status = pod["status"]["containerStatuses"][0]
            waiting = status["state"].get("waiting") or {}
            if status["restartCount"] >= 2 and waiting.get("reason") == "CrashLoopBackOff":
                return pod
        return None

    pod = wait_for(crash_looping, what="CrashLoopBackOff with restarts")
    status = pod["status"]["containerStatuses"][0]
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert status["ready"] is False
    name = pod["metadata"]["name"]
    log = nova.kubelet.read_log("nova-backend", name) or ""
    assert "FATAL: CONTENT_SERVICE_URL=content-service:9081: Name or service not known" in log

    alias = {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "content-service", "namespace": "nova-backend"},
             "spec": {"type": "ExternalName",
                      "externalName": f"content-service.nova-content.svc.{ZONE}"}}
    nova.store.create(alias)
    wait_for(lambda: nova.ready_pods("nova-backend", "user-service"), timeout=10,
             what="user-service recovers")
    recovered = nova.store.get("Pod", "nova-backend", name)
    assert recovered["status"]["phase"] == "Running"
    assert recovered["status"]["containerStatuses"][0]["restartCount"] >= 2
    assert "start-up need CONTENT_SERVICE_URL" in (nova.kubelet.read_log("nova-backend", name) or "")
    assert "FATAL" in (nova.kubelet.read_log("nova-backend", name, previous=True) or "")


# -- listeners, proxy ------------------------------------------------------------------------


@needs_root
def test_http_graphql_and_tcp_ports_answer_on_the_pod_ip(cluster: Cluster) -> None:
    cluster.create(namespace("web"))
    cluster.create(deployment("web", "gateway", [("http-graphql", 4000), ("http", 8080),
                                                 ("tcp-echo", 9000)]))
    pod = wait_for(lambda: cluster.ready_pods("web", "gateway"), what="gateway ready")[0]
    ip, name = pod["status"]["podIP"], pod["metadata"]["name"]
    with urllib.request.urlopen(f"http://{ip}:8080/healthz", timeout=5) as reply:
        assert reply.status == 200
        assert json.loads(reply.read()) == {"status": "ok", "pod": name, "namespace": "web",
                                            "container": "gateway", "port": 8080}
    query = urllib.request.Request(f"http://{ip}:4000/graphql", method="POST",
                                   data=b'{"query": "{ __typename }"}',
                                   headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(query, timeout=5) as reply:
        assert json.loads(reply.read()) == {"data": {"__typename": "Query"}}
    with socket.create_connection((ip, 9000), timeout=5) as conn:
        conn.sendall(b"ping")
        assert conn.recv(4) == b"ping"


@needs_root
def test_a_service_without_ready_endpoints_refuses_connections(cluster: Cluster) -> None:
    cluster.create(namespace("empty"))
    svc = cluster.create(service("empty", "nobody", [("http", 8080)], None))
    cluster.kubelet.wait_ready(5)
    slices = wait_for(lambda: cluster.store.list("EndpointSlice", "empty")[0], what="slice")
    assert slices[0]["endpoints"] == []
    address = (svc["spec"]["clusterIP"], 8080)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=2).close()

    cluster.create(deployment("empty", "late", [("http", 8080)]))
    wait_for(lambda: cluster.ready_pods("empty", "late"), what="late pod ready")
    cluster.store.mutate("Service", "empty", "nobody",
                         lambda s: s["spec"].__setitem__("selector", {"app": "late"}))
    wait_for(lambda: address in cluster.kubelet.proxy.listening, what="proxy follows selector")
    with urllib.request.urlopen(f"http://{address[0]}:{address[1]}/", timeout=5) as reply:
        assert json.loads(reply.read())["pod"].startswith("late-")


# -- workload kinds ----------------------------------------------------------------------------


@needs_root
def test_statefulset_pods_are_ordinal_and_named_in_dns_endpoints(cluster: Cluster) -> None:
    cluster.create(namespace("kafka"))
    sts = deployment("kafka", "kafka", [("tcp-kafka", 9092)], replicas=2)
    sts["kind"] = "StatefulSet"
    sts["spec"]["serviceName"] = "kafka-headless"
    cluster.create(sts)
    headless = service("kafka", "kafka-headless", [("tcp-kafka", 9092)], "None",
                       selector={"app": "kafka"})
    cluster.create(headless)
    wait_for(lambda: len(cluster.ready_pods("kafka", "kafka-")) == 2, what="kafka-0 and kafka-1")
    pod = cluster.store.get("Pod", "kafka", "kafka-1")
    assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == ("kafka-1", "kafka-headless")
    hosts = (cluster.state_dir / "pods" / "kafka_kafka-1" / "hosts").read_text()
    assert f"kafka-1.kafka-headless.kafka.svc.{ZONE}\tkafka-1" in hosts
    slices = wait_for(lambda: [s for s in cluster.store.list("EndpointSlice", "kafka")[0]
                               if len(s["endpoints"]) == 2], what="headless endpoints")
    assert sorted(e["hostname"] for e in slices[0]["endpoints"]) == ["kafka-0", "kafka-1"]
    assert (kafka_ep := cluster.store.get("Endpoints", "kafka", "kafka-headless"))
    assert len(kafka_ep["subsets"][0]["addresses"]) == 2


@needs_root
def test_statefulset_claims_come_from_volume_claim_templates_and_outlive_pods(cluster: Cluster) -> None:
    cluster.create(namespace("store"))
    sts = deployment("store", "postgres", [("tcp-pg", 5432)], replicas=2)
    sts["kind"] = "StatefulSet"
    sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "data", "mountPath": "/var/lib/postgresql/data"}]
    sts["spec"]["volumeClaimTemplates"] = [{
        "metadata": {"name": "data", "labels": {"tier": "db"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
    cluster.create(sts)
    wait_for(lambda: len(cluster.ready_pods("store", "postgres-")) == 2, what="postgres-0 and -1")
    claims = {c["metadata"]["name"]: c for c in cluster.store.list("PersistentVolumeClaim", "store")[0]}
    assert sorted(claims) == ["data-postgres-0", "data-postgres-1"]
    claim = claims["data-postgres-1"]
    assert claim["metadata"]["labels"] == {"tier": "db", "app": "postgres"}
    assert "ownerReferences" not in claim["metadata"]
    assert claim["spec"]["resources"] == {"requests": {"storage": "1Gi"}}
    assert claim["spec"]["volumeMode"] == "Filesystem" and claim["status"] == {"phase": "Pending"}
    pod = cluster.store.get("Pod", "store", "postgres-1")
    assert pod["spec"]["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "data-postgres-1"}}]
    cluster.store.mutate("StatefulSet", "store", "postgres", lambda d: d["spec"].update(replicas=1))
    wait_for(lambda: len(cluster.pods("store", "postgres-")) == 1, what="scale down to one pod")
    assert sorted(c["metadata"]["name"] for c in cluster.store.list("PersistentVolumeClaim", "store")[0]) == [
        "data-postgres-0", "data-postgres-1"], "claims are retained when pods go"


@needs_root
def test_daemonset_and_job(cluster: Cluster) -> None:
    cluster.create(namespace("ops"))
    ds = deployment("ops", "node-agent", [])
    ds["kind"] = "DaemonSet"
    del ds["spec"]["replicas"]
    cluster.create(ds)
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": "ops"},
           "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
               {"name": "migrate", "image": "busybox:1.36", "command": ["sh", "-c", "echo done"]}]}}}}
    cluster.create(job)
    done = wait_for(lambda: cluster.store.get("Job", "ops", "migrate").get("status", {}).get("succeeded"),
                    what="job succeeded")
    assert done == 1
    conditions = cluster.store.get("Job", "ops", "migrate")["status"]["conditions"]
    assert [c["type"] for c in conditions] == ["Complete"]
    agents = wait_for(lambda: cluster.ready_pods("ops", "node-agent"), what="daemonset pod")
    assert len(agents) == 1 and agents[0]["spec"]["nodeName"] == "lab-node"
    job_pod = cluster.pods("ops", "migrate-")[0]
    assert cluster.kubelet.read_log("ops", job_pod["metadata"]["name"]) == "done\n"


@needs_root
def test_scale_delete_and_namespace_deletion_kill_processes(cluster: Cluster) -> None:
    cluster.create(namespace("scale"))
    cluster.create(deployment("scale", "api", [("http", 8080)], replicas=1))
    first = wait_for(lambda: cluster.ready_pods("scale", "api"), what="api ready")[0]
    pid = int(first["status"]["containerStatuses"][0]["containerID"].split("//")[1])

    cluster.store.delete("Pod", "scale", first["metadata"]["name"])
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=1.5, what="pod process killed")
    wait_for(lambda: cluster.ready_pods("scale", "api"), what="replacement pod")

    cluster.store.mutate("Deployment", "scale", "api",
                         lambda d: d["spec"].__setitem__("replicas", 3))
    wait_for(lambda: len(cluster.ready_pods("scale", "api")) == 3, what="scaled to 3")
    cluster.store.delete("Deployment", "scale", "api")
    wait_for(lambda: not cluster.pods("scale") and not cluster.store.list("ReplicaSet", "scale")[0],
             what="garbage collection")

    cluster.create(deployment("scale", "worker", [("http", 8081)]))
    pod = wait_for(lambda: cluster.ready_pods("scale", "worker"), what="worker ready")[0]
    pid = int(pod["status"]["containerStatuses"][0]["containerID"].split("//")[1])
    cluster.store.delete_namespace_contents("scale")
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=1.5, what="namespace processes")


# -- probe pods ------------------------------------------------------------------------------

PROBE = """\
import json, os, socket, sys
checks = json.load(open(sys.argv[1]))
out = {"uid": os.getuid(), "file": sys.argv[1], "hostname": socket.gethostname(),
       "token": os.environ.get("PROBE_TOKEN"),
       "secret": open("/etc/probe-secret/password").read()}
for name in checks["names"]:
    try:
        out[name] = sorted({a[4][0] for a in socket.getaddrinfo(name, 80, socket.AF_INET)})
    except socket.gaierror as exc:
        out[name] = exc.strerror
print(json.dumps(out))
"""


@needs_root
def test_probe_pod_runs_its_command_with_configmap_files_at_the_mount_path(nova: Cluster) -> None:
    nova.create(namespace("nova-probe"))
    checks = {"names": ["content-service", "content-service.nova-content"]}
    nova.store.create({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "probe", "namespace": "nova-probe"},
                       "data": {"probe.py": PROBE, "checks.json": json.dumps(checks),
                                "token": "t-123"}})
    nova.store.create({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                       "metadata": {"name": "probe-db", "namespace": "nova-probe"},
                       "data": {"password": "czNjcjN0"}})
    pod = bare_pod("nova-probe", "probe-1", ["python3", "/probe/probe.py", "/probe/checks.json"],
                   activeDeadlineSeconds=30,
                   securityContext={"runAsNonRoot": True, "runAsUser": 65534},
                   volumes=[{"name": "probe", "configMap": {"name": "probe"}},
                            {"name": "db", "secret": {"secretName": "probe-db"}}],
                   container={"volumeMounts": [{"name": "probe", "mountPath": "/probe"},
                                               {"name": "db", "mountPath": "/etc/probe-secret",
                                                "readOnly": True}],
                              "env": [{"name": "PROBE_TOKEN", "valueFrom": {"configMapKeyRef": {
                                  "name": "probe", "key": "token"}}}]})
    nova.create(pod)
    wait_for(lambda: nova.phase("nova-probe", "probe-1") in ("Succeeded", "Failed"),
             what="probe finished")
    log = nova.kubelet.read_log("nova-probe", "probe-1") or ""
    assert nova.phase("nova-probe", "probe-1") == "Succeeded", log
    result = json.loads(log.strip().splitlines()[-1])
    ip = nova.store.get("Service", "nova-content", "content-service")["spec"]["clusterIP"]
    assert result["uid"] == 65534
    assert result["file"] == "/probe/checks.json"
    assert result["hostname"] == "probe-1"
    assert result["token"] == "t-123"
    assert result["content-service.nova-content"] == [ip]
    assert result["content-service"] == "Name or service not known"
    assert result["secret"] == "s3cr3t"
    for path in ("/probe", "/etc/probe-secret"):
        assert not Path(path).exists(), f"{path} was created outside the pod"


@needs_root
def test_pods_yield_the_cpu_to_the_lab_control_plane(cluster: Cluster) -> None:
    """SCHED_IDLE: 500 probe pods on 2 cores must not starve the daemon's DNS and API server."""
    cluster.create(namespace("sched"))
    cluster.create(bare_pod("sched", "policy", ["python3", "-c", "import os; print(os.sched_getscheduler(0))"]))
    wait_for(lambda: cluster.phase("sched", "policy") == "Succeeded", what="pod finished")
    assert (cluster.kubelet.read_log("sched", "policy") or "").strip() == str(os.SCHED_IDLE)
    assert os.sched_getscheduler(0) == os.SCHED_OTHER, "only the pods yield, not the lab"


@needs_root
def test_the_downward_api_gives_a_container_its_pod_ip_from_the_first_start(cluster: Cluster) -> None:
    """``fieldRef: status.podIP`` is what probe pods bind their connections to."""
    cluster.create(namespace("downward"))
    env = [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    cluster.create(bare_pod("downward", "own-ip", ["sh", "-c", 'echo "ip=$POD_IP"'],
                            image="busybox:1.36", container={"env": env}))
    wait_for(lambda: cluster.phase("downward", "own-ip") == "Succeeded", what="pod finished")
    pod = cluster.pod("downward", "own-ip")
    assert pod is not None and pod["status"]["podIP"].startswith(f"127.{cluster.network.block}.")
    assert cluster.kubelet.read_log("downward", "own-ip") == f"ip={pod['status']['podIP']}\n"


@needs_root
def test_active_deadline_kills_the_pod(cluster: Cluster) -> None:
    cluster.create(namespace("deadline"))
    cluster.create(bare_pod("deadline", "sleeper", ["sleep", "30"], activeDeadlineSeconds=1,
                            image="busybox:1.36"))
    wait_for(lambda: cluster.phase("deadline", "sleeper") == "Failed", timeout=5, what="deadline")
    pod = cluster.pod("deadline", "sleeper")
    assert pod is not None
    assert pod["status"]["reason"] == "DeadlineExceeded"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137


@needs_root
def test_unpullable_image_stays_pending_in_image_pull_back_off(cluster: Cluster) -> None:
    cluster.create(namespace("pull"))
    cluster.create(bare_pod("pull", "private", ["python3", "-c", "print(1)"],
                            image="registry.example.com/private:1"))
    def waiting() -> str | None:
        pod = cluster.pod("pull", "private")
        statuses = (pod or {}).get("status", {}).get("containerStatuses") or [{}]
        return (statuses[0].get("state", {}).get("waiting") or {}).get("reason")

    assert wait_for(waiting, what="waiting reason") == "ImagePullBackOff"
    assert cluster.phase("pull", "private") == "Pending"
    assert cluster.kubelet.read_log("pull", "private") is None


@needs_root
def test_a_node_selector_no_node_matches_leaves_the_pod_pending_and_unschedulable(cluster: Cluster) -> None:
    if cluster.kubelet._lookup("Node", None, "lab-node") is None:
        cluster.create({"apiVersion": "v1", "kind": "Node",
                        "metadata": {"name": "lab-node", "labels": {"kubernetes.io/os": "linux"}}})
    cluster.create(namespace("placement"))
    cluster.create(bare_pod("placement", "nowhere", ["python3", "-c", "print(1)"],
                            nodeSelector={"disktype": "ssd"}))
    cluster.create(bare_pod("placement", "linux", ["python3", "-c", "print(1)"],
                            nodeSelector={"kubernetes.io/os": "linux"}))
    wait_for(lambda: cluster.phase("placement", "linux") == "Succeeded", what="the pod that fits")

    def scheduled() -> dict[str, Any] | None:
        pod = cluster.pod("placement", "nowhere") or {}
        conditions = (pod.get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == "PodScheduled"), None)

    condition = wait_for(scheduled, what="PodScheduled condition")
    assert (condition["status"], condition["reason"]) == ("False", "Unschedulable")
    assert condition["message"].startswith("0/1 nodes are available: 1 node(s) didn't match Pod's node affinity")
    pod = cluster.pod("placement", "nowhere")
    assert pod is not None and pod["status"]["phase"] == "Pending"
    assert not pod["spec"].get("nodeName") and "podIP" not in pod["status"], "never bound, never started"


# -- degraded mode -----------------------------------------------------------------------------


def test_degraded_mode_resolves_through_an_explicit_resolver_and_says_so(
        tmp_path: Path) -> None:
    running, dns, lease = start_cluster(tmp_path, mode="degraded")
    try:
        running.create(namespace("nova-content"))
        running.create(namespace("nova-backend"))
        running.create(deployment("nova-content", "content-service", [("http", 9081)]))
        running.create(service("nova-content", "content-service", [("http", 9081)], None))
        running.create(deployment("nova-backend", "user-service", [],
                                  env={"CONTENT_SERVICE_URL": "content-service:9081"},
                                  needs="CONTENT_SERVICE_URL"))
        code = ("import socket; print(socket.getaddrinfo('content-service.nova-content', 1, "
                "socket.AF_INET)[0][4][0])")
        running.create(bare_pod("nova-backend", "probe", ["python3", "-c", code]))
        wait_for(lambda: running.phase("nova-backend", "probe") == "Succeeded", what="probe")
        ip = running.store.get("Service", "nova-content", "content-service")["spec"]["clusterIP"]
        assert ip in (running.kubelet.read_log("nova-backend", "probe") or "")
        user = wait_for(lambda: [p for p in running.pods("nova-backend", "user-service")
                                 if p["status"]["containerStatuses"][0]["restartCount"] >= 1
                                 and "waiting" in p["status"]["containerStatuses"][0]["state"]],
                        what="degraded crash loop")[0]
        log = running.kubelet.read_log("nova-backend", user["metadata"]["name"]) or ""
        assert "lab degraded mode" in log
        assert "FATAL: CONTENT_SERVICE_URL=content-service:9081: Name or service not known" in log
        running.create(bare_pod("nova-backend", "getent", ["getent", "hosts", "content-service"]))
        waiting = wait_for(lambda: (running.pod("nova-backend", "getent") or {}).get(
            "status", {}).get("containerStatuses", [{}])[0].get("state", {}).get("waiting"),
            what="refused host tool")
        assert waiting["reason"] == "CreateContainerError"
        assert "machine's resolver" in waiting["message"]
    finally:
        stop_cluster(running, dns, lease, last=False)


# -- pure parts --------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "target"), [
    ("content-service:9081", ("content-service", 9081)),
    ("http://media-service:9082/v1", ("media-service", 9082)),
    ("dns:///auth-service:9083", ("auth-service", 9083)),
    ("postgres://u:p@postgres:5432/db", ("postgres", 5432)),
    ("http://user-service.nova-backend.svc.cluster.local", ("user-service.nova-backend.svc.cluster.local", 80)),
    ("kafka-0.kafka:9092,kafka.kafka:9092", ("kafka-0.kafka", 9092)),
    ("just-a-word", None),
])
def test_start_up_need_values_are_parsed(value: str, target: tuple[str, int] | None) -> None:
    assert parse_target(value) == target


def test_stub_resolver_follows_glibc_search_order() -> None:
    resolver = StubResolver({"nameservers": [["127.0.0.1", 1]], "ndots": 5,
                             "search": ["a.svc.cluster.local", "svc.cluster.local"]})
    assert resolver.candidates("x") == ["x.a.svc.cluster.local", "x.svc.cluster.local", "x"]
    assert resolver.candidates("x.y.z.w.v.u") == ["x.y.z.w.v.u", "x.y.z.w.v.u.a.svc.cluster.local",
                                                  "x.y.z.w.v.u.svc.cluster.local"]
    assert resolver.candidates("x.") == ["x"]


def test_container_env_follows_kubelet_order_and_expansion() -> None:
    objects = {("ConfigMap", "ns", "cm"): {"kind": "ConfigMap", "data": {"BROKERS": "k:9092",
                                                                        "bad key": "x"}},
               ("Secret", "ns", "s"): {"kind": "Secret", "data": {"pw": "c2VjcmV0"}}}
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {}, "status": {"podIP": "1.2.3.4"}}
    container = {"envFrom": [{"prefix": "KAFKA_", "configMapRef": {"name": "cm"}}],
                 "env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
                         {"name": "URL", "value": "redis://:$(PW)@redis:6379 $$(PW)"},
                         {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]}
    services = [{"metadata": {"name": "redis-main"},
                 "spec": {"clusterIP": "127.1.128.4", "ports": [{"name": "tcp", "port": 6379}]}}]
    env = podproc.container_env(pod, container, lookup=lambda k, n, m: objects.get((k, n, m)),
                                services=services, hostname="p")
    assert env["KAFKA_BROKERS"] == "k:9092" and "KAFKA_bad key" not in env
    assert env["URL"] == "redis://:secret@redis:6379 $(PW)"
    assert env["IP"] == "1.2.3.4"
    assert env["REDIS_MAIN_SERVICE_HOST"] == "127.1.128.4"
    assert env["REDIS_MAIN_PORT_6379_TCP_ADDR"] == "127.1.128.4"
    with pytest.raises(podproc.PodConfigError, match='configmap "missing" not found'):
        podproc.container_env(pod, {"envFrom": [{"configMapRef": {"name": "missing"}}]},
                              lookup=lambda *_: None, services=[], hostname="p")


def test_named_target_ports_resolve_per_pod() -> None:
    svc = {"metadata": {"name": "web", "namespace": "ns"},
           "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80,
                                                            "targetPort": "http"}]}}

    def pod(name: str, port: int) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": "ns", "labels": {"app": "web"}},
                "spec": {"containers": [{"ports": [{"name": "http", "containerPort": port}]}]},
                "status": {"podIP": f"127.1.1.{port % 100}", "phase": "Running",
                           "conditions": [{"type": "Ready", "status": "True"}]}}

    groups = group_endpoints(svc, [pod("a", 8080), pod("b", 8081)])
    assert sorted(groups) == [(("http", 80 * 0 + 8080, "TCP"),), (("http", 8081, "TCP"),)]


def test_template_hash_is_stable_and_safe() -> None:
    template = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": []}}
    assert template_hash(template) == template_hash(json.loads(json.dumps(template)))
    assert set(template_hash(template)) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_unpullable_patterns_match_globs() -> None:
    assert image_unpullable("registry.example.com/private:1", ("registry.example.com/private:*",))
    assert not image_unpullable("python:3.12-slim", ("registry.example.com/private:*",))


def test_the_pod_bootstrap_refuses_to_mount_outside_fresh_namespaces(tmp_path: Path) -> None:
    plan = tmp_path / "launch.json"
    plan.write_text(json.dumps({"root": str(tmp_path / "root"), "mounts": [], "etc_files": {},
                                "argv": ["true"], "env": {}}))
    before = Path("/proc/self/mountinfo").read_text()
    done = subprocess.run([sys.executable, "-I", str(podproc.CONTAINER_PROGRAM), "--init",
                           str(plan)], capture_output=True, text=True, timeout=10, check=False)
    assert done.returncode == 128
    assert "refusing to mount" in done.stderr
    assert Path("/proc/self/mountinfo").read_text() == before
