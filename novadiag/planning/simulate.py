"""Proof by simulation: apply the plan's operations to a copy of the snapshot and audit the result.

The simulator executes the very :class:`~novadiag.planning.values.Operation`
records the API runner and the script execute — creates, merge and strategic
patches, Secret copies and rewrites (on the sanitized values, whose hosts are
intact), scales and deletes — on a dict of objects, then builds a new
:class:`~novadiag.snapshot.Snapshot` and runs the ordinary static audit on it.

Both sides are normalized first: what controllers derive (owned ReplicaSets
and Pods, the EndpointSlices and Endpoints of Services with selectors) is
dropped, so "ready endpoints" is judged the same way before and after, from the
workloads that exist and their replica counts. The result is compared edge for
edge with the report the plan was made from, following each edge to the
place, and the name, the plan gives it: an edge that worked and is broken
afterwards (or vanished while its workload lives on) is a regression, and a
plan with a regression is refused.

Then every value the plan writes is checked against the value it replaces
(:func:`value_problems`): a masked value (``***``, ``<redacted>``) must never be
written, and a rewritten value must equal the original with only its hosts
replaced. The audit alone cannot see either: it reads hosts, and a password
lost to a mask leaves the hosts intact.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from novadiag.errors import PlanError
from novadiag.model import ObjectRef, RawObject
from novadiag.pipeline import audit_snapshot
from novadiag.planning.operations import Operation
from novadiag.planning.paths import get_at, masked_paths, path_text, set_at
from novadiag.planning.rename import replace_hosts
from novadiag.planning.values import Step, Verification
from novadiag.snapshot import CLUSTER_SCOPED, Snapshot, build_snapshot, object_ref
from novadiag.workloads import is_owned

if TYPE_CHECKING:
    from novadiag.planning.values import Plan
    from novadiag.report.core import Report

Key = tuple[str, str | None, str]
_CONTAINER_LISTS = ("containers", "initContainers")


def normalize(snapshot: Snapshot) -> Snapshot:
    """The snapshot without what controllers derive (owned pods, endpoints of selector Services).

    Objects come out sorted by kind, namespace and name: a real API server
    lists in storage-key order (``nova-auth/...`` before ``nova/...``), the lab
    and manifest files in others, and every list the planner walks follows
    this one, so the same cluster gives the same plan whatever order it came in.
    """
    items = sorted(_normalized_items(snapshot.objects.values()), key=_sort_key)
    return build_snapshot(items, snapshot.source, gaps=snapshot.gaps, trust_sanitized=True)  # already admitted


def _sort_key(obj: RawObject) -> tuple[str, str, str]:
    ref = object_ref(obj)
    return (ref.kind, ref.namespace or "", ref.name)


def _normalized_items(groups: Iterable[tuple[RawObject, ...]]) -> Iterable[RawObject]:
    objects = [o for group in groups for o in group]
    selector_services = {
        (o["metadata"].get("namespace"), o["metadata"].get("name"))
        for o in objects
        if o.get("kind") == "Service" and (o.get("spec") or {}).get("selector")
    }
    for obj in objects:
        kind = obj.get("kind")
        meta = obj.get("metadata") or {}
        if kind in ("ReplicaSet", "Job", "Pod") and is_owned(obj):
            continue
        if kind == "Endpoints" and (meta.get("namespace"), meta.get("name")) in selector_services:
            continue
        if kind == "EndpointSlice":
            service = (meta.get("labels") or {}).get("kubernetes.io/service-name")
            if (meta.get("namespace"), service) in selector_services:
                continue
        yield obj


def simulate(snapshot: Snapshot, steps: Iterable[Step]) -> Snapshot:
    """The snapshot after every step's operation (checks and manual steps change nothing)."""
    store: dict[Key, dict[str, Any]] = {}
    for group in snapshot.objects.values():
        for obj in group:
            store[_key(object_ref(obj))] = copy.deepcopy(dict(obj))
    for step in steps:
        try:
            apply_operation(store, step.operation)
        except (KeyError, ValueError, TypeError) as exc:
            raise PlanError(f"step {step.id} ({step.title}) cannot be applied to the snapshot: {exc}") from exc
    rebuilt = build_snapshot(list(store.values()), snapshot.source, gaps=snapshot.gaps, trust_sanitized=True)  # type: ignore[arg-type]
    return normalize(rebuilt)


def _key(ref: ObjectRef) -> Key:
    return (ref.kind, ref.namespace, ref.name)


def apply_operation(store: dict[Key, dict[str, Any]], op: Operation) -> None:
    key = _key(op.ref)
    action = op.action
    if action in ("create", "create-namespace", "copy"):
        if key in store:
            raise ValueError(f"{op.ref} already exists")
        assert op.manifest is not None
        store[key] = copy.deepcopy(dict(op.manifest))
    elif action == "copy-secret":
        _copy_secret(store, op)
    elif action == "rewrite-secret":
        _rewrite_data(store[key], op)
    elif action == "edit":
        _edit_values(store[key], op)
    elif action == "patch":
        assert op.patch is not None
        store[key] = strategic_merge(store[key], op.patch) if op.strategic else merge(store[key], op.patch)
    elif action == "scale":
        store[key].setdefault("spec", {})["replicas"] = int(op.replicas or 0)
    elif action == "delete":
        _delete(store, op.ref)


def _copy_secret(store: dict[Key, dict[str, Any]], op: Operation) -> None:
    assert op.source is not None
    source = store[_key(op.source)]
    key = _key(op.ref)
    if key in store:
        raise ValueError(f"{op.ref} already exists")
    meta = source.get("metadata") or {}
    copied = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {k: copy.deepcopy(v) for k, v in meta.items() if k in ("labels", "annotations")},
        "type": source.get("type", "Opaque"),
        "data": dict(source.get("data") or {}),
        **{k: v for k, v in source.items() if k == "novadiagSanitized"},
    }
    copied["metadata"].update({"name": op.ref.name, "namespace": op.ref.namespace})
    _rewrite_data(copied, op)
    store[key] = copied


def _rewrite_data(obj: dict[str, Any], op: Operation) -> None:
    data = obj.setdefault("data", {})
    by_key: dict[str, dict[str, str]] = {}
    for r in op.replacements:
        by_key.setdefault(r.key, {})[r.old] = r.new
    for data_key, mapping in by_key.items():
        if isinstance(data.get(data_key), str):
            data[data_key] = replace_hosts(data[data_key], mapping)


def _edit_values(obj: dict[str, Any], op: Operation) -> None:
    """An ``edit`` on the masked values: their hosts are intact, so the audit sees what the cluster will."""
    for edit in op.host_edits:
        value = get_at(obj, edit.path)
        if not isinstance(value, str):
            raise KeyError(f"{op.ref} has no value at {path_text(edit.path)}")
        set_at(obj, edit.path, replace_hosts(value, edit.mapping))


def _delete(store: dict[Key, dict[str, Any]], ref: ObjectRef) -> None:
    store.pop(_key(ref), None)
    if ref.kind == "Namespace":
        for key in [k for k in store if k[1] == ref.name and k[0] not in CLUSTER_SCOPED]:
            del store[key]


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = copy.deepcopy(dict(target)) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


def strategic_merge(target: Any, patch: Any, field: str | None = None) -> Any:
    """The part of strategic merge the plan uses: containers and env lists merge by ``name``."""
    if isinstance(patch, list) and field in (*_CONTAINER_LISTS, "env") and isinstance(target, list):
        merged = copy.deepcopy(target)
        for item in patch:
            name = item.get("name") if isinstance(item, Mapping) else None
            found = next((i for i, t in enumerate(merged) if isinstance(t, Mapping) and t.get("name") == name), None)
            if found is None:
                merged.append(copy.deepcopy(item))
            else:
                merged[found] = strategic_merge(merged[found], item)
        return merged
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = copy.deepcopy(dict(target)) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = strategic_merge(result.get(key), value, key)
    return result


# -- verification ----------------------------------------------------------------------------------
def verify_plan(plan: Plan) -> Verification:
    """Simulate the plan, re-audit, and compare with the report it was built from."""
    ctx = plan.context
    if ctx is None:
        raise PlanError("the plan carries no snapshot to verify against")
    final = simulate(ctx.snapshot, plan.steps)
    after = audit_snapshot(final, cluster_domain=plan.options.cluster_domain, cluster_dns=plan.options.cluster_dns)
    verification = compare(ctx.baseline, after, ctx.edge_map, plan)
    return replace(verification, value_problems=tuple(value_problems(plan.steps, ctx.snapshot)))


def value_problems(steps: Iterable[Step], snapshot: Snapshot) -> Iterable[str]:
    """Values the plan would write wrongly: a mask, or a change outside the hosts (steps and rollbacks)."""
    for step in steps:
        for op in (step.operation, *step.rollback):
            payload = _payload(op)
            if payload is None:
                continue
            filled = {e.path for e in op.host_edits} if op.live_values else set()
            for path in masked_paths(payload):
                if path not in filled:
                    yield f"step {step.id}: {op.ref} {path_text(path)}: would write a masked value"
            yield from _changes_beyond_hosts(step.id, op, payload, snapshot)


def _payload(op: Operation) -> Mapping[str, Any] | None:
    if op.action in ("create", "create-namespace", "copy"):
        return op.manifest
    return op.patch if op.action == "patch" else None


def _changes_beyond_hosts(step_id: str, op: Operation, payload: Mapping[str, Any], snapshot: Snapshot) -> Iterable[str]:
    """Each recorded host edit: the written value is the original with those hosts replaced, or a problem."""
    original_ref = op.source if op.action in ("create", "copy") and op.source is not None else op.ref
    original = snapshot.get(original_ref.kind, original_ref.namespace, original_ref.name)
    if original is None:
        return  # a rollback copied back from an object the plan creates: checked when that copy was made
    for edit in op.host_edits:
        before, after = get_at(original, edit.path), get_at(payload, edit.path)
        if isinstance(before, str) and isinstance(after, str) and after != replace_hosts(before, edit.mapping):
            yield (
                f"step {step_id}: {op.ref} {path_text(edit.path)}: the new value differs from the original "
                "outside the host names"
            )


def compare(before: Report, after: Report, edge_map: Mapping[str, str | None], plan: Plan) -> Verification:
    """Edge for edge: fixed, still broken, and regressions (worked before, broken or gone after)."""
    after_by_id = {e.id: e for e in after.edges}
    live = {w.ref for w in after.snapshot.workloads} if after.snapshot is not None else set()
    fixed: list[str] = []
    still: list[str] = []
    regressions: list[str] = []
    for edge in before.edges:
        mapped = edge_map.get(edge.id, edge.id)
        now = after_by_id.get(mapped) if mapped is not None else None
        if edge.broken:
            (fixed if now is not None and not now.broken else still).append(edge.id)
        elif now is not None and now.broken:
            regressions.append(f"{edge.id} -> {now.id}: {now.status}: {now.detail}")
        elif now is None and mapped is not None and mapped_source(mapped) in live:
            regressions.append(f"{edge.id}: no longer found as {mapped}")
    broken_after = [e for e in after.edges if e.broken]
    unresolved = tuple(e for c in plan.conflicts if not c.resolved for e in c.edges)
    return Verification(
        broken_before=len(before.broken),
        broken_after=len(broken_after),
        edges_before=len(before.edges),
        edges_after=len(after.edges),
        fixed=tuple(fixed),
        still_broken=tuple(still),
        regressions=tuple(regressions),
        unresolved=unresolved,
        notes=tuple(f"{e.id}: {e.status}: {e.detail}" for e in broken_after),
    )


_KINDS = {k.lower(): k for k in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod")}


def mapped_source(edge_id: str) -> ObjectRef | None:
    """The workload an edge id names (``ns/kind/name/...``)."""
    parts = edge_id.split("/")
    if len(parts) < 3:
        return None
    return ObjectRef(_KINDS.get(parts[1], parts[1]), parts[0], parts[2])
