"""The API runner, against an in-memory API: order, gates, Secrets, and stopping with the rollback."""

from __future__ import annotations

import pytest
from plan_support import FakeClient, audit_objects, config_map, secret, service, workload

import novadiag
from novadiag.errors import PlanError
from novadiag.planning import apply_plan
from novadiag.planning.values import Plan

SECRET = "postgres://app:TOP-SECRET-42@db.data:5432/app"


def _cluster() -> list[dict]:
    env = [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "url"}}}]
    return [
        workload("data", "db", kind="StatefulSet", claim_templates=["pgdata"], image="postgres:16"),
        service("data", "db", 5432),
        secret("app", "creds", {"url": SECRET}),
        config_map("app", "settings", {"MODE": "prod"}),
        workload("app", "api", env, env_from=[{"configMapRef": {"name": "settings"}}]),
        service("app", "api", 80),
        workload("edge", "gateway", {"API_URL": "http://api.app:80"}),
        service("edge", "gateway", 80),
    ]


@pytest.fixture
def plan() -> Plan:
    return novadiag.plan(audit_objects(*_cluster()), "consolidate", into="prod")


def _run(plan: Plan, client: FakeClient, **options: object) -> tuple[object, list[str]]:
    lines: list[str] = []
    result = apply_plan(plan, client, yes=True, probe=False, timeout=0.2, out=lines.append, **options)  # type: ignore[arg-type]
    return result, lines


def test_without_yes_nothing_is_sent(plan: Plan) -> None:
    client = FakeClient(_cluster())
    lines: list[str] = []
    result = apply_plan(plan, client, out=lines.append)  # type: ignore[arg-type]
    assert not result.executed and client.calls == []
    assert any("kubectl create" in line for line in lines)


def test_a_full_run_ends_with_everything_in_the_target(plan: Plan) -> None:
    client = FakeClient(_cluster())
    result, _ = _run(plan, client, allow_delete=True, skip_grace=True, ack_manual=True)
    assert result.ok and result.stopped_at is None  # type: ignore[attr-defined]
    namespaces = {ns for _, ns, _ in client.store if ns}
    assert namespaces == {"prod"}
    assert client.store[("Deployment", "prod", "gateway")]["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "API_URL", "value": "http://api:80"}
    ]


def test_secret_values_are_copied_with_hosts_rewritten_and_never_printed(plan: Plan) -> None:
    client = FakeClient(_cluster())
    _, lines = _run(plan, client, ack_manual=True)
    assert client.secret_value("prod", "creds", "url") == "postgres://app:TOP-SECRET-42@db:5432/app"
    assert not any("TOP-SECRET" in line for line in lines)


def test_the_run_stops_at_a_data_migration_until_acknowledged(plan: Plan) -> None:
    client = FakeClient(_cluster())
    result, lines = _run(plan, client)
    assert "data-migration" in (result.reason or "")  # type: ignore[attr-defined]
    assert ("create", "Deployment", "prod", "api") not in client.calls


def test_the_grace_period_stops_before_anything_is_deleted(plan: Plan) -> None:
    client = FakeClient(_cluster())
    result, _ = _run(plan, client, ack_manual=True, allow_delete=True)
    assert "grace period" in (result.reason or "")  # type: ignore[attr-defined]
    assert not any(call[0] == "delete" for call in client.calls)
    assert client.store[("Deployment", "app", "api")]["spec"]["replicas"] == 0


def test_cleanup_needs_allow_delete(plan: Plan) -> None:
    with pytest.raises(PlanError, match="allow-delete"):
        apply_plan(plan, FakeClient(_cluster()), yes=True, cleanup=True, probe=False)  # type: ignore[arg-type]


def test_a_failed_check_stops_the_run_and_prints_the_rollback(plan: Plan) -> None:
    client = FakeClient(_cluster(), fail_ready={"prod/api"})
    result, lines = _run(plan, client, ack_manual=True)
    assert result.failed and "prod/api" in (result.reason or "")  # type: ignore[attr-defined]
    assert any("kubectl delete deployment/api -n prod" in line for line in result.rollback)  # type: ignore[attr-defined]
    assert any(line.startswith("FAILED at") for line in lines)
    assert ("create", "Deployment", "prod", "gateway") not in client.calls


def test_the_verification_step_audits_the_live_objects(plan: Plan) -> None:
    client = FakeClient(_cluster())
    _, lines = _run(plan, client, ack_manual=True)
    assert any("re-audit of prod" in line and "0 broken" in line for line in lines)


@pytest.mark.parametrize(
    ("options", "gate"),
    [({}, "manual"), ({"ack_manual": True}, "grace"), ({"ack_manual": True, "skip_grace": True}, "delete")],
)
def test_a_run_stopped_at_a_gate_is_ok_but_not_complete(plan: Plan, options: dict[str, bool], gate: str) -> None:
    result, lines = _run(plan, FakeClient(_cluster()), **options)
    stopped = plan.step(result.stopped_at)  # type: ignore[attr-defined]
    assert gate in {stopped.action, stopped.phase, "delete" if stopped.requires_allow_delete else ""}
    assert result.ok and not result.complete  # type: ignore[attr-defined]
    assert lines[-1].startswith(f"stopped before {stopped.id}:")


def test_a_full_run_is_complete(plan: Plan) -> None:
    result, _ = _run(plan, FakeClient(_cluster()), allow_delete=True, skip_grace=True, ack_manual=True)
    assert result.complete  # type: ignore[attr-defined]
