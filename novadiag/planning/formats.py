"""A plan as text: the runbook (Markdown), the ``novadiag.plan/v1`` JSON or the bash script.

A function rather than a method of :class:`~novadiag.planning.values.Plan`, so
the plan stays a plain value below the renderers that read it.
"""

from __future__ import annotations

from novadiag.errors import ConfigError
from novadiag.planning.runbook import render_runbook
from novadiag.planning.script import render_script
from novadiag.planning.values import Plan

PLAN_FORMATS = ("markdown", "json", "script")


def render_plan(plan: Plan, fmt: str = "markdown") -> str:
    """``markdown`` (runbook), ``json`` or ``script`` (bash); the CLI writes ``manifests`` itself."""
    if fmt == "json":
        return plan.to_json() + "\n"
    if fmt == "markdown":
        return render_runbook(plan)
    if fmt == "script":
        return render_script(plan)
    raise ConfigError(f"unknown plan format {fmt!r}: choose markdown, json, script or manifests")
