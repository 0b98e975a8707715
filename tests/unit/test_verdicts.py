"""One verdict per edge: each status, the first failing layer, and the fix."""

from __future__ import annotations

from novadiag.index import build_index
from novadiag.model import Gap, ObjectRef, Reference, SourceInfo
from novadiag.snapshot import build_snapshot
from novadiag.verdicts import VerdictContext, judge
from novadiag.visibility import Visibility


def ns(name):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def deployment(namespace, name, *, replicas=1, ports=(), pod_spec=None):
    spec = {"containers": [{"name": name, "ports": [{"containerPort": p} for p in ports]}]}
    spec.update(pod_spec or {})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
        },
    }


def service(namespace, name, port, target_port=None, *, selector=True, **spec):
    body = {"ports": [{"port": port, "targetPort": target_port or port}], **spec}
    if selector:
        body["selector"] = {"app": name}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace}, "spec": body}


def make_ctx(*extra, source_spec=None):
    objs = [
        ns("nova-backend"),
        ns("nova-content"),
        deployment("nova-backend", "user-service", pod_spec=source_spec),
        deployment("nova-content", "content-service", ports=(9081,)),
        service("nova-content", "content-service", 9081),
        deployment("nova-content", "idle", replicas=0),
        service("nova-content", "idle", 80),
        deployment("nova-content", "web", ports=(8080,)),
        service("nova-content", "web", 80, 8080),
        *extra,
    ]
    snapshot = build_snapshot(objs, SourceInfo("manifests"))
    workloads = {w.ref: w for w in snapshot.workloads}
    return VerdictContext(build_index(snapshot)), workloads


def verdict(host, port, *extra, source_spec=None):
    ctx, workloads = make_ctx(*extra, source_spec=source_spec)
    ref = Reference(
        workload=ObjectRef("Deployment", "nova-backend", "user-service"),
        container="user-service",
        env="TARGET_URL",
        origin="value",
        reference=f"{host}:{port}",
        host=host,
        port=port,
    )
    return judge(ref, workloads[ref.workload], ctx)


def test_cross_namespace_short_name_is_dns_unresolvable_with_target_and_fix():
    edge = verdict("content-service", 9081)
    assert edge.status == "dns-unresolvable"
    assert edge.target == ObjectRef("Service", "nova-content", "content-service")
    assert edge.resolves_to is None
    assert edge.cross_namespace
    assert edge.fix == "content-service.nova-content:9081"
    assert "only finds Services of the pod's own namespace" in edge.detail


def test_svc_dot_namespace_is_ok():
    edge = verdict("content-service.nova-content", 9081)
    assert edge.status == "ok"
    assert edge.resolves_to == ObjectRef("Service", "nova-content", "content-service")
    assert edge.fix is None


def test_fqdn_is_ok():
    assert verdict("content-service.nova-content.svc.cluster.local", 9081).status == "ok"


def test_name_matching_no_service_is_unknown_target():
    edge = verdict("contnet-service", 9081)
    assert edge.status == "unknown-target"
    assert edge.target is None


def test_missing_namespace_is_unknown_target_naming_it():
    edge = verdict("content-service.nova-contnet", 9081)
    assert edge.status == "unknown-target"
    assert "nova-contnet" in edge.detail and "does not exist" in edge.detail


def test_container_port_instead_of_service_port_is_port_mismatch_with_fix():
    edge = verdict("web.nova-content", 8080)
    assert edge.status == "port-mismatch"
    assert "container port" in edge.detail
    assert edge.fix == "web.nova-content:80"


def test_unexposed_port_is_port_mismatch():
    edge = verdict("content-service.nova-content", 1234)
    assert edge.status == "port-mismatch"
    assert "9081" in edge.detail


def test_service_without_ready_workload_is_no_endpoints():
    edge = verdict("idle.nova-content", 80)
    assert edge.status == "no-endpoints"


def test_port_check_comes_before_endpoints():
    assert verdict("idle.nova-content", 9999).status == "port-mismatch"


def test_dns_comes_before_port():
    assert verdict("web", 8080).status == "dns-unresolvable"


def test_external_host_is_external_and_not_broken():
    edge = verdict("api.stripe.com", 443)
    assert edge.status == "external"
    assert not edge.broken
    assert not edge.cross_namespace


def test_external_name_service_resolving_outside_is_ok():
    alias = service("nova-backend", "payments", 443, selector=False, type="ExternalName", externalName="api.stripe.com")
    edge = verdict("payments", 443, alias)
    assert edge.status == "ok"


def test_external_name_is_never_flagged_for_missing_endpoints():
    alias = service(
        "nova-backend", "legacy", 80, selector=False, type="ExternalName", externalName="legacy.example.com"
    )
    assert verdict("legacy", 80, alias).status == "ok"


def test_alias_in_source_namespace_bridges_to_target():
    alias = service(
        "nova-backend",
        "content-service",
        9081,
        selector=False,
        type="ExternalName",
        externalName="content-service.nova-content.svc.cluster.local",
    )
    edge = verdict("content-service", 9081, alias)
    assert edge.status == "ok"
    assert edge.target == ObjectRef("Service", "nova-content", "content-service")
    assert "via ExternalName nova-backend/content-service" in edge.detail


def test_host_network_pod_cannot_resolve_and_detail_says_why():
    edge = verdict("content-service.nova-content", 9081, source_spec={"hostNetwork": True})
    assert edge.status == "dns-unresolvable"
    assert "hostNetwork" in edge.detail
    assert edge.fix is None
    assert "ClusterFirstWithHostNet" in edge.detail


def test_fix_for_pod_without_cluster_search_list_is_the_fqdn():
    spec = {"dnsPolicy": "None", "dnsConfig": {"nameservers": ["10.96.0.10"]}}
    ctx, workloads = make_ctx(source_spec=spec)
    ctx.cluster_dns_ips = ("10.96.0.10",)
    ref = Reference(
        ObjectRef("Deployment", "nova-backend", "user-service"),
        "user-service",
        "X",
        "value",
        "content-service:9081",
        "content-service",
        9081,
    )
    edge = judge(ref, workloads[ref.workload], ctx)
    assert edge.status == "dns-unresolvable"
    assert edge.fix == "content-service.nova-content.svc.cluster.local:9081"


def test_ndots_two_dotted_name_notes_musl_difference():
    spec = {"dnsConfig": {"options": [{"name": "ndots", "value": "1"}]}}
    edge = verdict("content-service.nova-content", 9081, source_spec=spec)
    assert edge.status == "ok"
    assert "musl" in edge.detail


# -- StatefulSet pod names through a headless Service --


def statefulset(namespace, name, *, service_name, replicas, labels=None):
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "serviceName": service_name,
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": name}]}},
        },
    }


def kafka(*, replicas=3, labels=None):
    """Namespace kafka: StatefulSet kafka (serviceName kafka-headless) behind a headless Service selecting app=kafka."""
    headless = service("kafka", "kafka-headless", 9092, clusterIP="None")
    headless["spec"]["selector"] = {"app": "kafka"}
    return (
        ns("kafka"),
        statefulset("kafka", "kafka", service_name="kafka-headless", replicas=replicas, labels=labels),
        headless,
    )


KAFKA_HEADLESS = ObjectRef("Service", "kafka", "kafka-headless")


def test_pod_short_form_from_another_namespace_is_dns_unresolvable_with_the_namespace_added():
    edge = verdict("kafka-0.kafka-headless", 9092, *kafka())
    assert edge.status == "dns-unresolvable"
    assert edge.target == KAFKA_HEADLESS
    assert edge.fix == "kafka-0.kafka-headless.kafka:9092"


def test_pod_name_with_its_namespace_is_ok():
    edge = verdict("kafka-2.kafka-headless.kafka", 9092, *kafka())
    assert edge.status == "ok"
    assert edge.resolves_to == KAFKA_HEADLESS


def test_pod_ordinal_past_the_replicas_is_no_endpoints_naming_the_range():
    edge = verdict("kafka-3.kafka-headless.kafka.svc.cluster.local", 9092, *kafka())
    assert edge.status == "no-endpoints"
    assert edge.target == KAFKA_HEADLESS
    assert "kafka-3" in edge.detail and "3 replicas (kafka-0..kafka-2)" in edge.detail
    assert edge.fix is None


def test_pod_ordinal_past_the_replicas_in_the_short_form_is_no_endpoints_too():
    assert verdict("kafka-3.kafka-headless", 9092, *kafka()).status == "no-endpoints"


def test_pod_name_of_no_statefulset_of_the_service_is_unknown_target():
    edge = verdict("zookeeper-0.kafka-headless.kafka", 9092, *kafka())
    assert edge.status == "unknown-target"
    assert edge.target is None
    assert "zookeeper-0" in edge.detail and "StatefulSet(s) with serviceName kafka-headless: kafka" in edge.detail


def test_statefulset_whose_pods_the_service_does_not_select_names_no_pod():
    edge = verdict("kafka-0.kafka-headless.kafka", 9092, *kafka(labels={"app": "broker"}))
    assert edge.status == "unknown-target"
    assert "no StatefulSet names kafka-headless" in edge.detail


def test_pod_name_under_a_headless_service_with_unread_statefulsets_is_unverified():
    ctx, workloads = make_ctx(*kafka())
    ctx.visibility = Visibility.of([Gap("StatefulSet", "kafka", "forbidden: no")])
    ref = Reference(
        ObjectRef("Deployment", "nova-backend", "user-service"),
        "user-service",
        "BROKER",
        "value",
        "kafka-7.kafka-headless.kafka:9092",
        "kafka-7.kafka-headless.kafka",
        9092,
    )
    edge = judge(ref, workloads[ref.workload], ctx)
    assert edge.status == "unverified"
    assert "list statefulsets in kafka: forbidden" in edge.detail
