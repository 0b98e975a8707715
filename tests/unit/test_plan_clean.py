"""Cleaning moved objects: nothing the server owns travels with them."""

from __future__ import annotations

from novadiag.planning.clean import clean_object, is_system_object


def _live(kind: str, spec: dict, **extra: object) -> dict:
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {
            "name": "x",
            "namespace": "old",
            "uid": "u-1",
            "resourceVersion": "42",
            "creationTimestamp": "2025-01-01T00:00:00Z",
            "generation": 3,
            "managedFields": [{"manager": "kubectl"}],
            "ownerReferences": [{"kind": "ReplicaSet", "uid": "u-0"}],
            "labels": {"app": "x"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "team": "core"},
        },
        "spec": spec,
        "status": {"phase": "Bound"},
        **extra,
    }


def test_server_metadata_and_status_are_dropped() -> None:
    out = clean_object(_live("ConfigMap", {}), namespace="new")
    assert out["metadata"] == {"name": "x", "namespace": "new", "labels": {"app": "x"}, "annotations": {"team": "core"}}
    assert "status" not in out


def test_service_loses_cluster_ips_and_node_ports() -> None:
    spec = {
        "clusterIP": "10.0.0.7",
        "clusterIPs": ["10.0.0.7"],
        "type": "NodePort",
        "ports": [{"port": 80, "nodePort": 30080}],
    }
    out = clean_object(_live("Service", spec), namespace="new")
    assert out["spec"] == {"type": "NodePort", "ports": [{"port": 80}]}


def test_headless_service_stays_headless() -> None:
    out = clean_object(_live("Service", {"clusterIP": "None", "ports": [{"port": 80}]}), namespace="new")
    assert out["spec"]["clusterIP"] == "None"


def test_claim_is_never_bound_to_the_old_volume() -> None:
    out = clean_object(_live("PersistentVolumeClaim", {"volumeName": "pv-123", "resources": {}}), namespace="new")
    assert "volumeName" not in out["spec"]


def test_job_copy_drops_the_generated_selector_and_labels() -> None:
    template = {"metadata": {"labels": {"job-name": "x", "controller-uid": "u", "app": "x"}}, "spec": {}}
    out = clean_object(
        _live("Job", {"selector": {"matchLabels": {"controller-uid": "u"}}, "template": template}), namespace="new"
    )
    assert "selector" not in out["spec"]
    assert out["spec"]["template"]["metadata"]["labels"] == {"app": "x"}


def test_control_plane_objects_are_recognized() -> None:
    assert is_system_object("ConfigMap", {"metadata": {"name": "kube-root-ca.crt"}})
    assert is_system_object("ServiceAccount", {"metadata": {"name": "default"}})
    assert not is_system_object("ConfigMap", {"metadata": {"name": "app-config"}})
