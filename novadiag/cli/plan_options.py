"""The options of ``novadiag plan``: strategy, output, apply; the command itself is :mod:`novadiag.cli.plan`.

Read whenever the CLI's parser is built (``--help``, ``--version``, every
command), so it imports nothing but argparse and the shared option types.
"""

from __future__ import annotations

import argparse

from novadiag.cli.options import add_source_options, positive_count

PLAN_FORMATS = ("markdown", "json", "script", "manifests")


def add_plan_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``novadiag plan`` on the CLI's subcommands."""
    p = commands.add_parser(
        "plan",
        help="plan the fixes (or a consolidation) for the broken edges, verified by a re-audit",
        description="Build a dependency-ordered plan that fixes every broken edge, prove it by re-auditing "
        "the simulated result, print it as a runbook, JSON, a bash script or manifests, and optionally apply it.",
    )
    add_source_options(p)
    s = p.add_argument_group("strategy")
    s.add_argument("--strategy", choices=("consolidate", "rewrite", "alias", "auto"), default="auto")
    s.add_argument("--into", metavar="NS", help="consolidate: the namespace everything moves into")
    s.add_argument("--keep", action="append", default=[], metavar="NS", help="consolidate: a namespace that stays")
    s.add_argument("--move", action="append", default=[], metavar="NS", help="consolidate: move only this namespace")
    s.add_argument(
        "--prefer",
        action="append",
        default=[],
        metavar="NS/NAME",
        help="consolidate: the Service that survives a name conflict",
    )
    s.add_argument(
        "--gateway",
        action="append",
        default=[],
        metavar="NS/NAME",
        help="the workload that takes outside traffic (default: detected)",
    )
    s.add_argument("--grace", default="24h", metavar="DURATION", help="keep the old objects this long (default 24h)")
    s.add_argument(
        "--wait-timeout", type=positive_count, default=300, metavar="SECONDS", help="readiness wait per workload"
    )
    o = p.add_argument_group("output")
    o.add_argument("--format", choices=PLAN_FORMATS, default=None, help="default: markdown (manifests needs -o DIR)")
    o.add_argument("-o", "--output", metavar="PATH", help="write to PATH (a directory for --format manifests)")
    a = p.add_argument_group("apply (live clusters)")
    a.add_argument("--apply", action="store_true", help="execute the plan through the API (prints only without --yes)")
    a.add_argument("--yes", action="store_true", help="really execute (with --apply)")
    a.add_argument("--allow-delete", action="store_true", help="let the cleanup phase delete the old objects")
    a.add_argument("--cleanup", action="store_true", help="run only the cleanup phase (after the grace period)")
    a.add_argument("--no-grace", action="store_true", help="go straight from the switch to the cleanup")
    a.add_argument(
        "--ack-manual",
        action="store_true",
        help="manual steps (data migration, external traffic) are done: continue past them",
    )
    a.add_argument(
        "--probe",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="probe live clusters while auditing and verifying (default: on)",
    )
    p.set_defaults(handler="plan:run_plan")
