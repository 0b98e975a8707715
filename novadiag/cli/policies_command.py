"""``novadiag policies``: the NetworkPolicies per namespace, and which edges they allow or deny."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from novadiag.cli import EXIT_OK
from novadiag.cli.options import source_options
from novadiag.outputs import check_output_file, visible, write_output
from novadiag.pipeline import audit
from novadiag.policy_report import policy_view, print_policies, render_policies


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
        console = Console(highlight=False, markup=False)
        print_policies(view, console if console.is_terminal else Console(highlight=False, markup=False, width=200))
    else:
        sys.stdout.write(visible(render_policies(view, args.format)))
    return EXIT_OK
