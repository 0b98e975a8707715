"""What to replace in a text to change one reference's host: the exact piece, and what it becomes.

An env value names one address, so replacing the host there is enough. A
script, an argument or a config file is the program's own text: ``kafka`` may
also be an ``echo``'d word, a YAML key or a component's name. These functions
pick the narrowest piece that is the address: ``host:port`` where it is
written so, the one script command that names the host, and a bare host in a
file only when the file names it once.
"""

from __future__ import annotations

from novadiag.model import Reference
from novadiag.planning.paths import is_masked
from novadiag.planning.rename import contains_host, replace_hosts

_MARK = "\x00"
"""Stands in for a replaced host when counting how often a text names it."""

def host_change(text: str, ref: Reference, new_host: str, new_port: int | None) -> tuple[str | None, str]:
    """What to replace in ``text``: ``host:port`` when written so (the port may change), else the host alone.

    The pair is preferred: in a config file ``tempo:4317`` is the address,
    while a bare ``tempo`` may also be a key or a component name. (None, "")
    when ``text`` does not hold the host, or holds it apart from a port that must change.
    """
    if ref.port is not None:
        pair, port = f"{ref.host}:{ref.port}", ref.port if new_port is None else new_port
        if contains_host(text, pair):
            return pair, f"{new_host}:{port}"
    if contains_host(text, ref.host) and (new_port is None or new_port == ref.port):
        return ref.host, new_host
    return None, ""


def file_change(text: str, ref: Reference, new_host: str, new_port: int | None, kind: str) -> tuple[str | None, str]:
    """What to replace in a config file: ``host:port``, or a bare host the file names exactly once.

    A file names hosts among keys and words of its own syntax (``extensions:
    {tempo: {}}``); a bare host named more than once could be one of those, so
    it is left to a person. A Secret's file is rewritten live, by ``host:port`` only.
    """
    old, new = host_change(text, ref, new_host, new_port)
    if old is None or ":" in old:
        return old, new
    if kind == "Secret" or replace_hosts(text, {old: _MARK}).count(_MARK) - text.count(_MARK) != 1:
        return None, ""
    return old, new


def script_command(text: str, ref: Reference) -> str | None:
    """The script command that names the host (the reference's text), when the item holds it as written."""
    if not (ref.location or "").startswith("line ") or is_masked(ref.reference):
        return None
    return ref.reference if ref.reference in text and contains_host(ref.reference, ref.host) else None
