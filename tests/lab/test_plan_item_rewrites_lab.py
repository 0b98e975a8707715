"""A rewrite plan fixes a host named only in an init container's wait script, applied to the lab.

content-indexer in nova-backend waits with ``until nc -z content-service 9081``;
content-service lives in nova-content. The plan made from the live lab rewrites
that one script item through the real client, and the probed re-audit finds
the edge ok under its new name. (The lab reports init containers as run to
completion, so the check is the rewritten spec of the pod that completed.)
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import novadiag
from novadiag.kube import KubeClient, KubeSettings
from novadiag.lab import Lab
from novadiag.pipeline import audit_cluster
from novadiag.planning import apply_plan
from novadiag.planning.values import Plan
from novadiag.probing.groups import MANAGED_BY

pytestmark = pytest.mark.lab

NOVA = Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova"
SCRIPT = "until nc -z content-service 9081; do echo waiting for content-service; sleep 2; done"
FIXED = "until nc -z content-service.nova-content 9081; do echo waiting for content-service; sleep 2; done"
EDGE = "nova-backend/deployment/content-indexer/wait-for-content/line 1/content-service:9081"
FIXED_EDGE = "nova-backend/deployment/content-indexer/wait-for-content/line 1/content-service.nova-content:9081"

WAITER: dict[str, Any] = {
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
                    {"name": "wait-for-content", "image": "busybox:1.36", "command": ["sh", "-c", SCRIPT]}
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
    scenario = tmp_path_factory.mktemp("itemrewrite") / "nova-items"
    shutil.copytree(NOVA, scenario)
    meta = yaml.safe_load((scenario / "scenario.yaml").read_text())
    meta["name"] = "nova-items"
    (scenario / "scenario.yaml").write_text(yaml.safe_dump(meta))
    (scenario / "manifests" / "zz-content-indexer.yaml").write_text(yaml.safe_dump(copy.deepcopy(WAITER)))
    # Nova's policies admit only its own workloads: content-indexer would be judged blocked by them.
    (scenario / "manifests" / "network-policies.yaml").unlink()
    with Lab(scenario=str(scenario), state_dir=tempfile.mkdtemp(prefix="nd-itemrewrite-")) as running:
        yield running


def test_a_list_changed_since_the_plan_is_not_overwritten(lab: Lab) -> None:
    """The patch sets the whole list: the runner first checks that the live list is the one the plan saw."""
    settings = KubeSettings(kubeconfig=lab.kubeconfig)
    plan = novadiag.plan(audit_cluster(settings, source_kind="lab"), "rewrite", wait_timeout=120)
    edited = ["sh", "-c", SCRIPT.replace("sleep 2", "sleep 5")]
    with KubeClient(settings) as client:
        _set_wait_command(client, edited)
        try:
            result = apply_plan(plan, client, yes=True, probe=False, out=lambda _: None)
            live = client.get("Deployment", "nova-backend", "content-indexer")
        finally:
            _set_wait_command(client, ["sh", "-c", SCRIPT])
    assert not result.ok
    assert result.reason == (
        "Deployment nova-backend/content-indexer spec.template.spec.initContainers[name=wait-for-content].command "
        "changed since the plan was made: make the plan again"
    )
    assert live is not None and live["spec"]["template"]["spec"]["initContainers"][0]["command"] == edited


def _set_wait_command(client: KubeClient, command: list[str]) -> None:
    body = {"spec": {"template": {"spec": {"initContainers": [{"name": "wait-for-content", "command": command}]}}}}
    client.patch("Deployment", "nova-backend", "content-indexer", body, strategic=True)


@pytest.fixture(scope="module")
def applied(lab: Lab) -> tuple[Plan, novadiag.Report]:
    settings = KubeSettings(kubeconfig=lab.kubeconfig)
    before = audit_cluster(settings, source_kind="lab", probe=True)
    assert EDGE in {e.id for e in before.broken}
    plan = novadiag.plan(before, "rewrite", wait_timeout=120)
    with KubeClient(settings) as client:
        result = apply_plan(plan, client, yes=True, out=lambda _: None)
    assert result.ok, f"{result.stopped_at}: {result.reason}"
    return plan, audit_cluster(settings, source_kind="lab", probe=True)


def test_the_plan_rewrites_the_init_script_and_verifies(applied: tuple[Plan, novadiag.Report]) -> None:
    plan, _ = applied
    fix = next(f for f in plan.fixes if f.edge == EDGE)
    assert (fix.action, fix.detail) == (
        "rewrite",
        "rewrite; content-service -> content-service.nova-content in command[2] of container wait-for-content",
    )
    assert plan.verification is not None and plan.verification.ok
    assert EDGE in plan.verification.fixed


def test_the_live_deployment_holds_the_rewritten_script_and_nothing_else_changed(
    lab: Lab, applied: tuple[Plan, novadiag.Report]
) -> None:
    with KubeClient(KubeSettings(kubeconfig=lab.kubeconfig)) as client:
        live = client.get("Deployment", "nova-backend", "content-indexer")
    assert live is not None
    spec = live["spec"]["template"]["spec"]
    assert spec["initContainers"][0]["command"] == ["sh", "-c", FIXED]
    assert spec["initContainers"][0]["image"] == "busybox:1.36"
    assert spec["containers"][0]["args"] == WAITER["spec"]["template"]["spec"]["containers"][0]["args"]


def test_after_apply_the_edge_is_ok_and_the_init_container_completed(
    lab: Lab, applied: tuple[Plan, novadiag.Report]
) -> None:
    _, after = applied
    edge = next(e for e in after.edges if e.id == FIXED_EDGE)
    assert edge.status == "ok"
    assert edge.probe is not None and edge.probe.dns == "ok"
    assert [e.id for e in after.broken] == []
    with KubeClient(KubeSettings(kubeconfig=lab.kubeconfig)) as client:
        pods = list(client.list_raw("Pod", namespace="nova-backend", label_selector="app=content-indexer"))
        left = list(client.list_raw("Pod", label_selector=f"{MANAGED_BY}=novadiag"))
    assert left == []
    commands = [
        (p["spec"]["initContainers"][0]["command"][2], p["status"]["initContainerStatuses"][0]["state"])
        for p in pods
    ]
    assert [(c, "terminated" in s and s["terminated"]["reason"]) for c, s in commands] == [(FIXED, "Completed")]
