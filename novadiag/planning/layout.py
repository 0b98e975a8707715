"""What a consolidation moves, what it cannot, and what the target namespace ends up holding.

Moving namespaces into one turns names that were unique per namespace into
names that must be unique together. Three cases, handled differently on
purpose:

- **Services (and workloads) with the same name** (Nova's two ``postgres``) are
  two different things a short name could mean. Picking one silently would
  re-route traffic, so it is a conflict that is only resolved as told
  (``prefer``): the preferred one moves; the others are *retired* — their
  Service, the workloads it selects and the Services that select only those
  — and references to them are redirected to the survivor, with a
  data-migration step. Without a preference they are *held*: left where they
  are, still reachable, and the plan says the consolidation is incomplete.
- **ConfigMaps, Secrets, ServiceAccounts, claims, Roles, RoleBindings and
  NetworkPolicies with the same name** are private to the workloads of their
  namespace, so a copy is renamed ``<name>-<old namespace>`` and every
  reference to it in the moved objects follows. Reported, resolved. The one
  exception: NetworkPolicies of one name whose rules are identical in every
  moved namespace (a ``default-deny``) land once, copied from the first of
  those namespaces in name order (``nova`` before ``nova-auth``), whatever
  order the cluster listed them in.
- **ExternalName aliases** whose target moves into the same namespace under
  the alias's own name are redundant after the move and are dropped.

The objects kept (``kafka``, ``nova-staging``) and those already in the target
take part in the checks but never move. By default a namespace that runs only
an ingress controller or a Gateway data plane
(:func:`~novadiag.routing.dataplane.controller_namespaces`) is kept too: it
serves the whole cluster, and no application's consolidation is its move
(``move`` names it when it should).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from novadiag.errors import ConfigError, PlanError
from novadiag.index import ClusterIndex, service_info
from novadiag.model import ROUTING_KINDS, ObjectRef, RawObject
from novadiag.planning.clean import is_system_object
from novadiag.planning.kubectl import check_name
from novadiag.planning.rename import pod_config_refs
from novadiag.planning.values import Conflict, PlanOptions
from novadiag.routing.dataplane import controller_namespaces
from novadiag.snapshot import Snapshot, object_ref
from novadiag.workloads import Workload

SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "default"})
CONFIG_KINDS = ("ServiceAccount", "ConfigMap", "Secret", "PersistentVolumeClaim")
EXTRA_KINDS = ("Role", "RoleBinding", "NetworkPolicy", *ROUTING_KINDS)


@dataclass
class Layout:
    """The decisions of a consolidation, before any reference is rewritten."""

    into: str
    moved_namespaces: tuple[str, ...]
    workloads: list[ObjectRef] = field(default_factory=list)
    services: list[ObjectRef] = field(default_factory=list)
    configs: list[ObjectRef] = field(default_factory=list)
    extras: list[ObjectRef] = field(default_factory=list)
    retired_workloads: list[ObjectRef] = field(default_factory=list)
    retired_services: dict[ObjectRef, ObjectRef] = field(default_factory=dict)
    held: set[ObjectRef] = field(default_factory=set)
    dropped_aliases: list[ObjectRef] = field(default_factory=list)
    renames: dict[ObjectRef, str] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    unused: list[ObjectRef] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    moved: set[ObjectRef] = field(default_factory=set)

    @property
    def deleted_namespaces(self) -> tuple[str, ...]:
        """Moved namespaces left with nothing held: deleted in the cleanup phase."""
        held_ns = {ref.namespace for ref in self.held}
        return tuple(ns for ns in self.moved_namespaces if ns not in held_ns)

    def moves(self, ref: ObjectRef) -> bool:
        return ref in self.moved

    def new_ref(self, ref: ObjectRef) -> ObjectRef:
        """Where an object lives after the plan (itself when it does not move)."""
        if ref in self.moved:
            return ObjectRef(ref.kind, self.into, self.renames.get(ref, ref.name))
        return ref

    def service_after(self, ref: ObjectRef) -> ObjectRef:
        """The Service that answers for ``ref`` after the plan: moved, the survivor of a conflict, or itself."""
        winner = self.retired_services.get(ref)
        return self.new_ref(winner if winner is not None else ref)


def plan_layout(snapshot: Snapshot, options: PlanOptions, index: ClusterIndex) -> Layout:
    """Decide what moves where; raises ConfigError for options that cannot work."""
    into = options.into
    if not into:
        raise ConfigError("--strategy consolidate needs --into NAMESPACE")
    check_name(into, what="--into namespace", label=True)
    layout = Layout(into=into, moved_namespaces=_moved_namespaces(snapshot, options))
    if not layout.moved_namespaces:
        raise PlanError(f"nothing to move into {into}: every namespace with workloads is kept")
    workloads = [w for w in snapshot.workloads if w.namespace in layout.moved_namespaces]
    services = [object_ref(s) for s in snapshot.of("Service") if _ns(s) in layout.moved_namespaces]
    layout.dropped_aliases = _redundant_aliases(snapshot, services, layout, index)
    services = [s for s in services if s not in layout.dropped_aliases]
    _resolve_service_conflicts(snapshot, index, workloads, services, layout, options)
    _resolve_workload_conflicts(snapshot, workloads, layout, options)
    gone = {*layout.retired_workloads, *layout.held}
    layout.workloads = [w.ref for w in workloads if w.ref not in gone]
    layout.services = [s for s in services if s not in gone and s not in layout.retired_services]
    _choose_configs(snapshot, [w for w in workloads if w.ref in layout.workloads], layout)
    _rename_collisions(snapshot, layout)
    layout.moved = {*layout.workloads, *layout.services, *layout.configs, *layout.extras}
    return layout


def _ns(obj: RawObject) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "default")


def _moved_namespaces(snapshot: Snapshot, options: PlanOptions) -> tuple[str, ...]:
    into = options.into
    keep = set(options.keep)
    for ns in (*options.keep, *options.move):
        check_name(ns, what="namespace", label=True)
        if ns not in snapshot.namespaces:
            raise ConfigError(f"namespace {ns} is not in the snapshot")
    if options.move:
        if set(options.move) & keep:
            raise ConfigError("a namespace cannot be both moved and kept")
        return tuple(sorted(set(options.move) - {into}))
    populated = {w.namespace for w in snapshot.workloads} | {_ns(s) for s in snapshot.of("Service")}
    left = keep | {into} | SYSTEM_NAMESPACES | controller_namespaces(snapshot)
    return tuple(sorted(ns for ns in populated if ns not in left))


def _redundant_aliases(
    snapshot: Snapshot, services: list[ObjectRef], layout: Layout, index: ClusterIndex
) -> list[ObjectRef]:
    """ExternalName aliases ``X`` → ``X.<moved ns>``: after the move, ``X`` is the real Service."""
    dropped = []
    for ref in services:
        info = index.service(ref.namespace or "default", ref.name)
        if info is None or info.type != "ExternalName" or not info.external_name:
            continue
        labels = info.external_name.rstrip(".").split(".")
        if len(labels) >= 2 and labels[0] == ref.name and labels[1] in (*layout.moved_namespaces, layout.into):
            dropped.append(ref)
    return dropped


def _prefer_map(options: PlanOptions) -> dict[str, str]:
    """``name -> namespace`` from ``--prefer ns/name``."""
    out: dict[str, str] = {}
    for item in options.prefer:
        ns, sep, name = item.partition("/")
        if not sep or not ns or not name:
            raise ConfigError(f"--prefer {item!r}: expected NAMESPACE/NAME")
        out[name] = ns
    return out


def _resolve_service_conflicts(
    snapshot: Snapshot,
    index: ClusterIndex,
    workloads: list[Workload],
    services: list[ObjectRef],
    layout: Layout,
    options: PlanOptions,
) -> None:
    prefer = _prefer_map(options)
    by_name: dict[str, list[ObjectRef]] = defaultdict(list)
    for ref in services:
        by_name[ref.name].append(ref)
    for obj in snapshot.of("Service"):
        if _ns(obj) == layout.into and obj["metadata"]["name"] in by_name:
            by_name[obj["metadata"]["name"]].append(object_ref(obj))
    for name, refs in sorted(by_name.items()):
        if len(refs) < 2:
            continue
        sources = tuple(sorted(f"{r.namespace}/{r.name}" for r in refs))
        winner_ns = prefer.get(name)
        winner = next((r for r in refs if r.namespace == winner_ns), None)
        if winner_ns is not None and winner is None:
            raise ConfigError(f"--prefer {winner_ns}/{name}: no such Service among {', '.join(sources)}")
        losers = [r for r in refs if r != winner and r.namespace != layout.into]
        if winner is None:
            for loser in losers:
                _hold_unit(loser, snapshot, index, workloads, layout)
            layout.conflicts.append(
                Conflict(
                    "Service",
                    name,
                    layout.into,
                    sources,
                    f"unresolved: {len(refs)} Services named {name} would land in {layout.into}; both stay where "
                    f"they are until you choose one with --prefer {'|'.join(sources)}",
                )
            )
            continue
        for loser in losers:
            _retire_unit(loser, winner, snapshot, index, workloads, layout)
        retired = ", ".join(f"{r.namespace}/{r.name}" for r in losers)
        layout.conflicts.append(
            Conflict(
                "Service",
                name,
                layout.into,
                sources,
                f"{winner.namespace}/{name} survives (--prefer); {retired} is retired after its data is migrated "
                f"into it, and every reference to it is redirected",
                winner=f"{winner.namespace}/{name}",
                resolved=True,
            )
        )


def _unit_of(
    svc: ObjectRef, snapshot: Snapshot, index: ClusterIndex, workloads: list[Workload]
) -> tuple[set[ObjectRef], set[ObjectRef]]:
    """The workloads a Service selects (plus the one named like it) and the Services that select only those."""
    info = index.service(svc.namespace or "default", svc.name)
    members = {w.ref for w in index.selected_workloads(info)} if info is not None else set()
    members |= {w.ref for w in workloads if w.namespace == svc.namespace and w.ref.name == svc.name}
    services = {svc}
    for obj in snapshot.of("Service"):
        other = service_info(obj)
        if other.namespace != svc.namespace or other.ref == svc:
            continue
        selected = {w.ref for w in index.selected_workloads(other)}
        if selected and selected <= members:
            services.add(other.ref)
    return members, services


def _hold_unit(
    svc: ObjectRef, snapshot: Snapshot, index: ClusterIndex, workloads: list[Workload], layout: Layout
) -> None:
    members, services = _unit_of(svc, snapshot, index, workloads)
    layout.held |= members | services


def _retire_unit(
    svc: ObjectRef,
    winner: ObjectRef,
    snapshot: Snapshot,
    index: ClusterIndex,
    workloads: list[Workload],
    layout: Layout,
) -> None:
    members, services = _unit_of(svc, snapshot, index, workloads)
    layout.retired_workloads.extend(sorted(m for m in members if m not in layout.retired_workloads))
    for ref in services:
        layout.retired_services[ref] = winner


def _resolve_workload_conflicts(
    snapshot: Snapshot, workloads: list[Workload], layout: Layout, options: PlanOptions
) -> None:
    prefer = _prefer_map(options)
    taken = {*layout.retired_workloads, *layout.held}
    by_name: dict[tuple[str, str], list[ObjectRef]] = defaultdict(list)
    for w in workloads:
        if w.ref not in taken:
            by_name[(w.ref.kind, w.ref.name)].append(w.ref)
    for w in snapshot.workloads:
        if w.namespace == layout.into and (w.ref.kind, w.ref.name) in by_name:
            by_name[(w.ref.kind, w.ref.name)].append(w.ref)
    for (kind, name), refs in sorted(by_name.items()):
        if len(refs) < 2:
            continue
        sources = tuple(sorted(f"{r.namespace}/{r.name}" for r in refs))
        winner = next((r for r in refs if r.namespace == prefer.get(name)), None)
        losers = [r for r in refs if r != winner and r.namespace != layout.into]
        if winner is None:
            layout.held.update(losers)
            resolution = f"unresolved: both stay where they are until you choose one with --prefer {'|'.join(sources)}"
        else:
            layout.retired_workloads.extend(losers)
            resolution = f"{winner.namespace}/{name} survives (--prefer); the others are retired"
        layout.conflicts.append(
            Conflict(
                kind,
                name,
                layout.into,
                sources,
                resolution,
                winner=None if winner is None else str(winner),
                resolved=winner is not None,
            )
        )


def _choose_configs(snapshot: Snapshot, moved: list[Workload], layout: Layout) -> None:
    """What the moved workloads use (created before them), plus RBAC and policies of moved namespaces."""
    wanted: set[ObjectRef] = set()
    for w in moved:
        for kind, name in sorted(pod_config_refs(w.pod_spec)):
            ref = ObjectRef(kind, w.namespace, name)
            obj = snapshot.get(kind, w.namespace, name)
            if obj is None:
                if not (kind == "ServiceAccount" and name == "default"):
                    layout.missing.append(f"{w.ref} uses {kind} {w.namespace}/{name}, which is not in the snapshot")
                continue
            if not is_system_object(kind, obj):
                wanted.add(ref)
    layout.configs = sorted(wanted, key=lambda r: (CONFIG_KINDS.index(r.kind), r.namespace or "", r.name))
    for kind in (*CONFIG_KINDS, *EXTRA_KINDS, "Endpoints"):
        for obj in snapshot.of(kind):
            ref = object_ref(obj)
            if ref.namespace not in layout.moved_namespaces or is_system_object(kind, obj):
                continue
            if kind in EXTRA_KINDS:
                layout.extras.append(ref)
            elif kind == "Endpoints" and _manual_endpoints(ref, snapshot, layout):
                layout.extras.append(ref)
            elif kind in CONFIG_KINDS and ref not in wanted:
                layout.unused.append(ref)


def _manual_endpoints(ref: ObjectRef, snapshot: Snapshot, layout: Layout) -> bool:
    """Endpoints written by hand for a moved Service without selector."""
    svc = snapshot.get("Service", ref.namespace, ref.name)
    return svc is not None and not (svc.get("spec") or {}).get("selector") and object_ref(svc) in layout.services


def _rename_collisions(snapshot: Snapshot, layout: Layout) -> None:
    """Same-named private objects from several namespaces: each copy is renamed ``<name>-<old ns>``."""
    existing = {
        (object_ref(o).kind, object_ref(o).name)
        for kind in (*CONFIG_KINDS, *EXTRA_KINDS)
        for o in snapshot.of(kind)
        if _ns(o) == layout.into
    }
    groups: dict[tuple[str, str], list[ObjectRef]] = defaultdict(list)
    for ref in (*layout.configs, *layout.extras):
        if ref.kind != "Endpoints":
            groups[(ref.kind, ref.name)].append(ref)
    for (kind, name), group in sorted(groups.items()):
        refs = sorted(group, key=lambda r: r.namespace or "")
        if len(refs) < 2 and (kind, name) not in existing:
            continue
        if kind == "NetworkPolicy" and (kind, name) not in existing and _identical(snapshot, refs):
            for ref in refs[1:]:
                layout.extras.remove(ref)
            layout.conflicts.append(
                Conflict(
                    kind,
                    name,
                    layout.into,
                    tuple(sorted(f"{r.namespace}/{r.name}" for r in refs)),
                    f"identical rules in {len(refs)} namespaces: one copy, taken from {refs[0].namespace} "
                    "(the first of them in name order)",
                    resolved=True,
                )
            )
            continue
        renamed = []
        for ref in refs:
            new = f"{name}-{ref.namespace}"[:253]
            check_name(new, what=f"renamed {kind}")
            layout.renames[ref] = new
            renamed.append(f"{ref.namespace}/{name} -> {new}")
        layout.conflicts.append(
            Conflict(
                kind,
                name,
                layout.into,
                tuple(sorted(f"{r.namespace}/{r.name}" for r in refs)),
                "renamed: " + "; ".join(renamed) + " (every reference in the moved objects follows)",
                resolved=True,
            )
        )


def _identical(snapshot: Snapshot, refs: list[ObjectRef]) -> bool:
    specs = [(snapshot.get(r.kind, r.namespace, r.name) or {}).get("spec") for r in refs]
    return all(spec == specs[0] for spec in specs)


def renames_by_namespace(layout: Layout) -> Mapping[str, dict[tuple[str, str], str]]:
    """``old namespace -> {(kind, old name): new name}`` for :func:`~novadiag.planning.rename.rename_pod_refs`."""
    out: dict[str, dict[tuple[str, str], str]] = defaultdict(dict)
    for ref, new in layout.renames.items():
        out[ref.namespace or "default"][(ref.kind, ref.name)] = new
    return out


def namespace_labels(snapshot: Snapshot, layout: Layout) -> dict[str, Any]:
    """Labels the moved namespaces all share (``environment: prod``), for the target namespace."""
    shared: dict[str, str] | None = None
    for obj in snapshot.of("Namespace"):
        if obj["metadata"]["name"] not in layout.moved_namespaces:
            continue
        labels = {str(k): str(v) for k, v in (obj["metadata"].get("labels") or {}).items()}
        shared = labels if shared is None else {k: v for k, v in shared.items() if labels.get(k) == v}
    out = {k: v for k, v in (shared or {}).items() if k != "kubernetes.io/metadata.name"}
    out["kubernetes.io/metadata.name"] = layout.into
    return out
