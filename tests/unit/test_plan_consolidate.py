"""Consolidation: the Nova plan, conflicts, cycles, stateful workloads, and refusing to break edges."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
import yaml
from plan_support import NOVA, audit_objects, config_map, namespace, service, workload

import novadiag
from novadiag.errors import ConfigError, PlanError
from novadiag.model import ObjectRef
from novadiag.planning import apply_plan, render_plan
from novadiag.planning.values import Plan, Step

NOVA_OPTIONS = {"into": "nova-prod", "keep": ["kafka", "nova-staging"]}


@pytest.fixture(scope="module")
def nova() -> novadiag.Report:
    return novadiag.audit(manifests=[NOVA])


@pytest.fixture(scope="module")
def plan(nova: novadiag.Report) -> Plan:
    return novadiag.plan(nova, "consolidate", prefer=["nova-backend/postgres"], **NOVA_OPTIONS)


@pytest.fixture(scope="module")
def unresolved(nova: novadiag.Report) -> Plan:
    return novadiag.plan(nova, "consolidate", **NOVA_OPTIONS)


def _position(plan: Plan, name: str) -> int:
    return next(u.position for u in plan.order if any(w.name == name for w in u.workloads))


def test_nova_consolidation_verifies_to_zero_broken_edges(plan: Plan) -> None:
    assert plan.verification is not None
    assert (plan.verification.broken_before, plan.verification.broken_after) == (5, 0)
    assert plan.verification.regressions == () and plan.verification.ok


def test_infrastructure_moves_before_its_users_and_the_gateway_last(plan: Plan) -> None:
    for user in ("user-service", "messaging-service", "events-service", "content-service"):
        assert _position(plan, "postgres") < _position(plan, user)
    for user in ("messaging-service", "feed-service", "media-service"):
        assert _position(plan, "redis") < _position(plan, user)
    assert plan.order[-1].workloads == (ObjectRef("Deployment", "nova-gateway", "graphql-gateway"),)
    assert plan.order[-1].gateway


def test_kafka_and_staging_stay_where_they_are(plan: Plan) -> None:
    moved = {w.namespace for u in plan.order for w in u.workloads}
    assert not moved & {"kafka", "nova-staging"}


def test_references_to_moved_namespaces_become_short_names(plan: Plan) -> None:
    changed = {(r.old_host, r.new_host) for r in plan.rewrites if r.changed}
    assert ("redis.nova-media", "redis") in changed
    assert ("user-service.nova-backend.svc.cluster.local", "user-service") in changed
    assert ("postgres.nova", "postgres") in changed


def test_kafka_references_keep_their_working_names(plan: Plan) -> None:
    kafka = [r for r in plan.rewrites if "kafka" in r.old_host]
    assert kafka and all(not r.changed and "still resolves" in r.reason for r in kafka)


def test_the_postgres_conflict_is_reported_and_resolved_as_told(plan: Plan) -> None:
    conflict = next(c for c in plan.conflicts if c.kind == "Service" and c.name == "postgres")
    assert conflict.resolved and conflict.winner == "nova-backend/postgres"
    assert conflict.sources == ("nova-backend/postgres", "nova/postgres")


def test_the_retired_postgres_gets_a_data_migration_before_its_users_start(plan: Plan) -> None:
    merge = next(s for s in plan.steps if "retired Service nova/postgres" in s.title)
    assert merge.action == "manual" and merge.warning
    auth = next(
        s
        for s in plan.steps
        if s.action in ("create", "copy") and s.object == ObjectRef("Deployment", "nova-prod", "auth-service")
    )
    assert merge.id in auth.depends_on


def test_without_prefer_the_conflict_stays_open_and_the_plan_is_not_ok(unresolved: Plan) -> None:
    conflict = next(c for c in unresolved.conflicts if c.kind == "Service")
    assert not conflict.resolved and "--prefer" in conflict.resolution
    assert unresolved.verification is not None and not unresolved.verification.ok
    assert unresolved.verification.unresolved


def test_an_unresolved_plan_is_not_applied(unresolved: Plan) -> None:
    with pytest.raises(PlanError, match="incomplete"):
        apply_plan(unresolved, object(), yes=True)  # type: ignore[arg-type]


def test_stateful_units_get_data_migration_steps_and_a_warning(plan: Plan) -> None:
    stateful = {u.workloads[0].name for u in plan.order if u.stateful}
    assert stateful == {"postgres", "redis"}
    steps = [s for s in plan.steps if s.title.startswith("migrate the data of") and "retired" not in s.title]
    assert {s.object.name for s in steps} == {"postgres", "redis"}
    assert all(s.action == "manual" and s.warning and "EMPTY" in s.warning for s in steps)


def test_claims_are_created_empty_never_bound_to_the_old_volume(plan: Plan) -> None:
    claim = next(s for s in plan.steps if s.object.kind == "PersistentVolumeClaim")
    assert claim.operation.manifest is not None and "volumeName" not in claim.operation.manifest["spec"]
    assert claim.warning and "EMPTY" in claim.warning


def test_config_is_created_before_the_workload_that_uses_it(plan: Plan) -> None:
    ids = [s.id for s in plan.steps]
    cm = next(s for s in plan.steps if s.object == ObjectRef("ConfigMap", "nova-prod", "feed-config"))
    feed = next(
        s
        for s in plan.steps
        if s.object == ObjectRef("Deployment", "nova-prod", "feed-service") and s.action == "create"
    )
    assert ids.index(cm.id) < ids.index(feed.id) and cm.id in feed.depends_on


def test_config_copies_carry_the_rewritten_hosts(plan: Plan) -> None:
    cm = next(s for s in plan.steps if s.object == ObjectRef("ConfigMap", "nova-prod", "feed-config"))
    assert cm.operation.manifest is not None
    assert cm.operation.manifest["data"]["REDIS_URL"] == "redis://redis:6379/0"


def test_secrets_are_copied_at_run_time_with_host_rewrites_only(plan: Plan) -> None:
    copy = next(s for s in plan.steps if s.action == "copy-secret" and s.object.name == "content-db")
    assert copy.operation.source == ObjectRef("Secret", "nova-content", "content-db")
    assert [(r.key, r.old, r.new) for r in copy.operation.replacements] == [
        ("url", "postgres.nova-backend", "postgres")
    ]


def test_no_secret_value_reaches_any_output(plan: Plan, tmp_path: object) -> None:
    outputs = [plan.to_json(), render_plan(plan, "markdown"), render_plan(plan, "script")]
    assert not any("NOVA-SECRET" in text for text in outputs)
    # auth-service's TOKEN_TTL ("15m") is masked whole for its name: its copy reads it live, never the mask
    assert not any("<redacted>" in text or "***" in text for text in outputs)


def test_moved_objects_are_clean(plan: Plan) -> None:
    for step in plan.steps:
        manifest = step.operation.manifest or {}
        meta = manifest.get("metadata") or {}
        assert not {"uid", "resourceVersion", "creationTimestamp", "managedFields", "ownerReferences"} & set(meta)
        assert "status" not in manifest
        if step.object.kind == "Service" and step.action == "create":
            assert "clusterIP" not in manifest["spec"]


def test_network_policies_name_the_target_namespace(plan: Plan) -> None:
    policy = next(s for s in plan.steps if s.object == ObjectRef("NetworkPolicy", "nova-prod", "content-service"))
    text = json.dumps(policy.operation.manifest)
    assert "nova-prod" in text and "nova-backend" not in text and "nova-feed" not in text


def test_identical_policies_land_once(plan: Plan) -> None:
    denies = [s for s in plan.steps if s.object.kind == "NetworkPolicy" and s.object.name.startswith("default-deny")]
    assert len(denies) == 1


def test_the_target_namespace_keeps_the_labels_policies_select(plan: Plan) -> None:
    ns = next(s for s in plan.steps if s.action == "create-namespace")
    assert ns.operation.manifest is not None
    assert ns.operation.manifest["metadata"]["labels"]["environment"] == "prod"


def test_blue_green_switch_turns_old_services_into_aliases(plan: Plan) -> None:
    switch = next(s for s in plan.steps if s.title.startswith("switch the gateway"))
    assert switch.operation.patch is not None
    assert switch.operation.patch["spec"]["externalName"] == "graphql-gateway.nova-prod.svc.cluster.local"
    assert switch.rollback[0].patch is not None and switch.rollback[0].patch["spec"]["type"] == "ClusterIP"


def test_old_workloads_are_scaled_down_before_anything_is_deleted(plan: Plan) -> None:
    phases = [s.phase for s in plan.steps]
    assert phases.index("cleanup") > max(i for i, s in enumerate(plan.steps) if s.action == "scale")
    assert all(s.requires_allow_delete for s in plan.steps if s.action == "delete" and s.phase == "cleanup")


def test_every_step_but_checks_has_a_rollback(plan: Plan) -> None:
    missing = [s.id for s in plan.steps if not s.rollback and s.action not in ("wait-ready", "verify", "grace")]
    assert missing == []


def test_a_dependency_cycle_moves_as_one_named_unit() -> None:
    report = audit_objects(
        workload("a", "ping", {"PONG_URL": "http://pong.b:80"}),
        service("a", "ping", 80),
        workload("b", "pong", {"PING_URL": "http://ping.a:80"}),
        service("b", "pong", 80),
        workload("c", "caller", {"PING_URL": "http://ping.a:80"}),
    )
    plan = novadiag.plan(report, "consolidate", into="x")
    cycle = next(u for u in plan.order if u.cycle)
    assert {w.name for w in cycle.workloads} == {"ping", "pong"} and cycle.name.startswith("cycle [")
    assert plan.order[-1].workloads[0].name == "caller"
    assert plan.verification is not None and plan.verification.ok


def test_a_plan_that_would_break_a_working_edge_is_refused() -> None:
    # The kept client builds the host from a variable: "api.$(NS)" cannot be rewritten where it is written.
    env = [{"name": "NS", "value": "a"}, {"name": "API_URL", "value": "http://api.$(NS):80"}]
    report = audit_objects(workload("a", "api"), service("a", "api", 80), workload("k", "client", env))
    plan = novadiag.plan(report, "consolidate", into="x", keep=["k"])
    assert plan.verification is not None and plan.verification.refused
    assert "k/deployment/client" in plan.verification.regressions[0]
    with pytest.raises(PlanError, match="breaks 1 working edge"):
        render_plan(plan, "script")
    with pytest.raises(PlanError, match="refusing to apply"):
        apply_plan(plan, object(), yes=True)  # type: ignore[arg-type]


def test_same_named_config_from_two_namespaces_is_renamed_and_followed() -> None:
    env_from = [{"configMapRef": {"name": "settings"}}]
    report = audit_objects(
        config_map("a", "settings", {"MODE": "a"}),
        workload("a", "one", env_from=env_from),
        config_map("b", "settings", {"MODE": "b"}),
        workload("b", "two", env_from=env_from),
    )
    plan = novadiag.plan(report, "consolidate", into="x")
    two = next(s for s in plan.steps if s.object == ObjectRef("Deployment", "x", "two") and s.action == "create")
    assert two.operation.manifest is not None
    container = two.operation.manifest["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"configMapRef": {"name": "settings-b"}}]
    assert any(c.kind == "ConfigMap" and c.resolved for c in plan.conflicts)


def test_overlapping_selectors_are_narrowed_by_origin() -> None:
    twin = workload("b", "web-b")
    twin["spec"]["selector"]["matchLabels"] = twin["spec"]["template"]["metadata"]["labels"] = {"app": "web"}
    report = audit_objects(
        workload("a", "web"), service("a", "site", 80, selector="web"), twin, service("b", "other", 80, selector="web")
    )
    plan = novadiag.plan(report, "consolidate", into="x")
    site = next(s for s in plan.steps if s.object == ObjectRef("Service", "x", "site") and s.action == "create")
    assert site.operation.manifest is not None
    assert site.operation.manifest["spec"]["selector"]["novadiag.dev/origin-namespace"] == "a"
    web = next(s for s in plan.steps if s.object == ObjectRef("Deployment", "x", "web-b") and s.action == "create")
    assert web.operation.manifest is not None
    assert web.operation.manifest["spec"]["selector"]["matchLabels"]["novadiag.dev/origin-namespace"] == "b"


def test_into_is_required_and_checked() -> None:
    report = audit_objects(workload("a", "one"))
    with pytest.raises(ConfigError):
        novadiag.plan(report, "consolidate")
    with pytest.raises(PlanError, match="DNS-1123"):
        novadiag.plan(report, "consolidate", into="Bad_Name")


def test_system_namespaces_never_move() -> None:
    report = audit_objects(namespace("kube-system"), workload("kube-system", "coredns"), workload("a", "one"))
    plan = novadiag.plan(report, "consolidate", into="x")
    assert {w.namespace for u in plan.order for w in u.workloads} == {"a"}


def _policy(ns: str, name: str, source_ns: str) -> dict:
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": source_ns}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [peer]}]},
    }


def _binding(ns: str, account_ns: str) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "readers", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": account_ns}],
    }


@pytest.fixture(scope="module")
def kept_policy_plan() -> Plan:
    report = audit_objects(
        workload("a", "app", {"DB_HOST": "db.k"}),
        workload("k", "db"),
        service("k", "db", 5432),
        _policy("k", "db-ingress", "a"),
        _binding("k", "a"),
    )
    return novadiag.plan(report, "consolidate", into="x", keep=["k"])


def test_kept_policies_admit_the_target_during_the_grace_period_then_only_it(kept_policy_plan: Plan) -> None:
    steps = [s for s in kept_policy_plan.steps if s.object == ObjectRef("NetworkPolicy", "k", "db-ingress")]
    prepare, cleanup = (next(s for s in steps if s.phase == p) for p in ("prepare", "cleanup"))

    def peers(step: Step) -> list[str]:
        assert step.operation.patch is not None
        rule = step.operation.patch["spec"]["ingress"][0]
        return [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in rule["from"]]

    assert peers(prepare) == ["a", "x"] and peers(cleanup) == ["x"]
    assert cleanup.requires_allow_delete


def test_kept_role_bindings_follow_the_moved_service_account(kept_policy_plan: Plan) -> None:
    prepare = next(
        s
        for s in kept_policy_plan.steps
        if s.object == ObjectRef("RoleBinding", "k", "readers") and s.phase == "prepare"
    )
    assert prepare.operation.patch is not None
    assert [s["namespace"] for s in prepare.operation.patch["subjects"]] == ["a", "x"]
    assert kept_policy_plan.verification is not None and kept_policy_plan.verification.ok


def _nova_objects() -> list[dict[str, Any]]:
    return [doc for path in sorted(NOVA.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def _storage_key(obj: dict[str, Any]) -> str:
    """How etcd orders a list: by ``<namespace>/<name>`` as bytes, so ``nova-auth/`` comes before ``nova/``."""
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


@pytest.mark.parametrize("order", ["reversed", "storage-key", "shuffled"])
def test_the_consolidation_plan_does_not_depend_on_list_order(plan: Plan, order: str) -> None:
    objects = _nova_objects()
    if order == "reversed":
        objects.reverse()
    elif order == "storage-key":
        objects.sort(key=_storage_key)
    else:
        random.Random(7).shuffle(objects)
    other = novadiag.plan(audit_objects(*objects), "consolidate", prefer=["nova-backend/postgres"], **NOVA_OPTIONS)
    assert other.to_dict()["steps"] == plan.to_dict()["steps"]
    assert other.to_dict() == {**plan.to_dict(), "source": other.to_dict()["source"]}


def test_identical_policies_are_copied_from_the_first_namespace_in_name_order(plan: Plan) -> None:
    conflict = next(c for c in plan.conflicts if c.kind == "NetworkPolicy" and c.name == "default-deny")
    assert conflict.sources[:2] == ("nova-auth/default-deny", "nova-backend/default-deny")
    assert conflict.resolved and "taken from nova (the first of them in name order)" in conflict.resolution
    copied = next(s for s in plan.steps if s.object == ObjectRef("NetworkPolicy", "nova-prod", "default-deny"))
    assert copied.title.startswith("copy NetworkPolicy nova/default-deny ")


def test_nova_routing_objects_are_copied_with_their_backend_namespaces_rewritten(plan: Plan) -> None:
    copies = {s.object: s for s in plan.steps if s.object.kind in ("Ingress", "Gateway", "HTTPRoute")}
    assert set(copies) == {
        ObjectRef("Ingress", "nova-prod", "graphql-gateway"),
        ObjectRef("Gateway", "nova-prod", "nova-edge"),
        ObjectRef("HTTPRoute", "nova-prod", "content-api"),
    }
    route = copies[ObjectRef("HTTPRoute", "nova-prod", "content-api")].operation.manifest
    assert route is not None
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "content-service", "port": 9081}]
    assert route["spec"]["parentRefs"] == [{"name": "nova-edge"}]
    (fix,) = [f for f in plan.fixes if "/httproute/" in f.edge]
    assert fix.action == "consolidate" and fix.new_reference == "content-service"
    assert copies[ObjectRef("HTTPRoute", "nova-prod", "content-api")].id in fix.steps


def test_a_route_that_stays_while_its_backend_moves_is_a_manual_step_naming_the_field() -> None:
    gateway = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "edge", "namespace": "k"},
        "spec": {"listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]},
    }
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r", "namespace": "k"},
        "spec": {
            "parentRefs": [{"name": "edge"}],
            "rules": [{"backendRefs": [{"name": "db", "namespace": "b", "port": 80}]}],
        },
    }
    grant = {
        "apiVersion": "gateway.networking.k8s.io/v1beta1",
        "kind": "ReferenceGrant",
        "metadata": {"name": "allow", "namespace": "b"},
        "spec": {
            "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "k"}],
            "to": [{"group": "", "kind": "Service"}],
        },
    }
    report = audit_objects(
        namespace("k"),
        workload("k", "web"),
        service("k", "web", 80),
        workload("b", "db"),
        service("b", "db", 80),
        gateway,
        route,
        grant,
    )
    assert [e.status for e in report.edges if e.reference.routing] == ["ok"]
    plan = novadiag.plan(report, "consolidate", into="prod", keep=["k"])
    assert (
        "HTTPRoute k/r rules[0].backendRefs[0] names a Service that moves to prod: set "
        "rules[0].backendRefs[0].namespace to prod and add in prod a ReferenceGrant from HTTPRoute of k"
    ) in plan.warnings
    (grant_copy,) = [s for s in plan.steps if s.object.kind == "ReferenceGrant"]
    assert grant_copy.object == ObjectRef("ReferenceGrant", "prod", "allow")
    assert grant_copy.operation.manifest is not None
    assert grant_copy.operation.manifest["spec"]["from"][0]["namespace"] == "k"


def test_an_istio_route_is_not_copied_and_the_host_to_rewrite_is_named() -> None:
    virtual_service = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "vs", "namespace": "k"},
        "spec": {"hosts": ["web"], "http": [{"route": [{"destination": {"host": "db.b.svc.cluster.local"}}]}]},
    }
    report = audit_objects(
        namespace("k"),
        workload("k", "web"),
        service("k", "web", 80),
        workload("b", "db"),
        service("b", "db", 80),
        virtual_service,
    )
    assert [e.status for e in report.edges if e.reference.routing] == ["ok"]
    plan = novadiag.plan(report, "consolidate", into="prod", keep=["k"])
    assert not [s for s in plan.steps if s.object.kind == "VirtualService"]
    assert (
        "VirtualService k/vs http[0].route[0].destination names a Service that moves to prod: set "
        "http[0].route[0].destination.host to db.prod.svc.cluster.local (Istio expands no dotted host), "
        "and move its DestinationRule subsets along"
    ) in plan.warnings


def test_the_ingress_controllers_namespace_is_not_consolidated(plan: Plan) -> None:
    """ingress-nginx runs only the controller of IngressClass nginx: it serves the cluster and stays put."""
    moved = {w.namespace for u in plan.order for w in u.workloads}
    assert moved == {"nova-backend", "nova-gateway", "nova-content", "nova-feed", "nova-auth", "nova-media"}
    assert not [s.title for s in plan.steps if "ingress-nginx" in s.title]
    explicit = novadiag.plan(
        novadiag.audit(manifests=[NOVA]), "consolidate", into="nova-prod", move=["ingress-nginx"]
    )
    assert {w.namespace for u in explicit.order for w in u.workloads} == {"ingress-nginx"}
