"""The steps of a consolidation, phase by phase, each with its rollback.

See :mod:`novadiag.planning.consolidate` for the recipe. Here every step is
created with what it depends on: a workload waits for the config it mounts
and for the units it calls (their readiness and, for stateful ones, their
data), a switch waits for the verification, a delete for the grace period.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from novadiag.index import service_info
from novadiag.model import ROUTING_KINDS, WORKLOAD_KINDS, ObjectRef
from novadiag.planning.builder import StepBuilder
from novadiag.planning.clean import clean_metadata, clean_object
from novadiag.planning.datamove import WARNING, claims_of, is_stateful, migration_commands
from novadiag.planning.layout import namespace_labels
from novadiag.planning.moves import Moves
from novadiag.planning.netpol import rewrite_moved_policy
from novadiag.planning.operations import HostEdit, Operation, Replacement
from novadiag.planning.paths import FieldPath, get_at, masked_paths
from novadiag.planning.rename import pod_config_refs, pod_spec_of, rewrite_role_binding
from novadiag.planning.values import Unit
from novadiag.snapshot import object_ref


def build_steps(
    moves: Moves, units: list[Unit], builder: StepBuilder
) -> tuple[dict[ObjectRef, str], dict[str, list[str]]]:
    """All phases; returns (original workload or routing object -> step creating its copy, edge id -> fixing steps)."""
    state = _State(moves, builder)
    state.prepare()
    state.deploy(units)
    state.verify_target()
    state.switch(units)
    state.grace()
    state.cleanup(units)
    routing = {ref: step for ref, step in state.config_steps.items() if ref.kind in ROUTING_KINDS}
    return {**state.created, **routing}, state.fix_steps


class _State:
    def __init__(self, moves: Moves, builder: StepBuilder) -> None:
        self.moves = moves
        self.layout = moves.layout
        self.into = moves.layout.into
        self.b = builder
        self.ns_step: str | None = None
        self.config_steps: dict[ObjectRef, str] = {}
        self.created: dict[ObjectRef, str] = {}
        self.ready: dict[ObjectRef, str] = {}
        self.data_steps: dict[ObjectRef, str] = {}
        self.retire_steps: dict[ObjectRef, str] = {}
        self.fix_steps: dict[str, list[str]] = defaultdict(list)
        self.verify_step: str | None = None
        self.switch_steps: list[str] = []
        self.grace_step: str | None = None

    # -- prepare -----------------------------------------------------------------------------------
    def prepare(self) -> None:
        snap = self.moves.snapshot
        if self.into not in snap.namespaces:
            ref = ObjectRef("Namespace", None, self.into)
            manifest = {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": self.into, "labels": namespace_labels(snap, self.layout)},
            }
            self.ns_step = self.b.add(
                "prepare",
                f"create namespace {self.into}",
                Operation("create-namespace", ref, manifest=manifest),
                rollback=(Operation("delete", ref),),
                target_namespace=self.into,
            )
        for ref in (*self.layout.configs, *[e for e in self.layout.extras if e.kind != "NetworkPolicy"]):
            self.config_steps[ref] = self._copy_config(ref)
        for ref in self.layout.extras:
            if ref.kind == "NetworkPolicy":
                self.config_steps[ref] = self._copy_config(ref)
        self._admit_target_in_kept(keep_old=True, phase="prepare")
        for svc in self._loose_services():
            self.created[svc] = self._create(svc, "prepare", [self.ns_step])

    def _copy_config(self, ref: ObjectRef) -> str:
        new = self.layout.new_ref(ref)
        if ref.kind == "Secret":
            edits = self.moves.copy_edits
            assert edits is not None
            replacements = edits.secret_replacements(ref.namespace or "default", ref.name)
            obj = self.moves.snapshot.get("Secret", ref.namespace, ref.name) or {}
            meta = clean_metadata(obj.get("metadata") or {}, namespace=new.namespace)
            meta = {k: v for k, v in meta.items() if k in ("labels", "annotations")}
            return self.b.add(
                "prepare",
                f"copy Secret {ref.namespace}/{ref.name} to {new.namespace}/{new.name}"
                + (" (rewriting hosts)" if replacements else ""),
                Operation(
                    "copy-secret",
                    new,
                    source=ref,
                    replacements=replacements,
                    manifest={"metadata": {"name": new.name, "namespace": new.namespace, **meta}},
                ),
                depends_on=[self.ns_step],
                rollback=(Operation("delete", new),),
                fixes=edits.edges_for_object("Secret", ref.namespace or "default", ref.name),
                target_namespace=self.into,
            )
        warning = None
        if ref.kind == "PersistentVolumeClaim":
            warning = "a new EMPTY claim: the old claim and its data stay where they are; see the data-migration steps"
        return self._create(ref, "prepare", [self.ns_step], warning=warning)

    def _create(self, ref: ObjectRef, phase: Any, deps: Iterable[str | None], *, warning: str | None = None) -> str:
        new = self.layout.new_ref(ref)
        edits = self.moves.copy_edits
        assert edits is not None
        fixes = edits.edges_for_object(ref.kind, ref.namespace or "default", ref.name)
        verb = "copy" if ref.kind not in (*WORKLOAD_KINDS, "Service") else "create"
        return self.b.add(
            phase,
            f"{verb} {ref.kind} {ref.namespace}/{ref.name} as {new.namespace}/{new.name}",
            copy_operation(new, self.moves.copies[ref], ref, edits.host_edits_for(ref)),
            depends_on=deps,
            rollback=(Operation("delete", new),),
            fixes=fixes,
            warning=warning,
            target_namespace=self.into,
        )

    def _loose_services(self) -> list[ObjectRef]:
        """Moved Services that select no moved workload: created up front."""
        homed = set()
        for w in self.layout.workloads:
            homed |= set(self._services_of(w))
        return [s for s in self.layout.services if s not in homed]

    def _services_of(self, workload: ObjectRef) -> list[ObjectRef]:

        out = []
        for svc in self.layout.services:
            obj = self.moves.snapshot.get("Service", svc.namespace, svc.name)
            if obj is not None and workload in {w.ref for w in self.moves.index.selected_workloads(service_info(obj))}:
                out.append(svc)
        return out

    def _admit_target_in_kept(self, *, keep_old: bool, phase: Any) -> list[str]:
        """Policies and bindings in namespaces that stay which name a moved one.

        In the prepare phase they admit the target *as well* (old pods still
        run during the grace period); in the cleanup phase the old names go.
        """
        snap = self.moves.snapshot
        moved = {ns: self.into for ns in self.layout.moved_namespaces}
        deleted = set(self.layout.deleted_namespaces)
        still = set(self.layout.moved_namespaces) - deleted
        ids = []
        for kind in ("NetworkPolicy", "RoleBinding"):
            for obj in snap.of(kind):
                ref = object_ref(obj)
                if ref.namespace in deleted or ref.namespace == self.into:
                    continue
                final = self._final_policy(obj, moved, still)
                field = "spec" if kind == "NetworkPolicy" else "subjects"
                both = _union(obj, final, field)
                before, after = (obj, both) if keep_old else (both, final)
                if after.get(field) == before.get(field):
                    continue
                verb = "let" if keep_old else "stop naming the old namespaces in"
                title = f"{verb} {ref.kind} {ref.namespace}/{ref.name}" + (
                    f" also admit {self.into}" if keep_old else ""
                )
                ids.append(
                    self.b.add(
                        phase,
                        title,
                        Operation("patch", ref, patch={field: after.get(field)}),
                        depends_on=[self.ns_step] if keep_old else [self.grace_step],
                        rollback=(Operation("patch", ref, patch={field: before.get(field)}),),
                        target_namespace=ref.namespace,
                        requires_allow_delete=not keep_old,
                    )
                )
        return ids

    def _final_policy(self, obj: Any, moved: Mapping[str, str], still: set[str]) -> dict[str, Any]:
        if obj.get("kind") == "NetworkPolicy":
            assert self.moves.pods is not None
            ns = str(obj["metadata"].get("namespace"))
            return rewrite_moved_policy(obj, self.moves.pods, namespace=ns)
        return rewrite_role_binding(obj, moved, keep_old=still)

    # -- deploy ------------------------------------------------------------------------------------
    def deploy(self, units: list[Unit]) -> None:
        for unit in units:
            if not unit.workloads:
                continue
            deps = [self.ns_step]
            for w in unit.workloads:
                deps += self._config_deps(w) + self._dependency_deps(w, unit)
            for w in unit.workloads:
                self.created[w] = self._create(w, "deploy", deps, warning=WARNING if unit.stateful else None)
            for svc in unit.services:
                self.created[svc] = self._create(svc, "deploy", [self.ns_step])
            for w in unit.workloads:
                new = self.layout.new_ref(w)
                self.ready[w] = self.b.add(
                    "deploy",
                    f"wait until {new} is ready" + (f" (cycle {unit.name})" if unit.cycle else ""),
                    Operation("wait-ready", new),
                    depends_on=[self.created[w], *(self.created[s] for s in unit.services)],
                    target_namespace=self.into,
                )
            for w in unit.workloads:
                self._data_migration(w)
            self._retirements(unit)

    def _config_deps(self, workload: ObjectRef) -> list[str | None]:
        obj = self.moves.snapshot.get(workload.kind, workload.namespace, workload.name) or {}
        used = pod_config_refs(pod_spec_of(obj) or {})
        return [self.config_steps.get(ObjectRef(k, workload.namespace, n)) for k, n in sorted(used)]

    def _dependency_deps(self, workload: ObjectRef, unit: Unit) -> list[str | None]:
        back = {self.layout.new_ref(w): w for w in self.layout.workloads}
        deps: list[str | None] = []
        for dep in sorted(self.moves.needs.get(workload, ())):
            original = back.get(dep)
            if original is None or original in unit.workloads:
                continue
            deps += [self.ready.get(original), self.data_steps.get(original)]
        for retired in self.moves.needs_retired.get(workload, ()):
            deps.append(self.retire_steps.get(retired))
        return deps

    def _data_migration(self, workload: ObjectRef) -> None:
        obj = self.moves.snapshot.get(workload.kind, workload.namespace, workload.name) or {}
        if not is_stateful(obj):
            return
        new = self.layout.new_ref(workload)
        claims = ", ".join(claims_of(obj)) or "no claim (state in the pod)"
        self.data_steps[workload] = self.b.add(
            "deploy",
            f"migrate the data of {workload} into {new}",
            Operation(
                "manual",
                new,
                source=workload,
                note=f"data-migration: copy the data of {workload} "
                f"({claims}) into {new} before anything uses it; the old copy stays untouched until cleanup",
                commands=migration_commands(workload, new, obj),
            ),
            depends_on=[self.ready[workload]],
            warning=WARNING,
            target_namespace=self.into,
            rollback=(Operation("manual", new, note=f"point consumers back at {workload}: it still has its data"),),
        )

    def _retirements(self, unit: Unit) -> None:
        """A conflict loser's data goes into the survivor once the survivor is in place."""
        winners = {self.layout.new_ref(s) for s in unit.services}
        for loser, winner in sorted(self.layout.retired_services.items()):
            new_winner = self.layout.new_ref(winner)
            if new_winner not in winners or loser.name != winner.name:
                continue
            members = [w for w in self.layout.retired_workloads if w.namespace == loser.namespace]
            obj = self.moves.snapshot.get(members[0].kind, members[0].namespace, members[0].name) if members else {}
            target = next((self.layout.new_ref(w) for w in unit.workloads), new_winner)
            users = sorted({str(e) for e, deps in self.moves.needs_retired.items() if loser in deps})
            step = self.b.add(
                "deploy",
                f"migrate the data of retired {loser} into {new_winner}",
                Operation(
                    "manual",
                    target,
                    source=members[0] if members else loser,
                    note=f"data-migration: {loser} is retired (conflict, --prefer); its data must be merged into "
                    f"{new_winner} before its users ({', '.join(users) or 'none'}) start there",
                    commands=migration_commands(members[0], target, obj or {}) if members else (),
                ),
                depends_on=[
                    *(self.ready.get(w) for w in unit.workloads),
                    *(self.data_steps.get(w) for w in unit.workloads),
                ],
                warning="legacy data: merge it (databases, users, grants) before the retired copy is deleted",
                rollback=(Operation("manual", target, note=f"the retired {loser} is untouched until cleanup"),),
                target_namespace=self.into,
            )
            for ref in self.layout.retired_services:
                if self.layout.retired_services[ref] == winner:
                    self.retire_steps[ref] = step

    # -- verify, switch ----------------------------------------------------------------------------
    def verify_target(self) -> None:
        self.verify_step = self.b.add(
            "verify",
            f"re-audit {self.into} with probes: every edge from it must work",
            Operation("verify", ObjectRef("Namespace", None, self.into), namespaces=(self.into,)),
            depends_on=[*self.ready.values(), *self.data_steps.values(), *self.retire_steps.values()],
        )

    def switch(self, units: list[Unit]) -> None:
        self._kept_rewrites()
        services = [s for u in units if not u.gateway for s in u.services]
        services += [s for u in units if u.gateway for s in u.services]
        gateway_services = {s for u in units if u.gateway for s in u.services}
        for svc in services:
            self._switch_service(svc, gateway=svc in gateway_services)
        for loser in sorted(self.layout.retired_services):
            self._switch_service(loser, gateway=False, to=self.layout.service_after(loser))
        for w in [*self.layout.workloads, *self.layout.retired_workloads]:
            self._scale_down(w)
        namespaces = sorted({self.into, *self._kept_namespaces()})
        self.switch_steps.append(
            self.b.add(
                "switch",
                "re-audit with probes: the target and the namespaces that stay",
                Operation("verify", ObjectRef("Namespace", None, self.into), namespaces=tuple(namespaces)),
                depends_on=list(self.switch_steps),
            )
        )

    def _kept_namespaces(self) -> list[str]:
        moved = set(self.layout.moved_namespaces)
        return [ns for ns in {w.namespace for w in self.moves.snapshot.workloads} if ns not in moved]

    def _kept_rewrites(self) -> None:
        edits = self.moves.kept_edits
        assert edits is not None
        restarts: dict[ObjectRef, list[str]] = defaultdict(list)
        touched: dict[ObjectRef, list[str]] = defaultdict(list)
        for change in edits.in_place_changes():
            sid = self.b.add(
                "switch",
                f"rewrite {change.where} (it stays where it is)",
                change.operation,
                depends_on=[self.verify_step],
                rollback=(change.rollback,),
                fixes=change.edges,
                target_namespace=change.operation.ref.namespace,
            )
            for e in change.edges:
                self.fix_steps[e].append(sid)
            if change.operation.ref.kind in ("ConfigMap", "Secret"):
                for w in change.restart:
                    restarts[w].append(sid)
            else:
                touched[change.operation.ref].append(sid)
        for w, deps in sorted(restarts.items()):
            if w not in touched:
                touched[w].append(
                    self.b.add(
                        "switch",
                        f"restart {w} so it reads the new values",
                        Operation("restart", w),
                        depends_on=deps,
                        target_namespace=w.namespace,
                    )
                )
        for w, deps in sorted(touched.items()):
            self.switch_steps.append(
                self.b.add(
                    "switch",
                    f"wait until {w} is ready",
                    Operation("wait-ready", w),
                    depends_on=deps,
                    target_namespace=w.namespace,
                )
            )

    def _switch_service(self, svc: ObjectRef, *, gateway: bool, to: ObjectRef | None = None) -> None:
        obj = self.moves.snapshot.get("Service", svc.namespace, svc.name) or {}
        spec = obj.get("spec") or {}
        new = to or self.layout.new_ref(svc)
        fqdn = f"{new.name}.{new.namespace}.svc.{self.moves.options.cluster_domain}"
        kind = spec.get("type") or "ClusterIP"
        title = ("switch the gateway: " if gateway else "switch ") + f"{svc} -> {new}"
        if kind in ("LoadBalancer", "NodePort"):
            self.switch_steps.append(
                self.b.add(
                    "switch",
                    title + " (external traffic)",
                    Operation(
                        "manual",
                        svc,
                        note=f"repoint what sends outside traffic to {svc} ({kind}: DNS records, "
                        f"load balancer, Ingress) at {new}",
                        commands=(f"# repoint external clients at {new}",),
                    ),
                    depends_on=[self.verify_step, self.created.get(self._unaliased(svc))],
                    rollback=(Operation("manual", svc, note=f"point external clients back at {svc}"),),
                    target_namespace=svc.namespace,
                )
            )
            return
        if kind == "ExternalName":
            return
        forward = {
            "spec": {
                "type": "ExternalName",
                "externalName": fqdn,
                "selector": None,
                "clusterIP": None,
                "clusterIPs": None,
                "ipFamilies": None,
                "ipFamilyPolicy": None,
                "internalTrafficPolicy": None,
                "sessionAffinity": None,
            }
        }
        restore: dict[str, Any] = {"type": kind, "externalName": None, "selector": spec.get("selector")}
        if spec.get("clusterIP") in ("None", "none"):
            restore["clusterIP"] = "None"
        restore["ports"] = spec.get("ports")
        self.switch_steps.append(
            self.b.add(
                "switch",
                title,
                Operation(
                    "patch",
                    svc,
                    patch=forward,
                    note=f"callers of the old name reach {new}; the old pods get no more traffic",
                ),
                depends_on=[self.verify_step, self.created.get(self._unaliased(svc))],
                rollback=(Operation("patch", svc, patch={"spec": restore}),),
                target_namespace=svc.namespace,
            )
        )

    def _unaliased(self, svc: ObjectRef) -> ObjectRef:
        winner = self.layout.retired_services.get(svc)
        return winner if winner is not None else svc

    def _scale_down(self, workload: ObjectRef) -> None:
        obj = self.moves.snapshot.get(workload.kind, workload.namespace, workload.name) or {}
        spec = obj.get("spec") or {}
        if workload.kind in ("Deployment", "StatefulSet", "ReplicaSet"):
            replicas = int(spec.get("replicas", 1) if isinstance(spec.get("replicas", 1), int) else 1)
            op = Operation("scale", workload, replicas=0)
            back = Operation("scale", workload, replicas=replicas)
        elif workload.kind == "CronJob":
            op = Operation("patch", workload, patch={"spec": {"suspend": True}})
            back = Operation("patch", workload, patch={"spec": {"suspend": bool(spec.get("suspend", False))}})
        else:
            return
        self.switch_steps.append(
            self.b.add(
                "switch",
                f"scale down the old {workload} (kept for the grace period)",
                op,
                depends_on=list(self.switch_steps),
                rollback=(back,),
                target_namespace=workload.namespace,
            )
        )

    # -- grace, cleanup ----------------------------------------------------------------------------
    def grace(self) -> None:
        grace = self.moves.options.grace
        self.grace_step = self.b.add(
            "grace",
            f"keep the old objects for {grace}, then clean up",
            Operation(
                "grace",
                ObjectRef("Namespace", None, self.into),
                note=f"grace period {grace}: watch errors and "
                "latency; to roll back, run the rollback of the switch steps in reverse order",
            ),
            depends_on=self.switch_steps,
        )

    def cleanup(self, units: list[Unit]) -> None:
        deleted = set(self.layout.deleted_namespaces)
        for ns in self.layout.moved_namespaces:
            if ns in deleted:
                continue
            # Policies and bindings stay: the held pods of this namespace still need them.
            for ref in [
                *self.layout.workloads,
                *self.layout.services,
                *self.layout.retired_workloads,
                *self.layout.retired_services,
                *self.layout.configs,
            ]:
                if ref.namespace == ns:
                    self._delete(ref)
        self._admit_target_in_kept(keep_old=False, phase="cleanup")
        for ns in sorted(deleted):
            claims = self._claims_in(ns)
            warning = "deletes everything left in the namespace, including kinds novadiag does not read"
            if claims:
                warning += f"; the claims {', '.join(claims)} and their data go with it (after the data migration)"
            self._delete(ObjectRef("Namespace", None, ns), warning=warning)
        namespaces = sorted({self.into, *self._kept_namespaces()})
        self.b.add(
            "cleanup",
            "re-audit with probes after the cleanup: zero broken edges",
            Operation("verify", ObjectRef("Namespace", None, self.into), namespaces=tuple(namespaces)),
            depends_on=self.b.ids("cleanup"),
        )

    def _claims_in(self, ns: str) -> list[str]:
        """Claim names (``data-postgres-*`` for StatefulSet templates) that deleting ``ns`` deletes."""
        snap = self.moves.snapshot
        out = [str(o["metadata"]["name"]) for o in snap.of("PersistentVolumeClaim") if object_ref(o).namespace == ns]
        for w in snap.workloads:
            if w.namespace == ns and w.ref.kind == "StatefulSet":
                obj = snap.get(w.ref.kind, ns, w.ref.name) or {}
                out += [f"{c}-{w.ref.name}-*" for c in claims_of(obj) if c not in out]
        return out

    def _recreate(self, ref: ObjectRef, manifest: dict[str, Any]) -> Operation:
        """The rollback of a delete: the object again, its masked values taken back from its live copy.

        The copy holds the same values with hosts rewritten, so the reverse
        replacements give the original; an object without a copy (a retired
        one) or with hosts that cannot be told apart is left to the operator.
        """
        if not any(True for _ in masked_paths(manifest)):
            return Operation("create", ref, manifest=manifest)
        new = self.layout.new_ref(ref)
        edits = self.moves.copy_edits
        assert edits is not None
        forward = edits.host_edits_for(ref)
        backward = {path: edit.reverse_of(str(get_at(manifest, path))) for path, edit in forward.items()}
        if new == ref or ref not in self.moves.copies or None in backward.values():
            note = f"recreate {ref} from your own manifests: novadiag holds its credentials only masked"
            return Operation("manual", ref, note=note)
        reverse = {path: edit for path, edit in backward.items() if edit is not None}
        return copy_operation(ref, manifest, new, reverse)

    def _delete(self, ref: ObjectRef, *, warning: str | None = None) -> None:
        obj = self.moves.snapshot.get(ref.kind, ref.namespace, ref.name)
        if ref.kind == "Secret":
            new = self.layout.new_ref(ref)
            assert self.moves.copy_edits is not None
            forward = self.moves.copy_edits.secret_replacements(ref.namespace or "default", ref.name)
            reverse = tuple(Replacement(r.key, r.new, r.old) for r in forward)
            back = (
                Operation("copy-secret", ref, source=new, replacements=reverse)
                if new != ref
                else Operation("manual", ref, note=f"restore Secret {ref} from your backup")
            )
        elif obj is not None:
            back = self._recreate(ref, clean_object(obj, namespace=ref.namespace))
        else:
            back = Operation("manual", ref, note=f"recreate {ref} from the rollbacks of the deletes inside it")
        self.b.add(
            "cleanup",
            f"delete {ref}",
            Operation("delete", ref),
            depends_on=[self.grace_step],
            rollback=(back,),
            warning=warning,
            requires_allow_delete=True,
            target_namespace=ref.namespace,
        )


def copy_operation(
    new: ObjectRef, manifest: dict[str, Any], source: ObjectRef, edits: Mapping[FieldPath, HostEdit]
) -> Operation:
    """Create ``new`` from ``manifest`` (made from ``source``); a ``copy`` when the snapshot masked a value of it.

    A ``copy`` takes every masked value, and every value whose hosts change,
    from the live ``source`` when it runs, so no mask is ever written; a plain
    ``create`` records its host changes for verification.
    """
    masked = list(masked_paths(manifest))
    if not masked:
        return Operation("create", new, manifest=manifest, source=source, host_edits=tuple(edits.values()))
    fills = (*edits.values(), *(HostEdit(path) for path in masked if path not in edits))
    return Operation("copy", new, manifest=manifest, source=source, host_edits=tuple(sorted(fills, key=_by_path)))


def _by_path(edit: HostEdit) -> FieldPath:
    return edit.path


def _union(before: Mapping[str, Any], after: Mapping[str, Any], field: str) -> dict[str, Any]:
    """``after`` that still admits everything ``before`` did (peers and subjects unioned)."""
    out = dict(copy.deepcopy(after))
    if field == "subjects":
        subjects = list(before.get("subjects") or [])
        subjects += [s for s in after.get("subjects") or [] if s not in subjects]
        out["subjects"] = subjects
        return out
    spec_before, spec = before.get("spec") or {}, out.get("spec") or {}
    for direction, key in (("ingress", "from"), ("egress", "to")):
        old_rules = spec_before.get(direction) or []
        for i, rule in enumerate(spec.get(direction) or []):
            if isinstance(rule, dict) and i < len(old_rules) and rule.get(key):
                peers = list(old_rules[i].get(key) or [])
                rule[key] = peers + [p for p in rule[key] if p not in peers]
    return out
