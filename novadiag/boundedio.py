"""Read a file the user named, at a bounded cost: the one rule for manifests and snapshots.

A path on the command line may name anything: ``/dev/zero`` (endless, and
``stat`` says 0 bytes), a FIFO (``open`` blocks until a writer comes, which may
be never), a sparse 1 GB file. Each is refused with one line naming the file:

* the file is opened with ``O_NONBLOCK``, so a FIFO opens at once, and then
  checked with ``fstat`` on the open descriptor, so a path swapped for a FIFO
  between a check and the open cannot block the run either;
* only regular files are read; a device, a FIFO or a socket is refused;
* at most ``limit`` bytes are read, whatever ``stat`` says (``/proc`` files
  report 0 bytes and still have content).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from novadiag.errors import InputFileError

MAX_INPUT_BYTES = 256 * 1024 * 1024
"""What one input file (manifest, snapshot, baseline) may hold: far past a real cluster's, short of all memory."""


def read_bounded_file(path: str | Path, *, limit: int, what: str) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    ``what`` names the file in messages (``"file"``, ``"snapshot file"``).
    Raises :class:`~novadiag.errors.InputFileError` when the file cannot be
    read, is not a regular file, or holds more than ``limit`` bytes.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputFileError(str(path), f"cannot read {what}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb") as stream:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputFileError(str(path), f"a directory, not a {what}")
        if not stat.S_ISREG(info.st_mode):
            raise InputFileError(
                str(path), "not a regular file (a pipe, a device or a socket could block or never end)"
            )
        if info.st_size > limit:
            raise InputFileError(str(path), f"{what} is {info.st_size >> 20} MiB, over the {limit >> 20} MiB limit")
        try:
            data = stream.read(limit + 1)
        except OSError as exc:
            raise InputFileError(str(path), f"cannot read {what}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise InputFileError(str(path), f"{what} is over the {limit >> 20} MiB limit")
    return data
