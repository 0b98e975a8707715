"""``novadiag`` (and ``kubectl novadiag``): options → library call → exit code.

Thin on purpose: every behaviour lives in the library so notebooks, the pytest
plugin and the CLI agree. This is the only module that maps errors to exit
codes, each with one line for the user:

- 0: nothing broken (or ``--fail-on never``); an incomplete audit says INCOMPLETE but exits 0
- 1: broken edges found
- 2: usage, configuration or cluster-access error; also when no workload or no
  Service could be read at all (an audit of nothing must not pass)
- 3: ``--fail-on-gaps`` and the audit has gaps (nothing broken, or ``--fail-on never``)
- 130: interrupted (Ctrl-C, SIGTERM, SIGHUP, SIGQUIT or SIGUSR1, at any stage; probe pods are deleted first)
- 141: the reader of standard output went away (``| head``), silently, as other Unix tools
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from novadiag.cli.options import (
    Parser,
    add_request_timeout,
    add_source_options,
    positive_count,
    positive_seconds,
)
from novadiag.cli.plan_options import add_plan_command
from novadiag.errors import NovadiagError
from novadiag.outputs import discard_stdout, stdout_failures_named, visible
from novadiag.report.render import FORMATS
from novadiag.signals import interrupts_end_at_once, stop_signals_as_interrupt
from novadiag.version import __version__

if TYPE_CHECKING:
    import logging

EXIT_OK, EXIT_BROKEN, EXIT_ERROR, EXIT_GAPS, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 0, 1, 2, 3, 130, 141


def _not_pool_housekeeping(record: logging.LogRecord) -> bool:
    """urllib3's "Connection pool is full, discarding connection" is housekeeping, not a problem to report.

    More threads than the pool holds (list workers, probe waits) each return a
    connection; the extra one is closed and the request has already succeeded.
    """
    return not (record.name == "urllib3.connectionpool" and record.msg.startswith("Connection pool is full"))


def main(argv: Sequence[str] | None = None) -> int:
    try:  # from the first line: a Ctrl-C while options are parsed is an interrupt, not a traceback
        args = build_parser().parse_args(argv)
        if not _reads_files_only(args):
            _name_the_client_log_lines()
        with stop_signals_as_interrupt(), stdout_failures_named():
            code = int(import_command(args.handler)(args))
            sys.stdout.flush()  # a full disk fails here, not in the interpreter's own flush at exit
            return code
    except NovadiagError as exc:
        print(f"novadiag: error: {visible(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as exc:
        left = getattr(exc, "leftovers", None)  # ProbesInterrupted: the cleanup could not finish
        tail = f"; {visible(str(exc))}: run 'novadiag cleanup'" if left else ""
        _tell_if_anyone_listens(f"novadiag: interrupted{tail}")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        discard_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as exc:
        if exc.filename is None:
            raise  # not about a file the user named: a bug worth its traceback
        print(f"novadiag: error: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR


def _reads_files_only(args: argparse.Namespace) -> bool:
    """An audit of manifests or a snapshot file: the kubernetes client never loads, nor does ``logging``."""
    return args.command == "audit" and bool(args.manifests or args.snapshot)


def _name_the_client_log_lines() -> None:
    """Print the kubernetes client's root-logger lines as ours, once a command may load the client.

    The client logs some failures on the root logger (an exec credential plugin
    that exits non-zero); without a handler Python prints them as "ERROR:root:...".
    """
    # deferred: logging (and traceback, threading, string) costs an audit of files a tenth of its start-up
    import logging

    if not logging.getLogger().handlers:
        logging.basicConfig(format="novadiag: warning: kubernetes client: %(message)s", level=logging.WARNING)
        for handler in logging.getLogger().handlers:
            handler.addFilter(_not_pool_housekeeping)


def run() -> None:
    """The console script: :func:`main`, then exit, without waiting on abandoned requests after an interrupt.

    By the time an interrupt reaches :func:`main`, every ``finally`` has run:
    probe pods are deleted (or named), a ``--lab`` cluster is stopped. What
    remains are worker threads whose API requests are still on the wire (a
    list the user gave up on); a normal exit would join them, which takes up
    to a request timeout. ``os._exit`` skips that, after flushing the output.
    """
    code = main()
    if code == EXIT_INTERRUPTED:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except OSError:  # a closed terminal (SIGHUP) takes no more output
                pass
        os._exit(code)
    sys.exit(code)


def _tell_if_anyone_listens(line: str) -> None:
    """Print ``line`` on stderr, unless stderr is a terminal already closed (the SIGHUP that interrupted)."""
    try:
        print(line, file=sys.stderr)
    except OSError:
        pass


def build_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = Parser(
        prog="novadiag",
        description="Audit service-to-service connectivity inside Kubernetes clusters.",
    )
    parser.add_argument("--version", action="version", version=f"novadiag {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_audit(commands)
    _add_snapshot(commands)
    _add_check(commands)
    _add_policies(commands)
    add_plan_command(commands)
    _add_cleanup(commands)
    _add_lab(commands)
    return parser


def import_command(handler: str) -> Callable[[argparse.Namespace], int]:
    """The function that runs a command, named ``module:function`` in this package by the parser.

    The parser is built from light modules only; each command's module imports
    what that command needs (the pipeline, the kubernetes client, the planner,
    rich) when it is the one chosen, so ``--version``, ``--help`` and an audit
    of manifests do not pay for the rest (docs/performance.md, start-up).
    """
    module, function = handler.split(":")
    with interrupts_end_at_once():  # nothing to clean up yet; an interrupted extension import can crash
        imported = importlib.import_module(f"novadiag.cli.{module}")
    run_command: Callable[[argparse.Namespace], int] = getattr(imported, function)
    return run_command


def _add_audit(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("audit", help="find the references that do not reach their Service")
    add_source_options(p)
    out = p.add_argument_group("output")
    out.add_argument("--format", choices=FORMATS, help="output format (default: from -o's extension, else table)")
    out.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    _add_report_shape_options(out)
    out.add_argument(
        "--fail-on",
        choices=("broken", "never"),
        default="broken",
        help="exit 1 when edges are broken (default) or never",
    )
    out.add_argument(
        "--fail-on-gaps",
        action="store_true",
        help="exit 3 when the report has gaps (objects not read, probe pods refused), even if nothing is broken",
    )
    _add_probe_options(p)
    p.set_defaults(handler="audit:run_audit")


def _add_report_shape_options(out: argparse._ArgumentGroup) -> None:
    out.add_argument(
        "--only",
        choices=("broken",),
        help="list only broken edges; the summary still counts every edge",
    )
    out.add_argument("--indent", action="store_true", help="indent the JSON report (default: compact)")
    out.add_argument(
        "--all",
        action="store_true",
        dest="all_edges",
        help="table and Markdown: list every edge (default: broken edges and a per-namespace count of the rest)",
    )


def _add_probe_options(p: argparse.ArgumentParser) -> None:
    probe = p.add_argument_group("probes (live clusters and labs)")
    probe.add_argument(
        "--probe",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run probe pods that resolve and connect for real (default: on for clusters)",
    )
    probe.add_argument(
        "--probe-image",
        default="python:3.12-slim",
        metavar="IMAGE",
        help="image with python3 for the probe pods (default python:3.12-slim)",
    )
    probe.add_argument("--image-pull-secret", metavar="NAME", help="imagePullSecret for the probe image")
    probe.add_argument(
        "--probe-timeout",
        type=positive_seconds,
        default=60.0,
        metavar="SECONDS",
        help="each probe pod's deadline, counted from its creation (default 60)",
    )
    probe.add_argument(
        "--probe-concurrency", type=positive_count, default=8, metavar="N", help="probe pods alive at once (default 8)"
    )
    probe.add_argument(
        "--node-selector",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="nodeSelector for probe pods (repeatable)",
    )
    probe.add_argument(
        "--toleration",
        action="append",
        default=[],
        metavar="KEY[=VALUE]:EFFECT",
        help="toleration for probe pods (repeatable)",
    )


def _add_check(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("check", help="run success criteria files (*.novadiag.yaml) with pytest")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--kubeconfig", metavar="FILE")
    p.add_argument("--context", metavar="NAME")
    p.add_argument("--manifests", action="append", default=[], metavar="PATH")
    p.add_argument("--lab", metavar="SCENARIO")
    p.add_argument("--baseline", metavar="FILE", help="an earlier audit JSON or snapshot")
    p.add_argument("--no-probe", action="store_true")
    p.add_argument("--junitxml", metavar="FILE", help="also write a JUnit XML report")
    p.set_defaults(handler="check:run_check")


def _add_policies(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "policies", help="NetworkPolicies per namespace: what they select, which edges they allow or deny"
    )
    add_source_options(p)
    out = p.add_argument_group("output")
    out.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")
    out.add_argument("-o", "--output", metavar="FILE", help="write the view to FILE")
    p.set_defaults(handler="policies_command:run_policies")
    actions = p.add_subparsers(dest="policies_command", metavar="ACTION")
    gen = actions.add_parser(
        "generate", help="least-privilege NetworkPolicies that admit exactly the edges that work (YAML)"
    )
    add_source_options(gen)
    gen_out = gen.add_argument_group("output")
    gen_out.add_argument("-o", "--output", metavar="FILE", help="write the manifests (or the diff) to FILE")
    gen_out.add_argument("--diff", action="store_true", help="show the change from the policies there today")
    gen.add_argument(
        "--include-planned", action="store_true", help="admit the edges the default plan fixes too (novadiag plan)"
    )
    gen.set_defaults(handler="policies_command:run_policies_generate")



def _add_cleanup(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("cleanup", help="delete probe pods and ConfigMaps a killed run left behind")
    p.add_argument("--kubeconfig", metavar="FILE")
    p.add_argument("--context", metavar="NAME")
    add_request_timeout(p)
    p.add_argument("--older-than", metavar="DURATION", help="only objects older than this (e.g. 10m, 1h)")
    p.set_defaults(handler="cleanup:run_cleanup")


def _add_snapshot(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("snapshot", help="save the objects an audit reads, for offline audits")
    sub = p.add_subparsers(dest="snapshot_command", required=True, metavar="ACTION")
    save = sub.add_parser("save", help="read the source and write a snapshot file (secrets sanitized)")
    save.add_argument("file", metavar="FILE")
    add_source_options(save)
    save.set_defaults(handler="audit:run_snapshot_save")


def _add_lab(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("lab", help="the emulated cluster: start, inspect, stop")
    sub = p.add_subparsers(dest="lab_command", required=True, metavar="ACTION")
    up = sub.add_parser("up", help="start a lab in the background and print its kubeconfig")
    up.add_argument("--scenario", default="nova")
    up.add_argument("--state-dir", metavar="DIR")
    up.set_defaults(handler="lab:run_lab_up")
    down = sub.add_parser("down", help="stop the lab and remove its state")
    down.add_argument("--state-dir", metavar="DIR")
    down.set_defaults(handler="lab:run_lab_down")
    status = sub.add_parser("status", help="is the lab running, and how")
    status.add_argument("--state-dir", metavar="DIR")
    status.set_defaults(handler="lab:run_lab_status")
    scenarios = sub.add_parser("scenarios", help="list the bundled scenarios")
    scenarios.set_defaults(handler="lab:run_lab_scenarios")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
