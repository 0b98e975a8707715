"""``novadiag audit`` and ``novadiag snapshot save``: a source in, a report (or a snapshot file) out.

An audit of files (manifests, a snapshot file) runs without the kubernetes
client, the probe runner or rich: a live cluster's audit imports them from
:mod:`novadiag.cli.live`, and only a terminal gets rich's table
(:mod:`novadiag.cli.terminal`). A file or a pipe gets the table as plain aligned
text, written line by line (:mod:`novadiag.report.plaintable`).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from novadiag.cli import EXIT_BROKEN, EXIT_ERROR, EXIT_GAPS, EXIT_OK
from novadiag.cli.options import source_options
from novadiag.errors import ConfigError
from novadiag.outputs import check_output_file, visible, write_output, write_output_chunks
from novadiag.pipeline import audit, read_snapshot
from novadiag.report.plaintable import plain_table_chunks, plain_table_lines
from novadiag.report.render import format_for_path
from novadiag.report.streaming import STREAMED_FORMATS, report_chunks
from novadiag.report.tablerows import summary_line
from novadiag.signals import interrupts_end_at_once
from novadiag.source import open_source, source_from

if TYPE_CHECKING:
    from novadiag.report.core import Report


def run_audit(args: argparse.Namespace) -> int:
    fmt = args.format or (format_for_path(args.output) if args.output else None) or "table"
    live = not (args.manifests or args.snapshot)
    if args.output:
        check_output_file(args.output)
    probe_options = _probe_options(args)  # a bad --toleration is refused before any work, whatever the source
    if live:
        report = _audit_live(args, probe_options, progress=fmt == "table" and not args.output)
    else:
        report = audit(
            **source_options(args),
            namespaces=args.namespaces,
            cluster_domain=args.cluster_domain,
            cluster_dns=args.cluster_dns,
            probe=args.probe or None,  # files cannot be probed: --probe is refused with one line
        )
    if args.only == "broken":
        report = report.broken_only()
    _write_report(report, fmt, args)
    left = (report.probes or {}).get("leftovers") or []
    if left:
        print(
            f"novadiag: warning: {len(left)} probe object(s) could not be deleted ({visible(left[0])}); "
            "run 'novadiag cleanup'",
            file=sys.stderr,
        )
    if report.probes and not report.probes.get("ran") and report.probes.get("failed"):
        # Probe pods that RBAC forbids are gaps (a read-only token audits statically); these could have run.
        print(
            f"novadiag: error: no probe pod could run: {visible(report.probes['failed'][0]['error'])}", file=sys.stderr
        )
        return EXIT_ERROR
    return _audit_exit_code(report, fail_on=args.fail_on, fail_on_gaps=args.fail_on_gaps)


def _audit_live(args: argparse.Namespace, probe_options: dict[str, Any], *, progress: bool) -> Report:
    with interrupts_end_at_once():  # nothing to clean up yet: the cluster is not contacted, no lab started
        # deferred: the kubernetes client, the probe runner and rich's progress display load only for a live cluster
        from novadiag.cli.live import audit_live

    return audit_live(args, probe_options, progress=progress)


def _audit_exit_code(report: Report, *, fail_on: str, fail_on_gaps: bool) -> int:
    """Broken edges first (1); an audit that read nothing is an access error (2); gaps when asked (3)."""
    if report.nothing_read:
        print(f"novadiag: error: {visible(report.nothing_read)}: the audit checked nothing", file=sys.stderr)
        return EXIT_ERROR
    if fail_on == "broken" and report.broken:
        return EXIT_BROKEN
    if fail_on_gaps and report.gaps:
        return EXIT_GAPS
    return EXIT_OK


def _probe_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--probe-*`` options as :class:`novadiag.probing.ProbeSettings` takes them."""
    return {
        "image": args.probe_image,
        "image_pull_secret": args.image_pull_secret,
        "timeout": args.probe_timeout,
        "concurrency": args.probe_concurrency,
        "node_selector": dict(_key_value(item, "--node-selector") for item in args.node_selector),
        "tolerations": tuple(_toleration(item) for item in args.toleration),
    }


def _key_value(item: str, flag: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"{flag} {item!r}: expected KEY=VALUE")
    return key, value


def _toleration(item: str) -> dict[str, str]:
    spec, _, effect = item.rpartition(":")
    if not spec:
        raise ConfigError(f"--toleration {item!r}: expected KEY[=VALUE]:EFFECT")
    key, sep, value = spec.partition("=")
    tol = {"key": key, "operator": "Equal" if sep else "Exists", "effect": effect}
    if sep:
        tol["value"] = value
    return tol


def _write_report(report: Report, fmt: str, args: argparse.Namespace) -> None:
    """To -o or standard output; JSON, JSON Lines, CSV and the plain table are written as they are made."""
    if fmt in STREAMED_FORMATS:
        chunks = report_chunks(report, fmt, indent=args.indent)
        if args.output:
            write_output_chunks(args.output, chunks)
        else:
            for chunk in chunks:
                sys.stdout.write(chunk.decode("utf-8"))
    elif fmt == "table" and args.output:
        write_output_chunks(args.output, plain_table_chunks(report, all_edges=args.all_edges))
    elif fmt == "table":
        _print_table(report, all_edges=args.all_edges)
    elif args.output:
        write_output(args.output, visible(report.render(fmt, all_edges=args.all_edges)))
    else:
        sys.stdout.write(visible(report.render(fmt, all_edges=args.all_edges)))
    if args.output:
        print(summary_line(report), file=sys.stderr)


def _print_table(report: Report, *, all_edges: bool) -> None:
    """rich's table on a terminal; plain aligned text, line by line, into a pipe or a CI log."""
    if not sys.stdout.isatty():
        for line in plain_table_lines(report, all_edges=all_edges):
            sys.stdout.write(line)  # write, not writelines: stdout's wrapper names a failed write
        return
    with interrupts_end_at_once():  # the audit is over (probe pods deleted, a lab stopped): nothing to clean up
        # deferred: rich takes longer to import than a small audit takes to run; only a terminal needs it
        from novadiag.cli.terminal import print_table

    print_table(report, all_edges=all_edges)


def run_snapshot_save(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {"namespaces": args.namespaces, "cluster_domain": args.cluster_domain}
    check_output_file(args.file, flag="snapshot save")
    if args.cluster_dns:
        raise ConfigError("--cluster-dns: a snapshot keeps objects, not verdicts; give it to audit, plan or policies")
    with open_source(source_from(**source_options(args))) as opened:
        snap = read_snapshot(opened, **options)
    snap.save(args.file)
    counts = snap.count()
    print(
        f"saved {sum(counts.values())} objects of {len(counts)} kinds to {args.file}"
        + (f" ({len(snap.gaps)} gap(s))" if snap.gaps else "")
    )
    return EXIT_OK
