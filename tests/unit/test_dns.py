"""The resolver model: resolv.conf per dnsPolicy, candidate order, what answers."""

from __future__ import annotations

import pytest

from novadiag.index import build_index
from novadiag.model import SourceInfo
from novadiag.resolver import CLUSTER_DNS, NODE_DNS, candidate_names, resolve, resolver_config
from novadiag.snapshot import build_snapshot

ZONE = "cluster.local"


def svc(ns, name, *, cluster_ip="10.0.0.1", ports=(80,), selector=None, **spec):
    body = {"clusterIP": cluster_ip, "ports": [{"port": p} for p in ports], **spec}
    if selector is not None:
        body["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": body}


def ns(name):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def statefulset(ns_, name, service_name, replicas=2):
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": ns_},
        "spec": {
            "serviceName": service_name,
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": name}]}},
        },
    }


@pytest.fixture
def index():
    objs = [
        ns("nova-backend"),
        ns("nova-content"),
        ns("kafka"),
        svc("nova-content", "content-service", ports=(9081,)),
        svc("nova-backend", "postgres", ports=(5432,)),
        svc("kafka", "kafka-headless", cluster_ip="None", ports=(9092,), selector={"app": "kafka"}),
        statefulset("kafka", "kafka", "kafka-headless", replicas=1),
        svc(
            "nova-backend",
            "content-alias",
            type="ExternalName",
            externalName="content-service.nova-content.svc.cluster.local",
        ),
    ]
    return build_index(build_snapshot(objs, SourceInfo("manifests")))


def cluster_first(namespace="nova-backend", **spec):
    return resolver_config(spec, namespace, ZONE)


def test_unset_policy_is_cluster_first_with_namespace_search_list():
    config = cluster_first()
    assert config.policy == "ClusterFirst"
    assert config.nameservers == (CLUSTER_DNS,)
    assert config.search == ("nova-backend.svc.cluster.local", "svc.cluster.local", "cluster.local")
    assert config.ndots == 5


def test_node_search_domains_follow_the_cluster_ones():
    config = resolver_config({}, "a", ZONE, node_search=("corp.example",))
    assert config.search[-1] == "corp.example"


def test_host_network_with_cluster_first_falls_back_to_default():
    config = cluster_first(hostNetwork=True)
    assert config.policy == "Default"
    assert not config.uses_cluster_dns
    assert "hostNetwork" in config.notes[0]


def test_cluster_first_with_host_net_keeps_cluster_dns():
    config = cluster_first(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet")
    assert config.uses_cluster_dns
    assert config.search[0] == "nova-backend.svc.cluster.local"


def test_default_policy_uses_node_resolver_without_cluster_search():
    config = cluster_first(dnsPolicy="Default")
    assert config.nameservers == (NODE_DNS,)
    assert config.search == ()
    assert config.ndots == 1


def test_none_policy_takes_only_dns_config():
    config = cluster_first(
        dnsPolicy="None",
        dnsConfig={
            "nameservers": ["10.96.0.10"],
            "searches": ["nova-content.svc.cluster.local"],
            "options": [{"name": "ndots", "value": "2"}],
        },
    )
    assert config.nameservers == ("10.96.0.10",)
    assert not config.uses_cluster_dns
    assert config.search == ("nova-content.svc.cluster.local",)
    assert config.ndots == 2


def test_none_policy_nameserver_matching_cluster_dns_ip_is_the_cluster_dns():
    config = resolver_config(
        {"dnsPolicy": "None", "dnsConfig": {"nameservers": ["10.96.0.10"]}}, "a", ZONE, cluster_dns_ips=("10.96.0.10",)
    )
    assert config.uses_cluster_dns


def test_dns_config_merges_searches_deduplicated_and_overrides_ndots():
    config = cluster_first(
        dnsConfig={"searches": ["svc.cluster.local", "extra.local"], "options": [{"name": "ndots", "value": "2"}]}
    )
    assert config.search == ("nova-backend.svc.cluster.local", "svc.cluster.local", "cluster.local", "extra.local")
    assert config.ndots == 2


def test_fewer_dots_than_ndots_tries_search_list_first():
    names = candidate_names("content-service", cluster_first())
    assert names[0] == "content-service.nova-backend.svc.cluster.local."
    assert names[-1] == "content-service."


def test_ndots_or_more_dots_tries_name_first_in_glibc():
    config = cluster_first(dnsConfig={"options": [{"name": "ndots", "value": "1"}]})
    names = candidate_names("content-service.nova-content", config)
    assert names[0] == "content-service.nova-content."
    assert names[1] == "content-service.nova-content.nova-backend.svc.cluster.local."


def test_musl_does_not_walk_search_list_for_dotted_names():
    config = cluster_first(dnsConfig={"options": [{"name": "ndots", "value": "1"}]})
    assert candidate_names("content-service.nova-content", config, libc="musl") == ("content-service.nova-content.",)


def test_trailing_dot_is_absolute_only():
    assert candidate_names("content-service.", cluster_first()) == ("content-service.",)


def test_short_name_resolves_only_in_own_namespace(index):
    assert not resolve("content-service", cluster_first(), index).resolved
    answer = resolve("content-service", cluster_first("nova-content"), index)
    assert answer.service is not None and answer.service.ref.namespace == "nova-content"


def test_svc_dot_namespace_resolves_from_anywhere(index):
    for name in ("content-service.nova-content", "content-service.nova-content.svc"):
        answer = resolve(name, cluster_first(), index)
        assert answer.service is not None and answer.service.name == "content-service"
        assert answer.fqdn == "content-service.nova-content.svc.cluster.local."


def test_nxdomain_lists_every_candidate_tried(index):
    answer = resolve("content-service", cluster_first(), index)
    assert answer.kind == "nxdomain"
    assert len(answer.tried) == 4


def test_statefulset_pod_hostname_under_headless_service(index):
    answer = resolve("kafka-0.kafka-headless.kafka.svc.cluster.local", cluster_first(), index)
    assert answer.kind == "pod-hostname"
    assert answer.service.name == "kafka-headless"
    assert not resolve("kafka-7.kafka-headless.kafka.svc.cluster.local", cluster_first(), index).resolved


def test_statefulset_pods_get_no_hostname_under_a_headless_service_that_does_not_select_them():
    """The records come from the Service's endpoints: ``serviceName`` alone names no pod."""
    objs = [
        ns("kafka"),
        svc("kafka", "kafka-headless", cluster_ip="None", ports=(9092,)),
        statefulset("kafka", "kafka", "kafka-headless", replicas=1),
    ]
    index = build_index(build_snapshot(objs, SourceInfo("manifests")))
    assert not resolve("kafka-0.kafka-headless.kafka.svc.cluster.local", cluster_first(), index).resolved


def test_external_name_in_zone_is_followed_to_its_target(index):
    answer = resolve("content-alias", cluster_first(), index)
    assert answer.service.ref.namespace == "nova-content"
    assert answer.via_alias is not None and answer.via_alias.name == "content-alias"


def test_default_policy_cannot_resolve_cluster_names(index):
    config = cluster_first(dnsPolicy="Default")
    assert not resolve("content-service.nova-content.svc.cluster.local", config, index).resolved


def test_cluster_domain_is_not_hardcoded():
    objs = [ns("a"), svc("a", "web")]
    index = build_index(build_snapshot(objs, SourceInfo("manifests")), cluster_domain="corp.internal")
    config = resolver_config({}, "a", "corp.internal")
    assert resolve("web", config, index).fqdn == "web.a.svc.corp.internal."
    assert not resolve("web.a.svc.cluster.local", config, index).resolved


def test_external_dotted_name_is_external(index):
    assert resolve("api.stripe.com", cluster_first(), index).kind == "external"
