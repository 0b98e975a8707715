"""Least privilege: ``probes/rbac.yaml`` is enough, and less than it degrades into gaps, not holes.

The lab's RBAC enforces the documented roles on tokens minted for each test,
so ``novadiag audit`` runs exactly as a user bound to them would. Without an
optional or forbidden part, the audit goes on, and the report says what it
could not see: a gap per kind and namespace, and a ``secret-unreadable``
finding for every reference that came from a Secret — none dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from reliability_support import REPO, leftovers, mint_kubeconfig

from novadiag.cli import main
from novadiag.kube import KINDS
from novadiag.model import BROKEN_STATUSES as BROKEN
from novadiag.model import SNAPSHOT_KINDS

RBAC = REPO / "probes" / "rbac.yaml"
ROLES = {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(RBAC.read_text())}
NOVA_NAMESPACES = (
    "kafka",
    "nova",
    "nova-auth",
    "nova-backend",
    "nova-content",
    "nova-feed",
    "nova-gateway",
    "ingress-nginx",
    "nova-media",
    "nova-staging",
)


def rules_of(name: str, *, namespaces: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """A role's rules in the lab's format; a Role's hold in the namespaces it is bound in."""
    rules = [dict(rule) for rule in ROLES[name]["rules"]]
    if namespaces is not None:
        rules = [{**rule, "namespaces": list(namespaces)} for rule in rules]
    return rules


def least(*, secrets: bool = True, probe_in: Sequence[str] = NOVA_NAMESPACES) -> list[dict[str, Any]]:
    rules = rules_of("novadiag-audit") + rules_of("novadiag-probe", namespaces=probe_in)
    return rules + (rules_of("novadiag-audit-secrets") if secrets else [])


def audit_json(kubeconfig: str, tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    out = tmp_path / "report.json"
    code = main(["audit", "--kubeconfig", kubeconfig, "-o", str(out), *extra])
    return code, json.loads(out.read_text()), ""


def statuses(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((e["id"], e["status"]) for e in doc["edges"])


def probe_views(doc: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    return sorted((e["id"], (e["probe"] or {}).get("dns"), (e["probe"] or {}).get("connect")) for e in doc["edges"])


@pytest.fixture(scope="module")
def admin_report(nova_lab, tmp_path_factory) -> dict[str, Any]:
    code, doc, _ = audit_json(nova_lab.kubeconfig, tmp_path_factory.mktemp("admin"))
    assert code == 1
    return doc


# -- the file itself ---------------------------------------------------------------------------
def test_the_audit_role_reads_exactly_the_kinds_novadiag_reads_and_writes_nothing():
    granted = {
        (group, resource)
        for name in ("novadiag-audit", "novadiag-audit-secrets")
        for rule in ROLES[name]["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    read = {(KINDS[kind].group, KINDS[kind].plural) for kind in SNAPSHOT_KINDS}
    assert granted == read
    verbs = {
        v for name in ("novadiag-audit", "novadiag-audit-secrets") for r in ROLES[name]["rules"] for v in r["verbs"]
    }
    assert verbs <= {"get", "list", "watch"}


def test_the_probe_role_touches_only_pods_and_configmaps_in_its_namespace():
    role = ROLES["novadiag-probe"]
    assert role["kind"] == "Role"
    granted = {(res, verb) for rule in role["rules"] for res in rule["resources"] for verb in rule["verbs"]}
    assert granted == {
        ("pods", "create"),
        ("pods", "delete"),
        ("configmaps", "create"),
        ("configmaps", "delete"),
        ("pods/log", "get"),
    }
    assert "*" not in RBAC.read_text().replace("# ", "")


# -- in the lab ----------------------------------------------------------------------------------
@pytest.mark.lab
def test_audit_and_probes_work_with_exactly_the_documented_roles(lab, admin_report, tmp_path):
    kubeconfig = mint_kubeconfig(lab, tmp_path, least(), user="least")
    code, doc, _ = audit_json(kubeconfig, tmp_path)
    assert code == 1
    assert doc["gaps"] == []
    assert statuses(doc) == statuses(admin_report)
    assert probe_views(doc) == probe_views(admin_report)
    # routing edges too, from ingress-nginx; the refused HTTPRoute's status stays the prediction's
    probed = [e for e in doc["edges"] if e["status"] not in ("external", "blocked")]
    assert probed and all(e["verdict_from"] == "probe" for e in probed)
    assert leftovers(lab.kubeconfig) == []
    assert main(["cleanup", "--kubeconfig", kubeconfig]) == 0


@pytest.mark.lab
def test_without_secret_access_secret_references_are_listed_as_unreadable(lab, admin_report, tmp_path):
    kubeconfig = mint_kubeconfig(lab, tmp_path, least(secrets=False), user="no-secrets")
    code, doc, _ = audit_json(kubeconfig, tmp_path, "--no-probe")
    assert code == 1
    assert {g["kind"] for g in doc["gaps"]} == {"Secret"}
    assert all("forbidden" in g["reason"] for g in doc["gaps"])
    unreadable = [f["message"] for f in doc["findings"] if f["code"] == "secret-unreadable"]
    from_secrets = {
        (e["source"]["namespace"], e["source"]["name"], e["env"])
        for e in admin_report["edges"]
        if e["origin"].startswith(("secretKeyRef:", "envFrom:secret/"))
    }
    assert from_secrets
    for namespace, workload, env in from_secrets:
        assert any(f"{namespace}/{workload} " in m and (f"env {env}:" in m or "envFrom:" in m) for m in unreadable), (
            f"{namespace}/{workload} {env} was dropped"
        )


@pytest.mark.lab
def test_a_forbidden_kind_is_a_gap_and_the_audit_goes_on(lab, admin_report, tmp_path, capsys):
    rules = [{**r, "resources": [x for x in r["resources"] if x != "networkpolicies"]} for r in least()]
    kubeconfig = mint_kubeconfig(lab, tmp_path, rules, user="no-netpol")
    code = main(["audit", "--kubeconfig", kubeconfig, "--no-probe"])
    out = capsys.readouterr().out
    assert code == 1
    gaps = [line for line in out.splitlines() if line.startswith("gap:")]
    assert len(gaps) == 1, "one gap for the kind, not one per namespace"
    assert gaps[0].startswith("gap: NetworkPolicy not read: forbidden: ")
    assert 'cannot list resource "networkpolicies"' in gaps[0]
    assert "user-service" in out  # the edges are still there


@pytest.mark.lab
def test_a_forbidden_namespace_is_a_gap_per_kind_and_the_rest_is_audited(lab, admin_report, tmp_path):
    visible = [ns for ns in NOVA_NAMESPACES if ns != "nova-auth"]
    reading = [
        {**rule, "namespaces": visible} for rule in rules_of("novadiag-audit") + rules_of("novadiag-audit-secrets")
    ]
    namespaces = {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["namespaces"]}
    kubeconfig = mint_kubeconfig(lab, tmp_path, [namespaces, *reading], user="no-auth-ns")
    code, doc, _ = audit_json(kubeconfig, tmp_path, "--no-probe")
    assert code == 1
    auth_gaps = {g["kind"] for g in doc["gaps"] if g["namespace"] == "nova-auth"}
    assert {"Pod", "Deployment", "Service", "ConfigMap", "Secret"} <= auth_gaps
    assert {e["source"]["namespace"] for e in doc["edges"]} == {
        e["source"]["namespace"] for e in admin_report["edges"] if e["source"]["namespace"] != "nova-auth"
    }


@pytest.mark.lab
def test_a_namespace_without_the_probe_role_keeps_static_verdicts(lab, admin_report, tmp_path):
    kubeconfig = mint_kubeconfig(
        lab, tmp_path, least(probe_in=[ns for ns in NOVA_NAMESPACES if ns != "nova-feed"]), user="no-feed-probe"
    )
    code, doc, _ = audit_json(kubeconfig, tmp_path)
    assert code == 1
    feed = [e for e in doc["edges"] if e["source"]["namespace"] == "nova-feed"]
    assert feed
    for edge in feed:
        assert "cannot create probe pod in nova-feed" in edge["probe"]["error"]
        assert 'cannot create resource "configmaps"' in edge["probe"]["error"]
        assert edge["probe"]["dns"] == "not-run" and edge["probe"]["agrees"] is None
    [gap] = doc["gaps"]
    assert (gap["kind"], gap["namespace"], gap["verb"]) == ("Pod", "nova-feed", "create")
    assert statuses(doc) == statuses(admin_report)
    assert leftovers(lab.kubeconfig) == []


# -- an audit that could not see must not pass -------------------------------------------------
def namespace_scoped_view(namespace: str) -> list[dict[str, Any]]:
    """A RoleBinding of the audit role in one namespace: no Namespace list, every other kind there only."""
    rules = rules_of("novadiag-audit", namespaces=[namespace])
    return [{**rule, "resources": [r for r in rule["resources"] if r != "namespaces"]} for rule in rules]


@pytest.mark.lab
def test_a_token_without_permissions_is_exit_2_not_ok(lab, tmp_path, capsys):
    kubeconfig = mint_kubeconfig(lab, tmp_path, [], user="nothing")
    code = main(["audit", "--kubeconfig", kubeconfig, "--no-probe"])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.splitlines()[-1] == (
        "novadiag: error: no workload could be read (list deployments: forbidden): the audit checked nothing"
    )
    assert out.splitlines()[-1].startswith("INCOMPLETE: none of 0 edges broken, no workload could be read")


@pytest.mark.lab
def test_a_namespace_scoped_view_is_incomplete_not_broken(lab, admin_report, tmp_path, capsys):
    kubeconfig = mint_kubeconfig(lab, tmp_path, namespace_scoped_view("nova-backend"), user="backend-view")
    code, doc, _ = audit_json(kubeconfig, tmp_path, "-n", "nova-backend", "--no-probe")
    assert code == 1, "user-service crash-loops: its own Service has no ready endpoint, as the admin sees it"
    assert doc["summary"]["complete"] is False
    admin = dict(statuses(admin_report))
    judged = [(e["id"], e["status"]) for e in doc["edges"] if e["status"] != "unverified"]
    assert judged and all(admin[edge] == status for edge, status in judged), "what it could read, it judges right"
    assert [e["host"] for e in doc["edges"] if e["status"] in BROKEN] == ["user-service"]
    by_host = {e["host"]: e for e in doc["edges"]}
    kafka = by_host["kafka.kafka.svc"]
    assert kafka["status"] == "unverified"
    assert kafka["detail"].startswith(
        "cannot be verified (list namespaces: forbidden; list services in kafka: forbidden"
    )
    assert by_host["media-service"]["status"] == "unverified"
    assert by_host["postgres"]["status"] == "ok", "its own namespace was read: judged as the admin judges it"
    services = next(g for g in doc["gaps"] if g["kind"] == "Service")
    assert services["namespace"] is None and services["read_in"] == ["nova-backend"]
    assert not [f for f in doc["findings"] if f["code"] == "missing-namespace"]
    assert capsys.readouterr().err.startswith("BROKEN: 1 of 12 edges (1 no-endpoints); INCOMPLETE: 10 unverified")
    gate = ["audit", "--kubeconfig", kubeconfig, "-n", "nova-backend", "--no-probe", "--fail-on", "never"]
    assert main(gate) == 0
    assert main([*gate, "--fail-on-gaps"]) == 3


@pytest.mark.lab
def test_a_read_only_token_falls_back_to_the_static_audit_and_names_the_missing_permission(
    lab, admin_report, tmp_path, capsys
):
    kubeconfig = mint_kubeconfig(lab, tmp_path, rules_of("novadiag-audit") + rules_of("novadiag-audit-secrets"))
    code, doc, _ = audit_json(kubeconfig, tmp_path)
    err = capsys.readouterr().err
    assert code == 1, "Nova's broken edges, judged statically"
    assert "no probe pod could run" not in err
    assert statuses(doc) == statuses(admin_report)
    created = [g for g in doc["gaps"] if g["verb"] == "create"]
    env_sources = {e["source"]["namespace"] for e in doc["edges"] if e["probe"] and e["env"] is not None}
    assert {g["namespace"] for g in created} == env_sources | {"ingress-nginx"}  # where the Ingress is probed from
    assert all(g["kind"] == "Pod" and "forbidden" in g["reason"] for g in created)
    assert all(e["probe"]["dns"] == "not-run" and e["probe"]["agrees"] is None for e in doc["edges"] if e["probe"])
    assert doc["probes"]["failed"] == [] and doc["probes"]["ran"] == 0
    assert main(["audit", "--kubeconfig", kubeconfig, "--fail-on", "never", "--fail-on-gaps"]) == 3
    assert leftovers(lab.kubeconfig) == []
