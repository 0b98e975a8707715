"""``novadiag plan``: options -> audit -> plan -> output (and, when asked, apply).

Kept out of ``cli.py`` so the planner's many options live next to each other;
``cli.py`` adds the subcommand with one call to :func:`add_plan_command`.
Exit codes follow ``novadiag audit``: 0 the plan is verified (and, with
``--apply --yes``, every step ran and succeeded), 1 the plan is refused or
incomplete, a step failed, or the run stopped before a step it may not take on
its own (a manual step, the grace period, a delete): the migration is not
finished, and a script chaining commands must not go on as if it were. 2 usage
or cluster errors (raised, mapped by ``cli.main``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from novadiag.cli.options import add_source_options, positive_count, source_options
from novadiag.errors import ConfigError
from novadiag.outputs import check_output_directory, check_output_file, write_output
from novadiag.pipeline import audit_cluster, audit_snapshot, read_snapshot
from novadiag.planning import apply_plan, plan, render_plan, write_manifests
from novadiag.source import Cluster, Opened, is_live, open_source, source_from

if TYPE_CHECKING:
    from novadiag.planning.values import Plan
    from novadiag.report.core import Report

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
    p.set_defaults(handler=run_plan)


def run_plan(args: argparse.Namespace) -> int:
    source = source_from(**source_options(args))
    if args.apply and not is_live(source):
        raise ConfigError("--apply needs a live cluster (kubeconfig or --lab), not manifests or a snapshot file")
    fmt = args.format or _format_for(args.output)
    if fmt == "manifests" and not args.output:
        raise ConfigError("--format manifests needs -o DIRECTORY")
    if args.output:
        (check_output_directory if fmt == "manifests" else check_output_file)(args.output)
    with open_source(source) as opened:  # a lab: a private one, not a `lab up` lab
        return _plan_and_apply(args, fmt, opened)


def _format_for(output: str | None) -> str:
    """From ``-o``'s name: ``.json``, ``.sh``, ``.md``, a trailing ``/`` for manifests; else markdown."""
    if not output:
        return "markdown"
    if output.endswith("/"):
        return "manifests"
    return {".json": "json", ".sh": "script", ".bash": "script"}.get(Path(output).suffix, "markdown")


def _plan_and_apply(args: argparse.Namespace, fmt: str, opened: Opened) -> int:
    report = _audit(args, opened)
    plan = _build(args, report)
    _output(plan, fmt, args.output, quiet=args.apply and not args.output)
    v = plan.verification
    assert v is not None
    print(f"novadiag plan: {v.summary()}", file=sys.stderr)
    if not args.apply:
        return 0 if v.ok else 1
    result = apply_plan(
        plan,
        kubeconfig=opened.settings.kubeconfig if isinstance(opened, Cluster) else None,
        context=args.context,
        yes=args.yes,
        allow_delete=args.allow_delete,
        cleanup=args.cleanup,
        skip_grace=args.no_grace,
        ack_manual=args.ack_manual,
        probe=args.probe is not False,
    )
    if not result.executed:
        return 0  # without --yes: the steps were only printed
    return 0 if result.complete else 1


def _audit(args: argparse.Namespace, opened: Opened) -> Report:
    if isinstance(opened, Cluster):
        return audit_cluster(
            opened.settings,
            cluster_domain=args.cluster_domain,
            cluster_dns=args.cluster_dns,
            probe=args.probe is not False,
            source_kind=opened.kind,
        )
    snapshot = read_snapshot(opened, cluster_domain=args.cluster_domain)
    return audit_snapshot(snapshot, cluster_domain=args.cluster_domain, cluster_dns=args.cluster_dns)


def _build(args: argparse.Namespace, report: Report) -> Plan:
    options: dict[str, Any] = {
        "gateways": args.gateway,
        "allow_delete": args.allow_delete,
        "grace": args.grace,
        "wait_timeout": args.wait_timeout,
    }
    if args.strategy == "consolidate":
        options |= {"into": args.into, "keep": args.keep, "move": args.move, "prefer": args.prefer}
    elif args.into or args.keep or args.move or args.prefer:
        raise ConfigError("--into, --keep, --move and --prefer need --strategy consolidate")
    return plan(report, args.strategy, **options)


def _output(plan: Plan, fmt: str, output: str | None, *, quiet: bool) -> None:
    if fmt == "manifests":
        assert output is not None
        files = write_manifests(plan, output)
        print(f"novadiag plan: wrote {len(files)} files to {output}", file=sys.stderr)
        return
    text = render_plan(plan, fmt)
    if output:
        write_output(output, text, executable=fmt == "script")
        print(f"novadiag plan: wrote {output}", file=sys.stderr)
    elif not quiet:
        sys.stdout.write(text)
