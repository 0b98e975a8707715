"""``novadiag policies``: the NetworkPolicies per namespace, which edges they allow or deny, and ``generate``."""

from __future__ import annotations

import argparse
import sys

from novadiag.cli import EXIT_OK
from novadiag.cli.options import source_options
from novadiag.least_privilege import generate_policies
from novadiag.netpol.view import PolicyView, plain_policy_lines, policy_view, render_policies
from novadiag.outputs import check_output_file, visible, write_output
from novadiag.pipeline import audit
from novadiag.planning import plan
from novadiag.signals import interrupts_end_at_once


def run_policies(args: argparse.Namespace) -> int:
    if args.output:
        check_output_file(args.output)
    # every namespace's edges: -n picks the policies shown, their callers may live anywhere
    report = audit(
        **source_options(args), cluster_domain=args.cluster_domain, cluster_dns=args.cluster_dns, probe=False
    )
    view = policy_view(report, namespaces=args.namespaces)
    if args.output:
        write_output(args.output, visible(render_policies(view, args.format)))
    elif args.format == "table":
        _print_table(view)
    else:
        sys.stdout.write(visible(render_policies(view, args.format)))
    return EXIT_OK


def _print_table(view: PolicyView) -> None:
    """rich's tables on a terminal; plain aligned text into a pipe or a CI log, as ``novadiag audit`` does."""
    if not sys.stdout.isatty():
        for line in plain_policy_lines(view):
            sys.stdout.write(line)
        return
    with interrupts_end_at_once():  # the audit is over, a lab stopped: nothing to clean up
        # deferred: rich takes longer to import than a small audit takes to run; only a terminal needs it
        from novadiag.cli.terminal import print_policies

    print_policies(view)


def run_policies_generate(args: argparse.Namespace) -> int:
    if args.output:
        check_output_file(args.output)
    # every namespace's edges: -n picks where policies are generated, callers may live anywhere
    report = audit(
        **source_options(args), cluster_domain=args.cluster_domain, cluster_dns=args.cluster_dns, probe=False
    )
    fixing = plan(report) if args.include_planned else None
    generated = generate_policies(
        report,
        include_planned=args.include_planned,
        plan=fixing,
        namespaces=args.namespaces,
        ingress_from=args.ingress_from,
    )
    for note in generated.notes:
        print(f"novadiag: note: {visible(note)}", file=sys.stderr)
    text = visible(generated.diff() if args.diff else generated.to_yaml())
    if args.output:
        write_output(args.output, text)
    else:
        sys.stdout.write(text)
    return EXIT_OK
