"""What ``novadiag lab up|down|status|scenarios`` do, as functions the CLI's parser names (``run_lab_*``).

Each prints the lines a user reads and returns the exit code. Errors the user
can act on (a second ``lab up``, a bad scenario, a daemon that failed) are raised
as :class:`novadiag.errors.NovadiagError` subclasses with one clear line, for
``cli.py`` to print and map to exit code 2, as it does for every command.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from typing import Any

from novadiag.lab import Lab, control
from novadiag.lab.scenario import list_scenarios

DEGRADED_NOTE = (
    "degraded mode ({reason}): pods resolve names through an explicit resolver, not glibc "
    "in a private mount namespace; DNS verdicts that depend on the C library are less faithful"
)


def lab_up(scenario: str = "nova", state_dir: str | os.PathLike[str] | None = None) -> int:
    """Start a lab in the background and print how to reach it."""
    began = time.monotonic()
    lab = Lab(scenario, state_dir=state_dir, outlive_owner=True).start()
    elapsed = time.monotonic() - began
    for note in lab.notes:
        print(f"note: {note}")
    info = lab.info
    pods = _pods_line(lab.status())
    print(f'lab "{info.scenario}" is up in {elapsed:.1f} s (mode {info.mode}{pods})')
    print(f"  API server   {info.api_url}")
    print(f"  cluster DNS  {info.dns_ip}:{info.dns_port} (zone {info.cluster_domain})")
    print(f"  state dir    {info.state_dir}")
    print(f"  kubeconfig   {info.kubeconfig}")
    if info.mode != "root":
        print("note: " + DEGRADED_NOTE.format(reason=info.mode_reason or "not root"))
    print(f"export KUBECONFIG={shlex.quote(info.kubeconfig)}")
    return 0


def lab_down(state_dir: str | os.PathLike[str] | None = None) -> int:
    """Stop the lab and remove its state dir; also cleans up after a crashed daemon."""
    path = control.resolve_state_dir(state_dir)
    if not (path / control.MARKER).exists():
        print(f"no lab in {path}")
        return 0
    if control.stop_lab(path):
        print(f"lab in {path} stopped; state removed")
    else:
        print(f"lab in {path} was not running; cleaned up what it left")
    return 0


def lab_status(state_dir: str | os.PathLike[str] | None = None) -> int:
    """Print the lab's state; exit code 0 when it runs, 1 when it does not."""
    path = control.resolve_state_dir(state_dir)
    status = control.lab_status(path)
    if not status["running"]:
        if status.get("starting"):
            print(f"lab in {path} is starting (pid {status['pid']})")
        elif status.get("stale"):
            print(f"lab in {path} is not running (daemon pid {status['pid']} died); run: novadiag lab down")
        else:
            print(f"no lab running in {path}")
        return 1
    print(f'lab "{status["scenario"]}" running (pid {status["pid"]}, up {_duration(status["uptime_s"])})')
    print(f"  mode         {status['mode']}" + (f" ({status['mode_reason']})" if status.get("mode_reason") else ""))
    print(f"  API server   {status['api_url']}")
    print(f"  cluster DNS  {status['dns']} (zone {status['cluster_domain']})")
    print(f"  kubeconfig   {status['kubeconfig']}")
    if "pods" in status:
        print("  pods         " + (_pods_line(status).lstrip(", ") or "none"))
    if status.get("control_error"):
        print(f"  warning      {status['control_error']}")
    return 0


def lab_scenarios() -> int:
    """List the bundled scenarios, one line each."""
    wide = not sys.stdout.isatty()  # piped or redirected: whole descriptions, for grep
    for info in list_scenarios():
        summary = info.description if wide or len(info.description) <= 90 else info.description[:87] + "..."
        print(f"{info.name:<14} {summary}")
    return 0


def run_lab_up(args: argparse.Namespace) -> int:
    return lab_up(args.scenario, args.state_dir)


def run_lab_down(args: argparse.Namespace) -> int:
    return lab_down(args.state_dir)


def run_lab_status(args: argparse.Namespace) -> int:
    return lab_status(args.state_dir)


def run_lab_scenarios(args: argparse.Namespace) -> int:
    return lab_scenarios()


def _pods_line(status: dict[str, Any]) -> str:
    phases: dict[str, int] = status.get("pods") or {}
    if not phases:
        return ""
    # A crash-looping pod stays in phase Running; count it once, under the reason kubectl's STATUS shows.
    crash = int((status.get("waiting") or {}).get("CrashLoopBackOff") or 0)
    shown = dict(phases)
    if crash and shown.get("Running", 0) >= crash:
        shown["Running"] -= crash
    parts = [f"{n} {phase}" for phase, n in shown.items() if n]
    if crash:
        parts.append(f"{crash} CrashLoopBackOff")
    return f", {sum(phases.values())} pods: " + ", ".join(parts)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
