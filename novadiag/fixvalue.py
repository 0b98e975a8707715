"""The value a fix tells the reader to write: the reference as written, with the host (and port) changed.

A verdict finds the name and port the source's resolver maps to the target;
the reader has to put that into a variable whose value is a URL, a gRPC
target, a JDBC URL or a bare host. So the written value keeps everything
around the host (scheme, userinfo, path, the other hosts of a list) and only
the host, and the port where it changes, are replaced.

It is built from the *masked* reference, never from the raw value: a value
read from a Secret shows only its scheme, hosts and ports (``/***`` for the
rest), and passwords are ``***`` wherever they are; the fix reveals nothing
more. When the host and port are split over two variables (``X_HOST`` +
``X_PORT``, :attr:`Reference.port_env`), the value holds the host only and the
port belongs to the other variable.
"""

from __future__ import annotations

import re

from novadiag.model import Reference

_AFTER_HOST = re.compile(r"[:,](\d{1,5})(?!\d)")
"""An explicit port right after the host: ``host:5432`` (URLs, host:port) or ``Server=host,1433`` (ADO.NET)."""
_AUTHORITY_END = re.compile(r"[/?#;,\s]")


def fix_value(ref: Reference, host: str, port: int | None) -> str:
    """``ref``'s value rewritten to name ``host`` (and ``port``), from its masked text.

    >>> from novadiag.model import ObjectRef
    >>> def ref(value, host, port, port_env=None):
    ...     return Reference(ObjectRef("Deployment", "a", "w"), "c", "X", "value", value, host, port, port_env=port_env)
    >>> fix_value(ref("http://feed-service:8089/api", "feed-service", 8089), "feed-service.nova-feed", 8089)
    'http://feed-service.nova-feed:8089/api'
    >>> fix_value(ref("postgres://app:***@db:5432/x", "db", 5432), "db.data", 5432)
    'postgres://app:***@db.data:5432/x'
    >>> fix_value(ref("rabbitmq", "rabbitmq", 5672, "Q_PORT"), "rabbitmq.store-data", 5672)
    'rabbitmq.store-data'
    >>> fix_value(ref("web.shop:8080", "web.shop", 8080), "web.shop", 80)
    'web.shop:80'
    """
    text = ref.reference
    split = ref.port_env is not None
    span = _host_span(text, ref.host, None if split else ref.port)
    if span is None:
        # The masked value does not show the host (masked whole): say it as host[:port].
        return host if split or port is None else f"{host}:{port}"
    start, end = span
    rest = text[end:]
    if not split and port is not None and port != ref.port:
        written = _AFTER_HOST.match(rest)
        if written is not None and int(written.group(1)) == ref.port:
            rest = f"{rest[0]}{port}{rest[written.end():]}"
        elif written is None:
            rest = f":{port}{rest}"  # the old port was the scheme's default, not written
    return f"{text[:start]}{host}{rest}"


def _host_span(text: str, host: str, port: int | None) -> tuple[int, int] | None:
    """Where ``host`` is written as the host (not inside a longer name, not as a user name); None if nowhere.

    The occurrence followed by its port wins; otherwise the first outside a URL's userinfo.
    """
    bare = host.rstrip(".")
    pattern = re.compile(rf"(?<![\w.-]){re.escape(bare)}\.?(?![\w-]|\.\w)", re.IGNORECASE)
    spans = [(m.start(), m.end()) for m in pattern.finditer(text)]
    if port is not None:
        for start, end in spans:
            written = _AFTER_HOST.match(text, end)
            if written is not None and int(written.group(1)) == port:
                return start, end
    for start, end in spans:
        if not _in_userinfo(text, end):
            return start, end
    return None


def _in_userinfo(text: str, end: int) -> bool:
    """``user`` in ``scheme://user:***@host``: an ``@`` follows before the authority ends."""
    stop = _AUTHORITY_END.search(text, end)
    return "@" in text[end : stop.start() if stop else len(text)]
