"""Config file formats: one mounted file's text as (key path, value) pairs.

A service's peers are often written in a file, not in its env: an
OpenTelemetry collector's ``exporters.otlp.endpoint``, a Prometheus scrape
``targets`` list, a Grafana datasource ``url``, nginx ``proxy_pass`` and
``upstream { server ...; }``, Spring's ``spring.datasource.url``, an Envoy
cluster's ``socket_address``. This module reads one file's text into
:class:`ConfigValue` records; deciding which of them name a cluster host is
left to the caller (:mod:`novadiag.references`, with
:mod:`novadiag.hostgrammar` and :mod:`novadiag.clusternames`).

The format is chosen by the file name's extension, then by sniffing: JSON,
nginx, INI, YAML (a mapping or a list), ``.properties``; else plain text, of
which only URL and ``host:port`` words are kept. Each value carries a *hint*:
the name that says what it holds, as an env var's name does (``HOST`` for a
key called ``host``, ``brokers``, ``targets``...; ``VALUE`` otherwise), so a
bare word counts only under a host-ish key.

Parsing is bounded (:func:`novadiag.boundedio.parse_documents`: safe loader,
nesting and alias limits; at most :data:`MAX_VALUES` values a file) and never
raises: a file that does not parse as its extension says is read as plain
text, and the problem is returned for the caller to report.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from novadiag.boundedio import parse_documents
from novadiag.errors import ManifestError
from novadiag.lazypattern import lazy_pattern

Format = Literal["yaml", "json", "toml", "properties", "ini", "nginx", "text", "sanitized"]

SANITIZED_MARK = "# novadiag: sanitized config file: location, hint, value, port"
"""First line of a Secret file's sanitized form (:func:`write_sanitized`): one value a line, tab-separated."""
CONFIG_EXTENSIONS = frozenset({"yaml", "yml", "json", "toml", "properties", "env", "ini", "cfg", "conf"})
"""Extensions that say a key holds a config file (:func:`~novadiag.redaction.sanitize_secret_value` reads those)."""

MAX_VALUES = 10_000
"""Values read of one file: far past a real config, short of what an alias bomb expands to."""
MAX_TEXT = 1 << 20
"""A ConfigMap holds at most 1 MiB; a longer text is not a real mounted file."""

HOST_HINT = "HOST"
VALUE_HINT = "VALUE"
URL_HINT = "URL"
IMAGE_HINT = "IMAGE"

_EXTENSIONS: dict[str, Format] = {
    "yaml": "yaml", "yml": "yaml", "json": "json", "toml": "toml", "properties": "properties",
    "env": "ini", "ini": "ini",
}  # fmt: skip
_HOST_KEY_WORDS = frozenset(
    "endpoint endpoints url urls uri uris host hosts hostname hostnames server servers broker brokers "
    "address addresses addr upstream upstreams targets target nodes seeds dsn".split()
)
_PASS_DIRECTIVES = frozenset({"proxy_pass", "grpc_pass", "fastcgi_pass", "uwsgi_pass", "scgi_pass", "memcached_pass"})
_PORT_KEYS = ("port", "port_value", "portValue", "PORT")
# The patterns below compile on first use, not at import: most audits read no configuration file.
_host_suffix_re = lazy_pattern(r"(host(?:name)?|addr(?:ess)?|server)\Z", re.IGNORECASE)

_key_part_re = lazy_pattern(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")

_nginx_token_re = lazy_pattern(r"""#[^\n]*|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[{};]|[^\s{};"'#]+""")

_nginx_mark_re = lazy_pattern(
    r"(?:^|[{;])[ \t]*(?:upstream\s+[\w.\-]+\s*\{|location\s+[^{};\n]+\{|(?:proxy|grpc|fastcgi|uwsgi|scgi)_pass\s)",
    re.MULTILINE,
)

_ini_section_re = lazy_pattern(r"\[([^\]\n]+)\]")

# A ``key=value`` or ``key: value`` line; ``scheme://...`` is a URL, not a key.
_properties_line_re = lazy_pattern(r"^\s*[\w.\-]+\s*(?:=|:\s)", re.MULTILINE)

_properties_separator_re = lazy_pattern(r"(?<!\\)(?:\s*[=:]\s*|\s+)")

_url_word_re = lazy_pattern(
    r"[a-z][a-z0-9+.\-]{0,31}://\S+|[A-Za-z0-9_][A-Za-z0-9_.\-]*:\d{1,5}(?!\w|\.\w)", re.IGNORECASE
)

# A credential the snapshot masked reads ``key: ***``; unquoted, YAML takes ``*`` for an alias.
_bare_mask_re = lazy_pattern(r"(?<=[:\-] )\*\*\*(?=[ \t]*(?:#.*)?$)", re.MULTILINE)


_WORD_TRIM = "\"'`,;()[]{}<>"


@dataclass(frozen=True)
class ConfigValue:
    """One value of a config file: where it is, what its key says it holds, the text, and a port beside it."""

    location: str
    hint: str
    value: str
    port: str | None = None
    """The value of a sibling ``port`` key, for a host written apart from its port (``host: db`` + ``port: 5432``)."""


@dataclass
class ParsedFile:
    """What one file yields: its format, its values, and why it was read as plain text (None when it was not)."""

    format: Format
    values: list[ConfigValue] = field(default_factory=list)
    problem: str | None = None


def read_config(file_name: str, text: str) -> ParsedFile:
    """The values of one file's ``text``; ``file_name`` (``collector.yaml``) says its format first.

    >>> text = "exporters:\\n  otlp:\\n    endpoint: jaeger:4317\\n"
    >>> [(v.location, v.value) for v in read_config("otel.yaml", text).values]
    [('exporters.otlp.endpoint', 'jaeger:4317')]
    >>> read_config("nginx.conf", "upstream api { server api-svc:80; }").values[0].location
    'upstream api.server[0]'
    """
    if len(text) > MAX_TEXT:
        return ParsedFile("text", problem=f"over {MAX_TEXT >> 20} MiB; not read")
    if text.startswith(SANITIZED_MARK + "\n"):
        return ParsedFile("sanitized", list(_sanitized_values(text)))
    chosen = choose_format(file_name, text)
    try:
        values = list(_values(chosen, file_name, text))
    except (ManifestError, _InvalidTomlError, RecursionError) as exc:
        problem = exc.problem if isinstance(exc, ManifestError) else f"invalid {chosen.upper()}: {exc}"
        if isinstance(exc, ManifestError) and exc.line is not None:
            problem = f"{problem} (line {exc.line})"
        return ParsedFile("text", _with_ports(list(_text_values(text))[:MAX_VALUES]), problem)
    return ParsedFile(chosen, _with_ports(values[:MAX_VALUES]))


def choose_format(file_name: str, text: str) -> Format:
    """The format the extension names, else the one the text reads as."""
    extension = file_name.lower().rpartition(".")[2] if "." in file_name else ""
    if extension in _EXTENSIONS:
        return _EXTENSIONS[extension]
    stripped = text.lstrip()
    if stripped[:1] in ("{", "[") and _parses_as_json(stripped):
        return "json"
    if _nginx_mark_re().search(text):
        return "nginx"
    first = next((line.strip() for line in text.splitlines() if line.strip() and line.strip()[0] not in "#;"), "")
    if _ini_section_re().fullmatch(first):
        return "ini"
    if extension in ("conf", "cfg"):  # nginx, INI, key = value, or a syntax of its own (haproxy, redis)
        return "properties" if _properties_line_re().search(text) else "text"
    if _parses_as_yaml_tree(text, file_name):
        return "yaml"
    return "properties" if _properties_line_re().search(text) else "text"


def hint_for(key: str) -> str:
    """The env-like name that says what a value under ``key`` holds: ``HOST``, ``IMAGE`` or ``VALUE``.

    >>> [hint_for(k) for k in ("endpoint", "bootstrap.servers", "targets", "serverPort", "image", "name")]
    ['HOST', 'HOST', 'HOST', 'VALUE', 'IMAGE', 'VALUE']
    """
    parts = [p.lower() for p in _key_part_re().findall(key)]
    if not parts:
        return VALUE_HINT
    if parts[-1] in _HOST_KEY_WORDS or key.lower() in _PASS_DIRECTIVES:
        return HOST_HINT
    if parts[-1] in ("image", "version", "tag"):
        return IMAGE_HINT
    return VALUE_HINT


def _values(chosen: Format, file_name: str, text: str) -> Iterator[ConfigValue]:
    if chosen in ("yaml", "json"):
        text = _bare_mask_re().sub('"***"', text) if chosen == "yaml" else text
        for doc in parse_documents(text, name=file_name, as_json=chosen == "json"):
            yield from _tree_values(doc)
    elif chosen == "toml":
        yield from _tree_values(_toml_tree(text))
    elif chosen == "properties":
        yield from _properties_values(text)
    elif chosen == "ini":
        yield from _ini_values(text)
    elif chosen == "nginx":
        yield from _nginx_values(text)
    else:
        yield from _text_values(text)


class _InvalidTomlError(ValueError):
    """A TOML file that ``tomllib`` refuses, in its words (tomllib itself loads only for a TOML file)."""


def _toml_tree(text: str) -> dict[str, Any]:
    # deferred: tomllib (a parser and its patterns) loads only when a TOML file is read
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _InvalidTomlError(str(exc)) from exc


def _parses_as_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _parses_as_yaml_tree(text: str, file_name: str) -> bool:
    """Whether a text with no telling extension is YAML holding keys (a bare scalar is plain text)."""
    try:
        docs = parse_documents(_bare_mask_re().sub('"***"', text), name=file_name)
    except (ManifestError, RecursionError):
        return False
    return any(isinstance(doc, dict | list) for doc in docs)


# -- YAML, JSON, TOML: trees ------------------------------------------------------------------


def _tree_values(doc: Any) -> Iterator[ConfigValue]:
    """Every string scalar of a parsed document, with its key path; list items take their list's key."""
    stack: list[tuple[Any, str, str, dict[str, Any] | None]] = [(doc, "", "", None)]
    seen = 0
    while stack and seen < MAX_VALUES:
        node, path, key, siblings = stack.pop()
        seen += 1
        if isinstance(node, dict):
            children = [(v, _join(path, str(k)), str(k), node) for k, v in node.items()]
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(reversed([(v, f"{path}[{i}]", key, None) for i, v in enumerate(node)]))
        elif isinstance(node, str) and path:
            yield ConfigValue(path, hint_for(key), node, _sibling_port(siblings, key))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _sibling_port(siblings: dict[str, Any] | None, key: str) -> str | None:
    if siblings is None or not _host_suffix_re().search(key):
        return None
    for name in _PORT_KEYS:
        port = siblings.get(name)
        if isinstance(port, int | str) and not isinstance(port, bool):
            return str(port)
    return None


def _with_ports(values: list[ConfigValue]) -> list[ConfigValue]:
    """For flat formats (``spring.redis.host`` + ``spring.redis.port``): the port written beside a host key."""
    by_location = {v.location: v.value for v in values}
    out: list[ConfigValue] = []
    for value in values:
        if value.port is None and _host_suffix_re().search(value.location):
            stem = _host_suffix_re().sub("", value.location)
            port = next((by_location[stem + p] for p in _PORT_KEYS if stem + p in by_location), None)
            value = ConfigValue(value.location, value.hint, value.value, port)
        out.append(value)
    return out


# -- .properties, INI and .env: key = value lines ------------------------------------------------


def _logical_lines(text: str) -> Iterator[str]:
    """Java properties lines: a line ending in an odd number of backslashes continues on the next."""
    pending = ""
    for raw in text.splitlines():
        line = raw.lstrip() if pending else raw
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            pending += line[:-1]
            continue
        yield pending + line
        pending = ""
    if pending:
        yield pending


def _properties_values(text: str) -> Iterator[ConfigValue]:
    for line in _logical_lines(text):
        stripped = line.strip()
        if not stripped or stripped[0] in "#!":
            continue
        parts = _properties_separator_re().split(stripped, maxsplit=1)
        if len(parts) == 2 and parts[0] and parts[1]:
            key = parts[0].replace("\\", "")
            yield ConfigValue(key, hint_for(key), parts[1].strip())


def _ini_values(text: str) -> Iterator[ConfigValue]:
    section = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        header = _ini_section_re().fullmatch(stripped)
        if header is not None:
            section = header[1].strip()
            continue
        key, eq, value = stripped.removeprefix("export ").partition("=")
        if not eq:
            key, eq, value = stripped.partition(":")
        key, value = key.strip(), _unquote(value.strip())
        if eq and key and value:
            yield ConfigValue(_join(section, key), hint_for(key), value)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value.partition(" #")[0].strip()


# -- nginx ---------------------------------------------------------------------------------------


def _nginx_values(text: str) -> Iterator[ConfigValue]:
    """``*_pass`` targets and ``server`` entries of ``upstream`` blocks; ``resolver`` and the rest are not peers.

    A ``proxy_pass http://NAME`` whose NAME is an ``upstream`` of the same file
    names that group, not a host.
    """
    directives = list(_nginx_directives(text))
    upstreams = {args[0].lower() for _, name, args, _ in directives if name == "upstream" and args}
    counters: dict[str, int] = {}
    for block, name, args, line in directives:
        if not args:
            continue
        if name in _PASS_DIRECTIVES:
            target = args[0]
            if _authority(target).lower() not in upstreams:
                yield ConfigValue(f"{name} (line {line})", URL_HINT, target)
        elif name == "server" and block.startswith("upstream "):
            index = counters.get(block, 0)
            counters[block] = index + 1
            yield ConfigValue(f"{block}.server[{index}]", HOST_HINT, args[0])


def _nginx_directives(text: str) -> Iterator[tuple[str, str, list[str], int]]:
    """(enclosing block, directive, arguments, line) of each directive; a block's opener counts too."""
    blocks: list[str] = []
    words: list[str] = []
    line = 1
    start = 1
    position = 0
    for match in _nginx_token_re().finditer(text):
        line += text.count("\n", position, match.start())
        position = match.start()
        token = match.group(0)
        if token.startswith("#"):
            continue
        if token in (";", "{"):
            if words:
                yield (blocks[-1] if blocks else ""), words[0], [_unquote(w) for w in words[1:]], start
                if token == "{":
                    blocks.append(" ".join(words[:2]))
            elif token == "{":
                blocks.append("")
            words = []
        elif token == "}":
            if blocks:
                blocks.pop()
            words = []
        else:
            if not words:
                start = line
            words.append(token)


def _authority(target: str) -> str:
    rest = target.partition("://")[2] or target
    return re.split(r"[/:?]", rest, maxsplit=1)[0]


# -- plain text ----------------------------------------------------------------------------------


def _text_values(text: str) -> Iterator[ConfigValue]:
    """URL and ``host:port`` words, line by line: the only shapes free text names a host in beyond doubt."""
    for number, line in enumerate(text.splitlines(), start=1):
        for match in _url_word_re().finditer(line):
            word = match.group(0).strip(_WORD_TRIM)
            if word:
                yield ConfigValue(f"line {number}", URL_HINT, word)


# -- a Secret file's sanitized form --------------------------------------------------------------


def names_config_file(file_name: str) -> bool:
    """Whether a key's name says it holds a config file (``config.yaml``, ``.env``), not one value."""
    return "." in file_name and file_name.lower().rpartition(".")[2] in CONFIG_EXTENSIONS


def write_sanitized(values: list[ConfigValue]) -> str:
    """The text :func:`read_config` reads back as exactly ``values`` (which must hold no credential).

    A location holding a tab or a line break cannot be written, and is left out.
    """
    lines = [SANITIZED_MARK]
    for value in values:
        fields = (value.location, value.hint, value.value, value.port or "")
        if not any(("\t" in field or "\n" in field or "\r" in field) for field in fields):
            lines.append("\t".join(fields))
    return "\n".join(lines) + "\n"


def _sanitized_values(text: str) -> Iterator[ConfigValue]:
    for line in text.splitlines()[1 : MAX_VALUES + 1]:
        fields = line.split("\t")
        if len(fields) == 4 and all(fields[:3]):
            yield ConfigValue(fields[0], fields[1], fields[2], fields[3] or None)
