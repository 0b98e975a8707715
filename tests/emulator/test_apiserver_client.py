"""The lab API server driven by the official ``kubernetes`` Python client (sync, v37).

Everything goes through a kubeconfig and real HTTPS, so these tests pin what
novadiag's own cluster access relies on: typed reads that pass v37's strict
response validation, pagination, selectors, watch, logs, RBAC denials and
injected faults.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from lab_apiserver_support import VIEWER_TOKEN, RunningLab, running_lab

import novadiag.lab.store as store_module

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLab]:
    with running_lab(tmp_path_factory.mktemp("apiserver-client"), block=201) as running:
        yield running


@pytest.fixture(scope="module")
def api_client(lab: RunningLab) -> Iterator[client.ApiClient]:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(lab.kubeconfig),
                            client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        yield api


@pytest.fixture(scope="module")
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture(autouse=True)
def _no_faults(lab: RunningLab) -> Iterator[None]:
    yield
    lab.clear_faults()


def _namespace(core: client.CoreV1Api, name: str) -> None:
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def _pod(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [{"name": "app", "image": "nova/app:1.0",
                                     "ports": [{"containerPort": 8080}]}]}}


def _raw(response: Any) -> dict[str, Any]:
    return json.loads(response.data)


# -- discovery and typed CRUD ---------------------------------------------------------------

def test_version_and_discovery(api_client: client.ApiClient) -> None:
    version = client.VersionApi(api_client).get_code()
    assert version.major == "1" and version.git_version.startswith("v1.32")
    groups = {g.name for g in client.ApisApi(api_client).get_api_versions().groups}
    assert {"apps", "batch", "discovery.k8s.io", "networking.k8s.io"} <= groups
    core_resources = client.CoreV1Api(api_client).get_api_resources().resources
    services = next(r for r in core_resources if r.name == "services")
    assert services.short_names == ["svc"] and services.namespaced
    assert "pods/log" in {r.name for r in core_resources}


def test_create_sets_server_fields_and_defaults(core: client.CoreV1Api) -> None:
    _namespace(core, "crud")
    ns = core.read_namespace("crud")
    assert ns.status.phase == "Active"
    assert ns.metadata.labels["kubernetes.io/metadata.name"] == "crud"
    svc = core.create_namespaced_service("crud", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}})
    assert svc.metadata.uid and svc.metadata.resource_version and svc.metadata.creation_timestamp
    assert svc.spec.type == "ClusterIP" and svc.spec.cluster_ip.startswith("127.201.")
    assert svc.spec.ports[0].protocol == "TCP" and svc.spec.ports[0].target_port == 80
    pod = core.create_namespaced_pod("crud", _pod("p"))
    assert pod.spec.dns_policy == "ClusterFirst" and pod.status.phase == "Pending"
    with pytest.raises(ApiException) as exists:
        core.create_namespaced_pod("crud", _pod("p"))
    assert exists.value.status == 409
    assert json.loads(exists.value.body)["reason"] == "AlreadyExists"


def test_services_and_policies_read_back_with_server_side_defaults(
        api_client: client.ApiClient, core: client.CoreV1Api) -> None:
    # what `kubectl get -o yaml` shows on a v1.32 single-stack cluster for these specs
    _namespace(core, "defaults")

    def service(name: str, **spec: Any) -> dict[str, Any]:
        body = {"metadata": {"name": name}, "spec": {"ports": [{"port": 9092}], **spec}}
        core.create_namespaced_service("defaults", body)
        return _raw(core.read_namespaced_service(name, "defaults", _preload_content=False))["spec"]

    headless = service("kafka-headless", clusterIP="None", selector={"app": "kafka"})
    assert headless["ipFamilies"] == ["IPv4"] and headless["ipFamilyPolicy"] == "SingleStack"
    manual = service("external-db", clusterIP="None")
    assert manual["ipFamilies"] == ["IPv4"] and manual["ipFamilyPolicy"] == "RequireDualStack"
    sticky = service("sticky", selector={"app": "s"}, sessionAffinity="ClientIP")
    assert sticky["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    balanced = service("public", selector={"app": "p"}, type="LoadBalancer")
    assert balanced["allocateLoadBalancerNodePorts"] is True
    assert balanced["externalTrafficPolicy"] == "Cluster"
    assert balanced["ports"][0]["protocol"] == "TCP"

    networking = client.NetworkingV1Api(api_client)
    networking.create_namespaced_network_policy("defaults", {
        "metadata": {"name": "db"},
        "spec": {"podSelector": {"matchLabels": {"app": "db"}},
                 "ingress": [{"ports": [{"port": 5432}]}],
                 "egress": [{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53}]}]}})
    networking.create_namespaced_network_policy("defaults", {
        "metadata": {"name": "deny-all"}, "spec": {}})
    policy = _raw(networking.read_namespaced_network_policy(
        "db", "defaults", _preload_content=False))["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"][0]["ports"] == [{"port": 5432, "protocol": "TCP"}]
    assert [p["protocol"] for p in policy["egress"][0]["ports"]] == ["UDP", "TCP"]
    deny = _raw(networking.read_namespaced_network_policy(
        "deny-all", "defaults", _preload_content=False))["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}

    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_stateful_set("defaults", {
        "metadata": {"name": "db"},
        "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}},
                              "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                     "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}})
    raw_sts = _raw(apps.read_namespaced_stateful_set("db", "defaults", _preload_content=False))
    assert raw_sts["status"] == {"replicas": 0, "availableReplicas": 0}, "zero values a real server serializes"
    sts = raw_sts["spec"]
    assert sts["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    (claim,) = sts["volumeClaimTemplates"]
    assert (claim["apiVersion"], claim["kind"], claim["spec"]["volumeMode"], claim["status"]) == (
        "v1", "PersistentVolumeClaim", "Filesystem", {"phase": "Pending"})


def test_the_cluster_publishes_the_kubernetes_service_pointing_at_the_api_server(
        lab: RunningLab, api_client: client.ApiClient, core: client.CoreV1Api) -> None:
    svc = core.read_namespaced_service("kubernetes", "default")
    assert svc.metadata.labels == {"component": "apiserver", "provider": "kubernetes"}
    assert svc.spec.cluster_ip == "127.201.128.1", "the first address of the Service range"
    assert svc.spec.type == "ClusterIP" and svc.spec.ip_families == ["IPv4"]
    (port,) = svc.spec.ports
    assert (port.name, port.port, port.protocol, port.target_port) == ("https", 443, "TCP", lab.server.port)
    (subset,) = core.read_namespaced_endpoints("kubernetes", "default").subsets
    assert [a.ip for a in subset.addresses] == ["127.201.0.1"] and subset.ports[0].port == lab.server.port
    endpoint_slice = client.DiscoveryV1Api(api_client).read_namespaced_endpoint_slice("kubernetes", "default")
    assert endpoint_slice.endpoints[0].addresses == ["127.201.0.1"]
    assert endpoint_slice.metadata.labels == {"kubernetes.io/service-name": "kubernetes"}
    _namespace(core, "ipalloc")
    other = core.create_namespaced_service("ipalloc", {
        "metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    assert other.spec.cluster_ip != "127.201.128.1"


def test_every_namespace_gets_the_root_ca_configmap_and_default_service_account(
        lab: RunningLab, core: client.CoreV1Api) -> None:
    ca_pem = lab.server.ca_path.read_text()
    for system in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert core.read_namespaced_config_map("kube-root-ca.crt", system).data == {"ca.crt": ca_pem}
        assert core.read_namespaced_service_account("default", system).metadata.name == "default"
    _namespace(core, "fresh")  # present as soon as the create returns
    configmap = core.read_namespaced_config_map("kube-root-ca.crt", "fresh")
    assert configmap.data == {"ca.crt": ca_pem}
    assert "kube-apiserver" in configmap.metadata.annotations["kubernetes.io/description"]
    assert [sa.metadata.name for sa in core.list_namespaced_service_account("fresh").items] == ["default"]
    # the controllers put them back: deleted, or (the CA) changed
    core.delete_namespaced_service_account("default", "fresh")
    core.delete_namespaced_config_map("kube-root-ca.crt", "fresh")
    assert core.read_namespaced_service_account("default", "fresh").metadata.name == "default"
    assert core.read_namespaced_config_map("kube-root-ca.crt", "fresh").data == {"ca.crt": ca_pem}
    core.patch_namespaced_config_map("kube-root-ca.crt", "fresh", {"data": {"ca.crt": "forged"}})
    assert core.read_namespaced_config_map("kube-root-ca.crt", "fresh").data == {"ca.crt": ca_pem}


def test_only_kinds_with_a_desired_state_carry_a_generation(api_client: client.ApiClient,
                                                            core: client.CoreV1Api) -> None:
    _namespace(core, "gen")
    configmap = core.create_namespaced_config_map("gen", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    service = core.create_namespaced_service("gen", {
        "metadata": {"name": "s"}, "spec": {"selector": {"app": "s"}, "ports": [{"port": 80}]}})
    pod = core.create_namespaced_pod("gen", _pod("p"))
    assert [o.metadata.generation for o in (configmap, service, pod, core.read_namespace("gen"))] == [None] * 4
    core.patch_namespaced_config_map("c", "gen", {"data": {"a": "2"}})
    assert core.read_namespaced_config_map("c", "gen").metadata.generation is None
    policy = client.NetworkingV1Api(api_client).create_namespaced_network_policy("gen", {
        "metadata": {"name": "n"}, "spec": {"podSelector": {}}})
    assert policy.metadata.generation == 1


def test_update_conflicts_on_stale_resource_version(core: client.CoreV1Api) -> None:
    _namespace(core, "upd")
    created = core.create_namespaced_config_map("upd", {
        "metadata": {"name": "cfg"}, "data": {"a": "1"}})
    created.data = {"a": "2"}
    updated = core.replace_namespaced_config_map("cfg", "upd", created)
    assert updated.data == {"a": "2"}
    assert updated.metadata.resource_version != created.metadata.resource_version
    created.data = {"a": "3"}  # still carries the old resourceVersion
    with pytest.raises(ApiException) as stale:
        core.replace_namespaced_config_map("cfg", "upd", created)
    assert stale.value.status == 409
    assert "the object has been modified" in json.loads(stale.value.body)["message"]


def test_strategic_merge_patch_merges_containers_by_name(api_client: client.ApiClient,
                                                          core: client.CoreV1Api) -> None:
    _namespace(core, "smp")
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment("smp", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api"},
        "spec": {"selector": {"matchLabels": {"app": "api"}}, "template": {
            "metadata": {"labels": {"app": "api"}},
            "spec": {"containers": [
                {"name": "api", "image": "api:1", "env": [{"name": "A", "value": "1"}]},
                {"name": "sidecar", "image": "side:1"}]}}}})
    patched = apps.patch_namespaced_deployment("api", "smp", {"spec": {"template": {"spec": {
        "containers": [{"name": "api", "env": [{"name": "B", "value": "2"}]}]}}}})
    containers = {c.name: c for c in patched.spec.template.spec.containers}
    assert set(containers) == {"api", "sidecar"}
    assert [(e.name, e.value) for e in containers["api"].env] == [("A", "1"), ("B", "2")]
    assert patched.metadata.generation == 2
    assert patched.spec.replicas == 1  # defaulted on create


def test_status_is_ignored_on_the_main_resource(core: client.CoreV1Api) -> None:
    _namespace(core, "stat")
    core.create_namespaced_pod("stat", _pod("p"))
    core.patch_namespaced_pod("p", "stat", {"status": {"phase": "Running"}})
    assert core.read_namespaced_pod("p", "stat").status.phase == "Pending"
    core.patch_namespaced_pod_status("p", "stat", {"status": {"phase": "Running"}})
    assert core.read_namespaced_pod_status("p", "stat").status.phase == "Running"


def test_invalid_name_is_422(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as invalid:
        core.create_namespaced_config_map("default", {"metadata": {"name": "Bad_Name"}})
    assert invalid.value.status == 422
    body = json.loads(invalid.value.body)
    assert body["reason"] == "Invalid" and body["details"]["causes"][0]["field"] == "metadata.name"


def test_missing_objects_are_404_status(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_pod("nope", "default")
    body = json.loads(missing.value.body)
    assert missing.value.status == 404
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": 'pods "nope" not found', "reason": "NotFound",
                    "details": {"name": "nope", "kind": "pods"}, "code": 404}
    with pytest.raises(ApiException) as no_ns:
        core.create_namespaced_pod("no-such-namespace", _pod("p"))
    assert no_ns.value.status == 404


# -- lists -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def many_pods(core: client.CoreV1Api) -> int:
    for ns in ("page-a", "page-b"):
        _namespace(core, ns)
        for i in range(25):
            tier = "web" if i % 2 else "db"
            core.create_namespaced_pod(ns, _pod(f"pod-{i:02d}", {"tier": tier, "n": str(i)}))
    return 50


def test_cluster_wide_pagination_returns_every_pod_once(core: client.CoreV1Api,
                                                        many_pods: int) -> None:
    names: list[str] = []
    token = None
    pages = 0
    while True:
        page = core.list_pod_for_all_namespaces(limit=7, _continue=token,
                                                label_selector="n")
        names += [f"{p.metadata.namespace}/{p.metadata.name}" for p in page.items]
        pages += 1
        token = page.metadata._continue
        if not token:
            break
    assert len(names) == many_pods == len(set(names))
    assert pages == 8
    assert page.metadata.resource_version


def test_cluster_wide_lists_run_in_storage_key_order(core: client.CoreV1Api) -> None:
    # etcd order: "nova-auth/..." before "nova/..." ('-' is 0x2d, '/' is 0x2f), pages too
    for ns in ("nova", "nova-auth", "nova0"):
        _namespace(core, ns)
        core.create_namespaced_config_map(ns, {"metadata": {"name": "order"}})
    expected = ["nova-auth/order", "nova/order", "nova0/order"]

    def listed(items: list[Any]) -> list[str]:
        return [f"{s.metadata.namespace}/{s.metadata.name}" for s in items
                if s.metadata.name == "order"]

    assert listed(core.list_config_map_for_all_namespaces().items) == expected
    paged: list[str] = []
    token = None
    while True:
        page = core.list_config_map_for_all_namespaces(limit=1, _continue=token,
                                                      field_selector="metadata.name=order")
        paged += listed(page.items)
        token = page.metadata._continue
        if not token:
            break
    assert paged == expected


def test_label_and_field_selectors(core: client.CoreV1Api, many_pods: int) -> None:
    web = core.list_namespaced_pod("page-a", label_selector="tier=web")
    assert len(web.items) == 12
    set_based = core.list_pod_for_all_namespaces(label_selector="tier in (db),n notin (0,2)")
    assert len(set_based.items) == 2 * 13 - 4
    by_name = core.list_pod_for_all_namespaces(field_selector="metadata.name=pod-03")
    assert {p.metadata.namespace for p in by_name.items} == {"page-a", "page-b"}
    pending = core.list_namespaced_pod("page-b", field_selector="status.phase=Pending,"
                                       "metadata.namespace=page-b")
    assert len(pending.items) == 25
    with pytest.raises(ApiException) as bad:
        core.list_namespaced_pod("page-b", field_selector="spec.nope=1")
    assert bad.value.status == 400
    assert "field label not supported" in json.loads(bad.value.body)["message"]


def test_raw_list_for_big_reads(core: client.CoreV1Api, many_pods: int) -> None:
    raw = _raw(core.list_pod_for_all_namespaces(limit=100, _preload_content=False,
                                                label_selector="tier"))
    assert raw["kind"] == "PodList" and raw["apiVersion"] == "v1"
    assert len(raw["items"]) == many_pods and "continue" not in raw["metadata"]


def test_lists_serve_each_object_as_stored_now(lab: RunningLab, core: client.CoreV1Api) -> None:
    """Items are encoded once per version: a write must show in the very next list."""
    _namespace(core, "enc")
    for i in range(3):
        core.create_namespaced_config_map("enc", {"metadata": {"name": f"cfg-{i}"}, "data": {"v": "1"}})
    first = core.list_namespaced_config_map("enc", _preload_content=False).data
    again = core.list_namespaced_config_map("enc", _preload_content=False).data
    stored, version = lab.store.list("ConfigMap", "enc")
    expected = {"kind": "ConfigMapList", "apiVersion": "v1",
                "metadata": {"resourceVersion": str(version)}, "items": stored}
    assert first == again == json.dumps(expected, separators=(",", ":")).encode()
    first_page = core.list_namespaced_config_map("enc", limit=1)
    changed = core.read_namespaced_config_map("cfg-1", "enc")
    changed.data = {"v": "2"}
    core.replace_namespaced_config_map("cfg-1", "enc", changed)
    core.delete_namespaced_config_map("cfg-2", "enc")
    # A write or delete drops the encoding: the cache keeps no old version alive.
    # (kube-root-ca.crt is the namespace's own CA ConfigMap, listed and unchanged too.)
    assert {key[2] for key in lab.store._encoded if key[1] == "enc"} == {"cfg-0", "kube-root-ca.crt"}
    listed = {c.metadata.name: c.data for c in core.list_namespaced_config_map("enc").items
              if c.metadata.name.startswith("cfg-")}
    assert listed == {"cfg-0": {"v": "1"}, "cfg-1": {"v": "2"}}
    # A continued list still reads the snapshot it started from, old versions included,
    # although the new version of cfg-1 has been encoded since.
    rest = core.list_namespaced_config_map("enc", limit=5, _continue=first_page.metadata._continue)
    assert {c.metadata.name: c.data for c in rest.items if c.metadata.name.startswith("cfg-")} == {
        "cfg-1": {"v": "1"}, "cfg-2": {"v": "1"}}
    kept = {key[2]: json.loads(data) for key, (_, data) in lab.store._encoded.items() if key[1] == "enc"}
    assert kept["cfg-1"]["data"] == {"v": "2"} and "cfg-2" not in kept


def test_expired_continue_token_is_410(lab: RunningLab, core: client.CoreV1Api,
                                       many_pods: int) -> None:
    first = core.list_pod_for_all_namespaces(limit=5, label_selector="tier")
    lab.add_fault(expire_continue_tokens=True, times=1)
    with pytest.raises(ApiException) as gone:
        core.list_pod_for_all_namespaces(limit=5, _continue=first.metadata._continue)
    assert gone.value.status == 410
    assert json.loads(gone.value.body)["reason"] == "Expired"
    again = core.list_pod_for_all_namespaces(limit=5, _continue=first.metadata._continue)
    assert len(again.items) == 5
    with pytest.raises(ApiException) as bad:
        core.list_pod_for_all_namespaces(limit=5, _continue="not-a-token")
    assert bad.value.status == 400


def test_delete_collection_by_label(core: client.CoreV1Api) -> None:
    _namespace(core, "dc")
    for i in range(4):
        core.create_namespaced_config_map("dc", {"metadata": {
            "name": f"cm-{i}", "labels": {"drop": "yes" if i < 3 else "no"}}})
    core.delete_collection_namespaced_config_map("dc", label_selector="drop=yes")
    left = core.list_namespaced_config_map("dc")
    assert [c.metadata.name for c in left.items] == ["cm-3", "kube-root-ca.crt"]


def test_namespace_deletion_cascades(core: client.CoreV1Api) -> None:
    _namespace(core, "doomed")
    core.create_namespaced_config_map("doomed", {"metadata": {"name": "c"}})
    terminating = core.delete_namespace("doomed")
    assert terminating is not None
    assert core.read_namespace("doomed").status.phase == "Terminating"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            core.read_namespace("doomed")
        except ApiException as exc:
            assert exc.status == 404
            break
        time.sleep(0.05)
    else:
        pytest.fail("the namespace was not removed")
    assert core.list_namespaced_config_map("doomed").items == []


def test_deleting_an_owner_deletes_its_dependents(core: client.CoreV1Api) -> None:
    _namespace(core, "gc")
    owner = core.create_namespaced_config_map("gc", {"metadata": {"name": "owner"}})
    core.create_namespaced_pod("gc", {**_pod("child"), "metadata": {
        "name": "child", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap",
                                              "name": "owner", "uid": owner.metadata.uid}]}})
    core.delete_namespaced_config_map("owner", "gc")
    assert core.list_namespaced_pod("gc").items == []


# -- watch -----------------------------------------------------------------------------------

def test_watch_streams_changes_filtered_by_label(core: client.CoreV1Api) -> None:
    _namespace(core, "w")
    rv = core.list_namespaced_config_map("w").metadata.resource_version

    def writer() -> None:
        time.sleep(0.2)
        core.create_namespaced_config_map("w", {"metadata": {"name": "skip"}})
        core.create_namespaced_config_map("w", {"metadata": {"name": "keep",
                                                             "labels": {"watch": "me"}}})
        core.patch_namespaced_config_map("keep", "w", {"data": {"x": "1"}})
        core.patch_namespaced_config_map("keep", "w", {"metadata": {"labels": {"watch": None}}})

    thread = threading.Thread(target=writer)
    thread.start()
    seen: list[tuple[str, str]] = []
    stream = watch.Watch()
    for event in stream.stream(core.list_namespaced_config_map, "w", resource_version=rv,
                               label_selector="watch=me", timeout_seconds=5):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 3:
            stream.stop()
    thread.join()
    assert seen == [("ADDED", "keep"), ("MODIFIED", "keep"), ("DELETED", "keep")]


def test_watch_without_resource_version_starts_with_current_objects(
        core: client.CoreV1Api, many_pods: int) -> None:
    stream = watch.Watch()
    events = list(stream.stream(core.list_namespaced_pod, "page-a", label_selector="tier=db",
                                timeout_seconds=1))
    assert len(events) == 13 and {e["type"] for e in events} == {"ADDED"}


def test_watch_from_a_compacted_resource_version_is_410(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "EVENT_LOG_SIZE", 20)
    with running_lab(tmp_path, block=203) as small:
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(small.kubeconfig),
                                client_configuration=configuration)
        with client.ApiClient(configuration) as api:
            core = client.CoreV1Api(api)
            first = core.list_namespaced_config_map("default", limit=1)
            for i in range(30):
                core.create_namespaced_config_map("default", {"metadata": {"name": f"c{i}"}})
            with pytest.raises(ApiException) as too_old:
                for _ in watch.Watch().stream(core.list_namespaced_config_map, "default",
                                              resource_version=first.metadata.resource_version,
                                              timeout_seconds=2):
                    pass
            assert too_old.value.status == 410
            page = core.list_namespaced_config_map("default", limit=5)
            for i in range(30, 60):
                core.create_namespaced_config_map("default", {"metadata": {"name": f"c{i}"}})
            with pytest.raises(ApiException) as expired:
                core.list_namespaced_config_map("default", limit=5,
                                                _continue=page.metadata._continue)
            assert expired.value.status == 410


# -- logs ------------------------------------------------------------------------------------

def test_pod_logs_are_plain_text(lab: RunningLab, core: client.CoreV1Api) -> None:
    _namespace(core, "logs")
    core.create_namespaced_pod("logs", _pod("p"))
    lab.logs[("logs", "p", "app")] = "line 1\nline 2\nline 3\n"
    assert core.read_namespaced_pod_log("p", "logs") == "line 1\nline 2\nline 3\n"
    assert core.read_namespaced_pod_log("p", "logs", tail_lines=1) == "line 3\n"
    with pytest.raises(ApiException) as wrong:
        core.read_namespaced_pod_log("p", "logs", container="other")
    assert wrong.value.status == 400
    core.create_namespaced_pod("logs", _pod("silent"))
    with pytest.raises(ApiException) as waiting:
        core.read_namespaced_pod_log("silent", "logs")
    assert "is waiting to start" in json.loads(waiting.value.body)["message"]


# -- authorization ---------------------------------------------------------------------------

def _client_for(lab: RunningLab, token: str) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(lab.kubeconfig_for(token)),
                            client_configuration=configuration)
    return client.ApiClient(configuration)


def test_rbac_denials_are_403_with_the_standard_message(lab: RunningLab,
                                                         core: client.CoreV1Api) -> None:
    with _client_for(lab, VIEWER_TOKEN) as api:
        viewer = client.CoreV1Api(api)
        with pytest.raises(ApiException) as cluster_wide:
            viewer.list_pod_for_all_namespaces()
        assert cluster_wide.value.status == 403
        assert json.loads(cluster_wide.value.body)["message"] == (
            'pods is forbidden: User "viewer" cannot list resource "pods" in API group "" '
            "at the cluster scope")
        _namespace(core, "team-a")
        assert viewer.list_namespaced_pod("team-a").items == []
        with pytest.raises(ApiException) as write:
            viewer.create_namespaced_config_map("team-a", {"metadata": {"name": "x"}})
        assert write.value.status == 403
    _namespace(core, "locked")
    with pytest.raises(ApiException) as denied:
        core.list_namespaced_secret("locked")
    assert denied.value.status == 403
    assert 'in the namespace "locked"' in json.loads(denied.value.body)["message"]
    with pytest.raises(ApiException) as denied_everywhere:
        core.list_secret_for_all_namespaces()
    assert denied_everywhere.value.status == 403
    assert [c.metadata.name for c in core.list_namespaced_config_map("locked").items] == ["kube-root-ca.crt"]


def test_unknown_token_is_401(lab: RunningLab) -> None:
    with _client_for(lab, "wrong") as api, pytest.raises(ApiException) as unauthorized:
        client.CoreV1Api(api).list_namespace()
    assert unauthorized.value.status == 401


def test_minted_token_and_revocation(lab: RunningLab) -> None:
    minted = lab.admin("POST", "/lab/v1/tokens", {"user": "ci", "rules": [
        {"verbs": ["list"], "resources": ["namespaces"]}]})
    lab.add_fault(revoke_token=minted["token"], after_requests=1)
    with _client_for(lab, minted["token"]) as api:
        ci = client.CoreV1Api(api)
        assert ci.list_namespace().items
        with pytest.raises(ApiException) as revoked:
            ci.list_namespace()
        assert revoked.value.status == 401


# -- faults ----------------------------------------------------------------------------------

def _requests(lab: RunningLab, key: str) -> int:
    return int(lab.admin("GET", "/lab/v1/metrics")["requests"].get(key, 0))


def test_injected_500_reaches_the_client(lab: RunningLab, core: client.CoreV1Api) -> None:
    lab.add_fault(status=500, verb="list", resource="services", times=1)
    with pytest.raises(ApiException) as failed:
        core.list_service_for_all_namespaces()
    assert failed.value.status == 500
    assert core.list_service_for_all_namespaces().items is not None


def test_429_is_retried_by_urllib3_then_surfaces(lab: RunningLab,
                                                 core: client.CoreV1Api) -> None:
    before = _requests(lab, "list configmaps")
    # One 429 with Retry-After: urllib3 retries silently and the call succeeds.
    lab.add_fault(status=429, retry_after=0, verb="list", resource="configmaps", times=1)
    core.list_config_map_for_all_namespaces()
    assert _requests(lab, "list configmaps") - before == 2
    # A persistent 429 exhausts urllib3's retries and reaches the caller.
    lab.add_fault(status=429, retry_after=0, verb="list", resource="configmaps")
    with pytest.raises(ApiException) as throttled:
        core.list_config_map_for_all_namespaces()
    assert throttled.value.status == 429
    assert throttled.value.headers["Retry-After"] == "0"


def test_latency_and_dropped_connections(lab: RunningLab, core: client.CoreV1Api) -> None:
    lab.add_fault(latency_ms=300, verb="get", resource="namespaces", times=1)
    started = time.monotonic()
    core.read_namespace("default")
    assert time.monotonic() - started >= 0.3
    lab.add_fault(drop_connection=True, verb="get", resource="namespaces", times=10)
    with pytest.raises(Exception) as dropped:  # urllib3 gives up: MaxRetryError
        core.read_namespace("default")
    assert "RemoteDisconnected" in repr(dropped.value) or "Max retries" in str(dropped.value)


def test_metrics_count_requests_per_verb_and_resource(lab: RunningLab,
                                                      core: client.CoreV1Api) -> None:
    lab.admin("DELETE", "/lab/v1/metrics")
    core.list_namespace()
    core.list_namespace()
    core.read_namespace("default")
    metrics = lab.admin("GET", "/lab/v1/metrics")
    assert metrics["requests"] == {"get namespaces": 1, "list namespaces": 2}
    assert metrics["total"] == 3
