"""Which words of free text count as cluster hosts: precision first."""

from __future__ import annotations

import doctest

import pytest

import novadiag.clusternames
from novadiag.clusternames import ClusterNames

NAMES = ClusterNames.of(["content-service", "kafka-headless", "postgres"], "cluster.local")


@pytest.mark.parametrize(
    "host",
    [
        "content-service",
        "CONTENT-SERVICE",
        "content-service.nova-content",
        "postgres.data.svc",
        "postgres.data.svc.cluster.local",
        "postgres.data.svc.cluster.local.",
        "kafka-0.kafka-headless",
        "kafka-1.kafka-headless.streaming",
        "anything.ns.svc",
        "kubernetes",
        "kubernetes.default.svc",
    ],
)
def test_cluster_hosts_count(host: str) -> None:
    assert NAMES.names_cluster_host(host)


@pytest.mark.parametrize(
    "host",
    [
        "main",
        "worker",
        "api.github.com",
        "content-service.example.com.au",
        "localhost",
        "127.0.0.1",
        "10.0.0.12",
        "[::1]",
        "${env:MY_POD_IP}",
        "$(POD_IP)",
        "{{ .Values.host }}",
        "/var/run/app.sock",
        "",
    ],
)
def test_look_alike_words_do_not_count(host: str) -> None:
    assert not NAMES.names_cluster_host(host)


def test_a_pod_naming_itself_is_not_a_reference() -> None:
    assert not NAMES.names_cluster_host("postgres", own_names=["postgres"])
    assert NAMES.names_cluster_host("postgres", own_names=["content-service"])


def test_the_clusters_own_domain_is_an_in_cluster_suffix() -> None:
    names = ClusterNames.of([], "corp.internal")
    assert names.names_cluster_host("db.data.svc.corp.internal")
    assert not names.names_cluster_host("db.data.corp.internal")


def test_doctests() -> None:
    assert doctest.testmod(novadiag.clusternames).failed == 0
