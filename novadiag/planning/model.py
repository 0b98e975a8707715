"""The values a migration plan is made of: operations, steps, units, fixes, verification.

One :class:`Operation` is the unit of change, and it is executed three ways
from the same record: simulated on a copy of the snapshot (``simulate.py``),
sent through the API (``apply.py``) and printed as ``kubectl`` commands
(``commands.py``, used by the runbook, the script and the JSON). Keeping one
record for the three is what makes "the script gives the same end state as
``--apply``" and "the verification proves what is applied" true by
construction rather than by care.

Secret values never appear here: copying or rewriting a Secret is an
operation that names the Secret and the host replacements to make in its
values; the values are read and written at apply time, through the API or by
``kubectl`` on the operator's machine. The same holds for every value the
snapshot masked (a DSN with a password in an env value or a ConfigMap): the
snapshot's copy says where the hosts are, not what the password is, so an
operation that changes or copies such a value carries :class:`HostEdit` records
(the value's place and the hosts to replace) and the value itself is read from
the live object at apply time (actions ``edit`` and ``copy``). A plan never
writes a masked value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from novadiag.model import ObjectRef, SourceInfo
from novadiag.planning.paths import FieldPath, path_text, without
from novadiag.planning.rename import contains_host

if TYPE_CHECKING:
    from novadiag.kube import KubeClient
    from novadiag.planning.apply import ApplyResult
    from novadiag.report.core import Report
    from novadiag.snapshot import Snapshot

PLAN_SCHEMA = "novadiag.plan/v1"

Strategy = Literal["consolidate", "rewrite", "alias", "auto"]
STRATEGIES: tuple[Strategy, ...] = ("consolidate", "rewrite", "alias", "auto")

Phase = Literal["prepare", "fix", "deploy", "verify", "switch", "grace", "cleanup"]
PHASES: tuple[Phase, ...] = ("prepare", "fix", "deploy", "verify", "switch", "grace", "cleanup")
PHASE_MINUTES: Mapping[str, int] = {
    "prepare": 15,
    "fix": 15,
    "deploy": 60,
    "verify": 15,
    "switch": 15,
    "grace": 0,
    "cleanup": 15,
}
"""Rough wall-clock estimates per phase for the runbook (grace is its own duration)."""

Action = Literal[
    "create-namespace",
    "create",
    "copy",
    "edit",
    "copy-secret",
    "rewrite-secret",
    "patch",
    "restart",
    "scale",
    "wait-ready",
    "verify",
    "manual",
    "grace",
    "delete",
]


@dataclass(frozen=True)
class Replacement:
    """Replace host ``old`` by ``new`` (token-wise, see ``rename.replace_host``) in one data key."""

    key: str
    old: str
    new: str

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class HostEdit:
    """Replace hosts (token-wise, see ``rename.replace_hosts``) in the value at ``path``, nothing else.

    On an ``edit`` the value is read from the live object itself, on a
    ``copy`` from the live ``source``; on a ``patch`` or ``create`` it records
    what the literal payload changed, so verification can check that only the
    hosts did.
    """

    path: FieldPath
    replacements: tuple[tuple[str, str], ...] = ()

    @property
    def mapping(self) -> dict[str, str]:
        return dict(self.replacements)

    def reverse_of(self, original: str) -> HostEdit | None:
        """The edit that turns the edited value back into ``original``, or None when none can.

        None when two old hosts became one, or a new host was in the value
        already: the edited value no longer tells which occurrence was which.
        """
        news = [new.lower() for _, new in self.replacements]
        if len(set(news)) != len(news) or any(contains_host(original, new) for _, new in self.replacements):
            return None
        return HostEdit(self.path, tuple((new, old) for old, new in self.replacements))

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": path_text(self.path),
            "replacements": [{"old": old, "new": new} for old, new in self.replacements],
        }


@dataclass(frozen=True, eq=False)
class Operation:
    """One change or check, executable by the simulator, the API runner and kubectl.

    ``manifest`` is the cleaned object for ``create`` and ``copy``; ``patch`` a
    JSON merge patch (or a strategic one when ``strategic``); ``source`` the
    Secret a ``copy-secret`` reads, or the object a ``copy`` (or a ``create`` of
    a moved object) was made from; ``host_edits`` the values an ``edit`` or a
    ``copy`` takes from the live object (see :class:`HostEdit`); ``namespaces``
    the namespaces a ``verify`` audits.
    """

    action: Action
    ref: ObjectRef
    manifest: Mapping[str, Any] | None = None
    patch: Mapping[str, Any] | None = None
    strategic: bool = False
    source: ObjectRef | None = None
    replacements: tuple[Replacement, ...] = ()
    host_edits: tuple[HostEdit, ...] = ()
    replicas: int | None = None
    namespaces: tuple[str, ...] = ()
    note: str = ""
    commands: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"action": self.action, "object": self.ref.to_dict()}
        if self.manifest is not None:
            doc["manifest"] = self.shown_manifest()
        if self.patch is not None:
            doc["patch"] = self.patch
            doc["patch_type"] = "strategic" if self.strategic else "merge"
        if self.source is not None:
            doc["source"] = self.source.to_dict()
        if self.replacements:
            doc["replacements"] = [r.to_dict() for r in self.replacements]
        if self.host_edits:
            doc["host_edits"] = [e.to_dict() for e in self.host_edits]
        if self.replicas is not None:
            doc["replicas"] = self.replicas
        if self.namespaces:
            doc["namespaces"] = list(self.namespaces)
        if self.note:
            doc["note"] = self.note
        return doc

    @property
    def live_values(self) -> bool:
        """Whether values are read from the live object when the step runs (``edit``, ``copy``)."""
        return self.action in ("edit", "copy")

    def shown_manifest(self) -> Mapping[str, Any] | None:
        """The manifest as plans show it: a ``copy``'s live values are null (they are not known here)."""
        if self.manifest is None or self.action != "copy":
            return self.manifest
        shown: Mapping[str, Any] = without(self.manifest, {e.path for e in self.host_edits})
        return shown


@dataclass(frozen=True, eq=False)
class Step:
    """One step of the plan: an operation, what it waits for, and how to undo it."""

    id: str
    phase: Phase
    title: str
    operation: Operation
    target_namespace: str | None = None
    depends_on: tuple[str, ...] = ()
    rollback: tuple[Operation, ...] = ()
    fixes: tuple[str, ...] = ()
    warning: str | None = None
    requires_allow_delete: bool = False

    @property
    def action(self) -> Action:
        return self.operation.action

    @property
    def object(self) -> ObjectRef:
        return self.operation.ref

    def to_dict(self) -> dict[str, Any]:
        from novadiag.planning.commands import step_commands

        commands, rollback = step_commands(self)
        return {
            "id": self.id,
            "phase": self.phase,
            "title": self.title,
            "action": self.action,
            "object": self.object.to_dict(),
            "target_namespace": self.target_namespace,
            "depends_on": list(self.depends_on),
            "commands": commands,
            "rollback": rollback,
            "fixes": list(self.fixes),
            "warning": self.warning,
            "requires_allow_delete": self.requires_allow_delete,
            "operation": self.operation.to_dict(),
        }


@dataclass(frozen=True)
class Unit:
    """Objects that move together: one workload, or a dependency cycle, with its Services."""

    position: int
    workloads: tuple[ObjectRef, ...]
    services: tuple[ObjectRef, ...]
    target_namespace: str
    cycle: bool = False
    stateful: bool = False
    gateway: bool = False

    @property
    def name(self) -> str:
        names = ", ".join(f"{w.namespace}/{w.name}" for w in self.workloads) or ", ".join(
            f"{s.namespace}/{s.name}" for s in self.services
        )
        return f"cycle [{names}]" if self.cycle else names

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "name": self.name,
            "cycle": self.cycle,
            "stateful": self.stateful,
            "gateway": self.gateway,
            "target_namespace": self.target_namespace,
            "objects": [
                {**ref.to_dict(), "to_namespace": self.target_namespace} for ref in (*self.workloads, *self.services)
            ],
        }


@dataclass(frozen=True)
class EdgeFix:
    """What the plan does about one broken edge: a fix (with its steps) or why there is none."""

    edge: str
    status: str
    action: str | None
    detail: str
    steps: tuple[str, ...] = ()
    new_reference: str | None = None

    @property
    def fixed(self) -> bool:
        return self.action is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "edge": self.edge,
            "status": self.status,
            "action": self.action,
            "fixed": self.fixed,
            "detail": self.detail,
            "steps": list(self.steps),
            "new_reference": self.new_reference,
        }


@dataclass(frozen=True)
class Rewrite:
    """One reference the plan changes (or keeps, saying why) because something moved."""

    edge: str
    old_host: str
    new_host: str
    where: str
    reason: str

    @property
    def changed(self) -> bool:
        return self.old_host != self.new_host

    def to_dict(self) -> dict[str, Any]:
        return {
            "edge": self.edge,
            "old": self.old_host,
            "new": self.new_host,
            "changed": self.changed,
            "where": self.where,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Conflict:
    """Objects of one kind and name that would land in the same namespace."""

    kind: str
    name: str
    namespace: str
    sources: tuple[str, ...]
    resolution: str
    winner: str | None = None
    resolved: bool = False
    edges: tuple[str, ...] = ()
    """Edges whose target is one of the conflicting objects."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": list(self.edges),
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "sources": list(self.sources),
            "winner": self.winner,
            "resolved": self.resolved,
            "resolution": self.resolution,
        }


@dataclass(frozen=True)
class Verification:
    """The re-audit of the simulated end state, compared edge for edge with the start."""

    broken_before: int
    broken_after: int
    edges_before: int
    edges_after: int
    fixed: tuple[str, ...] = ()
    still_broken: tuple[str, ...] = ()
    regressions: tuple[str, ...] = ()
    unresolved: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    value_problems: tuple[str, ...] = ()
    """Values the plan would write wrongly: a masked value, or a change beyond the hosts."""

    @property
    def ok(self) -> bool:
        """Zero broken edges, nothing that worked broken, no value harmed, no conflict left open."""
        return self.broken_after == 0 and not self.regressions and not self.unresolved and not self.value_problems

    @property
    def refused(self) -> bool:
        """A plan that breaks a working edge, or harms a value it writes, is never applied."""
        return bool(self.regressions or self.value_problems)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "refused": self.refused,
            "broken_before": self.broken_before,
            "broken_after": self.broken_after,
            "edges_before": self.edges_before,
            "edges_after": self.edges_after,
            "fixed": list(self.fixed),
            "still_broken": list(self.still_broken),
            "regressions": list(self.regressions),
            "unresolved": list(self.unresolved),
            "value_problems": list(self.value_problems),
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        verdict = "OK" if self.ok else ("REFUSED" if self.refused else "INCOMPLETE")
        text = (
            f"{verdict}: broken edges {self.broken_before} -> {self.broken_after}, "
            f"{len(self.regressions)} working edge(s) broken by the plan"
        )
        if self.value_problems:
            text += f", {len(self.value_problems)} value(s) it would write wrongly"
        if self.unresolved:
            text += f", {len(self.unresolved)} edge(s) wait on an unresolved conflict"
        return text


@dataclass(frozen=True)
class PlanOptions:
    """What the user asked for; recorded in the plan so it can be rebuilt."""

    strategy: Strategy
    into: str | None = None
    keep: tuple[str, ...] = ()
    move: tuple[str, ...] = ()
    prefer: tuple[str, ...] = ()
    gateways: tuple[str, ...] = ()
    allow_delete: bool = False
    grace: str = "24h"
    cluster_domain: str = "cluster.local"
    wait_timeout: int = 300

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "into": self.into,
            "keep": list(self.keep),
            "move": list(self.move),
            "prefer": list(self.prefer),
            "gateways": list(self.gateways),
            "allow_delete": self.allow_delete,
            "grace": self.grace,
            "cluster_domain": self.cluster_domain,
            "wait_timeout": self.wait_timeout,
        }


@dataclass(frozen=True)
class PlanContext:
    """What the plan was built from, kept for verification: not part of the plan document."""

    snapshot: Snapshot
    baseline: Report
    edge_map: Mapping[str, str | None] = field(default_factory=dict)
    """Edge id before -> edge id after (the source moved, the host rewritten); None: the source is retired."""


@dataclass(frozen=True)
class Plan:
    """A dependency-ordered migration or fix plan, with the proof that it works.

    >>> report = novadiag.audit(manifests=[NOVA])                          # doctest: +SKIP
    >>> plan = novadiag.plan(report, strategy="consolidate", into="nova-prod",
    ...                      keep=["kafka", "nova-staging"], prefer=["nova-backend/postgres"])  # doctest: +SKIP
    >>> plan.verification.broken_after                                     # doctest: +SKIP
    0
    """

    options: PlanOptions
    source: SourceInfo
    steps: tuple[Step, ...]
    order: tuple[Unit, ...] = ()
    fixes: tuple[EdgeFix, ...] = ()
    rewrites: tuple[Rewrite, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    warnings: tuple[str, ...] = ()
    verification: Verification | None = None
    context: PlanContext | None = field(default=None, compare=False, repr=False)
    done: tuple[str, ...] = ()
    """Steps whose result the cluster already holds (a resumed consolidation): the runner skips them."""

    @property
    def strategy(self) -> Strategy:
        return self.options.strategy

    @property
    def snapshot(self) -> Snapshot | None:
        return None if self.context is None else self.context.snapshot

    @property
    def ok(self) -> bool:
        return self.verification is not None and self.verification.ok

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def verify(self) -> Verification:
        """Apply the plan to a copy of the snapshot, re-audit it, compare edge for edge."""
        from novadiag.planning.simulate import verify_plan

        return verify_plan(self)

    def verified(self) -> Plan:
        """This plan with :attr:`verification` filled in."""
        return replace(self, verification=self.verify())

    def to_dict(self) -> dict[str, Any]:
        """The ``novadiag.plan/v1`` document."""
        return {
            "schema": PLAN_SCHEMA,
            "strategy": self.strategy,
            "options": self.options.to_dict(),
            "source": self.source.to_dict(),
            "summary": self.summary(),
            "order": [u.to_dict() for u in self.order],
            "steps": [s.to_dict() for s in self.steps],
            "fixes": [f.to_dict() for f in self.fixes],
            "rewrites": [r.to_dict() for r in self.rewrites],
            "conflicts": [c.to_dict() for c in self.conflicts],
            "warnings": list(self.warnings),
            "verification": None if self.verification is None else self.verification.to_dict(),
            "done": list(self.done),
        }

    def summary(self) -> dict[str, Any]:
        by_phase: dict[str, int] = {}
        for s in self.steps:
            by_phase[s.phase] = by_phase.get(s.phase, 0) + 1
        return {
            "steps": len(self.steps),
            "by_phase": by_phase,
            "units": len(self.order),
            "broken_edges": len(self.fixes),
            "fixed": sum(1 for f in self.fixes if f.fixed),
            "unfixable": sum(1 for f in self.fixes if not f.fixed),
            "references_rewritten": sum(1 for r in self.rewrites if r.changed),
            "conflicts": len(self.conflicts),
            "unresolved_conflicts": sum(1 for c in self.conflicts if not c.resolved),
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def render(self, fmt: str = "markdown") -> str:
        """``markdown`` (runbook), ``json`` or ``script`` (bash)."""
        if fmt == "json":
            return self.to_json() + "\n"
        if fmt == "markdown":
            from novadiag.planning.runbook import render_runbook

            return render_runbook(self)
        if fmt == "script":
            from novadiag.planning.script import render_script

            return render_script(self)
        from novadiag.errors import ConfigError

        raise ConfigError(f"unknown plan format {fmt!r}: choose markdown, json, script or manifests")

    def write_manifests(self, directory: str) -> list[str]:
        """Write the cleaned manifests in apply order into ``directory``; returns the files."""
        from novadiag.planning.manifests import write_manifests

        return write_manifests(self, directory)

    def apply(
        self,
        client: KubeClient | None = None,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        yes: bool = False,
        allow_delete: bool = False,
        cleanup: bool = False,
        skip_grace: bool = False,
        ack_manual: bool = False,
        probe: bool = True,
        timeout: float | None = None,
        out: Any = None,
    ) -> ApplyResult:
        """Execute the plan against a cluster, step by step (see :func:`novadiag.planning.apply.apply_plan`)."""
        from novadiag.planning.apply import apply_plan

        return apply_plan(
            self,
            client,
            kubeconfig=kubeconfig,
            context=context,
            yes=yes,
            allow_delete=allow_delete,
            cleanup=cleanup,
            skip_grace=skip_grace,
            ack_manual=ack_manual,
            probe=probe,
            timeout=timeout,
            out=out,
        )
