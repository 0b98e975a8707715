"""The quick-fix strategies: rewrite, alias, auto — one fix or one reason per broken edge."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
import yaml
from plan_support import NOVA, audit_objects, config_map, secret, service, workload

import novadiag
from novadiag.errors import ConfigError, PlanError
from novadiag.model import ObjectRef
from novadiag.planning import render_plan
from novadiag.planning.values import Plan


@pytest.fixture(scope="module")
def nova() -> novadiag.Report:
    return novadiag.audit(manifests=[NOVA])


@pytest.mark.parametrize("strategy", ["rewrite", "alias", "auto"])
def test_every_strategy_fixes_the_five_nova_edges(nova: novadiag.Report, strategy: str) -> None:
    plan = novadiag.plan(nova, strategy)
    assert plan.verification is not None
    assert (plan.verification.broken_before, plan.verification.broken_after) == (5, 0)
    assert plan.verification.ok
    # Each fixed edge is found again after the plan, under the id its rewritten host gives it.
    assert sorted(plan.verification.fixed) == sorted(e.id for e in nova.broken)
    assert plan.verification.still_broken == ()


def test_rewrite_changes_each_value_where_it_is_written(nova: novadiag.Report) -> None:
    plan = novadiag.plan(nova, "rewrite")
    patched = {(s.object.kind, s.object.name) for s in plan.steps if s.action == "patch"}
    assert patched == {
        ("ConfigMap", "user-service-config"),
        ("ConfigMap", "user-service-endpoints"),
        ("Deployment", "user-service"),
    }
    env_patch = next(s for s in plan.steps if s.object.kind == "Deployment" and s.action == "patch")
    assert "content-service.nova-content:9081" in json.dumps(env_patch.operation.patch)


def test_rewrite_steps_carry_the_exact_inverse(nova: novadiag.Report) -> None:
    plan = novadiag.plan(nova, "rewrite")
    step = next(s for s in plan.steps if s.object.name == "user-service-endpoints")
    assert step.rollback[0].patch == {"data": {"feed-service-url": "http://feed-service:8089"}}


def test_auto_prefers_an_alias_for_plain_short_names_and_says_why(nova: novadiag.Report) -> None:
    plan = novadiag.plan(nova, "auto")
    env_fixes = [f for f in plan.fixes if "/httproute/" not in f.edge]
    assert {f.action for f in env_fixes} == {"alias"}
    assert all("short name" in f.detail for f in env_fixes)
    created = sorted(s.object.name for s in plan.steps if s.action == "create" and s.object.kind == "Service")
    assert created == ["auth-service", "content-service", "feed-service", "media-service"]


def test_a_route_without_its_reference_grant_gets_the_grant_created(nova: novadiag.Report) -> None:
    plan = novadiag.plan(nova, "auto")
    (fix,) = [f for f in plan.fixes if "/httproute/" in f.edge]
    assert fix.action == "reference-grant"
    (step,) = [s for s in plan.steps if s.object.kind == "ReferenceGrant"]
    assert step.id in fix.steps and step.action == "create"
    assert step.object == ObjectRef("ReferenceGrant", "nova-content", "httproute-from-nova-gateway")
    assert step.operation.manifest is not None
    assert step.operation.manifest["spec"] == {
        "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "nova-gateway"}],
        "to": [{"group": "", "kind": "Service", "name": "content-service"}],
    }


def test_other_broken_routing_backends_are_a_manual_edit_naming_the_field() -> None:
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "front", "namespace": "b"},
        "spec": {"defaultBackend": {"service": {"name": "db", "port": {"number": 81}}}},
    }
    plan = novadiag.plan(audit_objects(workload("b", "db"), service("b", "db", 80), ingress), "auto")
    (fix,) = plan.fixes
    assert (fix.action, fix.steps) == (None, ())
    assert fix.detail == "edit Ingress b/front defaultBackend: set defaultBackend.service.port.number to 80"


def test_alias_is_an_external_name_to_the_target_fqdn(nova: novadiag.Report) -> None:
    plan = novadiag.plan(nova, "alias")
    step = next(s for s in plan.steps if s.action == "create" and s.object.name == "content-service")
    assert step.operation.manifest is not None
    assert step.operation.manifest["spec"]["externalName"] == "content-service.nova-content.svc.cluster.local"
    assert step.object.namespace == "nova-backend"


def test_auto_rewrites_a_wrong_port_because_an_alias_cannot_fix_it() -> None:
    report = audit_objects(
        workload("a", "client", {"API_URL": "http://api.b:8080"}),
        workload("b", "api"),
        service("b", "api", 80),
    )
    plan = novadiag.plan(report, "auto")
    (fix,) = plan.fixes
    assert fix.action == "rewrite" and "port" in fix.detail
    assert plan.verification is not None and plan.verification.ok


def test_alias_strategy_gives_a_reason_when_no_alias_can_help() -> None:
    report = audit_objects(
        workload("a", "client", {"API_URL": "http://api.b:8080"}), workload("b", "api"), service("b", "api", 80)
    )
    (fix,) = novadiag.plan(report, "alias").fixes
    assert fix.action is None and "port" in fix.detail


def test_unknown_target_gets_an_explicit_reason() -> None:
    report = audit_objects(workload("a", "client", {"API_HOST": "ghost"}))
    (fix,) = novadiag.plan(report, "auto").fixes
    assert fix.action is None and "no Service anywhere matches ghost" in fix.detail


def test_a_secret_reference_is_rewritten_at_run_time_without_its_value() -> None:
    report = audit_objects(
        secret("a", "db", {"url": "postgres://app:s3cr3t-VALUE@pg:5432/app"}),
        workload(
            "a", "client", [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}]
        ),
        workload("b", "pg"),
        service("b", "pg", 5432),
    )
    plan = novadiag.plan(report, "rewrite")
    step = next(s for s in plan.steps if s.action == "rewrite-secret")
    assert [(r.key, r.old, r.new) for r in step.operation.replacements] == [("url", "pg", "pg.b")]
    assert "s3cr3t-VALUE" not in plan.to_json() and "s3cr3t-VALUE" not in render_plan(plan, "script")
    assert any(s.action == "restart" for s in plan.steps)


def test_host_behind_a_variable_expansion_is_rewritten_where_it_is_written() -> None:
    env = [{"name": "API_HOST", "value": "api"}, {"name": "API_URL", "value": "http://$(API_HOST):80"}]
    report = audit_objects(workload("a", "client", env), workload("b", "api"), service("b", "api", 80))
    plan = novadiag.plan(report, "rewrite")
    assert plan.verification is not None and plan.verification.ok


def test_shared_config_map_warns_about_its_other_readers() -> None:
    cm = config_map("a", "shared", {"API_URL": "http://api:80"})
    mounted = [{"name": "cfg", "configMap": {"name": "shared"}}]
    report = audit_objects(
        cm,
        workload("a", "one", env_from=[{"configMapRef": {"name": "shared"}}]),
        workload("a", "two", volumes=mounted),
        workload("b", "api"),
        service("b", "api", 80),
    )
    plan = novadiag.plan(report, "rewrite")
    assert plan.warnings == (
        "ConfigMap a/shared is also read by Deployment a/two: they see the new value at their next restart",
    )


def test_consolidation_options_need_the_consolidate_strategy(nova: novadiag.Report) -> None:
    with pytest.raises(ConfigError):
        novadiag.plan(nova, "rewrite", into="nova-prod")


def test_a_report_without_snapshot_cannot_be_planned(nova: novadiag.Report) -> None:
    from dataclasses import replace

    with pytest.raises(PlanError):
        novadiag.plan(replace(nova, snapshot=None), "auto")


def test_plan_stays_a_function_next_to_the_planning_package() -> None:
    assert callable(novadiag.plan) and novadiag.Plan is Plan


@pytest.mark.parametrize("strategy", ["rewrite", "auto"])
def test_the_fix_plan_does_not_depend_on_list_order(nova: novadiag.Report, strategy: str) -> None:
    objects = [doc for path in sorted(NOVA.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]
    random.Random(11).shuffle(objects)
    shuffled = novadiag.plan(audit_objects(*objects), strategy).to_dict()
    assert shuffled == {**novadiag.plan(nova, strategy).to_dict(), "source": shuffled["source"]}


def _looping_pod(ns: str, replica_set: str) -> dict[str, Any]:
    waiting = {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting failed container"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{replica_set}-x1",
            "namespace": ns,
            "ownerReferences": [{"kind": "ReplicaSet", "name": replica_set, "controller": True}],
        },
        "spec": {"containers": [{"name": "app", "image": "example/app:1"}]},
        "status": {"containerStatuses": [{"name": "app", "restartCount": 4, "state": {"waiting": waiting}}]},
    }


def _restarts(plan: Plan) -> list[str]:
    return [s.title for s in plan.steps if s.action == "restart"]


def test_a_manifest_plan_restarts_nothing_for_a_crash_loop_it_cannot_see(nova: novadiag.Report) -> None:
    plan = novadiag.plan(nova, "auto")
    assert {f.action for f in plan.fixes} == {"alias", "reference-grant"}
    assert _restarts(plan) == []


def test_an_alias_for_a_start_up_name_restarts_the_workload_seen_crash_looping() -> None:
    startup = {"lab.novadiag.dev/startup-needs": "DB_URL"}
    client = workload("a", "client", {"DB_URL": "http://db:80"})
    client["spec"]["template"]["metadata"]["annotations"] = startup
    objects = (client, workload("b", "db"), service("b", "db", 80))
    quiet = novadiag.plan(audit_objects(*objects), "alias")
    looping = novadiag.plan(audit_objects(*objects, _looping_pod("a", "client-5d9c7b")), "alias")
    assert _restarts(quiet) == []
    assert _restarts(looping) == [
        "restart Deployment a/client so its crash-looping pods retry their start-up names now "
        "instead of after the back-off"
    ]
