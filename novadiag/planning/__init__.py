"""Migration planner: fixes for every broken edge, in dependency order, proven by re-auditing.

>>> report = novadiag.audit(manifests=[NOVA])                               # doctest: +SKIP
>>> plan = novadiag.plan(report, strategy="consolidate", into="nova-prod",
...                      keep=["kafka", "nova-staging"], prefer=["nova-backend/postgres"])  # doctest: +SKIP
>>> plan.verification.ok                                                    # doctest: +SKIP
True

The package is ``planning`` and not ``plan`` so that ``novadiag.plan`` stays the
function: a submodule named ``plan`` would replace it on the package once imported.

Strategies: ``consolidate`` (move namespaces into one, blue-green),
``rewrite`` (change each broken reference to the shortest working name),
``alias`` (ExternalName Services so short names work unchanged) and ``auto``
(per edge, the least disruptive of rewrite and alias). Every plan is verified
before it is returned: its operations are applied to a copy of the snapshot
and the result is audited again (:func:`verify_plan`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from novadiag.errors import ConfigError, PlanError
from novadiag.planning.apply import ApplyResult, apply_plan
from novadiag.planning.consolidate import plan_consolidation
from novadiag.planning.export import write_manifests
from novadiag.planning.formats import render_plan
from novadiag.planning.operations import Operation
from novadiag.planning.resume import plan_resuming
from novadiag.planning.simulate import normalize, verify_plan
from novadiag.planning.strategies import crashlooping_workloads, plan_fixes, rewritten_edge_ids
from novadiag.planning.values import (
    PLAN_SCHEMA,
    STRATEGIES,
    EdgeFix,
    Plan,
    PlanContext,
    PlanOptions,
    Step,
    Unit,
    Verification,
)

if TYPE_CHECKING:
    from novadiag.report.core import Report

__all__ = [
    "PLAN_SCHEMA",
    "STRATEGIES",
    "ApplyResult",
    "EdgeFix",
    "Operation",
    "Plan",
    "PlanOptions",
    "Step",
    "Unit",
    "Verification",
    "apply_plan",
    "plan",
    "render_plan",
    "verify_plan",
    "write_manifests",
]


def plan(
    report: Report,
    strategy: str = "auto",
    *,
    into: str | None = None,
    keep: Iterable[str] = (),
    move: Iterable[str] = (),
    prefer: Iterable[str] = (),
    gateways: Iterable[str] = (),
    allow_delete: bool = False,
    grace: str = "24h",
    wait_timeout: int = 300,
    verify: bool = True,
) -> Plan:
    """Build a plan from an audit report and verify it.

    Args:
        report: what :func:`novadiag.audit` returned (it carries the snapshot).
        strategy: ``consolidate``, ``rewrite``, ``alias`` or ``auto``.
        into: the namespace a consolidation moves everything into.
        keep: namespaces a consolidation leaves where they are.
        move: only these namespaces move (default: every namespace not kept).
        prefer: ``namespace/name`` of the Service that survives a name conflict.
        gateways: ``namespace/name`` of the workloads that take outside traffic (default: detected).
        allow_delete: the cleanup phase may run (it deletes the old objects).
        grace: how long the old objects are kept after the switch (runbook and scripts).
        wait_timeout: seconds to wait for a workload to become ready.
        verify: re-audit the simulated result (``plan.verification``).
    """
    if report.snapshot is None:
        raise PlanError("the report carries no snapshot: build it with novadiag.audit(...)")
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    options = PlanOptions(
        strategy=strategy,
        into=into,
        keep=tuple(keep),
        move=tuple(move),
        prefer=tuple(prefer),
        gateways=tuple(gateways),
        allow_delete=allow_delete,
        grace=grace,
        cluster_domain=report.source.cluster_domain,
        cluster_dns=report.source.cluster_dns,
        wait_timeout=wait_timeout,
    )
    if strategy == "consolidate":
        built = plan_resuming(report, options.into or "", lambda r: plan_consolidation(r, options))
    else:
        if into or tuple(keep) or tuple(move) or tuple(prefer):
            raise ConfigError("--into, --keep, --move and --prefer only apply to --strategy consolidate")
        built = _plan_fixes(report, options)
    return replace(built, verification=verify_plan(built)) if verify else built


def _plan_fixes(report: Report, options: PlanOptions) -> Plan:
    assert report.snapshot is not None
    snapshot = normalize(report.snapshot)
    edges = tuple(sorted(report.edges, key=lambda e: e.id))  # not the listing's order: see normalize
    looping = crashlooping_workloads(report.snapshot)  # before normalize, which drops the pods
    steps, fixes, warnings = plan_fixes(edges, snapshot, options, crashlooping=looping)
    return Plan(
        options=options,
        source=report.source,
        steps=steps,
        fixes=fixes,
        warnings=warnings,
        context=PlanContext(snapshot=snapshot, baseline=report, edge_map=rewritten_edge_ids(edges, fixes)),
    )
