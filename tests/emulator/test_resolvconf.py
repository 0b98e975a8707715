"""A lab pod's resolv.conf and hosts file follow the kubelet's rules exactly."""

from __future__ import annotations

from typing import Any

import pytest

from novadiag.lab.resolvconf import (
    MAX_SEARCHES,
    ResolverConfig,
    dns_type,
    node_resolver_config,
    pod_resolver_config,
    render_hosts,
    render_resolv_conf,
)

DNS = "127.9.0.10"


def pod(ns: str = "nova-backend", name: str = "user-service-abc12", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"containers": [], **spec}}


def render(p: dict[str, Any], domain: str = "cluster.local") -> str:
    return render_resolv_conf(p, dns_ip=DNS, cluster_domain=domain)


def test_cluster_first_is_the_default_and_searches_the_pods_namespace_first() -> None:
    assert render(pod()) == (
        f"nameserver {DNS}\n"
        "search nova-backend.svc.cluster.local svc.cluster.local cluster.local\n"
        "options ndots:5\n"
    )
    assert render(pod(dnsPolicy="ClusterFirst")) == render(pod())


def test_the_cluster_domain_is_never_hardcoded() -> None:
    assert "search kafka.svc.corp.internal svc.corp.internal corp.internal\n" in render(
        pod("kafka"), "corp.internal")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"hostNetwork": True}, "host"),  # ClusterFirst silently falls back to Default
        ({"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet"}, "cluster"),
        ({"dnsPolicy": "ClusterFirstWithHostNet"}, "cluster"),
        ({"dnsPolicy": "Default"}, "host"),
        ({"dnsPolicy": "None"}, "none"),
    ],
)
def test_dns_policy_picks_the_base_config(spec: dict[str, Any], expected: str) -> None:
    assert dns_type(pod(**spec)) == expected


def test_default_policy_gets_the_synthetic_node_file_without_cluster_search() -> None:
    assert render(pod(dnsPolicy="Default")) == f"nameserver {DNS}\n"
    assert render(pod(hostNetwork=True)) == f"nameserver {DNS}\n"


def test_none_policy_takes_only_dns_config_and_maps_nameservers_to_the_lab_dns() -> None:
    text = render(pod(dnsPolicy="None", dnsConfig={
        "nameservers": ["1.1.1.1"], "searches": ["corp.example"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}))
    assert "1.1.1.1" not in text.replace("# lab: dnsConfig nameserver 1.1.1.1", "")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == [f"nameserver {DNS}", "search corp.example", "options ndots:2 edns0"]
    assert "# lab: dnsConfig nameserver 1.1.1.1 is served by the lab DNS" in text


def test_dns_config_merges_searches_deduplicated_and_options_override() -> None:
    config = pod_resolver_config(pod(dnsConfig={
        "nameservers": ["8.8.8.8", DNS],
        "searches": ["svc.cluster.local", "corp.example"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "timeout", "value": "1"}],
    }), dns_ip=DNS, cluster_domain="cluster.local")
    assert config.nameservers == (DNS,)
    assert config.searches == ("nova-backend.svc.cluster.local", "svc.cluster.local",
                               "cluster.local", "corp.example")
    assert config.options == ("ndots:2", "timeout:1")
    assert config.ndots == 2


def test_search_list_is_trimmed_to_the_kubelet_limit() -> None:
    searches = [f"d{i}.example" for i in range(40)]
    config = pod_resolver_config(pod(dnsConfig={"searches": searches}), dns_ip=DNS,
                                 cluster_domain="cluster.local")
    assert len(config.searches) == MAX_SEARCHES
    assert config.searches[0] == "nova-backend.svc.cluster.local"


def test_ndots_defaults_to_glibcs_one_without_options() -> None:
    assert node_resolver_config(DNS).ndots == 1
    assert ResolverConfig(options=("ndots:30",)).ndots == 15


def test_hosts_file_names_the_pod() -> None:
    text = render_hosts(pod(), pod_ip="127.9.1.4", cluster_domain="cluster.local",
                        node_ip="127.9.0.1")
    assert text.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert text.endswith("127.9.1.4\tuser-service-abc12\n")


def test_hosts_file_of_a_statefulset_pod_carries_its_fqdn() -> None:
    p = pod("kafka", "kafka-0", hostname="kafka-0", subdomain="kafka-headless")
    text = render_hosts(p, pod_ip="127.9.1.5", cluster_domain="cluster.local", node_ip="127.9.0.1")
    assert "127.9.1.5\tkafka-0.kafka-headless.kafka.svc.cluster.local\tkafka-0\n" in text


def test_host_aliases_are_appended() -> None:
    p = pod(hostAliases=[{"ip": "127.9.0.99", "hostnames": ["db.legacy", "db"]}])
    text = render_hosts(p, pod_ip="127.9.1.4", cluster_domain="cluster.local", node_ip="127.9.0.1")
    assert text.endswith("# Entries added by HostAliases.\n127.9.0.99\tdb.legacy\tdb\n")


def test_host_network_pods_get_the_node_hosts_file() -> None:
    text = render_hosts(pod(hostNetwork=True), pod_ip="127.9.0.1",
                        cluster_domain="cluster.local", node_ip="127.9.0.1")
    assert "127.9.0.1\tlab-node\n" in text
    assert "user-service-abc12" not in text
