"""The Nova consolidation applied to a running lab: through the API, and by the generated script.

Done when: a live re-audit with probes shows zero broken edges and no pod in
CrashLoopBackOff, and the bash script, run against a fresh lab, reaches the
same end state as ``--apply``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import novadiag
from novadiag.kube import KubeClient, KubeSettings
from novadiag.lab import Lab
from novadiag.pipeline import audit_cluster
from novadiag.planning import apply_plan, render_plan
from novadiag.planning.values import Plan

pytestmark = [pytest.mark.lab, pytest.mark.slow]

OPTIONS = {
    "into": "nova-prod",
    "keep": ["kafka", "nova-staging"],
    "prefer": ["nova-backend/postgres"],
    "wait_timeout": 120,
}
STATE_KINDS = (
    "Namespace",
    "Deployment",
    "StatefulSet",
    "Service",
    "ConfigMap",
    "Secret",
    "NetworkPolicy",
    "ServiceAccount",
    "PersistentVolumeClaim",
)


def _lab(tmp: Path) -> Lab:
    """A fresh Nova lab; one that cannot start fails the test that needs it (never a skip)."""
    return Lab(scenario="nova", state_dir=tmp).start()


def _plan(kubeconfig: str) -> Plan:
    report = audit_cluster(KubeSettings(kubeconfig=kubeconfig), source_kind="lab", probe=False)
    return novadiag.plan(report, "consolidate", **OPTIONS)


CLUSTER_OWNED = {("ConfigMap", "kube-root-ca.crt"), ("Service", "kubernetes")}


def _state(kubeconfig: str) -> dict[tuple[str, str | None, str], Any]:
    """What the migration decides, per object; Secret values only as digests (never shown on failure)."""
    out: dict[tuple[str, str | None, str], Any] = {}
    with KubeClient(KubeSettings(kubeconfig=kubeconfig)) as client:
        for kind in STATE_KINDS:
            for obj in client.list_raw(kind):
                meta = obj["metadata"]
                if meta.get("namespace", meta["name"]).startswith("kube-") or meta.get("name", "").startswith(
                    "novadiag-"
                ):
                    continue
                if (kind, meta["name"]) in CLUSTER_OWNED:
                    continue  # each cluster's own CA and API server address: not the migration's
                out[(kind, meta.get("namespace"), meta["name"])] = _essence(kind, obj)
    return out


def _essence(kind: str, obj: dict[str, Any]) -> Any:
    spec = obj.get("spec") or {}
    if kind == "Secret":
        data = {k: hashlib.sha256(base64.b64decode(v)).hexdigest() for k, v in (obj.get("data") or {}).items()}
        return {"type": obj.get("type"), "data": data}
    if kind == "ConfigMap":
        return obj.get("data")
    if kind in ("Deployment", "StatefulSet"):
        containers = spec["template"]["spec"]["containers"]
        return {
            "replicas": spec.get("replicas"),
            "env": [c.get("env") for c in containers],
            "labels": spec["template"]["metadata"].get("labels"),
        }
    if kind == "Service":
        return {k: spec.get(k) for k in ("type", "selector", "ports", "externalName")}
    if kind == "Namespace":
        return {k: v for k, v in (obj["metadata"].get("labels") or {}).items()}
    if kind == "NetworkPolicy":
        return spec
    return None


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Plan]]:
    lab = _lab(tmp_path_factory.mktemp("lab-apply"))
    try:
        plan = _plan(lab.kubeconfig)
        with KubeClient(KubeSettings(kubeconfig=lab.kubeconfig)) as client:
            result = apply_plan(plan,
                client, yes=True, allow_delete=True, skip_grace=True, ack_manual=True, out=lambda _: None
            )
        assert result.ok, f"{result.stopped_at}: {result.reason}"
        yield lab, plan
    finally:
        lab.stop()


def test_the_plan_made_from_the_live_lab_verifies(applied: tuple[Any, Plan]) -> None:
    _, plan = applied
    assert plan.verification is not None and plan.verification.ok
    assert plan.verification.broken_after == 0


def test_after_apply_a_probed_audit_finds_no_broken_edge(applied: tuple[Any, Plan]) -> None:
    lab, _ = applied
    report = audit_cluster(KubeSettings(kubeconfig=lab.kubeconfig), source_kind="lab", probe=True)
    assert report.probes is not None and report.probes.get("ran")
    assert [e.id for e in report.broken] == []
    assert {e.reference.namespace for e in report.edges} == {"nova-prod", "kafka", "nova-staging"}


def test_after_apply_no_pod_crash_loops(applied: tuple[Any, Plan]) -> None:
    lab, _ = applied
    with KubeClient(KubeSettings(kubeconfig=lab.kubeconfig)) as client:
        waiting = [
            (pod["metadata"]["namespace"], pod["metadata"]["name"])
            for pod in client.list_raw("Pod")
            for status in (pod.get("status") or {}).get("containerStatuses") or ()
            if ((status.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
        ]
    assert waiting == []


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_the_script_reaches_the_same_end_state_as_apply(applied: tuple[Any, Plan], tmp_path: Path) -> None:
    lab, _ = applied
    expected = _state(lab.kubeconfig)
    assert sum(1 for kind, ns, _ in expected if ns == "nova-prod" and kind == "Secret") >= 6
    other = _lab(tmp_path / "lab-script")
    try:
        script = tmp_path / "plan.sh"
        script.write_text(render_plan(_plan(other.kubeconfig), "script"))
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        args = [
            "bash",
            str(script),
            "--execute",
            "--allow-delete",
            "--no-grace",
            "--ack-manual",
            "--kubeconfig",
            other.kubeconfig,
        ]
        run = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
        assert run.returncode == 0, run.stderr[-2000:]
        assert "NOVA-SECRET" not in run.stdout + run.stderr
        assert _state(other.kubeconfig) == expected
    finally:
        other.stop()


@pytest.mark.parametrize("strategy", ["auto", "rewrite"])
def test_the_quick_fix_ends_the_crash_loop(strategy: str, tmp_path: Path) -> None:
    lab = _lab(tmp_path / "lab")
    try:
        settings = KubeSettings(kubeconfig=lab.kubeconfig)
        plan = novadiag.plan(audit_cluster(settings, source_kind="lab", probe=True), strategy, wait_timeout=120)
        with KubeClient(settings) as client:
            result = apply_plan(plan, client, yes=True, out=lambda _: None)
        assert result.ok, f"{result.stopped_at}: {result.reason}"
        after = audit_cluster(settings, source_kind="lab", probe=True)
        assert [e.id for e in after.broken] == []
        assert [f.message for f in after.findings if f.code == "crashloop"] == []
    finally:
        lab.stop()
