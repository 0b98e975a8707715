"""Plans applied to a lab whose references carry passwords: every password intact, every host fixed.

The snapshot a plan is made from masks credentials (``***``, ``<redacted>``),
so a plan that wrote values from it would put the masks into the cluster. The
cluster here holds a plain env DSN, an ADO.NET connection string, a ConfigMap
read through ``envFrom``, a CronJob, a value masked whole for its name, a DSN
that moves and must name its target anew, and a namespace that stays while its
target moves. After ``plan --apply`` (rewrite,
then consolidate) each value is read back with the official ``kubernetes``
client and compared byte for byte with what it must be.
"""

from __future__ import annotations

import subprocess
import sys
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
from novadiag.pipeline import audit_cluster
from novadiag.planning import apply_plan, render_plan

pytestmark = [pytest.mark.lab, pytest.mark.slow]

PASSWORDS = {
    "orders": "Orders-Pw-7f3a&x",
    "billing": "Billing;Pw=9c1d",  # quoted below: an ADO.NET value may hold ; and = when quoted
    "reports": "Reports-Pw-44d0",
    "nightly": "Nightly-Pw-b81d",
    "audit": "Audit-Pw-0a9f",
    "invoices": "Invoices-Pw-3c9e",
}
ORDERS_URL = f"postgres://app:{PASSWORDS['orders']}@main-db:5432/app?sslmode=disable"
BILLING_DSN = f"Host=main-db;Port=5432;Database=app;Username=app;Password='{PASSWORDS['billing']}'"
REPORTS_URL = f"postgresql://report:{PASSWORDS['reports']}@main-db:5432/reports"
NIGHTLY_URL = f"postgres://cron:{PASSWORDS['nightly']}@main-db:5432/app"
AUDIT_URL = f"postgres://audit:{PASSWORDS['audit']}@main-db.data:5432/audit"
INVOICES_URL = f"postgres://inv:{PASSWORDS['invoices']}@main-db.data:5432/inv"  # moves: the host must change
TOKEN = "Opaque-Session-Token-5e1c"  # masked whole for its name (SESSION_TOKEN), though it names no host


def _container(name: str, env: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": "example/app:1",
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "ports": [{"containerPort": 8080, "name": "http"}],
        **extra,
    }


def _deployment(ns: str, name: str, container: dict[str, Any], port: int = 8080) -> dict[str, Any]:
    container["ports"] = [{"containerPort": port}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}},
        },
    }


def _objects() -> list[dict[str, Any]]:
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in ("data", "shop", "ops")]
    database = _deployment("data", "main-db", _container("main-db", {}), port=5432)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "main-db", "namespace": "data"},
        "spec": {"selector": {"app": "main-db"}, "ports": [{"port": 5432, "targetPort": 5432}]},
    }
    reports_env = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "reports-env", "namespace": "shop"},
        "data": {"DB_URL": REPORTS_URL},
    }
    nightly = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "shop"},
        "spec": {
            "schedule": "0 3 * * *",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "metadata": {"labels": {"app": "nightly"}},
                        "spec": {
                            "restartPolicy": "OnFailure",
                            "containers": [_container("nightly", {"DB_URL": NIGHTLY_URL})],
                        },
                    }
                }
            },
        },
    }
    return [
        *namespaces,
        database,
        service,
        _deployment("shop", "orders", _container("orders", {"DATABASE_URL": ORDERS_URL, "SESSION_TOKEN": TOKEN})),
        _deployment("shop", "billing", _container("billing", {"ConnectionStrings__Main": BILLING_DSN})),
        reports_env,
        _deployment("shop", "reports", _container("reports", {}, envFrom=[{"configMapRef": {"name": "reports-env"}}])),
        nightly,
        _deployment("shop", "invoices", _container("invoices", {"INVOICES_DB": INVOICES_URL})),
        _deployment("ops", "audit-log", _container("audit-log", {"AUDIT_DB": AUDIT_URL})),
    ]


@pytest.fixture()
def lab(tmp_path: Path) -> Iterator[Any]:
    scenario = tmp_path / "credentials"
    scenario.mkdir()
    (scenario / "cluster.yaml").write_text(yaml.safe_dump_all(_objects()))
    with Lab(scenario=str(scenario), state_dir=tmp_path / "state") as started:  # a failed start is an error
        yield started


def _apply(kubeconfig: str, strategy: str, **options: Any) -> novadiag.Plan:
    settings = KubeSettings(kubeconfig=kubeconfig)
    plan = novadiag.plan(audit_cluster(settings, source_kind="lab", probe=False), strategy, wait_timeout=120, **options)
    assert plan.verification is not None and plan.verification.ok, plan.verification
    with KubeClient(settings) as client:
        result = apply_plan(plan,
            client, yes=True, allow_delete=True, skip_grace=True, ack_manual=True, probe=False, out=lambda _: None
        )
    assert result.ok, f"{result.stopped_at}: {result.reason}"
    return plan


class Cluster:
    """Values read back through the official client, as a user's own tooling would."""

    def __init__(self, kubeconfig: str) -> None:
        api = k8s_config.new_client_from_config(config_file=kubeconfig)
        self.apps, self.core, self.batch = k8s.AppsV1Api(api), k8s.CoreV1Api(api), k8s.BatchV1Api(api)

    def env(self, ns: str, name: str) -> dict[str, str]:
        container = self.apps.read_namespaced_deployment(name, ns).spec.template.spec.containers[0]
        return {e.name: e.value for e in container.env or ()}

    def cron_env(self, ns: str, name: str) -> dict[str, str]:
        job = self.batch.read_namespaced_cron_job(name, ns)
        return {e.name: e.value for e in job.spec.job_template.spec.template.spec.containers[0].env or ()}

    def config(self, ns: str, name: str) -> dict[str, str]:
        return dict(self.core.read_namespaced_config_map(name, ns).data or {})


def _broken(kubeconfig: str) -> list[str]:
    report = audit_cluster(KubeSettings(kubeconfig=kubeconfig), source_kind="lab", probe=False)
    return [f"{e.id}: {e.status}" for e in report.broken]


def test_rewrite_keeps_every_password_and_fixes_every_host(lab: Any) -> None:
    assert len(_broken(lab.kubeconfig)) == 4
    _apply(lab.kubeconfig, "rewrite")
    _assert_rewritten(Cluster(lab.kubeconfig))
    assert _broken(lab.kubeconfig) == []


def _assert_rewritten(cluster: Cluster) -> None:
    """The values after the rewrite strategy: ``main-db`` became ``main-db.data``, nothing else changed."""
    assert cluster.env("shop", "orders") == {
        "DATABASE_URL": ORDERS_URL.replace("@main-db:", "@main-db.data:"),
        "SESSION_TOKEN": TOKEN,
    }
    billing = cluster.env("shop", "billing")["ConnectionStrings__Main"]
    assert billing == BILLING_DSN.replace("=main-db;", "=main-db.data;")
    assert cluster.config("shop", "reports-env")["DB_URL"] == REPORTS_URL.replace("@main-db:", "@main-db.data:")
    assert cluster.cron_env("shop", "nightly")["DB_URL"] == NIGHTLY_URL.replace("@main-db:", "@main-db.data:")
    assert cluster.env("ops", "audit-log")["AUDIT_DB"] == AUDIT_URL
    assert cluster.env("shop", "invoices")["INVOICES_DB"] == INVOICES_URL


def test_consolidation_keeps_every_password_and_fixes_every_host(lab: Any) -> None:
    _apply(lab.kubeconfig, "consolidate", into="prod", keep=["ops"])
    _assert_consolidated(Cluster(lab.kubeconfig))
    assert _broken(lab.kubeconfig) == []


def _assert_consolidated(cluster: Cluster) -> None:
    """The values after moving ``shop`` and ``data`` into ``prod``: the copies' as they were, ops' host moved."""
    assert cluster.env("prod", "orders") == {"DATABASE_URL": ORDERS_URL, "SESSION_TOKEN": TOKEN}
    assert cluster.env("prod", "billing") == {"ConnectionStrings__Main": BILLING_DSN}
    assert cluster.config("prod", "reports-env") == {"DB_URL": REPORTS_URL}
    assert cluster.cron_env("prod", "nightly") == {"DB_URL": NIGHTLY_URL}
    assert cluster.env("ops", "audit-log")["AUDIT_DB"] == AUDIT_URL.replace("@main-db.data:", "@main-db.prod:")
    assert cluster.env("prod", "invoices") == {"INVOICES_DB": INVOICES_URL.replace("@main-db.data:", "@main-db:")}


@pytest.mark.parametrize("strategy", ["rewrite", "consolidate"])
def test_the_script_writes_the_same_passwords_as_apply(lab: Any, tmp_path: Path, strategy: str) -> None:
    settings = KubeSettings(kubeconfig=lab.kubeconfig)
    options: dict[str, Any] = {"into": "prod", "keep": ["ops"]} if strategy == "consolidate" else {}
    report = audit_cluster(settings, source_kind="lab", probe=False)
    plan = novadiag.plan(report, strategy, wait_timeout=120, **options)
    script = tmp_path / "plan.sh"
    script.write_text(render_plan(plan, "script"))
    assert not any(pw in script.read_text() for pw in PASSWORDS.values())
    env_path = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    run = subprocess.run(
        [
            "bash",
            str(script),
            "--execute",
            "--allow-delete",
            "--no-grace",
            "--ack-manual",
            "--kubeconfig",
            lab.kubeconfig,
        ],
        capture_output=True,
        text=True,
        env={"PATH": env_path, "HOME": str(tmp_path)},
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert not any(pw in run.stdout + run.stderr for pw in PASSWORDS.values())
    (_assert_rewritten if strategy == "rewrite" else _assert_consolidated)(Cluster(lab.kubeconfig))


def test_a_value_changed_since_the_plan_stops_its_step_without_printing_it(lab: Any) -> None:
    settings = KubeSettings(kubeconfig=lab.kubeconfig)
    plan = novadiag.plan(audit_cluster(settings, source_kind="lab", probe=False), "rewrite", wait_timeout=120)
    moved = ORDERS_URL.replace("@main-db:", "@other-db:")
    env = [{"name": "orders", "env": [{"name": "DATABASE_URL", "value": moved}]}]
    Cluster(lab.kubeconfig).apps.patch_namespaced_deployment(
        "orders", "shop", {"spec": {"template": {"spec": {"containers": env}}}}
    )
    said: list[str] = []
    with KubeClient(settings) as client:
        result = apply_plan(plan, client, yes=True, probe=False, out=said.append)
    step = next(s for s in plan.steps if s.object == ObjectRef("Deployment", "shop", "orders"))
    assert result.failed and result.stopped_at == step.id
    assert result.reason == (
        "Deployment shop/orders spec.template.spec.containers[name=orders].env[name=DATABASE_URL].value "
        "no longer names main-db: the cluster changed since the plan"
    )
    assert not any(pw in line for line in said for pw in PASSWORDS.values())
    assert Cluster(lab.kubeconfig).env("shop", "orders")["DATABASE_URL"] == moved
