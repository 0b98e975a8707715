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
import dataclasses
import io
import logging
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn

from novadiag.cli import lab as lab_commands
from novadiag.cli.options import (
    Parser,
    add_request_timeout,
    add_source_options,
    positive_count,
    positive_seconds,
    source_options,
)
from novadiag.cli.plan import add_plan_command
from novadiag.criteria.context import read_baseline
from novadiag.errors import ConfigError, NovadiagError
from novadiag.kube import KubeClient, KubeSettings
from novadiag.netpol.least_privilege import generate_policies
from novadiag.netpol.view import policy_view, print_policies, render_policies
from novadiag.outputs import (
    check_output_file,
    discard_stdout,
    stdout_failures_named,
    write_output,
    write_output_chunks,
)
from novadiag.pipeline import audit, read_snapshot
from novadiag.planning import plan
from novadiag.probing import ProbeSettings, cleanup
from novadiag.report.render import FORMATS, format_for_path
from novadiag.report.streaming import STREAMED_FORMATS, report_chunks
from novadiag.report.table import FILE_WIDTH, print_report, summary_line
from novadiag.signals import stop_signals_as_interrupt
from novadiag.source import Source, open_source, source_from
from novadiag.version import __version__

if TYPE_CHECKING:
    from novadiag.report.core import Report

EXIT_OK, EXIT_BROKEN, EXIT_ERROR, EXIT_GAPS, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 0, 1, 2, 3, 130, 141


def _not_pool_housekeeping(record: logging.LogRecord) -> bool:
    """urllib3's "Connection pool is full, discarding connection" is housekeeping, not a problem to report.

    More threads than the pool holds (list workers, probe waits) each return a
    connection; the extra one is closed and the request has already succeeded.
    """
    return not (record.name == "urllib3.connectionpool" and record.msg.startswith("Connection pool is full"))


def main(argv: Sequence[str] | None = None) -> int:
    try:  # from the first line: a Ctrl-C while options are parsed is an interrupt, not a traceback
        # The kubernetes client logs some failures on the root logger (an exec credential plugin that
        # exits non-zero); without a handler Python prints them as "ERROR:root:...". Say whose it is.
        if not logging.getLogger().handlers:
            logging.basicConfig(format="novadiag: warning: kubernetes client: %(message)s", level=logging.WARNING)
            for handler in logging.getLogger().handlers:
                handler.addFilter(_not_pool_housekeeping)
        args = build_parser().parse_args(argv)
        with stop_signals_as_interrupt(), stdout_failures_named():
            code = int(args.handler(args))
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
    p.set_defaults(handler=_run_audit)


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
    p.set_defaults(handler=_run_check)


def _run_check(args: argparse.Namespace) -> int:
    """Criteria files run under pytest, isolated from the pytest config of the repo they sit in.

    That config (``addopts``, ``timeout`` from a plugin the user's CI may not
    install, ``filterwarnings = error``) belongs to the repo's own tests; the
    criteria only need novadiag's plugin, so ``-c /dev/null`` skips it.

    Exit codes: 0 every criterion passed, 1 some failed or could not be checked,
    2 bad input (a missing criteria file, a bad baseline, a criteria file that
    does not parse). The baseline is read here first so that a bad one is one
    line and exit 2, not a criterion that fails.
    """
    import pytest  # deferred: pytest and its plugins load only for `novadiag check`

    for path in args.files:
        if not os.path.isfile(path):
            raise ConfigError(f"{path}: no such criteria file")
    if args.baseline:
        read_baseline(args.baseline)
    argv = [*args.files, "-c", os.devnull, "--rootdir", os.getcwd(), "-p", "no:cacheprovider", "-q"]
    for flag, value in (
        ("--novadiag-kubeconfig", args.kubeconfig),
        ("--novadiag-context", args.context),
        ("--novadiag-lab", args.lab),
        ("--novadiag-baseline", args.baseline),
        ("--junitxml", args.junitxml),
    ):
        if value:
            argv += [flag, value]
    for path in args.manifests:
        argv += ["--novadiag-manifests", path]
    if args.no_probe:
        argv.append("--novadiag-no-probe")
    code = pytest.main(argv)
    if code in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return int(code)
    # pytest's usage and internal errors, a file holding no criteria, and collection errors (which
    # pytest reports as INTERRUPTED, like Ctrl-C; a real Ctrl-C reaches main() as KeyboardInterrupt
    # only outside pytest): pytest has said why above.
    return EXIT_ERROR


def _add_policies(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "policies", help="NetworkPolicies per namespace: what they select, which edges they allow or deny"
    )
    add_source_options(p)
    out = p.add_argument_group("output")
    out.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")
    out.add_argument("-o", "--output", metavar="FILE", help="write the view to FILE")
    p.set_defaults(handler=_run_policies)
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
    gen.set_defaults(handler=_run_policies_generate)


def _run_policies(args: argparse.Namespace) -> int:
    if args.output:
        check_output_file(args.output)
    # every namespace's edges: -n picks the policies shown, their callers may live anywhere
    report = audit(**source_options(args), cluster_domain=args.cluster_domain, probe=False)
    view = policy_view(report, namespaces=args.namespaces)
    if args.output:
        write_output(args.output, visible(render_policies(view, args.format)))
    elif args.format == "table":
        console = Console(highlight=False, markup=False)
        print_policies(view, console if console.is_terminal else Console(highlight=False, markup=False, width=200))
    else:
        sys.stdout.write(visible(render_policies(view, args.format)))
    return EXIT_OK


def _run_policies_generate(args: argparse.Namespace) -> int:
    if args.output:
        check_output_file(args.output)
    # every namespace's edges: -n picks where policies are generated, callers may live anywhere
    report = audit(**source_options(args), cluster_domain=args.cluster_domain, probe=False)
    fixing = plan(report) if args.include_planned else None
    generated = generate_policies(
        report, include_planned=args.include_planned, plan=fixing, namespaces=args.namespaces
    )
    for note in generated.notes:
        print(f"novadiag: note: {visible(note)}", file=sys.stderr)
    text = visible(generated.diff() if args.diff else generated.to_yaml())
    if args.output:
        write_output(args.output, text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _add_cleanup(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("cleanup", help="delete probe pods and ConfigMaps a killed run left behind")
    p.add_argument("--kubeconfig", metavar="FILE")
    p.add_argument("--context", metavar="NAME")
    add_request_timeout(p)
    p.add_argument("--older-than", metavar="DURATION", help="only objects older than this (e.g. 10m, 1h)")
    p.set_defaults(handler=_run_cleanup)


def _add_snapshot(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("snapshot", help="save the objects an audit reads, for offline audits")
    sub = p.add_subparsers(dest="snapshot_command", required=True, metavar="ACTION")
    save = sub.add_parser("save", help="read the source and write a snapshot file (secrets sanitized)")
    save.add_argument("file", metavar="FILE")
    add_source_options(save)
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
    return int(getattr(lab_commands, command)(*args))


def _run_audit(args: argparse.Namespace) -> int:
    fmt = args.format or (format_for_path(args.output) if args.output else None) or "table"
    live = not (args.manifests or args.snapshot)
    if args.output:
        check_output_file(args.output)
    with _progress(enabled=fmt == "table" and not args.output and live) as (listing, probing):
        report = audit(
            **source_options(args),
            namespaces=args.namespaces,
            cluster_domain=args.cluster_domain,
            probe=args.probe if live else (args.probe or None),
            probe_settings=_probe_settings(args),
            progress=listing,
            probe_progress=probing,
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


def _probe_settings(args: argparse.Namespace) -> ProbeSettings:
    return ProbeSettings(
        image=args.probe_image,
        image_pull_secret=args.image_pull_secret,
        timeout=args.probe_timeout,
        concurrency=args.probe_concurrency,
        node_selector=dict(_key_value(item, "--node-selector") for item in args.node_selector),
        tolerations=tuple(_toleration(item) for item in args.toleration),
    )


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


@contextmanager
def _progress(*, enabled: bool) -> Iterator[tuple[Any, Any]]:
    """Progress on stderr while listing and probing; nothing when not a TTY or for files."""
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield None, None
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True) as bar:
        task = bar.add_task("listing the cluster…", total=None)

        def listing(kind: str, count: int) -> None:
            bar.update(task, description=f"listing the cluster: {kind} ({count} objects)")

        def probing(c: dict[str, int]) -> None:
            bar.update(
                task,
                description=(
                    f"probing: {c['created']}/{c['total']} pods created, "
                    f"{c['running']} running, {c['done']} done, {c['failed']} failed"
                ),
            )

        yield listing, probing


def _run_cleanup(args: argparse.Namespace) -> int:
    older = _duration(args.older_than) if args.older_than else None
    settings = KubeSettings(kubeconfig=args.kubeconfig, context=args.context, request_timeout=args.request_timeout)
    with KubeClient(settings) as client:
        gone = cleanup(client, older_than=older)
    for line in gone:
        print(f"deleted {line}")
    print(f"cleanup: {len(gone)} object(s) deleted")
    return EXIT_OK


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except (ValueError, IndexError) as exc:
        raise ConfigError(f"--older-than {text!r}: expected a duration like 90s, 10m, 2h") from exc


def _write_report(report: Report, fmt: str, args: argparse.Namespace) -> None:
    """To -o or standard output; JSON, JSON Lines and CSV are written as they are made."""
    if fmt in STREAMED_FORMATS:
        chunks = report_chunks(report, fmt, indent=args.indent)
        if args.output:
            write_output_chunks(args.output, chunks)
        else:
            for chunk in chunks:
                sys.stdout.write(chunk.decode("utf-8"))
    elif args.output:
        write_output(args.output, _rendered(report, fmt, all_edges=args.all_edges))
    elif fmt == "table":
        _print_table(report, all_edges=args.all_edges)
    else:
        sys.stdout.write(_rendered(report, fmt, all_edges=args.all_edges))
    if args.output:
        print(summary_line(report), file=sys.stderr)


def _rendered(report: Report, fmt: str, *, all_edges: bool = False) -> str:
    if fmt != "table":
        return visible(report.render(fmt, all_edges=all_edges))
    buffer = io.StringIO()
    console = Console(file=buffer, no_color=True, width=FILE_WIDTH, highlight=False, soft_wrap=False, markup=False)
    print_report(_visible_report(report), console, all_edges=all_edges)
    return buffer.getvalue()


def _print_table(report: Report, *, all_edges: bool = False) -> None:
    # markup=False: names, env values and messages come from the cluster; "[/]" or "[link=...]" in
    # one must print as text, not crash rich or style the terminal.
    console = Console(highlight=False, markup=False)
    if not console.is_terminal:
        console = Console(highlight=False, markup=False, width=FILE_WIDTH)  # pipes and CI logs
    print_report(_visible_report(report), console, all_edges=all_edges)


_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """Text from the cluster made safe for a terminal, a CI log or an XML parser.

    Names, env values and server messages are data: an escape sequence in one
    must not retitle the terminal, recolour it or move the cursor, a carriage
    return must not overwrite the line, a bidi override must not reorder it, and
    JUnit XML must stay parseable. Each such character is written as ``\\u`` and four
    hex digits (ESC becomes ``\\u001b``), which JSON reads back as the same character.
    """
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)


def _visible_report(report: Report) -> Report:
    """The report with every string the table shows passed through :func:`visible`."""
    return dataclasses.replace(
        report,
        edges=tuple(_visible_fields(e) for e in report.edges),
        findings=tuple(_visible_fields(f) for f in report.findings),
        gaps=tuple(_visible_fields(g) for g in report.gaps),
    )


def _visible_fields(value: Any) -> Any:
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, tuple):
        return tuple(_visible_fields(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _visible_fields(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **changes)
    return value


def _source_of(args: argparse.Namespace) -> Source:
    """The source the shared source options name (see :func:`novadiag.cli.options.add_source_options`)."""
    return source_from(**source_options(args))


def _run_snapshot_save(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {"namespaces": args.namespaces, "cluster_domain": args.cluster_domain}
    check_output_file(args.file, flag="snapshot save")
    with open_source(_source_of(args)) as opened:
        snap = read_snapshot(opened, **options)
    snap.save(args.file)
    counts = snap.count()
    print(
        f"saved {sum(counts.values())} objects of {len(counts)} kinds to {args.file}"
        + (f" ({len(snap.gaps)} gap(s))" if snap.gaps else "")
    )
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
