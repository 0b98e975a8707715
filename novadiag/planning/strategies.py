"""The quick fixes: ``rewrite``, ``alias`` and ``auto``, one decision per broken edge.

- ``rewrite`` changes the reference to the shortest name that works from the
  source (``Edge.fix_host`` and ``fix_port``), where the value is written: the workload's env, the
  ConfigMap key or the Secret key it came from.
- ``alias`` creates an ExternalName Service named like the short name in the
  source's namespace, pointing at the real Service, so the reference works
  unchanged. It only exists for single-label names with the right port.
- ``reference-grant``: a Gateway API route whose cross-namespace backend no
  ReferenceGrant allows gets the grant created in the backend's namespace
  (one per route kind and namespace, listing the Services it needs). Other
  broken backends of routing objects are manual: the fix names the field.
- ``auto`` picks per edge the least disruptive of the two and says why: an
  alias touches no workload and no configuration, so it wins for plain short
  names; a rewrite wins when an alias cannot help (wrong port, dotted name, the
  name taken or ambiguous, TLS clients that verify the dialled name).

Edges no name change can fix get an explicit reason: an unknown target, a
NetworkPolicy denial, or a Service without ready pods — unless those pods
crash-loop on start-up edges this plan fixes, in which case the edge is marked
as following those fixes. A workload whose start-up name gets an alias is
restarted only when its pods were seen crash-looping: a live cluster (or a
snapshot of one) shows pod states, manifest files show none, and a restart
justified by nothing the source shows is not planned. A pod with ``hostNetwork`` and ``dnsPolicy:
ClusterFirst`` (which silently gets the node's resolver) is fixed by switching
it to ``ClusterFirstWithHostNet``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from novadiag.index import ClusterIndex, ServiceInfo, build_index
from novadiag.model import Edge, ObjectRef
from novadiag.planning.builder import StepBuilder
from novadiag.planning.edits import Edits
from novadiag.planning.operations import Operation
from novadiag.planning.rename import POD_SPEC_PATHS, pod_config_refs, pod_spec_of
from novadiag.planning.routes import routing_change
from novadiag.planning.values import EdgeFix, PlanOptions
from novadiag.routing.gateway import GATEWAY_ROUTE_KINDS, GatewayRules, reference_grant
from novadiag.snapshot import Snapshot

ALIAS_ANNOTATION = "novadiag.dev/alias-for"
MANAGED_BY = {"app.kubernetes.io/managed-by": "novadiag"}
TLS_SCHEMES = frozenset({"https", "grpcs", "rediss", "ldaps", "amqps", "mqtts", "wss", "smtps"})


@dataclass(frozen=True)
class Decision:
    action: str | None
    why: str


@dataclass
class FixContext:
    """What the fix strategies share while deciding, then while building steps."""

    snapshot: Snapshot
    index: ClusterIndex
    options: PlanOptions
    edits: Edits
    aliases: dict[tuple[str, str], tuple[ServiceInfo, list[str]]] = field(default_factory=dict)
    dns_policy: dict[ObjectRef, list[str]] = field(default_factory=lambda: defaultdict(list))
    restart_for_alias: set[ObjectRef] = field(default_factory=set)
    crashlooping: frozenset[ObjectRef] = frozenset()
    grants: dict[tuple[str, str, str], list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    """(backend namespace, route kind, route namespace) -> (Service, edge id) a ReferenceGrant must allow."""


def plan_fixes(
    edges: tuple[Edge, ...],
    snapshot: Snapshot,
    options: PlanOptions,
    *,
    crashlooping: frozenset[ObjectRef] = frozenset(),
) -> tuple[Any, ...]:
    """(steps, fixes, warnings) for the rewrite/alias/auto strategies.

    ``crashlooping``: the workloads whose pods the source showed in CrashLoopBackOff
    (see :func:`crashlooping_workloads`; ``snapshot`` is normalized and holds no pods).
    """
    index = build_index(snapshot, cluster_domain=options.cluster_domain)
    ctx = FixContext(snapshot, index, options, Edits(snapshot), crashlooping=crashlooping)
    decided: dict[str, Decision] = {}
    broken = [e for e in edges if e.broken]
    for edge in broken:
        if edge.status != "no-endpoints":
            decided[edge.id] = _decide(edge, ctx)
    for edge in broken:
        if edge.status == "no-endpoints":
            decided[edge.id] = _follows(edge, broken, decided, ctx)
    builder = StepBuilder()
    step_of = _build_steps(ctx, builder)
    steps = builder.build()
    fixes = []
    for edge in broken:
        d = decided[edge.id]
        ids = builder.remap(step_of.get(edge.id, ()))
        new = _new_reference(edge, d)
        fixes.append(EdgeFix(edge.id, edge.status, d.action, d.why, ids, new))
    warnings = _warnings(ctx)
    return steps, tuple(fixes), warnings


# -- deciding ------------------------------------------------------------------------------------
def _decide(edge: Edge, ctx: FixContext) -> Decision:
    if edge.reference.routing:
        return _routing_decision(edge, ctx)
    if edge.status == "unknown-target":
        return Decision(None, f"no Service anywhere matches {edge.reference.host}: there is nothing to point it at")
    if edge.status == "blocked":
        return Decision(None, "a NetworkPolicy denies this traffic; novadiag does not widen policies on its own")
    if edge.fix_host is None:
        return _dns_policy(edge, ctx)
    strategy = ctx.options.strategy
    alias_problem = _alias_problem(edge, ctx)
    if strategy == "alias":
        if alias_problem:
            return Decision(None, f"no alias possible: {alias_problem}; use --strategy rewrite")
        return _alias(edge, ctx, "alias (as asked)")
    if strategy == "auto" and alias_problem is None:
        why = (
            f"alias: {edge.reference.host} is a short name and {edge.reference.namespace} has no Service of that name; "
            "an ExternalName Service makes it resolve without changing or restarting the workload's configuration"
        )
        return _alias(edge, ctx, why)
    decision = _rewrite(edge, ctx, "rewrite" if strategy == "rewrite" else f"rewrite: {alias_problem}")
    if decision.action is None and strategy == "auto" and alias_problem is None:
        return _alias(edge, ctx, f"alias: {decision.why}")
    return decision


def _rewrite(edge: Edge, ctx: FixContext, why: str) -> Decision:
    assert edge.fix_host is not None
    host, port = edge.fix_host, edge.fix_port
    problem, where = ctx.edits.add_fix(edge.id, edge.reference, host, port)
    if problem is not None:
        return Decision(None, f"cannot rewrite: {problem}")
    return Decision("rewrite", f"{why}; {edge.reference.host} -> {host} in {where}")


def _alias_problem(edge: Edge, ctx: FixContext) -> str | None:
    ref = edge.reference
    host = ref.host.rstrip(".")
    if edge.status == "port-mismatch":
        return "the port is wrong too, and an alias cannot change a port"
    if "." in host:
        return f"{host} is not a short name; a Service cannot be named with dots"
    if edge.target is None:
        return "the target Service is unknown"
    if ctx.index.service(ref.namespace, host) is not None:
        return f"{ref.namespace} already has a Service named {host}"
    if len(ctx.index.services_by_name.get(host, ())) > 1:
        return f"{host} names Services in several namespaces; an explicit name says which one"
    if (ref.scheme or "") in TLS_SCHEMES:
        return f"{ref.scheme} clients verify the certificate against the name they dial, so an alias would fail TLS"
    existing = ctx.aliases.get((ref.namespace, host))
    if existing is not None and existing[0].ref != edge.target:
        return f"an alias {ref.namespace}/{host} already points elsewhere"
    return None


def _alias(edge: Edge, ctx: FixContext, why: str) -> Decision:
    ref = edge.reference
    assert edge.target is not None
    target = ctx.index.service(edge.target.namespace or "default", edge.target.name)
    assert target is not None
    host = ref.host.rstrip(".")
    ctx.aliases.setdefault((ref.namespace, host), (target, []))[1].append(edge.id)
    if ref.startup and ref.workload in ctx.crashlooping:
        ctx.restart_for_alias.add(ref.workload)
    return Decision("alias", f"{why}; ExternalName {ref.namespace}/{host} -> {_fqdn(target, ctx)}")


def crashlooping_workloads(snapshot: Snapshot) -> frozenset[ObjectRef]:
    """The workloads with a pod in CrashLoopBackOff in ``snapshot`` (none in manifest files: they hold no pods)."""
    return frozenset(_owning_workload(pod) for pod in snapshot.of("Pod") if _crash_looping(pod))


def _crash_looping(pod: Mapping[str, Any]) -> bool:
    statuses = (pod.get("status") or {}).get("containerStatuses") or ()
    return any(((s.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff" for s in statuses)


def _owning_workload(pod: Mapping[str, Any]) -> ObjectRef:
    """The workload a pod belongs to: a ReplicaSet ``<deployment>-<hash>`` stands for its Deployment."""
    meta = pod.get("metadata") or {}
    namespace = meta.get("namespace")
    for owner in meta.get("ownerReferences") or ():
        kind, name = str(owner.get("kind", "")), str(owner.get("name", ""))
        if kind == "ReplicaSet" and "-" in name:
            return ObjectRef("Deployment", namespace, name.rsplit("-", 1)[0])
        return ObjectRef(kind, namespace, name)
    return ObjectRef("Pod", namespace, str(meta.get("name")))


def _dns_policy(edge: Edge, ctx: FixContext) -> Decision:
    workload = ctx.snapshot.get(edge.source.kind, edge.source.namespace, edge.source.name) or {}
    spec = pod_spec_of(workload) or {}
    if spec.get("hostNetwork") and str(spec.get("dnsPolicy") or "ClusterFirst") == "ClusterFirst":
        if ctx.options.strategy == "alias":
            return Decision(None, "the pod uses the node's resolver (hostNetwork); an alias cannot help; use rewrite")
        ctx.dns_policy[edge.source].append(edge.id)
        return Decision(
            "dns-policy",
            "hostNetwork with dnsPolicy ClusterFirst silently uses the node's resolver; "
            "set dnsPolicy ClusterFirstWithHostNet so the cluster DNS answers",
        )
    return Decision(None, f"no name reaches the target from this pod's resolver: {edge.detail}")


def _routing_decision(edge: Edge, ctx: FixContext) -> Decision:
    """A missing ReferenceGrant is created; anything else about a routing object is a manual edit."""
    target, source = edge.target, edge.source
    if not _needs_grant(edge, ctx) or target is None or source.namespace is None:
        return Decision(None, routing_change(edge))
    namespace = target.namespace or "default"
    ctx.grants[(namespace, source.kind, source.namespace)].append((target.name, edge.id))
    return Decision(
        "reference-grant",
        f"a ReferenceGrant in {namespace} lets {source.kind} of {source.namespace} name Service {target.name}",
    )


def _needs_grant(edge: Edge, ctx: FixContext) -> bool:
    """Whether the only thing wrong with a route's backend is the ReferenceGrant it lacks."""
    target, source = edge.target, edge.source
    if edge.status != "blocked" or target is None or source.kind not in GATEWAY_ROUTE_KINDS:
        return False
    if target.namespace == source.namespace:
        return False
    rules = GatewayRules(ctx.snapshot)
    route = ctx.snapshot.get(source.kind, source.namespace, source.name) or {}
    spec = route.get("spec")
    attached = rules.attachment(source, spec if isinstance(spec, Mapping) else {}) is None
    return attached and not rules.granted(source, target.namespace or "default", target.name)


def _follows(edge: Edge, broken: list[Edge], decided: dict[str, Decision], ctx: FixContext) -> Decision:
    """A Service without ready pods is fixed when its crash-looping pods' start-up edges are."""
    if edge.target is None:
        return Decision(None, edge.detail)
    svc = ctx.index.service(edge.target.namespace or "default", edge.target.name)
    backing = {w.ref for w in ctx.index.selected_workloads(svc)} if svc is not None else set()
    causes = [e for e in broken if e.source in backing and e.reference.startup]
    if causes and all(decided.get(c.id, Decision(None, "")).action for c in causes):
        names = ", ".join(sorted({str(c.source) for c in causes}))
        return Decision("follows", f"{names} crash-loops on broken start-up edges that this plan fixes")
    return Decision(
        None,
        f"{edge.detail}: no name change helps; scale the workload up or fix the Service's selector",
    )


def rewritten_edge_ids(edges: Iterable[Edge], fixes: Iterable[EdgeFix]) -> dict[str, str]:
    """Old edge id -> the id the rewritten reference has after the plan.

    An edge's id names its host and port, so a rewrite gives the edge a new id; the
    verification re-audit finds the fixed edge under it (an alias keeps the name, and the id).
    """
    by_id = {e.id: e for e in edges}
    out = {}
    for fix in fixes:
        edge = by_id.get(fix.edge)
        if fix.action != "rewrite" or edge is None or edge.fix_host is None:
            continue
        port = edge.reference.port if edge.fix_port is None else edge.fix_port
        out[fix.edge] = replace(edge.reference, host=edge.fix_host.lower(), port=port).edge_id
    return out


def _new_reference(edge: Edge, decision: Decision) -> str | None:
    """The host[:port] the reference names after the plan (``Edge.fix`` holds masked parts of the value)."""
    if decision.action == "rewrite" and edge.fix_host is not None:
        return edge.fix_host if edge.fix_port is None else f"{edge.fix_host}:{edge.fix_port}"
    if decision.action == "alias":
        return edge.reference.host if edge.reference.port is None else f"{edge.reference.host}:{edge.reference.port}"
    return None


def _fqdn(target: ServiceInfo, ctx: FixContext) -> str:
    return f"{target.name}.{target.namespace}.svc.{ctx.index.cluster_domain}"


# -- steps ----------------------------------------------------------------------------------------
def _build_steps(ctx: FixContext, builder: StepBuilder) -> dict[str, tuple[str, ...]]:
    """Fix-phase steps, then waits and a verification; returns edge id -> step ids."""
    step_of: dict[str, list[str]] = defaultdict(list)
    touched: dict[ObjectRef, list[str]] = defaultdict(list)
    for (ns, name), (target, edge_ids) in sorted(ctx.aliases.items()):
        sid = _alias_step(builder, ns, name, target, edge_ids, ctx)
        for e in edge_ids:
            step_of[e].append(sid)
    for workload, edge_ids in sorted(ctx.dns_policy.items()):
        sid = _dns_policy_step(builder, workload, edge_ids, ctx)
        touched[workload].append(sid)
        for e in edge_ids:
            step_of[e].append(sid)
    restarts: dict[ObjectRef, list[str]] = defaultdict(list)
    for change in ctx.edits.in_place_changes():
        title = f"rewrite {change.where}"
        sid = builder.add(
            "fix",
            title,
            change.operation,
            rollback=(change.rollback,),
            fixes=change.edges,
            target_namespace=change.operation.ref.namespace,
        )
        for e in change.edges:
            step_of[e].append(sid)
        if change.operation.ref.kind in ("ConfigMap", "Secret"):
            for w in change.restart:
                restarts[w].append(sid)
        else:
            touched[change.operation.ref].append(sid)
    for workload in sorted(ctx.restart_for_alias):
        restarts[workload].extend(step_of_alias(step_of, ctx, workload))
    for workload, deps in sorted(restarts.items()):
        if workload in touched:
            continue  # an env patch already rolls the pods out, after the data changed
        why = (
            "so it reads the new values"
            if workload not in ctx.restart_for_alias
            else "so its crash-looping pods retry their start-up names now instead of after the back-off"
        )
        sid = builder.add(
            "fix",
            f"restart {workload} {why}",
            Operation("restart", workload),
            depends_on=deps,
            target_namespace=workload.namespace,
        )
        touched[workload].append(sid)
    for key, wanted in sorted(ctx.grants.items()):
        sid = _grant_step(builder, key, wanted)
        for _service, e in wanted:
            step_of[e].append(sid)
    waits = [_wait_step(builder, w, deps, ctx) for w, deps in sorted(touched.items())]
    namespaces = sorted({ns for ns, _ in ctx.aliases} | {w.namespace or "default" for w in touched})
    if namespaces:
        builder.add(
            "verify",
            "re-audit with probes: the fixed edges must resolve and connect",
            Operation("verify", ObjectRef("Namespace", None, namespaces[0]), namespaces=tuple(namespaces)),
            depends_on=waits or builder.ids("fix"),
        )
    return {e: tuple(ids) for e, ids in step_of.items()}


def step_of_alias(step_of: dict[str, list[str]], ctx: FixContext, workload: ObjectRef) -> list[str]:
    ids: list[str] = []
    for (ns, _name), (_t, edge_ids) in ctx.aliases.items():
        if ns == workload.namespace:
            ids.extend(s for e in edge_ids for s in step_of[e])
    return ids


def _grant_step(builder: StepBuilder, key: tuple[str, str, str], wanted: list[tuple[str, str]]) -> str:
    namespace, kind, route_namespace = key
    manifest = reference_grant(namespace, kind, route_namespace, [service for service, _ in wanted])
    ref = ObjectRef("ReferenceGrant", namespace, manifest["metadata"]["name"])
    services = ", ".join(sorted({service for service, _ in wanted}))
    return builder.add(
        "fix",
        f"create ReferenceGrant {namespace}/{ref.name}: {kind} of {route_namespace} may name Service {services}",
        Operation("create", ref, manifest=manifest),
        rollback=(Operation("delete", ref),),
        fixes=[e for _, e in wanted],
        target_namespace=namespace,
    )


def _alias_step(
    builder: StepBuilder, ns: str, name: str, target: ServiceInfo, edge_ids: list[str], ctx: FixContext
) -> str:
    manifest = alias_manifest(ns, name, target, ctx.index.cluster_domain)
    ref = ObjectRef("Service", ns, name)
    return builder.add(
        "fix",
        f"create ExternalName alias {ns}/{name} -> {target.namespace}/{target.name}",
        Operation("create", ref, manifest=manifest),
        rollback=(Operation("delete", ref),),
        fixes=edge_ids,
        target_namespace=ns,
    )


def alias_manifest(ns: str, name: str, target: ServiceInfo, zone: str) -> dict[str, Any]:
    """An ExternalName Service ``ns/name`` answering with the target's FQDN (a CNAME)."""
    spec: dict[str, Any] = {"type": "ExternalName", "externalName": f"{target.name}.{target.namespace}.svc.{zone}"}
    ports = [
        {k: v for k, v in (("name", p.name), ("port", p.port), ("protocol", p.protocol)) if v} for p in target.ports
    ]
    if ports:
        spec["ports"] = ports
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": dict(MANAGED_BY),
            "annotations": {ALIAS_ANNOTATION: f"{target.namespace}/{target.name}"},
        },
        "spec": spec,
    }


def _dns_policy_step(builder: StepBuilder, workload: ObjectRef, edge_ids: list[str], ctx: FixContext) -> str:
    obj = ctx.snapshot.get(workload.kind, workload.namespace, workload.name) or {}
    old = (pod_spec_of(obj) or {}).get("dnsPolicy")
    return builder.add(
        "fix",
        f"set dnsPolicy ClusterFirstWithHostNet on {workload}",
        Operation("patch", workload, patch=_pod_spec_patch(workload.kind, {"dnsPolicy": "ClusterFirstWithHostNet"})),
        rollback=(Operation("patch", workload, patch=_pod_spec_patch(workload.kind, {"dnsPolicy": old})),),
        fixes=edge_ids,
        target_namespace=workload.namespace,
    )


def _pod_spec_patch(kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = fields
    for key in reversed(POD_SPEC_PATHS[kind]):
        node = {key: node}
    return node


def _wait_step(builder: StepBuilder, workload: ObjectRef, deps: list[str], ctx: FixContext) -> str:
    return builder.add(
        "fix",
        f"wait until {workload} is ready",
        Operation("wait-ready", workload),
        depends_on=deps,
        target_namespace=workload.namespace,
    )


def _warnings(ctx: FixContext) -> tuple[str, ...]:
    out = []
    for (kind, ns, name), consumers in sorted(ctx.edits.consumers.items()):
        users = _all_consumers(ctx.snapshot, kind, ns, name)
        others = sorted(str(u) for u in users - consumers)
        if others:
            out.append(
                f"{kind} {ns}/{name} is also read by {', '.join(others)}: they see the new value at their next restart"
            )
    return tuple(out)


def _all_consumers(snapshot: Snapshot, kind: str, ns: str, name: str) -> set[ObjectRef]:

    return {w.ref for w in snapshot.workloads if w.namespace == ns and (kind, name) in pod_config_refs(w.pod_spec)}
