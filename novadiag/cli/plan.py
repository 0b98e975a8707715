"""``novadiag plan``: options -> audit -> plan -> output (and, when asked, apply).

The planner's many options live next to each other in
:mod:`novadiag.cli.plan_options` (light, read whenever the parser is built);
this module runs the command and imports the planner only when it is chosen.
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

from novadiag.cli.options import source_options
from novadiag.errors import ConfigError
from novadiag.outputs import check_output_directory, check_output_file, write_output
from novadiag.pipeline import audit_cluster, audit_snapshot, read_snapshot
from novadiag.planning import apply_plan, plan, render_plan, write_manifests
from novadiag.source import Cluster, Opened, is_live, open_source, source_from

if TYPE_CHECKING:
    from novadiag.planning.values import Plan
    from novadiag.report.core import Report


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
            ingress_from=args.ingress_from,
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
