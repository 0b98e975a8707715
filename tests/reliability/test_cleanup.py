"""``novadiag cleanup`` deletes what probe runs left, and nothing of the user's.

``app.kubernetes.io/managed-by=novadiag`` is a common label anyone may set (a
Helm chart of a novadiag-based tool, a copy-pasted manifest): it alone does not
make an object novadiag's. Cleanup also needs novadiag's own run-id label and a
name built from that run id, as every probe object has.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from novadiag.cli import main
from novadiag.kube import KubeClient, KubeSettings
from novadiag.lab import Lab
from novadiag.probing.groups import MANAGED_BY, RUN_ID, labels, resource_names

pytestmark = pytest.mark.lab

NAMESPACE = "default"
USER_OBJECTS = {
    "team-settings": {MANAGED_BY: "novadiag"},
    "novadiag-probe-lookalike": {MANAGED_BY: "novadiag"},  # the prefix, without a run id
    "reports-config": {MANAGED_BY: "novadiag", RUN_ID: "0badc0de"},  # a run id, not in its name
}


def configmap(name: str, object_labels: dict[str, str]) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": object_labels},
        "data": {"k": "v"},
    }


@pytest.fixture
def client(lab: Lab) -> Iterator[KubeClient]:
    with KubeClient(KubeSettings(kubeconfig=lab.kubeconfig)) as kube:
        yield kube


@pytest.fixture
def user_objects(client: KubeClient) -> Iterator[list[str]]:
    """ConfigMaps of the user's that carry novadiag's labels; removed afterwards."""
    for name, object_labels in USER_OBJECTS.items():
        client.create("ConfigMap", NAMESPACE, configmap(name, object_labels))
    try:
        yield list(USER_OBJECTS)
    finally:
        for name in USER_OBJECTS:
            client.delete("ConfigMap", NAMESPACE, name)


def test_cleanup_deletes_probe_objects_and_keeps_a_users_objects_labelled_managed_by_novadiag(
    client, user_objects, lab, capsys
):
    probe_name = resource_names("deadbeef", 0)  # what a killed run leaves
    client.create("ConfigMap", NAMESPACE, configmap(probe_name, labels("deadbeef", 0)))

    assert main(["cleanup", "--kubeconfig", lab.kubeconfig]) == 0

    assert capsys.readouterr().out.splitlines() == [
        f"deleted ConfigMap {NAMESPACE}/{probe_name}",
        "cleanup: 1 object(s) deleted",
    ]
    assert client.get("ConfigMap", NAMESPACE, probe_name) is None
    for name in user_objects:
        assert client.get("ConfigMap", NAMESPACE, name) is not None, f"the user's ConfigMap {name} was deleted"
