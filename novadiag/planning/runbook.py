"""The plan as a Markdown runbook: phases with time estimates, steps with commands, checks and rollbacks.

Written for the person on call during the migration window: what happens in
which order and why, what to check before going on, and how to undo each
step. It opens with the verdict of the verification, because a plan that
was not proven should be read as a draft.
"""

from __future__ import annotations

from collections.abc import Iterable

from novadiag.planning.kubectl import step_commands
from novadiag.planning.values import PHASE_MINUTES, PHASES, Plan, Step

PHASE_TITLES = {
    "prepare": "Prepare: the target namespace and what the workloads use",
    "fix": "Fix the broken references",
    "deploy": "Deploy next to the old (blue-green), dependencies first",
    "verify": "Verify before switching",
    "switch": "Switch traffic and scale the old down",
    "grace": "Grace period",
    "cleanup": "Clean up (needs --allow-delete)",
}

PHASE_CHECKS = {
    "prepare": "`kubectl get all,cm,secret,sa,pvc,netpol -n {into}` lists what was copied; no Secret value is printed.",
    "fix": "every patched workload rolls out; no pod in CrashLoopBackOff.",
    "deploy": "each workload is ready before the next unit starts; the old ones still serve all traffic.",
    "verify": "`novadiag audit --probe` on the target shows zero broken edges.",
    "switch": "the gateway answers through the new namespace; error rates stay flat.",
    "grace": "the old objects are scaled to zero but still there: rolling back is re-scaling and restoring Services.",
    "cleanup": "the old namespaces are gone; `novadiag audit --probe` shows zero broken edges.",
}


def render_runbook(plan: Plan) -> str:
    lines: list[str] = [f"# novadiag plan: {_title(plan)}", ""]
    lines += _verification(plan)
    lines += _conflicts(plan)
    lines += _order(plan)
    lines += _fixes(plan)
    lines += _rewrites(plan)
    if plan.warnings:
        lines += ["## Warnings", ""] + [f"- {w}" for w in plan.warnings] + [""]
    lines += _phases(plan)
    return "\n".join(lines).rstrip() + "\n"


def _title(plan: Plan) -> str:
    o = plan.options
    if o.strategy == "consolidate":
        keep = f", keeping {', '.join(o.keep)}" if o.keep else ""
        return f"consolidate into `{o.into}`{keep}"
    return f"`{o.strategy}` fixes for the broken edges"


def _verification(plan: Plan) -> list[str]:
    v = plan.verification
    if v is None:
        return ["> **Not verified.** Make it with `novadiag.plan(..., verify=True)` before using this runbook.", ""]
    lines = [f"**Verification: {v.summary()}** (the plan applied to a copy of the snapshot and audited again).", ""]
    lines += [
        "| | before | after |",
        "|---|---:|---:|",
        f"| edges | {v.edges_before} | {v.edges_after} |",
        f"| broken | {v.broken_before} | {v.broken_after} |",
        "",
    ]
    if v.regressions:
        lines += ["**Refused** — the plan would break edges that work today:", ""]
        lines += [f"- `{r}`" for r in v.regressions] + [""]
    if v.unresolved:
        lines += ["Edges waiting on an unresolved conflict (see Conflicts):", ""]
        lines += [f"- `{e}`" for e in v.unresolved] + [""]
    if v.notes:
        lines += ["Still broken after the plan:", ""] + [f"- {n}" for n in v.notes] + [""]
    return lines


def _conflicts(plan: Plan) -> list[str]:
    if not plan.conflicts:
        return []
    lines = ["## Conflicts", "", "| kind | name | from | resolved | resolution |", "|---|---|---|---|---|"]
    for c in plan.conflicts:
        lines.append(
            f"| {c.kind} | `{c.name}` | {', '.join(c.sources)} | {'yes' if c.resolved else '**no**'} | {c.resolution} |"
        )
    return [*lines, ""]


def _order(plan: Plan) -> list[str]:
    if not plan.order:
        return []
    lines = ["## Order (dependencies first)", ""]
    for unit in plan.order:
        tags = [
            t
            for t, on in (
                ("cycle: moves as one unit", unit.cycle),
                ("stateful", unit.stateful),
                ("gateway", unit.gateway),
            )
            if on
        ]
        services = ", ".join(f"{s.namespace}/{s.name}" for s in unit.services)
        suffix = f" — {'; '.join(tags)}" if tags else ""
        lines.append(
            f"{unit.position}. {unit.name or '(Services only)'} → `{unit.target_namespace}`"
            f"{f' (Services: {services})' if services else ''}{suffix}"
        )
    return [*lines, ""]


def _fixes(plan: Plan) -> list[str]:
    if not plan.fixes:
        return ["## Broken edges", "", "None: nothing to fix.", ""]
    lines = ["## Broken edges and their fixes", "", "| edge | status | fix | steps | why |", "|---|---|---|---|---|"]
    for f in plan.fixes:
        action = f.action or "**none**"
        lines.append(f"| `{f.edge}` | {f.status} | {action} | {', '.join(f.steps)} | {f.detail} |")
    return [*lines, ""]


def _rewrites(plan: Plan) -> list[str]:
    if not plan.rewrites:
        return []
    lines = ["## References after the move", "", "| edge | was | becomes | where | why |", "|---|---|---|---|---|"]
    for r in plan.rewrites:
        becomes = f"`{r.new_host}`" if r.changed else "(unchanged)"
        lines.append(f"| `{r.edge}` | `{r.old_host}` | {becomes} | {r.where} | {r.reason} |")
    return [*lines, ""]


def _phases(plan: Plan) -> list[str]:
    lines: list[str] = []
    total = 0
    for phase in PHASES:
        steps = [s for s in plan.steps if s.phase == phase]
        if not steps:
            continue
        minutes = PHASE_MINUTES[phase]
        total += minutes
        when = f"grace: {plan.options.grace}" if phase == "grace" else f"~{minutes} min"
        lines += [f"## Phase: {PHASE_TITLES[phase]} ({when})", ""]
        check = PHASE_CHECKS[phase].format(into=plan.options.into or "the namespace")
        lines += [f"**Check before going on:** {check}", ""]
        lines += [line for step in steps for line in _step(step, done=step.id in plan.done)]
    header = [f"## Runbook (estimated {total} min of work, plus the grace period)", ""]
    return header + lines


def _step(step: Step, *, done: bool = False) -> list[str]:
    deps = f" (after {', '.join(step.depends_on)})" if step.depends_on else ""
    lines = [f"### {step.id}. {step.title}{deps}", ""]
    if done:
        lines += ["**Already in place** when the plan was made (a run before this one did it): skipped.", ""]
    if step.warning:
        lines += [f"> ⚠ {step.warning}", ""]
    if step.operation.note:
        lines += [step.operation.note, ""]
    if step.fixes:
        lines += [f"Fixes: {', '.join(f'`{e}`' for e in step.fixes)}", ""]
    commands, rollback = step_commands(step.id, step.operation, step.rollback)
    lines += _code(commands)
    if rollback:
        lines += ["Rollback:", ""] + _code(rollback)
    if step.requires_allow_delete:
        lines += ["_Runs only with `--allow-delete`._", ""]
    return lines


def _code(commands: Iterable[str]) -> list[str]:
    body = list(commands)
    if not body:
        return []
    return ["```bash", *body, "```", ""]
