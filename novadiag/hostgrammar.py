"""The host grammar: which hosts and ports a value names (URLs, host:port, lists, DSNs, gRPC targets).

One module for the URL grammar that reference discovery (:mod:`novadiag.references`)
and Secret sanitizing (:mod:`novadiag.redaction`) both read: where a URL's
authority begins, past its userinfo, is decided here once.

Host detection (:func:`parse_value`) must not invent edges: a false edge is a
false alarm in someone's CI. So a value counts only in shapes that are hosts
beyond doubt, and the env var's *name* is consulted only for the ambiguous
shapes:

1. Rejected at once: empty, over 4 KiB, starting with ``- / . ~ { " ' < ( # ! * @
   % & | \\ ` ``, or holding ``$(``, ``${`` or ``{{`` (unexpanded templates).
2. Always hosts: URLs of any scheme (userinfo skipped, multi-host authorities,
   default port by scheme, ``jdbc:`` stripped, file/unix/xds/bucket schemes
   ignored); gRPC targets (``dns:///h:p``, ``dns://auth/h:p``, ``dns:h:p``,
   ``ipv4:``, ``ipv6:``); ``host:port``; Kafka KRaft voters (``1@kafka-0:9093``,
   the entries of ``controller.quorum.voters``); key=value DSNs (libpq ``host=db
   port=5432``, ADO.NET ``Server=db,1433;...``).
3. Lists: ``,``/``;`` separated tokens, or whitespace separated ones. The value
   counts only if *every* token is a host, so prose never yields a fragment;
   whitespace lists also refuse bare single labels.
4. Host only when the env name is host-ish: a bare single label (a letter
   first, not a boolean/keyword or ``v2``-like version), an IP literal without
   port, and ``host:port/path`` without scheme. A name is host-ish when one of
   its ``_``/``-`` parts is HOST, HOSTNAME, ADDR, ADDRESS, SERVER, SERVERS,
   SERVICE, ENDPOINT, BROKER, BROKERS, URL, URI, DSN, UPSTREAM, TARGET, NODES
   or BOOTSTRAP and every later part is a qualifier (PRIMARY, RO, digits...):
   ``DB_HOST_RO`` is host-ish, ``OTEL_SERVICE_NAME`` and ``SERVER_MODE`` are not.
5. A dotted name without port or scheme counts when the env name is host-ish,
   or it ends in ``.svc``/``.svc.<zone>``, or its last label is a common TLD.
   Never when its last label is a file extension (``app.jar``) or it reads like
   a Java name (``com.example.Main``).
6. Names whose last part is IMAGE, VERSION or TAG hold image references
   (``redis:7``): only URLs count there.

Always: labels are DNS-1123 (underscore only leading, for SRV-style labels),
the name is at most 253 characters and its last label starts with a letter
(so ``1.4.2`` and ``30s`` are not names); the pod itself (``localhost``,
``127.*``, ``0.0.0.0``, ``::1``) is never a reference. Hosts are lower-cased
and a trailing dot is kept: the DNS model reads it as "absolute, no search".
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

# A comma or semicolon followed by another URL starts the next list entry.
NOT_NEXT_URL = r"(?![,;][a-z][a-z0-9+.\-]{0,31}://)"
# ``host:8080/...@...`` (an ``@`` in a path or query) is an authority, not userinfo.
_NOT_A_PORT = r"(?!\d{1,5}[/?#])"
USERINFO = (
    rf"(?P<user>(?:{NOT_NEXT_URL}[^\s/?#:])*)"
    rf"(?P<colon>:{_NOT_A_PORT}(?P<password>(?:{NOT_NEXT_URL}\S)*))?@"
)
_USERINFO_RE = re.compile(USERINFO, re.IGNORECASE)
"""A URL's userinfo (``user:password@``), up to and including the ``@``; the redaction patterns build on it."""


@dataclass(frozen=True)
class HostPort:
    """One host a value names; ``port`` is explicit or the scheme's default."""

    host: str
    port: int | None
    scheme: str | None


DEFAULT_PORTS: Mapping[str, int | None] = {
    "http": 80, "https": 443, "ws": 80, "wss": 443, "grpc": None, "grpcs": None,
    "postgres": 5432, "postgresql": 5432, "mysql": 3306, "mariadb": 3306,
    "sqlserver": 1433, "mssql": 1433, "oracle": 1521, "clickhouse": 9000,
    "redis": 6379, "rediss": 6379, "redis+sentinel": 26379, "redis-sentinel": 26379,
    "mongodb": 27017, "mongodb+srv": None, "cassandra": 9042,
    "amqp": 5672, "amqps": 5671, "kafka": 9092, "nats": 4222, "stomp": 61613,
    "mqtt": 1883, "mqtts": 8883, "memcached": 11211, "zookeeper": 2181, "zk": 2181,
    "ldap": 389, "ldaps": 636, "smtp": 25, "smtps": 465, "ftp": 21, "sftp": 22,
    "ssh": 22, "git": 9418, "hdfs": 8020,
}  # fmt: skip

_IGNORED_SCHEMES = frozenset(
    "file unix unix-abstract vsock xds s3 s3a s3n gs gcs az abfs abfss wasb wasbs jar "
    "classpath data sqlite sqlite3 h2 derby docker oci mem memory inproc ipc npipe".split()
)
_PATH_TARGET_SCHEMES = frozenset({"dns", "passthrough"})
_OPAQUE_GRPC_SCHEMES = frozenset({"dns", "ipv4", "ipv6", "unix", "unix-abstract", "vsock", "xds"})

_HOST_WORDS = frozenset(
    "HOST HOSTNAME ADDR ADDRESS SERVER SERVERS SERVICE ENDPOINT BROKER BROKERS URL URI DSN "
    "UPSTREAM TARGET NODES BOOTSTRAP".split()
)
_QUALIFIERS = frozenset(
    "PRIMARY SECONDARY REPLICA MASTER SLAVE LEADER FOLLOWER READ WRITE RO RW READONLY "
    "READWRITE INTERNAL EXTERNAL PUBLIC PRIVATE LOCAL REMOTE DEFAULT MAIN BACKUP FALLBACK "
    "OVERRIDE GRPC HTTP HTTPS TCP".split()
)
_IMAGE_WORDS = frozenset({"IMAGE", "VERSION", "TAG"})
_STOPWORDS = frozenset(
    "true false yes no on off none null nil undefined enabled disabled enable disable auto "
    "default any all always never self local localhost unset empty unknown changeme "
    "required optional inherit direct".split()
)
_TLDS = frozenset(
    "com net org io dev internal local cloud lan corp intranet private home edu gov mil int "
    "co ai eu us uk de fr nl ch at be es it se fi dk pl jp cn in br au ca biz info tech".split()
)
_FILE_EXTENSIONS = frozenset(
    "yaml yml json xml toml ini conf cfg properties txt log csv tsv jar war ear class py pyc js "
    "mjs ts sh bash ps1 bat exe dll so dylib go rs java kt rb php pem crt cer key p12 pfx jks "
    "der csr pub gz tgz zip tar bz2 xz png jpg jpeg gif svg ico html htm css md rst pdf db "
    "sqlite sqlite3 lock pid sock tmp bak env dat bin img iso whl gem deb rpm apk sql".split()
)
_REVERSE_DOMAIN_ROOTS = frozenset("com org net io java javax jakarta kotlin scala android".split())
_SELF_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})

_NEVER_FIRST = frozenset("-/.~{\"'<(#!*@%&|\\`")
_MAX_VALUE = 4096
_LABEL = r"_?[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_NAME_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
# The common shapes, ``scheme://host[:port][/path]`` and ``host:port``, in one match.
_SIMPLE_RE = re.compile(
    rf"(?:([a-z][a-z0-9+\-]{{0,31}})://)?({_LABEL}(?:\.{_LABEL})*\.?)(?::(\d{{1,5}}))?"
    r"([/?#][^\s,;@]*)?"
)
# ``scheme://user:password@host:port,host:port/path``, the shape of most DSNs, once lower-cased:
# one ``@``, a userinfo of plain characters, an authority of plain ``host[:port]`` entries.
# Every step of the general path is known for it (see :func:`_parse_credential_url`).
_CREDENTIAL_URL_RE = re.compile(
    r"([a-z][a-z0-9+\-]{0,31})://[^\s/?#:@,;]*(?::[^\s/?#:@,;]*)?@"
    r"([a-z0-9_.\-]+(?::\d{1,5})?(?:,[a-z0-9_.\-]+(?::\d{1,5})?)*)"
    r"(?:[/?#][^\s@,;]*)?"
)
# A KRaft voter, ``node-id@host:port``: an id, not a user, before the "@"; the port is always written.
_VOTER_RE = re.compile(r"\d{1,10}@([^@\s,;/]+)")
_IPV4_RE = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_SCHEME_RE = re.compile(r"[a-z][a-z0-9+.\-]{0,31}")
_VERSION_LABEL_RE = re.compile(r"v\d+(?:[a-z]+\d*)?")
_URL_LIST_SPLIT_RE = re.compile(r"[,;](?=[a-z][a-z0-9+.\-]{0,31}://|jdbc:)", re.IGNORECASE)
_LIST_SPLIT_RE = re.compile(r"[,;]")
_AUTHORITY_END_RE = re.compile(r"[/?#;]")
_KV_DSN_RE = re.compile(r"(?:^|[\s;])(?:host|hostaddr|server|data source|address|addr)\s*=", re.I)
_LIBPQ_PAIR_RE = re.compile(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S*)")

NameClass = Literal["host", "plain", "image"]
HostKind = Literal["name", "ip", "self"]
_Hosts = tuple[HostPort, ...]


def parse_value(env_name: str, value: str, *, remember: bool = True) -> tuple[HostPort, ...]:
    """Every host ``value`` names (empty when it names none); never raises.

    Results are memoized (clusters repeat the same values many times over),
    except for values that may carry a credential (``@`` or ``=``), so the
    cache never holds one; ``remember=False`` skips the cache altogether.

    >>> parse_value("KAFKA_BROKERS", "kafka-0.kafka:9092,kafka-1.kafka:9092")[1]
    HostPort(host='kafka-1.kafka', port=9092, scheme=None)
    >>> parse_value("DB_HOST", "postgres"), parse_value("LOG_LEVEL", "info")
    ((HostPort(host='postgres', port=None, scheme=None),), ())
    """
    if not isinstance(value, str) or not value or len(value) > _MAX_VALUE or value[0] in _NEVER_FIRST:
        return ()
    name_class = classify_env_name(env_name) if isinstance(env_name, str) else "plain"
    if remember and "@" not in value and "=" not in value:
        return _parse(value, name_class)
    return _parse_once(value, name_class)


@lru_cache(maxsize=1 << 17)
def classify_env_name(env_name: str) -> NameClass:
    """Whether an env var's name says it holds a host ("host"), an image ("image"), or neither."""
    parts = [p for p in re.split(r"[_\-.]", env_name.upper()) if p]
    if parts and parts[-1] in _IMAGE_WORDS:
        return "image"
    for index in range(len(parts) - 1, -1, -1):
        if parts[index] in _HOST_WORDS:
            return "host"
        if not (parts[index] in _QUALIFIERS or parts[index].isdigit()):
            return "plain"
    return "plain"


def _parse_once(value: str, name_class: NameClass) -> _Hosts:
    text = value.strip().lower()
    if not text or text[0] in _NEVER_FIRST or "$(" in text or "${" in text or "{{" in text:
        return ()
    if "@" in text:
        hosts = _parse_credential_url(text)
        if hosts is not None:
            return hosts
    return _parse_text(text, name_class)


def _parse_text(text: str, name_class: NameClass) -> _Hosts:
    """The general rules, on a stripped, lower-cased value that passed rule 1."""
    if "=" in text and _KV_DSN_RE.search(text):
        return _parse_keyvalue_dsn(text)
    if name_class != "host" and ":" not in text and not _may_name_host(text):
        return ()
    pieces = text.split()
    strict = len(pieces) > 1
    found: list[HostPort] = []
    for piece in pieces:
        for token in _split_list(piece):
            hosts = _parse_token(token, name_class, strict)
            if hosts is None:
                return ()
            found.extend(hosts)
    return _distinct(found)


_parse = lru_cache(maxsize=1 << 17)(_parse_once)


def _parse_credential_url(text: str) -> _Hosts | None:
    """The hosts of a lower-cased ``scheme://user:password@hosts[/path]``; None when it has another shape.

    A shortcut through the general path, which gives the same answer for this
    shape: no key=value DSN, one token (no whitespace, no list split: no
    ``,scheme://`` or ``,jdbc:``), the authority right after the one ``@`` and
    up to the first ``/``, ``?`` or ``#``. The general path spends most of its
    time on the userinfo pattern and the list split, and most Secret values
    are this shape (a three-host MongoDB URI: 19.5 µs there, 10 µs here).
    ``tests/unit/test_references_properties.py`` compares the two.
    """
    match = _CREDENTIAL_URL_RE.fullmatch(text)
    if match is None or ",jdbc:" in text:
        return None
    scheme, authority = match.groups()
    if scheme in _IGNORED_SCHEMES or scheme in _PATH_TARGET_SCHEMES:
        return None
    found = _authority_hosts(authority, scheme, _default_port(scheme))
    if found is None:
        return ()
    return _distinct(found)


def _distinct(found: Sequence[HostPort]) -> _Hosts:
    """The hosts in order of first mention, each once (a list may name one twice)."""
    return tuple(found) if len(found) < 2 else tuple(dict.fromkeys(found))


def _may_name_host(text: str) -> bool:
    """Without a port, scheme or host-ish env name only FQDN-like names count (rules 4 and 5)."""
    last = text.rstrip(".,; ").rpartition(".")[2]
    return last in _TLDS or ".svc" in text


def _parse_simple(match: re.Match[str], name_class: NameClass, strict: bool) -> _Hosts | None:
    """Hosts of a token in a common shape; None defers to the general rules."""
    scheme, host, port, path = match.groups()
    bare = host[:-1] if host.endswith(".") else host
    if not bare.rpartition(".")[2][0].isalpha() or len(bare) > 253 or "localhost" in bare:
        return None
    number = int(port) if port else None
    if number is not None and not 0 < number < 65536:
        return None
    if scheme is None:
        if path is not None or name_class == "image":
            return None
        if number is None and not _stands_alone(host, "name", name_class == "host", strict):
            return None
        return (HostPort(host, number, None),)
    if scheme in _IGNORED_SCHEMES or scheme in _PATH_TARGET_SCHEMES:
        return None
    return (HostPort(host, _default_port(scheme) if number is None else number, scheme),)


def _split_list(piece: str) -> list[str]:
    if "," not in piece and ";" not in piece:
        return [piece]
    if piece[:5].lower() in ("ipv4:", "ipv6:"):
        return [piece]
    pattern = _URL_LIST_SPLIT_RE if "://" in piece else _LIST_SPLIT_RE
    return [token for token in pattern.split(piece) if token]


def _parse_token(token: str, name_class: NameClass, strict: bool) -> _Hosts | None:
    """Hosts of one token; None when the token is not host-shaped at all."""
    if "@" in token and token[0].isdigit():
        voter = _VOTER_RE.fullmatch(token)
        if voter is not None:
            return _parse_voter(voter[1])
    simple = None if "@" in token else _SIMPLE_RE.fullmatch(token)  # the common shapes never hold an "@"
    if simple is not None:
        hosts = _parse_simple(simple, name_class, strict)
        if hosts is not None:
            return hosts
    if "://" in token:
        return _parse_url(token)
    if token.startswith("jdbc:"):
        return _parse_opaque_jdbc(token[5:])
    scheme, colon, rest = token.partition(":")
    if colon and scheme in _OPAQUE_GRPC_SCHEMES and not rest.isdigit():
        return _parse_grpc_target(scheme, rest)
    if name_class == "image":
        return None
    return _parse_plain(token, name_class == "host", strict)


def _parse_url(token: str) -> _Hosts | None:
    scheme, _, rest = token.partition("://")
    if scheme.startswith("jdbc:"):
        scheme = scheme[5:].partition(":")[0]
    if not _SCHEME_RE.fullmatch(scheme):
        return None
    if scheme in _IGNORED_SCHEMES:
        return ()
    rest = rest[authority_start(rest) :]
    end = _AUTHORITY_END_RE.search(rest)
    authority, path = (rest, "") if end is None else (rest[: end.start()], rest[end.start() :])
    if scheme in _PATH_TARGET_SCHEMES:
        target = _AUTHORITY_END_RE.split(path.lstrip("/"), maxsplit=1)[0]
        return _parse_grpc_target("dns", target)
    return _authority_hosts(authority, scheme, _default_port(scheme))


def _default_port(scheme: str) -> int | None:
    if scheme in DEFAULT_PORTS:
        return DEFAULT_PORTS[scheme]
    return DEFAULT_PORTS.get(scheme.partition("+")[0])


def _authority_hosts(authority: str, scheme: str | None, default: int | None) -> _Hosts | None:
    """``h1:p1,h2,[v6]:p3`` -> hosts; None when any part is not a host."""
    found: list[HostPort] = []
    for part in authority.split(","):
        if not part:
            continue
        split = _split_host_port(part.partition("\\")[0])
        if split is None:
            return None
        host, port = split
        kind = _classify_host(host)
        if kind is None:
            return None
        if kind != "self":
            found.append(HostPort(host, default if port is None else port, scheme))
    return tuple(found)


def _parse_voter(address: str) -> _Hosts | None:
    """The ``host:port`` of a KRaft voter; None without a port (then it is no voter)."""
    split = _split_host_port(address)
    if split is None or split[1] is None:
        return None
    host, port = split
    kind = _classify_host(host)
    if kind is None:
        return None
    return () if kind == "self" else (HostPort(host, port, None),)


def _parse_grpc_target(scheme: str, target: str) -> _Hosts | None:
    if scheme not in ("dns", "ipv4", "ipv6"):
        return ()
    return _authority_hosts(target, "grpc", None) if target else ()


def _parse_opaque_jdbc(rest: str) -> _Hosts | None:
    """JDBC URLs without ``//``: Oracle thin (``oracle:thin:@host:1521:SID``); others name no host."""
    if not rest.startswith("oracle:"):
        return ()
    _, at, target = rest.rpartition("@")
    if not at or target.startswith("("):
        return ()
    target = target.lstrip("/")
    host_port = _AUTHORITY_END_RE.split(target, maxsplit=1)[0]
    host, _, port = host_port.partition(":")
    port = port.partition(":")[0]
    return _authority_hosts(f"{host}:{port}" if port else host, "oracle", 1521)


def _parse_plain(token: str, hostish: bool, strict: bool) -> _Hosts | None:
    """``host``, ``host:port``, ``host:port/path``, IP literals."""
    if "@" in token or "\\" in token or "=" in token:
        return None
    head, slash, _ = token.partition("/")
    if slash and not hostish:
        return None
    split = _split_host_port(head)
    if split is None:
        return None
    host, port = split
    kind = _classify_host(host)
    if kind is None:
        return None
    if port is None and (slash or not _stands_alone(host, kind, hostish, strict)):
        return None
    return () if kind == "self" else (HostPort(host, port, None),)


def _split_host_port(text: str) -> tuple[str, int | None] | None:
    if text.startswith("["):
        host, bracket, tail = text[1:].partition("]")
        if not bracket or ":" not in host:
            return None
        if not tail:
            return host, None
        port = parse_port(tail[1:]) if tail[0] == ":" else None
        return None if port is None else (host, port)
    colons = text.count(":")
    if colons == 0:
        return text, None
    if colons == 1:
        host, _, raw = text.partition(":")
        port = parse_port(raw)
        return None if port is None else (host, port)
    return text, None


def parse_port(raw: str) -> int | None:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 5:
        return None
    port = int(raw)
    return port if 0 < port < 65536 else None


def _classify_host(host: str) -> HostKind | None:
    """"name", "ip", "self" (the pod itself), or None when not a host."""
    if not host:
        return None
    if ":" in host or (host[0].isdigit() and _IPV4_RE.fullmatch(host)):
        return _classify_ip(host)
    bare = host[:-1] if host.endswith(".") else host
    if len(bare) > 253 or not _NAME_RE.fullmatch(host):
        return None
    last = bare.rpartition(".")[2]
    if not (last[0].isalpha() or last[0] == "_"):
        return None
    if bare in _SELF_NAMES or bare.endswith(".localhost"):
        return "self"
    return "name"


def _classify_ip(host: str) -> HostKind | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return "self" if address.is_loopback or address.is_unspecified else "ip"


def _stands_alone(host: str, kind: HostKind, hostish: bool, strict: bool) -> bool:
    """Whether a host without port or scheme is a reference by itself."""
    if kind != "name":
        return hostish
    bare = host.rstrip(".")
    if "." not in bare:
        return hostish and not strict and _plausible_label(bare)
    labels = bare.split(".")
    last = labels[-1]
    if last in _FILE_EXTENSIONS:
        return False
    if bare.endswith(".svc") or ".svc." in bare:
        return True
    if labels[0] in _REVERSE_DOMAIN_ROOTS and len(labels) > 2:
        return False
    return hostish or last in _TLDS


def _plausible_label(label: str) -> bool:
    return (
        label[0].isalpha()
        and label not in _STOPWORDS
        and _VERSION_LABEL_RE.fullmatch(label) is None
    )


def _parse_keyvalue_dsn(text: str) -> _Hosts:
    """libpq ``host=a,b port=5432`` (PostgreSQL) and ``Server=h,1433;...`` (ADO.NET)."""
    pairs = _keyvalue_pairs(text)
    libpq = ";" not in text
    host = pairs.get("host") or pairs.get("hostaddr")
    if host is not None:
        if libpq:
            return _libpq_hosts(host, pairs.get("port", ""))
        return _listed_hosts(host.split(","), parse_port(pairs.get("port", "")))
    for key in ("server", "data source", "address", "addr"):
        if key in pairs:
            server = pairs[key].removeprefix("tcp:")
            host_part, _, port_part = server.partition(",")
            port = parse_port(port_part.strip()) or parse_port(pairs.get("port", ""))
            return _listed_hosts([host_part.partition("\\")[0]], port)
    return ()


def _keyvalue_pairs(text: str) -> dict[str, str]:
    if ";" in text:
        entries = (entry.partition("=") for entry in text.split(";"))
        return {k.strip().lower(): v.strip().strip("'\"") for k, eq, v in entries if eq}
    return {k.lower(): v.strip("'") for k, v in _LIBPQ_PAIR_RE.findall(text)}


def _libpq_hosts(hosts: str, ports: str) -> _Hosts:
    names = hosts.split(",")
    numbers: list[int | None] = [parse_port(p.strip()) for p in ports.split(",")] if ports else [5432]
    if len(numbers) == 1:
        numbers = numbers * len(names)
    if len(numbers) != len(names):
        numbers = [None] * len(names)
    pairs = zip(names, numbers, strict=True)
    return tuple(hp for name, port in pairs for hp in _listed_hosts([name], port, "postgresql"))


def _listed_hosts(names: list[str], port: int | None, scheme: str | None = None) -> _Hosts:
    """Hosts named by a key that says "host": single labels count; sockets and junk do not."""
    found: list[HostPort] = []
    for name in names:
        split = _split_host_port(name.strip().lower())
        if split is None:
            continue
        host, own_port = split
        if _classify_host(host) in ("name", "ip"):
            found.append(HostPort(host, own_port or port, scheme))
    return tuple(found)


def authority_start(rest: str) -> int:
    """Where the host part begins in the text after ``scheme://`` (past any userinfo)."""
    if "@" not in rest:  # userinfo ends with "@"; most URLs have none
        return 0
    match = _USERINFO_RE.match(rest)
    return 0 if match is None else match.end()
