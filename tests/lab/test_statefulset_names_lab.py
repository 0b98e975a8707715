"""StatefulSet pod names through a headless Service, judged statically and observed by probe pods.

A real cluster answers ``kafka-0.kafka-headless.kafka.svc.<zone>`` for a
StatefulSet pod whose ``serviceName`` is a headless Service selecting it; the
lab's DNS does the same from the EndpointSlice hostnames, so what a probe pod's
glibc sees must agree with the static verdict for each form of the name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

import novadiag
from novadiag.kube import KubeClient, KubeSettings
from novadiag.lab import Lab
from novadiag.model import ObjectRef
from novadiag.probing.groups import MANAGED_BY

pytestmark = pytest.mark.lab

BROKERS = {
    "BROKER_SHORT": "kafka-0.kafka-headless:9092",  # the Service's namespace left out: NXDOMAIN from shop
    "BROKER_NS": "kafka-1.kafka-headless.kafka:9092",  # a pod that exists
    "BROKER_PAST": "kafka-2.kafka-headless.kafka:9092",  # the StatefulSet has 2 replicas
    "BROKER_STRAY": "zookeeper-0.kafka-headless.kafka:9092",  # no StatefulSet of that Service makes it
}
HEADLESS = ObjectRef("Service", "kafka", "kafka-headless")


def _objects() -> list[dict[str, Any]]:
    labels = {"app": "kafka"}
    broker = {"name": "kafka", "image": "example/kafka:1", "ports": [{"containerPort": 9092}]}
    kafka = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "kafka", "namespace": "kafka"},
        "spec": {
            "serviceName": "kafka-headless",
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [broker]},
            },
        },
    }
    headless = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kafka-headless", "namespace": "kafka"},
        "spec": {"clusterIP": "None", "selector": labels, "ports": [{"port": 9092, "targetPort": 9092}]},
    }
    client = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "orders", "namespace": "shop"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "orders"}},
            "template": {
                "metadata": {"labels": {"app": "orders"}},
                "spec": {
                    "containers": [
                        {
                            "name": "orders",
                            "image": "example/orders:1",
                            "env": [{"name": k, "value": v} for k, v in BROKERS.items()],
                        }
                    ]
                },
            },
        },
    }
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in ("kafka", "shop")]
    return [*namespaces, kafka, headless, client]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    scenario: Path = tmp_path_factory.mktemp("statefulset") / "statefulset"
    scenario.mkdir()
    (scenario / "cluster.yaml").write_text(yaml.safe_dump_all(_objects()))
    with Lab(scenario=str(scenario), state_dir=tmp_path_factory.mktemp("state")) as started:
        yield started


@pytest.fixture(scope="module")
def probed(lab: Lab) -> dict[str, novadiag.Edge]:
    report = novadiag.audit(kubeconfig=lab.kubeconfig, namespaces=["shop"], probe=True)
    return {e.reference.env or "": e for e in report.edges}


def test_the_lab_dns_names_each_statefulset_pod_in_the_endpoint_slice(lab):
    api = k8s.DiscoveryV1Api(k8s_config.new_client_from_config(config_file=lab.kubeconfig))
    slices = api.list_namespaced_endpoint_slice("kafka", label_selector="kubernetes.io/service-name=kafka-headless")
    hostnames = {ep.hostname for s in slices.items for ep in s.endpoints or ()}
    assert hostnames == {"kafka-0", "kafka-1"}


def test_short_pod_name_from_another_namespace_is_nxdomain_and_fixed_with_the_namespace(probed):
    edge = probed["BROKER_SHORT"]
    assert (edge.predicted, edge.status) == ("dns-unresolvable", "dns-unresolvable")
    assert edge.target == HEADLESS
    assert edge.fix == "kafka-0.kafka-headless.kafka:9092"
    assert edge.probe is not None and edge.probe.dns == "nxdomain" and edge.probe.agrees


def test_pod_name_with_its_namespace_resolves_to_the_pod_and_connects(probed):
    edge = probed["BROKER_NS"]
    assert edge.status == "ok" and edge.resolves_to == HEADLESS
    assert edge.probe is not None and edge.probe.agrees
    assert edge.probe.answered_by == "kafka-1.kafka-headless.kafka.svc.cluster.local"
    assert edge.probe.connect == "ok" and len(edge.probe.addresses) == 1


def test_ordinal_past_the_replicas_is_no_endpoints_and_nxdomain(probed):
    edge = probed["BROKER_PAST"]
    assert edge.predicted == "no-endpoints" and edge.status == "no-endpoints"
    assert "2 replicas (kafka-0..kafka-1)" in edge.detail
    assert edge.probe is not None and edge.probe.dns == "nxdomain" and edge.probe.agrees


def test_pod_name_of_no_statefulset_is_unknown_target_and_nxdomain(probed):
    edge = probed["BROKER_STRAY"]
    assert edge.predicted == "unknown-target" and edge.status == "unknown-target"
    assert edge.probe is not None and edge.probe.dns == "nxdomain" and edge.probe.agrees


def test_no_probe_pod_is_left_behind(lab, probed):
    with KubeClient(KubeSettings(kubeconfig=lab.kubeconfig)) as client:
        assert list(client.list_raw("Pod", label_selector=f"{MANAGED_BY}=novadiag")) == []
