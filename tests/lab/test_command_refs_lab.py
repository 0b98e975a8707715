"""A host named only in an init container's wait script, audited and probed through the lab.

A Nova-like workload in nova-backend waits in its init container with
``until nc -z content-service 9081``; content-service lives in nova-content, so
after the split the short name resolves nowhere and the pod would hang in Init.
The audit must find the edge (origin ``init-script``, ``line 1``), call it
broken, and send a probe for it like for an env edge; no probe pod stays behind.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import novadiag
from novadiag.kube import KubeClient, KubeSettings
from novadiag.lab import Lab
from novadiag.probing.groups import MANAGED_BY

pytestmark = pytest.mark.lab

NOVA = Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova"

WAITER = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "content-indexer", "namespace": "nova-backend"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "content-indexer"}},
        "template": {
            "metadata": {"labels": {"app": "content-indexer"}},
            "spec": {
                "initContainers": [
                    {
                        "name": "wait-for-content",
                        "image": "busybox:1.36",
                        "command": ["sh", "-c", "until nc -z content-service 9081; do echo waiting; sleep 2; done"],
                    }
                ],
                "containers": [
                    {
                        "name": "indexer",
                        "image": "nova/content-indexer:1",
                        "args": ["--content-url=http://content-service.nova-content:9081"],
                    }
                ],
            },
        },
    },
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    scenario = tmp_path_factory.mktemp("cmdrefs") / "nova-variant"
    shutil.copytree(NOVA, scenario)
    meta = yaml.safe_load((scenario / "scenario.yaml").read_text())
    meta["name"] = "nova-variant"
    (scenario / "scenario.yaml").write_text(yaml.safe_dump(meta))
    (scenario / "manifests" / "zz-content-indexer.yaml").write_text(yaml.safe_dump(WAITER))
    with Lab(scenario=str(scenario), state_dir=tempfile.mkdtemp(prefix="nd-cmdrefs-")) as running:
        yield running


@pytest.fixture(scope="module")
def probed(lab: Lab) -> novadiag.Report:
    return novadiag.audit(kubeconfig=lab.kubeconfig, namespaces=["nova-backend"], probe=True)


def indexer_edges(report: novadiag.Report) -> dict[str, novadiag.Edge]:
    return {e.reference.slot: e for e in report.edges if e.source.name == "content-indexer"}


def test_the_init_script_wait_is_a_broken_edge_checked_by_the_probe(probed: novadiag.Report) -> None:
    edge = indexer_edges(probed)["line 1"]
    ref = edge.reference
    assert (ref.origin, ref.env, ref.init_container, ref.host, ref.port) == (
        "init-script", None, True, "content-service", 9081
    )
    assert edge.status == "dns-unresolvable" and edge.target is not None
    assert edge.target.namespace == "nova-content"
    # The fix is the script command as it should read: the tool keeps its own syntax.
    assert edge.fix == "nc -z content-service.nova-content 9081"
    assert (edge.fix_host, edge.fix_port) == ("content-service.nova-content", 9081)
    assert edge.probe is not None and edge.probe.dns == "nxdomain" and edge.verdict_from == "probe"
    assert edge.probe.tried[0] == ("content-service.nova-backend.svc.cluster.local", "nxdomain")


def test_the_qualified_argument_resolves_and_is_probed_too(probed: novadiag.Report) -> None:
    edge = indexer_edges(probed)["args[0]"]
    assert (edge.reference.origin, edge.reference.host, edge.reference.port) == (
        "args", "content-service.nova-content", 9081
    )
    assert edge.target is not None and (edge.target.namespace, edge.target.name) == ("nova-content", "content-service")
    assert edge.probe is not None and edge.probe.dns == "ok"
    assert edge.probe.answered_by == "content-service.nova-content.svc.cluster.local"


def test_no_probe_pod_is_left_behind(lab: Lab, probed: novadiag.Report) -> None:
    with KubeClient(KubeSettings(kubeconfig=lab.kubeconfig)) as client:
        left = [o["metadata"]["name"] for o in client.list_raw("Pod", label_selector=f"{MANAGED_BY}=novadiag")]
    assert left == []
