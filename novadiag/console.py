"""The console script (``novadiag``, ``kubectl novadiag``, ``python -m novadiag``): Ctrl-C from the first moment.

Importing the CLI takes a noticeable fraction of a second (rich, the kubernetes
client, the planner and the report renderers).
Python's own SIGINT handler would turn a Ctrl-C in that time into a
KeyboardInterrupt raised inside some module's import, and a traceback. Nothing
exists yet that needs cleaning up, so until :func:`~novadiag.cli.main` takes
over, Ctrl-C ends the process at once, with the same line and exit code as an
interrupt later on. This module imports only ``os`` and ``signal``, so the
handler is in place as soon as the ``novadiag`` package itself is imported
(its ``__init__`` is kept light for that, among other reasons).
"""

from __future__ import annotations

import os
import signal
from types import FrameType

EXIT_INTERRUPTED = 130


def run() -> None:
    """Install the start-up handler, import the CLI, hand Ctrl-C back to Python, run."""
    signal.signal(signal.SIGINT, _interrupted_while_starting)
    from novadiag import cli  # deferred: the heavy import the handler above covers

    signal.signal(signal.SIGINT, signal.default_int_handler)  # from here, KeyboardInterrupt, caught by main()
    cli.run()


def _interrupted_while_starting(signum: int, frame: FrameType | None) -> None:
    os.write(2, b"novadiag: interrupted\n")
    os._exit(EXIT_INTERRUPTED)
