"""The console script (``novadiag``, ``kubectl novadiag``, ``python -m novadiag``): Ctrl-C from the first moment.

Importing the CLI takes a few tens of milliseconds (argparse, logging, the
parser's option modules; each command's own modules load when it runs).
Python's own SIGINT handler would turn a Ctrl-C in that time into a
KeyboardInterrupt raised inside some module's import, and a traceback. Nothing
exists yet that needs cleaning up, so until :func:`~novadiag.cli.main` takes
over, Ctrl-C ends the process at once, with the same line and exit code as an
interrupt later on. This module imports only ``os``, ``signal`` and the version, so the
handler is in place as soon as the ``novadiag`` package itself is imported
(its ``__init__`` is kept light for that, among other reasons).
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

from novadiag.version import __version__

EXIT_INTERRUPTED = 130


def run() -> None:
    """Install the start-up handler, answer ``--version``, else import the CLI, hand Ctrl-C back to Python, run."""
    signal.signal(signal.SIGINT, _interrupted_while_starting)
    if sys.argv[1:] == ["--version"]:
        # The one question that needs no parser: answered in the time the interpreter takes to start,
        # in the words the parser's own --version prints (a test holds the two together).
        print(f"novadiag {__version__}")
        sys.exit(0)
    from novadiag import cli  # deferred: the heavy import the handler above covers

    signal.signal(signal.SIGINT, signal.default_int_handler)  # from here, KeyboardInterrupt, caught by main()
    cli.run()


def _interrupted_while_starting(signum: int, frame: FrameType | None) -> None:
    os.write(2, b"novadiag: interrupted\n")
    os._exit(EXIT_INTERRUPTED)
