"""``novadiag`` (and ``kubectl novadiag``): options → library call → exit code.

Thin on purpose: every behaviour lives in the library so notebooks, the pytest
plugin and the CLI agree. This is the only module that maps errors to exit
codes, each with one line for the user:

- 0: nothing broken (or ``--fail-on never``)
- 1: broken edges found
- 2: usage, configuration or cluster-access error
- 130: interrupted
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from novadiag import __version__
from novadiag.errors import NovadiagError

EXIT_OK, EXIT_BROKEN, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except NovadiagError as exc:
        print(f"novadiag: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("novadiag: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="novadiag",
        description="Audit service-to-service connectivity inside Kubernetes clusters.",
    )
    parser.add_argument("--version", action="version", version=f"novadiag {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_audit(commands)
    _add_snapshot(commands)
    _add_lab(commands)
    return parser


def _add_source_options(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("source (default: the current kubeconfig context)")
    src.add_argument("--manifests", action="append", metavar="PATH", help="manifest file or directory (repeatable)")
    src.add_argument("--snapshot", metavar="FILE", help="a snapshot saved with 'novadiag snapshot save'")
    src.add_argument("--lab", metavar="SCENARIO", help="start a bundled lab scenario, audit it, stop it")
    src.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    src.add_argument("--context", metavar="NAME", help="kubeconfig context")
    src.add_argument("--in-cluster", action="store_true", help="use the pod's service account")
    src.add_argument("-n", "--namespace", action="append", dest="namespaces", metavar="NS",
                     help="only edges from this namespace (repeatable)")
    src.add_argument("--cluster-domain", metavar="DOMAIN", help="cluster DNS domain (default cluster.local)")


def _add_audit(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("audit", help="find the references that do not reach their Service")
    _add_source_options(p)
    out = p.add_argument_group("output")
    out.add_argument("--format", choices=("table", "json"), help="output format (default: from -o, else table)")
    out.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    out.add_argument("--fail-on", choices=("broken", "never"), default="broken",
                     help="exit 1 when edges are broken (default) or never")
    p.set_defaults(handler=_run_audit)


def _add_snapshot(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("snapshot", help="save the objects an audit reads, for offline audits")
    sub = p.add_subparsers(dest="snapshot_command", required=True, metavar="ACTION")
    save = sub.add_parser("save", help="read the source and write a snapshot file (secrets sanitized)")
    save.add_argument("file", metavar="FILE")
    _add_source_options(save)
    save.set_defaults(handler=_run_snapshot_save)


def _add_lab(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("lab", help="the emulated cluster: start, inspect, stop")
    sub = p.add_subparsers(dest="lab_command", required=True, metavar="ACTION")
    up = sub.add_parser("up", help="start a lab in the background and print its kubeconfig")
    up.add_argument("--scenario", default="nova")
    up.add_argument("--state-dir", metavar="DIR")
    up.set_defaults(handler=lambda a: _lab("lab_up", a.scenario, a.state_dir))
    down = sub.add_parser("down", help="stop the lab and remove its state")
    down.add_argument("--state-dir", metavar="DIR")
    down.set_defaults(handler=lambda a: _lab("lab_down", a.state_dir))
    status = sub.add_parser("status", help="is the lab running, and how")
    status.add_argument("--state-dir", metavar="DIR")
    status.set_defaults(handler=lambda a: _lab("lab_status", a.state_dir))
    scenarios = sub.add_parser("scenarios", help="list the bundled scenarios")
    scenarios.set_defaults(handler=lambda a: _lab("lab_scenarios"))


def _lab(command: str, *args: object) -> int:
    from novadiag.lab import commands

    return int(getattr(commands, command)(*args))


def _run_audit(args: argparse.Namespace) -> int:
    from novadiag.audit import audit
    from novadiag.report.render import format_for_path

    fmt = args.format or (format_for_path(args.output) if args.output else None) or "table"
    report = audit(
        manifests=args.manifests,
        snapshot=args.snapshot,
        lab=args.lab,
        kubeconfig=args.kubeconfig,
        context=args.context,
        in_cluster=args.in_cluster,
        namespaces=args.namespaces,
        cluster_domain=args.cluster_domain,
    )
    if args.output:
        Path(args.output).write_text(report.render(fmt), encoding="utf-8")
        from novadiag.report.table import summary_line

        print(summary_line(report), file=sys.stderr)
    elif fmt == "table":
        _print_table(report)
    else:
        sys.stdout.write(report.render(fmt))
    if args.fail_on == "broken" and report.broken:
        return EXIT_BROKEN
    return EXIT_OK


def _print_table(report: object) -> None:
    from rich.console import Console

    from novadiag.report.table import print_report

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)  # pipes and CI logs: no wrapping
    print_report(report, console)  # type: ignore[arg-type]


def _run_snapshot_save(args: argparse.Namespace) -> int:
    from novadiag.audit import load_source

    if args.lab:
        from novadiag.lab import Lab

        with Lab(scenario=args.lab) as running:
            snap = load_source(kubeconfig=running.kubeconfig, namespaces=args.namespaces,
                               cluster_domain=args.cluster_domain, source_kind="lab")
    else:
        snap = load_source(
            manifests=args.manifests, snapshot=args.snapshot, kubeconfig=args.kubeconfig,
            context=args.context, in_cluster=args.in_cluster, namespaces=args.namespaces,
            cluster_domain=args.cluster_domain,
        )
    snap.save(args.file)
    counts = snap.count()
    print(f"saved {sum(counts.values())} objects of {len(counts)} kinds to {args.file}"
          + (f" ({len(snap.gaps)} gap(s))" if snap.gaps else ""))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
