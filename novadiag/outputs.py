"""Output files: checked before the work that fills them, written with one-line errors.

An audit with probes can run for minutes; finding out afterwards that ``-o``
names a missing directory would throw the work away, so commands check the
path first. Writing can still fail (disk full, permissions changed), and then
the user gets the path and the reason, not a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

from novadiag.errors import ConfigError


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
    """Write ``text`` to ``path`` (UTF-8); an OSError becomes one ConfigError naming the file."""
    p = Path(path)
    try:
        p.write_text(text, encoding="utf-8")
        if executable:
            p.chmod(0o755)
    except OSError as exc:
        raise ConfigError(f"{p}: cannot write: {exc.strerror or exc}") from exc
