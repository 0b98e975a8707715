"""Output files: checked before the work that fills them, written with one-line errors.

An audit with probes can run for minutes; finding out afterwards that ``-o``
names a missing directory would throw the work away, so commands check the
path first. Writing can still fail (disk full, permissions changed), and then
the user gets the path and the reason, not a traceback, and no half-written
file: outputs are written to a temporary file and renamed into place.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO, cast

from novadiag.errors import ConfigError

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


def check_output_file(path: str | Path, flag: str = "-o") -> None:
    """Raise ConfigError now if ``path`` cannot become a file later."""
    p = Path(path)
    if p.is_dir() or str(path).endswith(os.sep):
        raise ConfigError(f"{flag} {path}: is a directory; give a file name")
    _check_parent(p, flag)


def check_output_directory(path: str | Path, flag: str = "-o") -> None:
    """Raise ConfigError now if ``path`` names an existing file or sits in a missing directory."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{flag} {path}: exists and is not a directory")
    _check_parent(p, flag)


def _check_parent(p: Path, flag: str) -> None:
    parent = p.absolute().parent
    if not parent.is_dir():
        raise ConfigError(f"{flag} {p}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"{flag} {p}: directory {parent} is not writable")


def write_output(path: str | Path, text: str, *, executable: bool = False) -> None:
    """Write ``text`` to ``path`` (UTF-8) whole or not at all; an OSError becomes one ConfigError naming the file.

    A full disk must not leave half a report that a later step reads as a
    whole one, nor destroy the previous file: the text goes to a temporary file
    next to ``path``, which replaces ``path`` only once it is completely written.
    What is not a regular file (``/dev/stdout``, a FIFO) is written directly:
    renaming over it would replace the device or the pipe.
    """
    p = Path(path)
    try:
        if p.exists() and not p.is_file():  # /dev/stdout, a FIFO (links followed)
            p.write_text(text, encoding="utf-8")
        else:  # a symbolic link is written through, not replaced
            target = p.resolve() if p.is_symlink() else p
            _replace_atomically(target, text.encode("utf-8"), mode=0o755 if executable else None)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_output_chunks(path: str | Path, chunks: Iterable[bytes]) -> None:
    """:func:`write_output` for a report written as it is made: the same whole-or-nothing promise."""
    p = Path(path)
    try:
        if p.exists() and not p.is_file():
            with p.open("wb") as stream:
                stream.writelines(chunks)
        else:
            _replace_atomically(p.resolve() if p.is_symlink() else p, chunks, mode=None)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _replace_atomically(target: Path, data: bytes | Iterable[bytes], *, mode: int | None) -> None:
    """Write a temporary file in ``target``'s directory, then rename it over ``target``; no temporary file is left.

    A file that exists keeps its permissions (a report the user made private
    stays 0600), unless ``mode`` says otherwise.
    """
    if mode is None:
        try:
            mode = stat.S_IMODE(target.stat().st_mode)
        except FileNotFoundError:
            pass
    temporary = target.with_name(f".{target.name}.{os.urandom(4).hex()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)  # umask applies
    try:
        with os.fdopen(fd, "wb") as stream:
            if isinstance(data, bytes):
                stream.write(data)
            else:
                stream.writelines(data)
        if mode is not None:
            temporary.chmod(mode)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextmanager
def stdout_failures_named() -> Iterator[None]:
    """Within the block, a failed write to standard output is one ConfigError, not a traceback.

    ``> /dev/full`` or a full disk make a write to stdout fail with an OSError
    that names no file, like an error in novadiag itself would: only the stream
    can tell them apart. A reader that went away (BrokenPipeError) is left to
    the caller, which ends quietly as other Unix tools do.
    """
    stream = sys.stdout
    sys.stdout = cast(TextIO, _NamedFailures(stream))
    try:
        yield
    finally:
        sys.stdout = stream


class _NamedFailures:
    """A text stream whose write and flush errors say they are standard output's."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise self._failed(exc) from exc

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise self._failed(exc) from exc

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding: the stream's own
        return getattr(self._stream, name)

    def _failed(self, exc: OSError) -> ConfigError:
        discard_stdout()
        return ConfigError(f"cannot write standard output: {exc.strerror or exc}")


def discard_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's own flush at exit does not fail again."""
    try:
        target = sys.stdout.fileno()
    except (OSError, ValueError):  # a stream without a descriptor (a test's capture): nothing to flush at exit
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, target)
    os.close(devnull)
