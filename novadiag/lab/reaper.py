"""The lab daemon's death watch: its pods die with it, even when it is SIGKILLed.

A pod is a child process of the daemon. When the daemon stops normally, its
kubelet kills every pod; when it is killed outright (``kill -9``, the OOM killer)
nothing runs in it, and its pods would be re-parented to init and keep serving
until the next ``lab down``. ``PR_SET_PDEATHSIG`` cannot be set from the
multi-threaded daemon without ``preexec_fn`` (unsafe with threads), would fire
when the *thread* that spawned a pod ends, and would not reach degraded-mode pods
that run in process groups of their own.

So the daemon starts this small process first thing, in the daemon's own process
group (``lab down`` reaps it with the rest), with the read end of a pipe whose
write end only the daemon holds. The kernel closes that end when the daemon
exits, however it exits; this process then wakes on end-of-file and kills what
the daemon left, by the same rules as ``lab down`` (the daemon's process group
and the pids recorded under ``pids/`` that are provably the lab's), removes the
lab's nftables table (NetworkPolicy rules, see ``firewall``), and exits.
An orderly exit dismisses it first (a byte on the pipe), so it never outlives a
daemon that stopped its pods itself. It never removes the state dir: ``lab
down`` and the next ``lab up`` still find a stale lab and say so.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

from novadiag.errors import LabError
from novadiag.lab import control
from novadiag.lab.firewall import remove_recorded_table

DISMISS = b"q"
DISMISS_WAIT = 5.0


class DeathWatch:
    """The daemon's side: a pipe end held open for its lifetime, and the watching process."""

    def __init__(self, state_dir: Path) -> None:
        read_end, self._write_end = os.pipe()  # not inheritable: no pod holds the write end
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "novadiag.lab.reaper", str(state_dir)],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                close_fds=True,
                cwd="/",
            )
        finally:
            os.close(read_end)

    def dismiss(self) -> None:
        """An orderly exit: tell the watch to leave everything alone, and wait for it to go.

        Without this the watch would still be alive, and in the lab's process
        group, for a moment after the daemon exits.
        """
        with contextlib.suppress(OSError):
            os.write(self._write_end, DISMISS)
        with contextlib.suppress(OSError):
            os.close(self._write_end)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=DISMISS_WAIT)


def wait_and_reap(state_dir: Path, watched: int) -> bool:
    """Block until ``watched`` (the pipe's read end) is closed; unless dismissed, kill the lab's leftovers.

    Returns True when it killed (the daemon died without dismissing it).
    """
    dismissed = False
    with contextlib.suppress(OSError):
        while chunk := os.read(watched, 4096):
            dismissed = dismissed or DISMISS in chunk
    if dismissed:
        return False
    with contextlib.suppress(LabError):
        control.kill_leftovers(state_dir, os.getpgrp())
    with contextlib.suppress(OSError):
        remove_recorded_table(state_dir)  # its NetworkPolicy rules would outlive it
    return True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m novadiag.lab.reaper STATE_DIR (stdin: the daemon's pipe)", file=sys.stderr)
        return 2
    wait_and_reap(Path(args[0]), sys.stdin.fileno())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
