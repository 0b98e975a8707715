"""Consolidation: move the workloads and Services of several namespaces into one, blue-green.

The order of events is the zero-downtime recipe that a ``sed``-based move
script does not follow:

1. **prepare** — create the target namespace, then what the workloads use
   (ServiceAccounts, ConfigMaps, Secrets copied at run time, new empty claims,
   Roles, RoleBindings, NetworkPolicies), and let policies and bindings in
   namespaces that stay also admit the target;
2. **deploy** — unit by unit in dependency order (``order.py``): create the
   cleaned, rewritten workload next to the old one, its Services, wait until it
   is ready; stateful units get a data-migration step;
3. **verify** — re-audit the target namespace with probes;
4. **switch** — rewrite references in namespaces that stay, turn each old
   Service into an ExternalName alias of its new copy (the gateway last: that
   is where outside traffic moves), scale the old workloads to zero;
5. **grace** — keep the old objects (scaled down) for the grace period;
6. **cleanup** — delete them, only with ``--allow-delete``.

Each step carries its rollback. References are rewritten where they are
written (``edits.py``) only when the name would stop working (``names.py``),
and the whole plan is proven by simulation (``simulate.py``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from novadiag.index import build_index, service_info
from novadiag.model import ROUTING_KINDS, WORKLOAD_KINDS, Edge, ObjectRef, RawObject
from novadiag.netpol.policy import namespace_labels as namespace_labels_of
from novadiag.planning.blue_green import build_steps
from novadiag.planning.builder import StepBuilder
from novadiag.planning.clean import clean_object
from novadiag.planning.datamove import is_stateful
from novadiag.planning.edits import Edits
from novadiag.planning.layout import (
    namespace_labels,
    plan_layout,
    renames_by_namespace,
)
from novadiag.planning.moves import Moves
from novadiag.planning.names import next_name
from novadiag.planning.netpol import PodMap, rewrite_moved_policy
from novadiag.planning.order import dependency_order
from novadiag.planning.rename import (
    ORIGIN_LABEL,
    pod_spec_of,
    rename_pod_refs,
    rewrite_role_binding,
)
from novadiag.planning.routes import retarget_routing_copy, routing_change
from novadiag.planning.simulate import normalize
from novadiag.planning.values import Conflict, EdgeFix, Plan, PlanContext, PlanOptions, Rewrite, Unit
from novadiag.snapshot import CLUSTER_SCOPED, Snapshot, build_snapshot, object_ref
from novadiag.targets import intended_target

GATEWAY_WORDS = ("gateway", "ingress")
SCALABLE = frozenset({"Deployment", "StatefulSet", "ReplicaSet"})


def plan_consolidation(report: Any, options: PlanOptions) -> Plan:
    """The consolidation plan for ``report`` (its snapshot and edges)."""
    snapshot = normalize(report.snapshot)
    index = build_index(snapshot, cluster_domain=options.cluster_domain)
    layout = plan_layout(snapshot, options, index)
    moves = Moves(snapshot, options, layout, index, copy_edits=Edits(snapshot), kept_edits=Edits(snapshot))
    make_copies(moves)
    moves.final_index = build_index(_final_layout(moves), cluster_domain=options.cluster_domain)
    edges = sorted(report.edges, key=lambda e: e.id)  # not the listing's order: see simulate.normalize
    for edge in edges:
        if edge.reference.routing:
            _follow_routing_edge(moves, edge)
        else:
            _follow_edge(moves, edge)
    _apply_copy_edits(moves)
    units = _units(moves)
    builder = StepBuilder()
    created, fix_steps = build_steps(moves, units, builder)
    steps = builder.build()
    conflicts = _with_edges(layout.conflicts, edges, moves)
    fixes = _edge_fixes(edges, moves, builder.remap, created, fix_steps)
    steps = _attach_fixes(steps, fixes)
    return Plan(
        options=options,
        source=report.source,
        steps=steps,
        order=tuple(units),
        fixes=tuple(fixes),
        rewrites=tuple(moves.rewrites),
        conflicts=tuple(conflicts),
        warnings=tuple(_warnings(moves)),
        context=PlanContext(snapshot=snapshot, baseline=report, edge_map=moves.edge_map),
    )


def _attach_fixes(steps: tuple[Any, ...], fixes: list[EdgeFix]) -> tuple[Any, ...]:
    """Each step lists the broken edges it fixes (a move fixes edges without rewriting them)."""
    by_step: dict[str, list[str]] = defaultdict(list)
    for fix in fixes:
        for step_id in fix.steps:
            by_step[step_id].append(fix.edge)
    return tuple(
        replace(s, fixes=tuple(dict.fromkeys((*s.fixes, *by_step[s.id])))) if s.id in by_step else s for s in steps
    )


# -- copies ----------------------------------------------------------------------------------------
def make_copies(moves: Moves) -> None:
    """Cleaned copies of every moved object, in the target namespace, with renamed references."""
    layout = moves.layout
    renames = renames_by_namespace(layout)
    moved_ns = {ns: layout.into for ns in layout.moved_namespaces}
    keep_old = set(layout.moved_namespaces) - set(layout.deleted_namespaces)
    origin = bool(_overlaps(moves))
    accounts = {(r.namespace or "", r.name): n for r, n in layout.renames.items() if r.kind == "ServiceAccount"}
    policies = []
    for ref in (*layout.workloads, *layout.services, *layout.configs, *layout.extras):
        if ref.kind == "Secret":
            continue  # copied at apply time: the snapshot holds no values
        obj = moves.snapshot.get(ref.kind, ref.namespace, ref.name)
        assert obj is not None
        new = clean_object(obj, namespace=layout.into)
        new["metadata"]["name"] = layout.renames.get(ref, ref.name)
        ns_renames = renames.get(ref.namespace or "default", {})
        if ref.kind in WORKLOAD_KINDS:
            spec = pod_spec_of(new)
            if spec is not None:
                rename_pod_refs(spec, ns_renames)
            if origin:
                _add_origin(new, ref.namespace or "default")
        elif ref.kind == "RoleBinding":
            new = rewrite_role_binding(new, moved_ns, keep_old=keep_old, renamed_accounts=accounts)
            role = new.get("roleRef") or {}
            if role.get("kind") == "Role" and ("Role", role.get("name")) in ns_renames:
                role["name"] = ns_renames[("Role", role["name"])]
        elif ref.kind == "NetworkPolicy":
            policies.append(ref)
        elif ref.kind == "Service":
            _retarget_alias(new, moves)
        elif ref.kind in ROUTING_KINDS:
            retarget_routing_copy(new, ref.namespace or "default", moved_ns)
        moves.copies[ref] = new
    if origin:
        _narrow_overlapping_selectors(moves)
    moves.pods = pod_map(moves)
    for ref in policies:
        obj = moves.snapshot.get(ref.kind, ref.namespace, ref.name) or {}
        new = rewrite_moved_policy(obj, moves.pods, namespace=layout.into)
        moves.copies[ref] = {**clean_object(new, namespace=layout.into)}
        moves.copies[ref]["metadata"]["name"] = layout.renames.get(ref, ref.name)


def pod_map(moves: Moves) -> PodMap:
    """Where every workload's pods are before and after (moved, retired into the survivor, or staying)."""
    layout = moves.layout
    before = {w.ref: (w.namespace, tuple(sorted(w.pod_labels.items()))) for w in moves.snapshot.workloads}
    after = dict(before)
    for ref in layout.workloads:
        after[ref] = (layout.into, tuple(sorted(_pod_labels(moves.copies[ref]).items())))
    for loser, winner in layout.retired_services.items():
        obj = moves.snapshot.get("Service", winner.namespace, winner.name)
        backing = [w.ref for w in moves.index.selected_workloads(service_info(obj))] if obj else []
        if backing:
            for w in layout.retired_workloads:
                if w.namespace == loser.namespace:
                    after[w] = after[backing[0]]
    ns_before = namespace_labels_of(moves.snapshot)
    ns_after = {ns: labels for ns, labels in ns_before.items() if ns not in layout.deleted_namespaces}
    ns_after[layout.into] = {**ns_before.get(layout.into, {}), **namespace_labels(moves.snapshot, layout)}
    return PodMap(before, after, ns_before, ns_after, {ns: layout.into for ns in layout.moved_namespaces})


def _pod_labels(obj: Mapping[str, Any]) -> dict[str, str]:
    spec = obj.get("spec") or {}
    template = (
        spec.get("template")
        if obj.get("kind") != "CronJob"
        else ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
    )
    meta = (template or {}).get("metadata") if obj.get("kind") != "Pod" else obj.get("metadata")
    return {str(k): str(v) for k, v in ((meta or {}).get("labels") or {}).items()}


def _overlaps(moves: Moves) -> list[ObjectRef]:
    """Moved Services whose selector would also pick pods that came from another namespace."""
    layout = moves.layout
    pods = [
        (w.namespace, dict(w.pod_labels))
        for w in moves.snapshot.workloads
        if w.ref in layout.moved or w.namespace == layout.into
    ]
    out = []
    for ref in layout.services:
        obj = moves.snapshot.get("Service", ref.namespace, ref.name) or {}
        selector = (obj.get("spec") or {}).get("selector") or {}
        if selector and any(
            ns != ref.namespace and all(labels.get(k) == v for k, v in selector.items()) for ns, labels in pods
        ):
            out.append(ref)
    return out


def _add_origin(obj: dict[str, Any], namespace: str) -> None:
    spec = obj.get("spec") or {}
    template = (
        spec.get("template")
        if obj.get("kind") != "CronJob"
        else (spec.get("jobTemplate") or {}).get("spec", {}).get("template")
    )
    if obj.get("kind") == "Pod":
        template = obj
    if isinstance(template, dict):
        template.setdefault("metadata", {}).setdefault("labels", {})[ORIGIN_LABEL] = namespace


def _narrow_overlapping_selectors(moves: Moves) -> None:
    """Services and controllers that would also pick another namespace's pods keep to their own."""
    templates = [(ref.namespace, _pod_labels(moves.copies[ref])) for ref in moves.layout.workloads]
    for ref in moves.layout.workloads:
        selector = ((moves.copies[ref].get("spec") or {}).get("selector") or {}).get("matchLabels")
        if isinstance(selector, dict) and any(
            ns != ref.namespace and all(labels.get(k) == v for k, v in selector.items()) for ns, labels in templates
        ):
            selector[ORIGIN_LABEL] = ref.namespace or "default"
    for ref in _overlaps(moves):
        selector = moves.copies[ref].setdefault("spec", {}).setdefault("selector", {})
        selector[ORIGIN_LABEL] = ref.namespace or "default"
        moves.warnings.append(
            f"Service {ref.namespace}/{ref.name} would select pods from other namespaces in {moves.into}: "
            f"its selector is narrowed with {ORIGIN_LABEL}={ref.namespace}"
        )


def _retarget_alias(service: dict[str, Any], moves: Moves) -> None:
    """An ExternalName copy that named a moved namespace names the target namespace."""
    spec = service.get("spec") or {}
    name = spec.get("externalName")
    if spec.get("type") != "ExternalName" or not isinstance(name, str):
        return
    labels = name.rstrip(".").split(".")
    if len(labels) >= 2 and labels[1] in moves.layout.moved_namespaces:
        labels[1] = moves.into
        spec["externalName"] = ".".join(labels)


def _final_layout(moves: Moves) -> Snapshot:
    """The objects after the plan, before references are rewritten (names resolve the same)."""
    layout = moves.layout
    gone_ns = set(layout.deleted_namespaces)
    gone = {*layout.moved, *layout.retired_workloads, *layout.retired_services, *layout.dropped_aliases}
    items: list[RawObject] = []
    for kind, group in moves.snapshot.objects.items():
        for obj in group:
            ref = object_ref(obj)
            ns = ref.name if kind in CLUSTER_SCOPED else ref.namespace
            if ns in gone_ns or ref in gone:
                continue
            items.append(obj)
    items.extend(moves.copies.values())  # type: ignore[arg-type]
    if moves.into not in moves.snapshot.namespaces:
        items.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": moves.into}})
    return build_snapshot(items, moves.snapshot.source, trust_sanitized=True)  # objects of an admitted snapshot


# -- references ------------------------------------------------------------------------------------
def _follow_edge(moves: Moves, edge: Edge) -> None:
    """Where one edge's source and target end up, and the name the reference must use there."""
    layout = moves.layout
    ref = edge.reference
    source = ref.workload
    if source in layout.retired_workloads:
        moves.edge_map[edge.id] = None
        return
    moved = layout.moves(source)
    new_source = layout.new_ref(source)
    meant = edge.target or edge.resolves_to
    if meant is None:
        moves.edge_map[edge.id] = _edge_id(new_source, edge, ref.host, ref.port)
        return
    new_target = layout.service_after(meant)
    if not moved and new_target == meant:
        return
    assert moves.final_index is not None
    target = moves.final_index.service(new_target.namespace or "default", new_target.name)
    if target is None:
        moves.problems[edge.id] = f"{meant} has no counterpart after the plan"
        moves.edge_map[edge.id] = _edge_id(new_source, edge, ref.host, ref.port)
        return
    if moved:
        for w in moves.final_index.selected_workloads(target):
            moves.needs[source].add(w.ref)
        if meant in layout.retired_services:
            moves.needs_retired[source].add(meant)
    _rename_reference(moves, edge, new_source, target)


def _follow_routing_edge(moves: Moves, edge: Edge) -> None:
    """A backend of a copied Ingress or route: the copy names the Service where it lives after the plan.

    A routing object that stays while its backend moves is not rewritten: its
    change is a manual step (a warning naming the field and the grant it needs).
    """
    layout = moves.layout
    source = edge.reference.workload
    meant = edge.target or edge.resolves_to
    after = layout.service_after(meant) if meant is not None else None
    if not layout.moves(source):
        if meant is not None and after is not None and after != meant:
            moves.warnings.append(_staying_route_step(edge, after, moves.index.cluster_domain))
        return
    new_source = layout.new_ref(source)
    if after is None:
        moves.edge_map[edge.id] = _edge_id(new_source, edge, edge.reference.host, edge.reference.port)
        return
    host = after.name if after.namespace == new_source.namespace else f"{after.name}.{after.namespace}"
    moves.edge_map[edge.id] = _edge_id(new_source, edge, host, edge.reference.port)


def _staying_route_step(edge: Edge, after: ObjectRef, zone: str) -> str:
    source = edge.source
    if source.kind == "VirtualService":
        return (
            f"{source} {edge.reference.location} names a Service that moves to {after.namespace}: set "
            f"{edge.reference.location}.host to {after.name}.{after.namespace}.svc.{zone} (Istio expands no "
            "dotted host), and move its DestinationRule subsets along"
        )
    field = f"{edge.reference.location}.namespace" if source.kind != "Ingress" else None
    if field is None:
        return (
            f"{source} {edge.reference.location} names a Service that moves to {after.namespace}: an Ingress "
            f"reaches only its own namespace; recreate it in {after.namespace} (the old Service stays as an alias "
            "until cleanup)"
        )
    return (
        f"{source} {edge.reference.location} names a Service that moves to {after.namespace}: set {field} to "
        f"{after.namespace} and add in {after.namespace} a ReferenceGrant from {source.kind} of {source.namespace}"
    )


def _rename_reference(moves: Moves, edge: Edge, new_source: ObjectRef, target: Any) -> None:
    ref = edge.reference
    obj = moves.copies.get(ref.workload) or moves.snapshot.get(
        ref.workload.kind, ref.workload.namespace, ref.workload.name
    )
    pod_spec = pod_spec_of(obj or {}) or {}
    hostname = intended_target(ref.host, ref.namespace, moves.index).hostname
    assert moves.final_index is not None
    new_host, why = next_name(
        ref.host,
        target,
        pod_spec,
        new_source.namespace or "default",
        moves.final_index,
        hostname=hostname,
        cluster_dns=moves.options.cluster_dns,
    )
    new_port = ref.port
    if edge.status == "port-mismatch" and edge.fix_host:
        new_port = edge.fix_port or ref.port
        if new_host == ref.host:
            why = f"port {ref.port} is not exposed by {target.namespace}/{target.name}"
    where = f"{ref.slot} of {ref.workload}"
    if new_host is None:
        moves.problems[edge.id] = why
        moves.rewrites.append(Rewrite(edge.id, ref.host, ref.host, where, why))
        moves.edge_map[edge.id] = _edge_id(new_source, edge, ref.host, ref.port)
        return
    if new_host != ref.host or new_port != ref.port:
        edits = moves.copy_edits if moves.layout.moves(ref.workload) else moves.kept_edits
        assert edits is not None
        problem, where = edits.add_fix(edge.id, ref, new_host, new_port)
        if problem is not None:
            moves.problems[edge.id] = f"cannot rewrite: {problem}"
            moves.rewrites.append(
                Rewrite(edge.id, ref.host, ref.host, where or f"{ref.slot}", f"cannot rewrite: {problem}")
            )
            moves.edge_map[edge.id] = _edge_id(new_source, edge, ref.host, ref.port)
            return
    moves.rewrites.append(Rewrite(edge.id, ref.host, new_host, where, why))
    moves.edge_map[edge.id] = _edge_id(new_source, edge, new_host, new_port)


def _edge_id(source: ObjectRef, edge: Edge, host: str, port: int | None) -> str:
    """The id the edge has once its workload is ``source`` and it names ``host:port``."""
    return replace(edge.reference, workload=source, host=host.lower(), port=port).edge_id


def _apply_copy_edits(moves: Moves) -> None:
    edits = moves.copy_edits
    assert edits is not None
    for ref, obj in moves.copies.items():
        if ref.kind in WORKLOAD_KINDS:
            edits.apply_to_workload(ref, obj)
        elif ref.kind == "ConfigMap":
            edits.apply_to_config_map(ref.namespace or "default", ref.name, obj)


# -- units -----------------------------------------------------------------------------------------
def _units(moves: Moves) -> list[Unit]:
    """Moved workloads in dependency order, each with the moved Services that select it."""
    layout = moves.layout
    assert moves.final_index is not None
    back = {layout.new_ref(w): w for w in layout.workloads}
    needs = {w: {back[d] for d in deps if d in back} for w, deps in moves.needs.items()}
    gateways = _gateways(moves)
    order = dependency_order(layout.workloads, needs, last=gateways)
    services_of: dict[ObjectRef, list[ObjectRef]] = defaultdict(list)
    for svc in layout.services:
        obj = moves.snapshot.get("Service", svc.namespace, svc.name)
        selected = [w.ref for w in moves.index.selected_workloads(service_info(obj))] if obj else []
        home = next((w for unit, _ in order for w in unit if w in selected), None)
        services_of[home or ObjectRef("Namespace", None, "")].append(svc)
    units: list[Unit] = []
    loose = services_of.pop(ObjectRef("Namespace", None, ""), [])
    if loose:
        units.append(Unit(1, (), tuple(loose), layout.into))
    for members, cycle in order:
        services = tuple(s for m in members for s in services_of.get(m, ()))
        stateful = any(is_stateful(moves.snapshot.get(m.kind, m.namespace, m.name) or {}) for m in members)
        units.append(
            Unit(
                len(units) + 1,
                members,
                services,
                layout.into,
                cycle=cycle,
                stateful=stateful,
                gateway=any(m in gateways for m in members),
            )
        )
    return units


def _gateways(moves: Moves) -> set[ObjectRef]:
    """Workloads that take outside traffic: named by the user, else by their name or Service type."""
    layout = moves.layout
    if moves.options.gateways:
        wanted = set(moves.options.gateways)
        return {w for w in layout.workloads if f"{w.namespace}/{w.name}" in wanted}
    found = {w for w in layout.workloads if any(word in w.name for word in GATEWAY_WORDS)}
    for svc in layout.services:
        obj = moves.snapshot.get("Service", svc.namespace, svc.name) or {}
        if (obj.get("spec") or {}).get("type") in ("LoadBalancer", "NodePort"):
            found |= {w.ref for w in moves.index.selected_workloads(service_info(obj))}
    return found & set(layout.workloads)


# -- what the plan says about each edge ------------------------------------------------------------
def _with_edges(conflicts: list[Conflict], edges: Any, moves: Moves) -> list[Conflict]:
    """Unresolved conflicts list the edges that wait on them."""
    out = []
    held = moves.layout.held
    for c in conflicts:
        if c.resolved:
            out.append(c)
            continue
        names = {s for s in c.sources}
        waiting = tuple(
            e.id
            for e in edges
            if (e.target or e.resolves_to) is not None
            and f"{(e.target or e.resolves_to).namespace}/{(e.target or e.resolves_to).name}" in names
            and ((e.target or e.resolves_to) in held or e.source in held or moves.layout.moves(e.source))
        )
        out.append(Conflict(c.kind, c.name, c.namespace, c.sources, c.resolution, c.winner, c.resolved, waiting))
    return out


def _edge_fixes(
    edges: Any, moves: Moves, remap: Any, created: Mapping[ObjectRef, str], fix_steps: Mapping[str, list[str]]
) -> list[EdgeFix]:
    fixes = []
    for edge in edges:
        if not edge.broken:
            continue
        problem = moves.problems.get(edge.id)
        if edge.reference.routing:
            fixes.append(_routing_fix(edge, moves, remap, created))
        elif edge.status == "unknown-target":
            fixes.append(EdgeFix(edge.id, edge.status, None, f"no Service anywhere matches {edge.reference.host}"))
        elif edge.status == "blocked":
            fixes.append(EdgeFix(edge.id, edge.status, None, "a NetworkPolicy denies it; not changed by a move"))
        elif problem is not None:
            fixes.append(EdgeFix(edge.id, edge.status, None, problem))
        else:
            fixes.append(_moved_fix(edge, moves, remap, created, fix_steps))
    return fixes


def _routing_fix(edge: Edge, moves: Moves, remap: Any, created: Mapping[ObjectRef, str]) -> EdgeFix:
    """A broken backend of a routing object: fixed when its copy names a Service in its own namespace."""
    mapped = moves.edge_map.get(edge.id)
    source = edge.reference.workload
    new_host = None if mapped is None else mapped.rsplit("/", 1)[1].rsplit(":", 1)[0]
    step = created.get(source)
    if moves.layout.moves(source) and step and new_host is not None and "." not in new_host:
        detail = f"copied into {moves.layout.into} next to its backend; the copy names {new_host}"
        return EdgeFix(edge.id, edge.status, "consolidate", detail, remap([step]), new_host)
    return EdgeFix(edge.id, edge.status, None, routing_change(edge))


def _moved_fix(
    edge: Edge, moves: Moves, remap: Any, created: Mapping[ObjectRef, str], fix_steps: Mapping[str, list[str]]
) -> EdgeFix:
    layout = moves.layout
    source = edge.reference.workload
    mapped = moves.edge_map.get(edge.id)
    new_host = None if mapped is None else mapped.rsplit("/", 1)[1]
    steps = [s for s in (created.get(source), *fix_steps.get(edge.id, ())) if s]
    if layout.moves(source):
        detail = f"moves into {layout.into}"
        meant = edge.target or edge.resolves_to
        if meant is not None and layout.moves(meant):
            detail += " together with its target"
        detail += f"; the reference reads {new_host} there"
    elif steps:
        detail = f"the reference is rewritten to {new_host}"
    else:
        return EdgeFix(edge.id, edge.status, None, "neither its source nor its target moves")
    return EdgeFix(edge.id, edge.status, "consolidate", detail, remap(steps), new_host)


def _warnings(moves: Moves) -> list[str]:
    layout = moves.layout
    out = list(moves.warnings) + list(layout.missing)
    moved_ns = ", ".join(layout.moved_namespaces)
    out.append(
        f"Ingresses and Gateway API objects of {moved_ns} are copied into {layout.into} (backendRef and parentRef "
        "namespaces rewritten); old and new serve the same hosts until cleanup; also check ClusterRoleBindings "
        "naming their ServiceAccounts"
    )
    for ref in layout.unused:
        out.append(f"{ref} is used by no moved workload: not copied (deleted with its namespace at cleanup)")
    for group in moves.snapshot.objects.values():
        for obj in group:
            labels = (obj.get("metadata") or {}).get("labels") or {}
            ref = object_ref(obj)
            if ref in layout.moved and str(labels.get("app.kubernetes.io/managed-by", "")).lower() == "helm":
                out.append(f"{ref} is managed by Helm: move it with its chart, or the release will recreate it")
    for ref in layout.services:
        obj = moves.snapshot.get("Service", ref.namespace, ref.name) or {}
        if (obj.get("spec") or {}).get("type") in ("LoadBalancer", "NodePort"):
            out.append(f"{ref} is a {obj['spec']['type']}: its copy gets new node ports / a new address; repoint DNS")
    for ref in layout.configs:
        if ref.kind == "PersistentVolumeClaim":
            out.append(f"{ref}: the copy is a new EMPTY claim; its data moves only by the data-migration steps")
    return out
