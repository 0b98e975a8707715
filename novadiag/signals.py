"""Signals that must not cut cleanup short.

A diagnostics run owns objects in someone's cluster (probe pods, a plan being
applied). Every signal whose default action ends the process without running
Python's ``finally`` blocks must unwind through them as Ctrl-C does:
SIGTERM (``kill``, a cancelled CI job), SIGHUP (the terminal was closed, an SSH
session dropped), SIGQUIT (Ctrl-\\) and SIGUSR1 (a stray ``kill -USR1``; its
default action is to terminate). A signal that arrives *during* that cleanup
must wait for it to end. Before a run owns anything, while the modules a
command needs are imported, a signal ends the process at once instead. All
three only work in the main thread, where Python delivers signals; elsewhere
they do nothing.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1)
"""Signals that would end the process on the spot; within a run they interrupt it like Ctrl-C."""

EXIT_INTERRUPTED = 130


@contextmanager
def interrupts_end_at_once() -> Iterator[None]:
    """Within the block, Ctrl-C and :data:`STOP_SIGNALS` end the process at once: one line, exit 130.

    For importing a command's modules, before the run owns anything to clean
    up. A KeyboardInterrupt raised while an extension module initialises can
    crash the interpreter instead of unwinding (Ctrl-C while orjson loaded
    ended in SIGSEGV), so nothing is raised: the line ``novadiag: interrupted``
    is written and the process exits, as the console script does while the
    CLI itself is imported (:mod:`novadiag.console`).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def end(signum: int, frame: FrameType | None) -> None:
        os.write(2, b"novadiag: interrupted\n")  # fd 2: sys.stderr may be replaced
        os._exit(EXIT_INTERRUPTED)

    previous = {sig: signal.signal(sig, end) for sig in (signal.SIGINT, *STOP_SIGNALS)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def stop_signals_as_interrupt() -> Iterator[None]:
    """Within the block, each of :data:`STOP_SIGNALS` raises KeyboardInterrupt, exactly like Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {sig: signal.signal(sig, interrupt) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and :data:`STOP_SIGNALS` wait until the block ends, then interrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, *STOP_SIGNALS)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        raise KeyboardInterrupt(f"signal {received[0]}")
