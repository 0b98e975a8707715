"""Signals that must not cut cleanup short.

A diagnostics run owns objects in someone's cluster (probe pods, a plan being
applied). Every signal whose default action ends the process without running
Python's ``finally`` blocks must unwind through them as Ctrl-C does:
SIGTERM (``kill``, a cancelled CI job), SIGHUP (the terminal was closed, an SSH
session dropped), SIGQUIT (Ctrl-\\) and SIGUSR1 (a stray ``kill -USR1``; its
default action is to terminate). A signal that arrives *during* that cleanup
must wait for it to end. Both only work in the main thread, where Python
delivers signals; elsewhere they do nothing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1)
"""Signals that would end the process on the spot; within a run they interrupt it like Ctrl-C."""


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
