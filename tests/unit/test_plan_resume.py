"""A consolidation planned again on a half-migrated cluster: the same plan, the steps in place marked done."""

from __future__ import annotations

from typing import Any

import pytest
from plan_support import NOVA, config_map

import novadiag
from novadiag.errors import PlanError
from novadiag.model import SourceInfo
from novadiag.pipeline import audit_snapshot
from novadiag.planning.apply import apply_plan
from novadiag.planning.consolidate import plan_consolidation
from novadiag.planning.formats import render_plan
from novadiag.planning.resume import first_difference
from novadiag.planning.simulate import simulate
from novadiag.planning.values import Plan
from novadiag.snapshot import Snapshot, build_snapshot

OPTIONS: dict[str, Any] = {"into": "nova-prod", "keep": ["kafka", "nova-staging"], "prefer": ["nova-backend/postgres"]}


@pytest.fixture(scope="module")
def first() -> Plan:
    return novadiag.plan(novadiag.audit(manifests=[NOVA]), "consolidate", **OPTIONS)


def _until_first_manual(plan: Plan) -> int:
    return next(i for i, s in enumerate(plan.steps) if s.action == "manual")


def _half_migrated(plan: Plan, count: int) -> Snapshot:
    """The cluster after the plan's first ``count`` steps (what a run that stopped there leaves)."""
    assert plan.context is not None
    return simulate(plan.context.snapshot, plan.steps[:count])


def _replan(snapshot: Snapshot) -> Plan:
    return novadiag.plan(audit_snapshot(snapshot), "consolidate", **OPTIONS)


def _edited(snapshot: Snapshot, kind: str, namespace: str, name: str, key: str, value: str) -> Snapshot:
    objects = [dict(o) for group in snapshot.objects.values() for o in group]
    for obj in objects:
        meta = obj["metadata"]
        if (obj["kind"], meta.get("namespace"), meta["name"]) == (kind, namespace, name):
            obj["data"] = {**obj["data"], key: value}
    return build_snapshot(objects, snapshot.source, trust_sanitized=True)  # type: ignore[arg-type]


def test_planned_again_after_a_stop_it_is_the_same_plan_with_the_done_steps_marked(first: Plan) -> None:
    stop = _until_first_manual(first)
    again = _replan(_half_migrated(first, stop))
    assert [s.title for s in again.steps] == [s.title for s in first.steps]
    creating = {"create", "create-namespace", "copy", "copy-secret"}
    assert again.done == tuple(s.id for s in first.steps[:stop] if s.action in creating)
    assert again.verification is not None and again.verification.ok
    assert again.verification.broken_before == first.verification.broken_before  # type: ignore[union-attr]
    assert again.to_dict()["done"] == list(again.done)


def test_a_fresh_cluster_has_nothing_done(first: Plan) -> None:
    assert first.done == ()
    assert first.to_dict()["done"] == []


@pytest.mark.parametrize(("key", "where"), [("REDIS_URL", "data.REDIS_URL"), ("ADDED_BY_HAND", "data.ADDED_BY_HAND")])
def test_an_object_changed_since_the_stop_is_one_error_naming_it_and_the_field(
    first: Plan, key: str, where: str
) -> None:
    half = _half_migrated(first, _until_first_manual(first))
    changed = _edited(half, "ConfigMap", "nova-prod", "feed-config", key, "edited-by-hand")
    with pytest.raises(PlanError) as caught:
        _replan(changed)
    message = str(caught.value)
    assert "\n" not in message and "edited-by-hand" not in message
    assert f"ConfigMap nova-prod/feed-config already exists and differs from what the step creates at {where};" in (
        message
    )


def test_a_target_namespace_with_its_own_objects_is_planned_as_usual(first: Plan) -> None:
    report = novadiag.audit(manifests=[NOVA])
    assert report.snapshot is not None
    objects = [o for group in report.snapshot.objects.values() for o in group]
    extra = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "nova-prod"}},
        config_map("nova-prod", "unrelated", {"A": "b"}),
    ]
    snapshot = build_snapshot([*objects, *extra], SourceInfo("manifests"), trust_sanitized=True)  # type: ignore[list-item]
    report = audit_snapshot(snapshot)
    plan = novadiag.plan(report, "consolidate", **OPTIONS)
    assert plan.done == ()
    assert [s.title for s in plan.steps] == [s.title for s in plan_consolidation(report, first.options).steps]


def test_after_the_switch_a_plan_made_again_is_refused_with_one_line(first: Plan) -> None:
    switched = next(i for i, s in enumerate(first.steps) if s.phase == "switch" and s.action == "patch")
    half = _half_migrated(first, switched + 1)
    with pytest.raises(PlanError, match=r"^cannot resume: the switch has begun \(Service [^)]+\)[^\n]*$"):
        _replan(half)


@pytest.mark.parametrize(
    ("expected", "actual", "where"),
    [
        ({"spec": {"a": 1}}, {"spec": {"a": 1, "defaulted": True}, "status": {}}, None),
        ({"spec": {"a": 1}}, {"spec": {"a": 2}}, "spec.a"),
        ({"spec": {"a": 1}}, {"spec": {}}, "spec.a"),
        ({"env": [{"name": "X", "value": "1"}]}, {"env": [{"name": "X", "value": "2"}]}, "env[0].value"),
        ({"env": [{"name": "X"}]}, {"env": [{"name": "X"}, {"name": "Y"}]}, "env"),
    ],
)
def test_first_difference_ignores_what_the_server_adds(expected: Any, actual: Any, where: str | None) -> None:
    assert first_difference(expected, actual) == where


def test_every_output_of_a_resumed_plan_says_which_steps_are_already_in_place(first: Plan) -> None:
    again = _replan(_half_migrated(first, _until_first_manual(first)))
    printed: list[str] = []
    result = apply_plan(again, yes=False, out=printed.append)
    assert not result.executed
    assert f"{again.steps[0].id} [prepare] {again.steps[0].title}: already in place, skipped" in printed
    assert f"### {again.steps[0].id}. {again.steps[0].title}" in render_plan(again, "markdown")
    assert "**Already in place** when the plan was made" in render_plan(again, "markdown")
    script = render_plan(again, "script")
    pending = next(s.id for s in again.steps if s.id not in again.done)
    assert "already in place when the plan was made: skipped" in _function(script, again.done[0])
    assert "kubectl" not in _function(script, again.done[0])
    assert "already in place" not in _function(script, pending)


def _function(script: str, step_id: str) -> str:
    return script.split(f"step_{step_id}() {{", 1)[1].split("\n}", 1)[0]


def test_what_the_control_plane_puts_in_the_target_namespace_does_not_stop_a_resume(first: Plan) -> None:
    # a real cluster adds kube-root-ca.crt and the default ServiceAccount to every new namespace: the
    # target then looked like a namespace of the user's own, and the plan made again was refused
    stop = _until_first_manual(first)
    half = _half_migrated(first, stop)
    system = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt", "namespace": "nova-prod"},
         "data": {"ca.crt": "-----BEGIN CERTIFICATE-----"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "nova-prod"}},
    ]
    objects = [dict(o) for group in half.objects.values() for o in group] + system
    again = _replan(build_snapshot(objects, half.source, trust_sanitized=True))  # type: ignore[arg-type]
    assert [s.title for s in again.steps] == [s.title for s in first.steps]
    assert again.verification is not None and again.verification.ok
    assert len(again.done) > 0
