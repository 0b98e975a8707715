"""The values a migration plan is made of: operations, steps, units, fixes, verification.

One :class:`Operation` is the unit of change, and it is executed three ways
from the same record: simulated on a copy of the snapshot (``simulate.py``),
sent through the API (``apply.py``) and printed as ``kubectl`` commands
(``kubectl.py``, used by the runbook, the script and the JSON). Keeping one
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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from novadiag.model import ObjectRef, SourceInfo
from novadiag.planning.kubectl import step_commands
from novadiag.planning.operations import Action, Operation
from novadiag.report.html import compact_table_html, esc, muted

if TYPE_CHECKING:
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
        commands, rollback = step_commands(self.id, self.operation, self.rollback)
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
    cluster_dns: str | None = None
    """The cluster DNS address the audit was given: the plan's name model and re-audits judge with it."""

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
            "cluster_dns": self.cluster_dns,
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

    def __repr__(self) -> str:
        """One line: the dataclass repr printed every step, operation and manifest (over 100,000 characters)."""
        into = f" into {self.options.into}" if self.options.into else ""
        verified = "not verified" if self.verification is None else self.verification.summary()
        return f"<Plan {self.strategy}{into}: {len(self.steps)} steps, {len(self.fixes)} fixes; {verified}>"

    def _repr_html_(self) -> str:
        return plan_repr_html(self)

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


PLAN_STEP_LIMIT = 15


def plan_repr_html(plan: Plan) -> str:
    """The notebook view of a migration or fix Plan: verdict of its verification, then its steps in order."""
    verification = plan.verification
    status = "ok" if plan.ok else "broken"
    into = f" into {plan.options.into}" if plan.options.into else ""
    rows = [
        [esc(i), esc(step.phase), esc(step.title) + (muted(f" ⚠ {step.warning}") if step.warning else "")]
        for i, step in enumerate(plan.steps[:PLAN_STEP_LIMIT], start=1)
    ]
    notes = [verification.summary() if verification is not None else "not verified"]
    if len(plan.steps) > PLAN_STEP_LIMIT:
        notes.append(f"… and {len(plan.steps) - PLAN_STEP_LIMIT} more steps")
    notes += list(plan.warnings)
    notes.append("novadiag.render_plan(plan, 'markdown') for the runbook")
    return compact_table_html(
        f"novadiag plan: {plan.strategy}{into}, {len(plan.steps)} steps",
        ["#", "phase", "step"],
        rows,
        status=status,
        note=" · ".join(notes),
    )
