"""Resuming a consolidation on a half-migrated cluster: what a run already created is recognised, not redone.

A run that stops (at a manual step, a failed check, Ctrl-C) leaves the target
namespace holding part of what the plan creates. Planned again from that
cluster, the consolidation would see those objects as residents of the target,
rename the incoming copies around them, and collide with its own work. So the
plan is made from the cluster *without* the plan's own products, which is the
cluster as it was before the first run (the old namespaces are untouched until
the switch), and every create step whose object is already in place is marked
done. That is what ``kubectl apply`` users expect: applying the same thing
twice changes nothing the second time.

An object is the plan's product when a create step of the plan names it: it
lives in the target namespace (or is the target namespace). It is *in place*
when it holds everything the step would write (the server may add defaults and
bookkeeping, never keys of a ConfigMap's or Secret's data). A product that
exists with other content was changed by someone since: it is neither
overwritten nor renamed around, the plan stops with one line naming the object
and the first field that differs (never its value).
Objects in the target that no step creates are the target's own and stay in
the snapshot the plan is made from. When nothing the plan creates is in place,
the cluster is not half-migrated, and the plan is made as usual.

Once the switch has begun (an old Service is already an alias of its copy),
the old objects no longer show how they were, so no plan made again can be the
first one: that is refused with one line, and the script of the first plan
(``--from STEP``, ``--cleanup``) finishes the migration.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from novadiag.errors import PlanError
from novadiag.model import ObjectRef, RawObject
from novadiag.planning.clean import is_system_object
from novadiag.planning.simulate import Key, apply_operation, normalize
from novadiag.planning.values import Plan, Step
from novadiag.redaction import sanitize_secret_value
from novadiag.snapshot import CLUSTER_SCOPED, Snapshot, build_snapshot, object_ref
from novadiag.workloads import is_owned

if TYPE_CHECKING:
    from novadiag.report.core import Report

Planner = Callable[["Report"], Plan]
CREATING = frozenset({"create", "create-namespace", "copy", "copy-secret"})
COMPARED_METADATA = ("name", "namespace", "labels", "annotations")
SERVICE_NAME = "kubernetes.io/service-name"


@dataclass(frozen=True)
class Product:
    """One object a create step makes, and whether the cluster already holds it as the step would write it."""

    step: Step
    difference: str | None

    @property
    def in_place(self) -> bool:
        return self.difference is None


def plan_resuming(report: Report, into: str, make_plan: Planner) -> Plan:
    """``make_plan(report)``, or, on a half-migrated cluster, the same plan with the steps in place marked done."""
    assert report.snapshot is not None
    snapshot = normalize(report.snapshot)
    inside = _objects_in(snapshot, into)
    if not inside:
        return make_plan(report)
    view = without(report, inside)
    plan = make_plan(view)
    claimed = inside & set(_created(plan))
    if claimed != inside:  # the target's own objects stay: the plan must see them
        plan = make_plan(without(report, claimed))
        claimed = inside & set(_created(plan))
    products = _products(plan, snapshot, claimed)
    if not any(p.in_place and p.step.action != "create-namespace" for p in products):
        return make_plan(report)  # an empty target namespace is no half-migration
    _refuse_after_switch(plan, view, into)  # before the differences: after the switch, the plan itself differs
    changed = next((p for p in products if not p.in_place), None)
    if changed is not None:
        raise PlanError(
            f"step {changed.step.id} ({changed.step.title}) cannot resume: {changed.step.object} already exists "
            f"and differs from what the step creates at {changed.difference}; delete it or restore it, then run again"
        )
    return replace(plan, done=tuple(p.step.id for p in products))


def _refuse_after_switch(plan: Plan, view: Report, into: str) -> None:
    """An old Service already an alias into the target: the switch changed the old objects, whose state is gone."""
    assert view.snapshot is not None
    moved = {s.operation.source.namespace for s in plan.steps if s.operation.source is not None}
    for obj in view.snapshot.of("Service"):
        spec, ref = obj.get("spec") or {}, object_ref(obj)
        labels = str(spec.get("externalName") or "").rstrip(".").split(".")
        if spec.get("type") == "ExternalName" and ref.namespace in moved and labels[1:2] == [into]:
            raise PlanError(
                f"cannot resume: the switch has begun (Service {ref.namespace}/{ref.name} already points at "
                f"{into}/{labels[0]}), and a plan made again cannot see the old objects as they were; "
                "finish with the script of the first plan (--from STEP, --cleanup) or its rollback"
            )


def _objects_in(snapshot: Snapshot, namespace: str) -> set[ObjectRef]:
    refs = set()
    for kind, group in snapshot.objects.items():
        for obj in group:
            ref = object_ref(obj)
            if (kind == "Namespace" and ref.name == namespace) or (
                kind not in CLUSTER_SCOPED and ref.namespace == namespace and not is_system_object(kind, obj)
            ):
                refs.add(ref)
    return refs


def without(report: Report, hidden: set[ObjectRef]) -> Report:
    """The report as if ``hidden`` did not exist: their objects, what controllers derived from them
    (pods, endpoints) and the edges that start at them are left out."""
    assert report.snapshot is not None
    raw = [o for group in report.snapshot.objects.values() for o in group]
    gone = {object_ref(o) for o in raw if object_ref(o) in hidden or _derived_from(o, hidden)}
    kept = [o for o in raw if object_ref(o) not in gone]
    snapshot = build_snapshot(kept, report.snapshot.source, gaps=report.snapshot.gaps, trust_sanitized=True)
    edges = tuple(e for e in report.edges if e.source not in gone)
    findings = tuple(f for f in report.findings if f.object not in gone)
    return replace(report, snapshot=snapshot, edges=edges, findings=findings, index=None)


def _derived_from(obj: RawObject, hidden: set[ObjectRef]) -> bool:
    """Owned pods and ReplicaSets, the endpoints of a Service, and what the control plane puts in every
    namespace (``kube-root-ca.crt``, the ``default`` ServiceAccount), in a namespace whose objects are hidden."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    if ObjectRef("Namespace", None, str(namespace)) in hidden and is_system_object(str(obj.get("kind")), obj):
        return True
    if not any(ref.namespace == namespace for ref in hidden):
        return False
    if obj.get("kind") in ("ReplicaSet", "Job", "Pod"):
        return is_owned(obj)
    service = meta.get("name") if obj.get("kind") == "Endpoints" else (meta.get("labels") or {}).get(SERVICE_NAME)
    return obj.get("kind") in ("Endpoints", "EndpointSlice") and ObjectRef("Service", namespace, str(service)) in hidden


def _created(plan: Plan) -> dict[ObjectRef, Step]:
    return {s.object: s for s in plan.steps if s.action in CREATING}


def _products(plan: Plan, snapshot: Snapshot, claimed: set[ObjectRef]) -> list[Product]:
    """Each claimed object against what its step writes (worked out on the snapshot without the products)."""
    store: dict[Key, dict[str, Any]] = {
        (r.kind, r.namespace, r.name): copy.deepcopy(dict(o))
        for group in snapshot.objects.values()
        for o in group
        if (r := object_ref(o)) not in claimed
    }
    products = []
    for step in plan.steps:
        ref = step.object
        if step.action not in CREATING or ref not in claimed:
            continue
        try:
            apply_operation(store, step.operation)
        except (KeyError, ValueError, TypeError) as exc:
            raise PlanError(f"step {step.id} ({step.title}) cannot be worked out to resume: {exc}") from exc
        expected = _as_the_snapshot_keeps(store[(ref.kind, ref.namespace, ref.name)])
        actual = snapshot.get(ref.kind, ref.namespace, ref.name)
        difference = first_difference(_compared(expected), actual or {}) or _added_data_key(expected, actual or {})
        products.append(Product(step, difference))
    return products


def _as_the_snapshot_keeps(obj: dict[str, Any]) -> dict[str, Any]:
    """A Secret's data sanitized as the snapshot it is compared with sanitized the live one.

    The step's product is worked out on sanitized values, with hosts replaced:
    ``pg:5432,pg.old:5432`` becomes ``pg:5432,pg:5432``, which the snapshot of
    the same live value keeps as ``pg:5432`` (a sanitized value names each
    host once). Sanitized again, both read the same.
    """
    if obj.get("kind") != "Secret" or not isinstance(obj.get("data"), Mapping):
        return obj
    data = {k: sanitize_secret_value(k, v) if isinstance(v, str) else v for k, v in obj["data"].items()}
    return {**obj, "data": data}


def _added_data_key(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> str | None:
    """A key added to a ConfigMap's or Secret's data: the server adds none, so a person did."""
    for field in ("data", "binaryData"):
        added = sorted(set(actual.get(field) or {}) - set(expected.get(field) or {}))
        if added:
            return f"{field}.{added[0]}"
    return None


def _compared(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What a create writes and the server keeps as written: metadata beyond names, labels and annotations is its."""
    meta = obj.get("metadata") or {}
    return {
        **{k: v for k, v in obj.items() if k not in ("metadata", "status")},
        "metadata": {k: meta[k] for k in COMPARED_METADATA if k in meta},
    }


def first_difference(expected: Any, actual: Any, path: str = "") -> str | None:
    """The first path where ``actual`` lacks what ``expected`` holds (extra fields in ``actual`` are defaults)."""
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return path or "the top level"
        for key, value in expected.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in actual:
                return where
            found = first_difference(value, actual[key], where)
            if found is not None:
                return found
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return path
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            found = first_difference(e, a, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    return None if expected == actual else path
