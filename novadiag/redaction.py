"""Credential redaction: the one place that decides what a secret looks like.

novadiag reads DSNs out of Secrets because that is where connection strings
live, and it prints them back in reports, plans and saved snapshots. The rule
that keeps this safe is simple: a credential never outlives the load.

* :func:`sanitize_secret` runs when a Secret enters a snapshot, and again
  (at the cost of a lookup for what it wrote itself) whenever one is read back
  with its marker: a file can be edited. Of a value that names hosts only the
  scheme, hosts and ports are kept, written anew from what the parser found
  (``postgres://db:5432/***``): masking patterns cannot foresee every
  character a password holds, so no text of the value survives. Any other
  value (a password stored alone, a key, a certificate) is replaced whole by
  :data:`REDACTED`, because nothing in it is useful and any fragment of it
  would be a leak. The ``last-applied-configuration`` annotation is dropped
  too: ``kubectl apply`` stores the whole Secret, data included, there.
* :func:`redact` masks the credential forms seen in every other value (env,
  args, ConfigMaps, annotations, messages): URL userinfo, secret-named
  query/DSN parameters (URL ``?a=b&``, JDBC ``;a=b``, libpq ``a=b``, ADO.NET
  ``A=b;``; quoted values whole, an unquoted one up to the next ``key=``),
  command-line ``--password V`` and ``-pV``, ``Bearer``/``Basic``
  authorization values, and secret-named JSON keys. :func:`redact_text` is
  the same for free text of any length, :func:`redact_command` for an
  ``args`` list, where a flag and its value are two items.

A value longer than :data:`MAX_REDACT_CHARS` is withheld whole: no connection
string is that long, and the patterns' cost grows with the length (Python's
regex engine keeps backtracking state per character: a 10 MB value of
``http://a:b@`` repeated took over 1 GB to mask).

When the shape is ambiguous the patterns mask more rather than less: the
userinfo of a URL reaches the *last* ``@`` of its authority-looking run, so a
password holding ``@``, ``/``, ``?`` or ``#`` is masked whole even if a host
disappears from the printed text. The host parser in
:mod:`novadiag.references` uses the same userinfo pattern
(:func:`authority_start`), so what is printed and what is parsed agree.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, cast

from novadiag.configformats import ConfigValue, names_config_file, read_config, write_sanitized
from novadiag.hostgrammar import NOT_NEXT_URL, USERINFO, parse_port, parse_value
from novadiag.lazypattern import lazy_pattern
from novadiag.model import RawObject

REDACTED = "<redacted>"
"""A whole value withheld: it named no host, so nothing of it is kept."""

SANITIZED_KEY = "novadiagSanitized"
"""Top-level marker on a Secret whose data :func:`sanitize_secret` has rewritten."""

MASK = "***"

WITHHELD = "/" + MASK
"""Ends a URL a Secret value was rebuilt from: what followed its hosts is not shown."""

MAX_REDACT_CHARS = 64 * 1024

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

_SCHEME = r"(?<![a-z0-9+.\-])[a-z][a-z0-9+.\-]{0,31}://"
_MAX_SCHEME = 32  # characters before "://" in _SCHEME: a letter and up to 31 more
_URL_CREDENTIALS_RE = re.compile(rf"(?P<scheme>{_SCHEME}){USERINFO}", re.IGNORECASE)
# ``scheme://user:password@rest`` with the only ``@`` of the text: the full pattern's match
# is then known (see :func:`_mask_url_credentials`), so it is taken in one step.
_ONE_CREDENTIAL_URL_RE = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.\-]{0,31}://)(?P<user>[^\s/?#:@,;]*)(?P<colon>:(?P<password>[^\s/?#:@,;]*))?@"
    r"(?P<rest>[^@]*)",
    re.IGNORECASE,
)
# The patterns of one credential form each (an Oracle URL, a Go DSN, a header, a flag) compile on
# first use, not at import: most values hold none of them, and an audit of a few files never needs them.


_oracle_credentials_re = lazy_pattern(r"(jdbc:oracle:[a-z]+:)(?=[^\s@])\S*@", re.IGNORECASE)

# Userinfo without a scheme, at the start of a word: Go's MySQL DSN ``user:pw@tcp(db:3306)/x``
# and Oracle's EZConnect ``scott/tiger@db:1521/XE``.
# The password reaches the last "@" of its word (Go's parser takes the last one) or is quoted (Oracle's
# ``scott/"pw with spaces"@db``); Go's DSN is also matched whole up to ``@tcp(``, spaces and all.
_bare_userinfo_re = lazy_pattern(
    r"(?<![^\s,;=\"'])(?P<user>[^\s:/@,;=\"'(]+)(?P<sep>[:/])(?!/)(?P<password>\"[^\"]*\"|\S+)@"
)

# What the patterns above leave of a userinfo they masked: ``***``, or ``oracle:thin:app/***`` as the
# bare pattern sees Oracle's thin URL. Only the whole of it counts: a password may hold ``***`` itself.
_masked_already_re = lazy_pattern(r'(?:[^\s@]*[:/])?(?:\*\*\*|"\*\*\*")')

_go_dsn_re = lazy_pattern(r"\A(?P<user>[^\s:/@,;=\"'(]*)(?P<sep>:).*@(?=(?:tcp6?|udp|unix)\()", re.DOTALL)

# A URL password holding a space (invalid, but written): ``postgres://app:pw with space@db/x``.
_spaced_password_re = lazy_pattern(
    rf"(?P<scheme>{_SCHEME})(?P<user>[^\s/?#:@]*):(?P<password>[^@/?#\n]*\s[^@/?#\n]*)@", re.IGNORECASE
)


# Everything after a URL's authority: the path, query and fragment (see :func:`authority_only`).
_NOT_ONE_URL_RE = re.compile(r"[\s;]")
_SCHEME_BEFORE_RE = re.compile(r"(?<![a-z0-9+.\-])[a-z][a-z0-9+.\-]{0,31}\Z", re.IGNORECASE)
_TAIL_START_RE = re.compile(r"[/?#]")
_URL_TAIL_RE = re.compile(
    rf"(?P<head>{_SCHEME}(?:{NOT_NEXT_URL}[^/?#\s;])*)(?P<tail>[/?#](?:{NOT_NEXT_URL}[^\s;])*)", re.IGNORECASE
)

_SECRET_KEY = (
    r"[\w.\-]*?(?:password|passwd|pwd|secret|token|api_?key|api-key|access_?key|accountkey"
    r"|credential|signature|authorization)[\w.\-]*"
    r"|[\w.\-]*(?:key|auth|pass|sig)"
    r"|(?:[\w.\-]*[_.\-])?pat"  # a personal access token: GITHUB_PAT
)
# Where a parameter's value ends when it is not quoted: at the next ``key=`` after ADO.NET's and
# JDBC's ``;`` or a query's ``&``, at the next ``--flag=`` after a space, or at the end of the line. A
# space alone ends nothing: ``Password=a 0=b`` is one ADO.NET password (libpq, where it does, has its
# own pattern below). The next key is one
# word: ADO.NET's ``Password=a b;User Id=x`` then masks ``a b;User``, more than the value, never less,
# and ``Password=a b;c;Encrypt=True`` is masked whole. Keys are bounded so the look-ahead stays short.
_NEXT_PARAM = r"(?=[;&]\s*[\w.\-]{1,64}\s*=|\s+--?[\w.\-]{1,64}\s*=|[;&\t ]*(?:[\r\n]|\Z))"
# Quoted values: libpq's backslash escapes, ADO.NET's doubled quotes, JDBC's braces with ``}}``.
# A quoted value counts only when its closing quote ends the parameter (or the text ends unclosed):
# ``'a\''b'`` is libpq's escape or ADO.NET's doubling; if one reading stops short, the unquoted rule
# below takes the value up to the next ``key=`` instead.
_QUOTE_END = r"(?=[\s;&,]|\Z)|\Z"
_QUOTED_VALUE = (
    rf"""'(?:[^'\\]|\\.|'')*(?:'{_QUOTE_END})|"(?:[^"\\]|\\.|"")*(?:"{_QUOTE_END})"""
    rf"|\{{(?:[^}}]|\}}\}})*(?:\}}{_QUOTE_END})"
)
_PARAM_RE = re.compile(
    # A URL's query or fragment parameter: its value ends at white space, "&" or "#" (";" is data there).
    rf"(?<=[?&#])(?P<qkey>{_SECRET_KEY})(?P<qeq>=)(?P<qvalue>{_QUOTED_VALUE}|[^\s&#]*)"
    # A DSN's parameter (JDBC ``;a=b``, libpq, ADO.NET, a flag's ``--a=b``).
    rf"|(?<![^;\s,])(?P<key>{_SECRET_KEY})(?P<eq>\s*=\s*)(?P<value>{_QUOTED_VALUE}|[^\s&;]?[^\r\n]*?{_NEXT_PARAM})",
    re.IGNORECASE,
)

# In a libpq DSN (``host=db port=5432 password=a;b``) only white space ends an unquoted value.
_libpq_param_re = lazy_pattern(
    rf"(?<!\S)(?P<key>{_SECRET_KEY})(?P<eq>\s*=\s*)(?P<value>{_QUOTED_VALUE}|\S*)", re.IGNORECASE
)

_libpq_start_re = lazy_pattern(r"\s*[\w.]+\s*=\s*(?:'(?:[^'\\]|\\.)*'|[^\s';]*)\s+[\w.]+\s*=")


_SECRET_KEY_RE = re.compile(_SECRET_KEY, re.IGNORECASE)
_SECRET_HINT_RE = re.compile("pass|pwd|secret|token|key|credential|sig|auth|pat", re.IGNORECASE)

_json_param_re = lazy_pattern(rf"""(?P<key>"(?:{_SECRET_KEY})"\s*:\s*)"(?:[^"\\]|\\.)*"?""", re.IGNORECASE)


_STRUCTURED_RE = re.compile(r"://|=|^\s*(?:jdbc|dns|ipv4|ipv6):", re.IGNORECASE)
# Command-line credentials: ``--password hunter2``, ``--api-key k`` (``--password=x`` is a parameter
# above) and MySQL's ``-phunter2``. The value after a secret-named flag is masked whatever it looks like.
_SECRET_FLAG = rf"--?(?:{_SECRET_KEY})"
# A flag starts a word: its "-" follows no letter, digit, "-", ".", "/" or ":" (``svc-token.ns`` is a
# host). The "-" is written first, then looked behind, so the engine searches for it at C speed.
_FLAG_START = r"-(?<![\w\-./:]-)"
_FLAG_START_RE = re.compile(_FLAG_START)
_SECRET_FLAG_RE = re.compile(
    rf"""(?P<flag>{_FLAG_START}-?(?:{_SECRET_KEY}))(?P<sep>[ \t]+)(?:"[^"]*"?|'[^']*'?|\S+)""", re.IGNORECASE
)
_SECRET_FLAG_ALONE_RE = re.compile(_SECRET_FLAG, re.IGNORECASE)
# ``--requirepass $(REDIS_PASSWORD)``: a reference the kubelet expands from the container's env, not a
# credential; the env var it names is judged (and masked) on its own.
_VARIABLE_REFERENCE_RE = re.compile(r"\$\([A-Za-z_][A-Za-z0-9_.-]*\)|\$\{[A-Za-z_][A-Za-z0-9_]*\}")
_MYSQL_PASSWORD_RE = re.compile(rf"""{_FLAG_START}p[^\s"')]+""")
# An annotation whose key names a credential (``example.com/api-token``) is a Secret value.
_SECRET_ANNOTATION_RE = re.compile(r"token|passw|secret|key|credential", re.IGNORECASE)

_auth_header_re = lazy_pattern(r"\b(?P<scheme>bearer|basic)\s+[^\s,;\"']+", re.IGNORECASE)


# ``password: hunter2`` in a YAML or properties file, ``Authorization: Token abc`` in a header: a
# credential-named key, a colon and a blank, then the rest of the line (up to a quote that closes a
# shell word). A URL's ``scheme://`` never matches: its colon is followed by "/", not a blank.
_KEY_COLON_RE = re.compile(
    rf"""(?P<key>(?<![\w.\-])["']?(?:{_SECRET_KEY})["']?[ \t]*:[ \t]+)(?P<value>[^\s'"][^\r\n'"]*)""",
    re.IGNORECASE,
)

# ``curl -u user:pw`` / ``--user user:pw``, and ``redis-cli -a pw``.
_user_flag_re = lazy_pattern(r"""(?P<flag>(?<![\w\-./:])(?:-u|--user)[ \t=]+)(?P<user>[^\s:'"]*):[^\s'"]+""")

_redis_cli_password_re = lazy_pattern(r"""(?P<flag>(?<![\w\-./:])-a[ \t]+)[^\s'"]+""")


def redact(value: str) -> str:
    """The value with every credential replaced by ``***``; hosts and ports kept.

    >>> redact("postgres://app:s3cret@db:5432/app?sslmode=require&password=x")
    'postgres://app:***@db:5432/app?sslmode=require&password=***'
    >>> redact("https://ghp_token@github.com/org/repo")
    'https://***@github.com/org/repo'
    >>> redact("host=db port=5432 password='a b'")
    'host=db port=5432 password=***'
    """
    if not isinstance(value, str) or len(value) > MAX_REDACT_CHARS:
        return REDACTED
    text = value
    # Parameters first: a quoted or braced password may hold "@" (``password={a@b}``), which the
    # userinfo patterns below would take for the end of a URL's userinfo, and lose the host.
    if "=" in text and _names_a_secret_param(text):
        text = (_libpq_param_re() if is_libpq_dsn(text) else _PARAM_RE).sub(_mask_param, text)
    if "@" in text:  # each pattern runs only where its literal part occurs: they scan every position
        url = text.find("://")
        if url != -1:
            text = _mask_url_credentials(text)
            if " " in text or "\t" in text:
                text = _spaced_password_re().sub(rf"\g<scheme>\g<user>:{MASK}@", text)
        if "@tcp(" in text or "@unix(" in text or "@tcp6(" in text or "@udp(" in text:
            text = _go_dsn_re().sub(rf"\g<user>\g<sep>{MASK}@", text)
        if "jdbc:oracle:" in text.lower():
            text = _oracle_credentials_re().sub(rf"\1{MASK}@", text)
        if url == -1 or text.count("@") > 1 or text.find("@") < url:  # else the one @ ends a URL's userinfo
            text = _bare_userinfo_re().sub(_mask_bare_userinfo, text)
    if '"' in text:
        text = _json_param_re().sub(rf'\g<key>"{MASK}"', text)
    lowered = text.lower()
    if "bearer" in lowered or "basic" in lowered:
        text = _auth_header_re().sub(rf"\g<scheme> {MASK}", text)
    if "-" in text and _FLAG_START_RE.search(text):
        text = _SECRET_FLAG_RE.sub(rf"\g<flag>\g<sep>{MASK}", text)
        text = _MYSQL_PASSWORD_RE.sub(f"-p{MASK}", text)
        if "-u" in text:
            text = _user_flag_re().sub(rf"\g<flag>\g<user>:{MASK}", text)
        if "redis-cli" in text:
            text = _redis_cli_password_re().sub(rf"\g<flag>{MASK}", text)
    if ":" in text and _SECRET_HINT_RE.search(text) is not None:
        text = _KEY_COLON_RE.sub(_mask_key_colon_value, text)
    return text


def redact_text(text: str) -> str:
    """Any free text — a message, a criterion as written, a line of a file — with every credential form masked.

    What :func:`redact` masks (URL userinfo and secret query parameters, DSN
    parameters, ``--password V``, ``Bearer`` values...), wherever it sits in
    the text; hosts are kept, so the text still says what it is about. A text
    longer than :data:`MAX_REDACT_CHARS` is masked line by line rather than
    withheld whole (a line that long still is).

    >>> redact_text("GET https://ci:s3cret@api.nova/health?token=abc answered 401")
    'GET https://ci:***@api.nova/health?token=*** answered 401'
    """
    if len(text) <= MAX_REDACT_CHARS:
        return redact(text)
    return "\n".join(redact(line) for line in text.split("\n"))


def _mask_key_colon_value(match: re.Match[str]) -> str:
    """``password: ***``; a value masked already (``Authorization: Bearer ***``) keeps its scheme."""
    value = match["value"]
    return match[0] if MASK in value else match["key"] + MASK


def redact_command(items: list[object]) -> list[object]:
    """A container's ``args`` or ``command``, each item :func:`redact`-ed; the item after ``--password`` masked whole.

    >>> redact_command(["mysql", "--password", "hunter2", "-phunter2", "--host=db"])
    ['mysql', '--password', '***', '-p***', '--host=db']
    >>> redact_command(["redis-server", "--requirepass", "$(REDIS_PASSWORD)"])
    ['redis-server', '--requirepass', '$(REDIS_PASSWORD)']
    >>> redact_command(["redis-cli", "-a", "hunter2", "ping"]), redact_command(["curl", "-u", "me:pw", "http://x"])
    (['redis-cli', '-a', '***', 'ping'], ['curl', '-u', 'me:***', 'http://x'])
    """
    redis_cli = any(isinstance(i, str) and i.rsplit("/", 1)[-1] == "redis-cli" for i in items)
    masked: list[object] = []
    after_flag = False
    previous: object = None
    for item in items:
        if not isinstance(item, str):
            masked.append(item)
            after_flag, previous = False, item
            continue
        hidden = after_flag or (redis_cli and previous == "-a")
        if hidden and item and _VARIABLE_REFERENCE_RE.fullmatch(item) is None:
            masked.append(MASK)
        elif previous in ("-u", "--user") and ":" in item:
            masked.append(f"{item.partition(':')[0]}:{MASK}")  # curl -u user:password
        else:
            masked.append(redact(item))
        after_flag = _SECRET_FLAG_ALONE_RE.fullmatch(item) is not None
        previous = item
    return masked


def annotation_names_a_secret(key: str) -> bool:
    """Whether an annotation's key (its name part, after any ``prefix/``) says its value is a credential."""
    return _SECRET_ANNOTATION_RE.search(key.rpartition("/")[2]) is not None


def _mask_url_credentials(text: str) -> str:
    """``_URL_CREDENTIALS_RE.sub(_mask_userinfo, text)``, tried only where a match can start.

    A match starts at its scheme, at most 32 characters before the first
    ``://`` that follows (a scheme holds no ``:``), so only those positions are
    tried; scanning the whole text was 10 µs of a 140-character MongoDB URI.
    The pattern itself still decides at each position, so the result is the same.

    First, the shape most DSNs have: one URL at the start and the only ``@`` of
    the text ending its userinfo, with no character in user or password where
    the pattern would stop. The pattern's match is then that userinfo, so it
    is masked at once (that URI: 8.5 -> 1.2 µs).
    """
    one = _ONE_CREDENTIAL_URL_RE.fullmatch(text)
    if one is not None:
        return _mask_userinfo(one) + one["rest"]
    return _mask_each_url(text)


def _mask_each_url(text: str) -> str:
    pieces: list[str] = []
    done = 0
    found = text.find("://")
    while found != -1:
        match = None
        for start in range(max(done, found - _MAX_SCHEME), found):
            match = _URL_CREDENTIALS_RE.match(text, start)
            if match is not None:
                break
        if match is None:
            found = text.find("://", found + 1)
            continue
        pieces += (text[done : match.start()], _mask_userinfo(match))
        done = match.end()
        found = text.find("://", done)
    return "".join(pieces) + text[done:] if pieces else text


def _names_a_secret_param(text: str) -> bool:
    """Whether any ``key=`` in ``text`` has a secret-looking key: the only case ``_PARAM_RE`` masks.

    The pattern tries every position of the text (14 µs for a 140-character
    MongoDB URI); most values hold only harmless keys (``replicaSet=``,
    ``sslmode=``). A key is the run of word characters, dots and dashes that
    ends at an ``=`` (spaces may come between); ``_PARAM_RE`` can only match
    that whole run, so when no run passes the same key pattern nothing can be
    masked, and the full pattern runs only when one does.
    """
    end = text.find("=")
    while end != -1:
        stop = end
        while stop > 0 and text[stop - 1].isspace():
            stop -= 1
        start = stop
        while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_.-"):
            start -= 1
        if start < stop and _SECRET_KEY_RE.fullmatch(text, start, stop):
            return True
        end = text.find("=", end + 1)
    return False


def is_libpq_dsn(text: str) -> bool:
    """Whether ``text`` is a libpq key=value DSN, whose values end at white space (not at ``;``).

    It starts with two pairs separated by white space, the first value free of
    ``;``: ADO.NET's ``Server=db;User Id=app`` has its first ``;`` before any space.
    """
    return _libpq_start_re().match(text) is not None


def _mask_userinfo(match: re.Match[str]) -> str:
    if match.group("colon") is None:
        return f"{match.group('scheme')}{MASK}@"
    return f"{match.group('scheme')}{match.group('user')}:{MASK}@"


def _mask_bare_userinfo(match: re.Match[str]) -> str:
    password = match.group("password")
    if _masked_already_re().fullmatch(password) or "://" in password:
        return match.group(0)  # a URL (or Oracle thin) userinfo the patterns above have masked already
    return f"{match.group('user')}{match.group('sep')}{MASK}@"


def authority_only(text: str) -> str:
    """Each URL cut after its authority: ``https://hooks.example/services/T0/B0/tok`` → ``https://hooks.example/***``.

    For Secret values only. A token is as often in a URL's path (webhooks,
    presigned links) or fragment as in its userinfo, and no pattern tells a
    token from a database name; the audit needs only scheme, hosts and ports.
    """
    start = text.find("://")
    if start == -1:
        return text
    if text.find("://", start + 3) != -1 or _NOT_ONE_URL_RE.search(text):
        return _URL_TAIL_RE.sub(_cut_after_authority, text)  # lists of URLs, text around them
    # One URL and nothing but its prefix (most DSNs): where the pattern's one match would start and
    # cut, found in two C-speed searches (4.6 -> 2.4 µs; a property test checks they agree).
    scheme = _SCHEME_BEFORE_RE.search(text, 0, start)
    cut = _TAIL_START_RE.search(text, start + 3)
    if scheme is None or cut is None:
        return text
    if cut.start() == start + 3 or scheme.group().lower() == "dns":
        return text
    tail = text[cut.start() :]
    return text[: cut.start()] + ("/" + MASK if tail.strip("/") else tail)


def _cut_after_authority(match: re.Match[str]) -> str:
    head, tail = match["head"], match["tail"]
    if head.endswith("://") or head.lower().startswith("dns://"):
        return match[0]  # gRPC's dns:///host:port (and dns://resolver/host): the host is in the path
    return head + ("/" + MASK if tail.strip("/") else tail)


def _mask_param(match: re.Match[str]) -> str:
    found = match.groupdict()
    prefix = "q" if found.get("qkey") is not None else ""
    if not found[f"{prefix}value"]:
        return match.group(0)
    return f"{found[prefix + 'key']}{found[prefix + 'eq']}{MASK}"


@lru_cache(maxsize=1 << 14)
def names_a_secret(name: str) -> bool:
    """Whether a variable or parameter name says its value is a credential (``DB_PASSWORD``, ``API_KEY``).

    Every name :data:`_SECRET_KEY` matches holds one of the words of
    :data:`_SECRET_HINT_RE`; the full pattern (4 µs a name) runs only on those,
    and most env names (``*_URL``, ``*_HOST``) hold none. Remembered: a cluster's
    workloads (and their ReplicaSets) repeat the same few thousand names.
    """
    return _SECRET_HINT_RE.search(name) is not None and _SECRET_KEY_RE.fullmatch(name) is not None


def sanitize_secret_value(key: str, value: str) -> str:
    """What a snapshot keeps of one Secret value: the scheme, hosts and ports it names, or nothing.

    The value is masked, its hosts are parsed from the masked text, and then
    only those hosts are kept, written anew (:func:`_text_naming`): nothing of
    the original text survives, so a password no masking pattern foresaw (a
    ``;``, a space or an ``@`` in it) cannot either. The audit needs no more.

    A value without structure (no ``scheme://``, no ``key=value``, no ``jdbc:``
    or gRPC prefix) is kept only when written in lower case, as Kubernetes names
    are, and never under a key named like a credential: under a key like
    ``DB_HOST`` a lone token could just as well be a password, and generated
    passwords carry capitals.

    >>> sanitize_secret_value("url", "redis://:hunter2@redis:6379/0")
    'redis://redis:6379/***'
    >>> sanitize_secret_value("dsn", "Server=db,1433;Password=a b;c;Encrypt=True")
    'db:1433'
    >>> sanitize_secret_value("password", "hunter2")
    '<redacted>'
    """
    if not isinstance(value, str) or value == REDACTED:
        return REDACTED
    if (key, value) in _KEPT:
        return value  # a text this function wrote: sanitized already
    if names_config_file(key) and "\n" in value.strip():
        return _sanitize_config_file(key, value)
    if _STRUCTURED_RE.search(value) is None and (value != value.lower() or names_a_secret(key)):
        return REDACTED  # checked before parsing: most Secret values are passwords and tokens
    # Masked first, then parsed: a parser confused by a password's characters sees only "***".
    masked = authority_only(redact(value))
    hosts = parse_value(key, masked, remember=False)
    kept = _text_naming(key, value, masked, hosts) if hosts else REDACTED
    if kept != REDACTED:
        _remember_kept(key, kept)
    return kept


def _sanitize_config_file(key: str, text: str) -> str:
    """A config file kept in a Secret (``config.yaml``, ``alertmanager.yaml``): its host-naming values, sanitized.

    The file is read by :func:`~novadiag.configformats.read_config` and each
    value sanitized as a Secret value of its own; only those that name hosts
    are kept, with their key paths, in a form of their own
    (:func:`~novadiag.configformats.write_sanitized`), so no text of the file
    but its keys survives. A value under a key named like a credential, and a
    file that does not parse as its extension says, keep nothing.
    """
    parsed = read_config(key, text)
    if parsed.problem is not None or parsed.format == "text":
        return REDACTED
    kept: list[ConfigValue] = []
    for value in parsed.values:
        last = value.location.rpartition(".")[2].partition("[")[0]
        if names_a_secret(last) or names_a_secret(value.location):
            continue
        clean = sanitize_secret_value(value.hint, value.value)
        if clean != REDACTED:
            port = parse_port(value.port or "")
            kept.append(ConfigValue(value.location, value.hint, clean, None if port is None else str(port)))
    if not kept:
        return REDACTED
    written = write_sanitized(kept)
    _remember_kept(key, written)
    return written


_KEPT: dict[tuple[str, str], None] = {}
"""What :func:`sanitize_secret_value` returned (hosts only, never a credential), by key.

Sanitizing is idempotent, and sanitized values are sanitized again wherever
they are read (a snapshot file, a planner's rebuilt snapshot, the reference
finder): remembered, the second time costs a lookup. Only outputs are kept: an
input may be a password. Bounded: emptied when full.
"""
_MAX_KEPT = 1 << 17


def _remember_kept(key: str, kept: str) -> None:
    if len(_KEPT) >= _MAX_KEPT:
        _KEPT.clear()
    _KEPT[(key, kept)] = None


def _text_naming(key: str, value: str, masked: str, hosts: tuple[Any, ...]) -> str:
    """A text naming exactly ``hosts`` (``HostPort`` records, parsed from ``masked``: ``value`` masked) under ``key``.

    A value that is no more than its hosts (``redis://cache:6379``) is kept.
    Else hosts with one scheme in a row share one URL, marked as cut
    (``mongodb://m1:27017,m2:27017/***``); a host without a scheme is
    ``host:port`` or ``host``. The text is parsed back, and a form that reads
    differently is not used: written one host a token, then (for one host
    without port or scheme, which a plain name reads as a host only under a
    host-ish key) as ``Server=host``; else nothing. A text that is the one
    parsed already (a value sanitized before, read again) is not parsed twice.
    """
    parsed = masked.strip().lower()  # what the parser read: the same text reads the same
    plain = _joined(hosts, grouped=True, suffix="")
    if plain == value.strip().lower() and _reads_as(key, plain, hosts, parsed):
        return plain  # the value was no more than its hosts: kept as written
    single = f"Server={_host_text(hosts[0].host)}" if len(hosts) == 1 and hosts[0].scheme is None else ""
    grouped, one_each = _joined(hosts, grouped=True, suffix=WITHHELD), _joined(hosts, grouped=False, suffix=WITHHELD)
    return next((text for text in (grouped, one_each, single) if _reads_as(key, text, hosts, parsed)), REDACTED)


def _reads_as(key: str, text: str, hosts: tuple[Any, ...], parsed: str) -> bool:
    """Whether ``text`` names ``hosts`` under ``key``; ``parsed`` is known to, so it is not parsed again."""
    return bool(text) and (text == parsed or parse_value(key, text, remember=False) == hosts)


def _joined(hosts: tuple[Any, ...], *, grouped: bool, suffix: str) -> str:
    tokens: list[str] = []
    scheme: str | None = None
    for hp in hosts:
        authority = _host_text(hp.host) + ("" if hp.port is None else f":{hp.port}")
        if hp.scheme is None:
            tokens.append(authority)
        elif grouped and hp.scheme == scheme:
            tokens[-1] = tokens[-1].removesuffix(suffix) + f",{authority}{suffix}"
        else:
            tokens.append(f"{hp.scheme}://{authority}{suffix}")
        scheme = hp.scheme
    return ",".join(tokens)


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def sanitize_secret(obj: Mapping[str, Any], *, trust_marker: bool = True) -> RawObject:
    """A copy of a raw Secret with ``data`` as plain, sanitized strings.

    ``data`` (base64) and ``stringData`` (plain, wins for the same key) are
    merged into ``data``; ``stringData`` is removed; the object is marked with
    ``novadiagSanitized: True``.

    ``trust_marker``: a marked Secret's ``data`` is taken as plain strings (a
    snapshot file novadiag wrote, a snapshot already admitted), but each value
    is sanitized again all the same, since a file can be edited or written by
    another tool: a sanitized value comes back unchanged, so a second pass
    returns the object itself. False (a manifest: input from outside, where
    ``data`` is base64 whatever the object claims) ignores the marker.
    """
    if trust_marker and obj.get(SANITIZED_KEY) is True:
        return _sanitized_again(obj)
    data: dict[str, str] = {}
    for key, raw in _items(obj.get("data")):
        data[key] = _sanitize_encoded(key, raw)
    for key, raw in _items(obj.get("stringData")):
        data[key] = _sanitize_plain(key, raw)
    return _with_data(obj, data)


def _sanitized_again(obj: Mapping[str, Any]) -> RawObject:
    """A Secret marked as sanitized, its plain ``data`` checked: the object itself when nothing changes."""
    data = {key: _sanitize_plain(key, raw) for key, raw in _items(obj.get("data"))}
    for key, raw in _items(obj.get("stringData")):
        data[key] = _sanitize_plain(key, raw)
    same = data == obj.get("data") and "stringData" not in obj
    if same and _without_last_applied(obj.get("metadata")) is obj.get("metadata"):
        return cast(RawObject, obj if isinstance(obj, dict) else dict(obj))
    return _with_data(obj, data)


def _with_data(obj: Mapping[str, Any], data: dict[str, str]) -> RawObject:
    out = {k: v for k, v in obj.items() if k not in ("data", "stringData")}
    if "metadata" in obj:
        out["metadata"] = _without_last_applied(obj["metadata"])
    out["data"] = data
    out[SANITIZED_KEY] = True
    return cast(RawObject, out)


def _sanitize_plain(key: str, raw: object) -> str:
    return sanitize_secret_value(key, raw) if isinstance(raw, str) else REDACTED


def _items(section: object) -> list[tuple[str, object]]:
    if not isinstance(section, Mapping):
        return []
    return [(str(k), v) for k, v in section.items()]


def _sanitize_encoded(key: str, raw: object) -> str:
    if not isinstance(raw, str):
        return REDACTED
    try:
        text = base64.b64decode(raw, validate=True).decode("utf-8")
    except ValueError:
        return REDACTED
    return sanitize_secret_value(key, text)


def _without_last_applied(metadata: object) -> object:
    if not isinstance(metadata, Mapping):
        return metadata
    annotations = metadata.get("annotations")
    if not isinstance(annotations, Mapping) or LAST_APPLIED not in annotations:
        return metadata
    kept = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    return {**metadata, "annotations": kept}
