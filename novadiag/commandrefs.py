"""References in a container's ``command``, ``args`` and exec handlers, and in the shell scripts they run.

After a namespace split the worst breakage hides outside the env: an init
container that waits with ``until nc -z kafka 9092`` hangs in Init forever, an
argument ``--db-host postgres`` points at nothing. This module reads both.

Arguments are read the way programs read them: ``--flag=value``, ``--flag
value``, ``-Dprop=value``, ``-flag value``, ``key=value``. A flag's or
property's name is the hint an env var's name gives (``--db-host``,
``-Dspring.datasource.url``, ``--kafka.brokers``), and the value goes through
the same grammar (:func:`~novadiag.hostgrammar.parse_value`), so URLs, JDBC,
DSNs and ``host:port`` lists are read here as they are in env values.
``$(VAR)`` is expanded against the container's env first, as the kubelet does.

A script run through ``sh -c`` (:mod:`novadiag.shellwords`) is read command by
command: the host arguments of the tools that wait for dependencies (``nc``,
``telnet``, ``wget``/``curl``, ``pg_isready``, ``redis-cli``, ``mysql``,
``nslookup``/``dig``/``host``), behind ``timeout``/``exec``/``busybox``
prefixes, and every other command's words as arguments.

Precision over recall: free text carries many words that look like hosts, so
a host found here counts only when
:meth:`~novadiag.clusternames.ClusterNames.names_cluster_host` accepts it (a
Service of the cluster, an in-cluster suffix), and never when it is the pod's
own name. ``localhost``, IPs, placeholders and paths never do.

Arguments are credential-masked when a snapshot is loaded; every stored
``reference`` is :func:`~novadiag.redaction.redact`-ed again (an expanded
``$(VAR)`` may bring a value in), and for a script it is the one command the
host is named in, with its secret flags masked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from novadiag.clusternames import ClusterNames
from novadiag.expansion import expand
from novadiag.hostgrammar import parse_port, parse_value
from novadiag.model import ObjectRef, Reference
from novadiag.redaction import redact, redact_command
from novadiag.shellwords import SHELLS, find_script, simple_commands
from novadiag.workloads import EXEC_HANDLERS, exec_action

_PROPERTY_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*")
_NUMBER_RE = re.compile(r"-\d+(?:\.\d+)?")
# Programs whose arguments are text to print or files to touch, not addresses to reach.
_TEXT_PROGRAMS = frozenset({"echo", "printf", "logger", "sleep", "exit", "test", "[", "[[", "cat", "mkdir", "rm", "cp"})
_PREFIX_PROGRAMS = frozenset({"exec", "nohup", "time", "command", "sudo", "busybox", "env"})


@dataclass(frozen=True)
class CommandSite:
    """The container whose command is read, and what it takes to judge its words."""

    workload: ObjectRef
    container: str
    init: bool
    names: ClusterNames
    own_names: frozenset[str]


class _Found(NamedTuple):
    """One host named at one location, before it becomes a Reference."""

    origin: str
    location: str
    text: str
    host: str
    port: int | None
    scheme: str | None


class _Candidate(NamedTuple):
    """A value in a host position: the name that hints what it is, the value, a port if known."""

    hint: str
    value: str
    port: int | None = None


def command_references(
    site: CommandSite, container: Mapping[str, Any], variables: Mapping[str, str]
) -> list[Reference]:
    """Every cluster host the container's ``command``/``args`` name, one Reference per (location, host, port)."""
    command = _expanded(container.get("command"), variables)
    args = _expanded(container.get("args"), variables)
    script = find_script(command, args)
    if script is not None:
        origin = "init-script" if site.init else script.origin
        found = list(_script_hosts(script.text, origin))
    else:
        argv = [("command", i, w) for i, w in enumerate(command)] + [("args", i, w) for i, w in enumerate(args)]
        found = list(_argv_hosts(argv))
    return _references(site, found)


def exec_references(site: CommandSite, container: Mapping[str, Any]) -> list[Reference]:
    """Every cluster host the container's exec probes and lifecycle hooks name.

    The kubelet runs them inside the container, so a name there goes through the
    pod's own resolver, as the app's do. A probe that cannot reach its host fails:
    a liveness probe restarts the container, a readiness probe takes the pod out
    of its Services, a startup probe holds both back. ``origin`` is the handler
    (``livenessProbe``); ``location`` is ``exec.command[2]``, or ``line 1`` of a
    ``sh -c`` script.
    """
    static = _literal_env(container)
    found: list[_Found] = []
    for origin, path, expands in EXEC_HANDLERS:
        action = exec_action(container, path)
        command = _expanded(action and action["command"], static if expands else None)
        script = find_script(command, ())
        words = _program_words(command)
        if script is not None:
            found += _script_hosts(script.text, origin)
        elif words and words[0].rsplit("/", 1)[-1] in _TOOLS:  # pg_isready -h db: the tool's own reading
            found += _command_hosts(words, origin, "exec.command")
        else:
            found += _argv_hosts([("exec.command", i, w) for i, w in enumerate(command)], origin)
    return _references(site, found)


def _literal_env(container: Mapping[str, Any]) -> dict[str, str]:
    """The env values written in the container spec itself (not ``valueFrom``), later ones winning."""
    out: dict[str, str] = {}
    for item in container.get("env") or ():
        if isinstance(item, Mapping) and isinstance(item.get("name"), str) and isinstance(item.get("value"), str):
            out[item["name"]] = item["value"]
    return out


def _expanded(items: object, variables: Mapping[str, str] | None) -> list[str]:
    """A ``command``/``args`` list with ``$(VAR)`` expanded the kubelet's way; non-strings read as empty."""
    if not isinstance(items, list):
        return []
    if variables is None:
        return [item if isinstance(item, str) else "" for item in items]
    return [expand(item, variables) if isinstance(item, str) else "" for item in items]


def _references(site: CommandSite, found: Iterable[_Found]) -> list[Reference]:
    seen: dict[tuple[str, str, int | None], Reference] = {}
    for item in found:
        if not site.names.names_cluster_host(item.host, own_names=site.own_names):
            continue
        key = (item.location, item.host, item.port)
        if key not in seen:
            seen[key] = Reference(
                workload=site.workload,
                container=site.container,
                env=None,
                origin=item.origin,
                reference=redact(item.text),
                host=item.host,
                port=item.port,
                scheme=item.scheme,
                init_container=site.init,
                location=item.location,
            )
    return list(seen.values())


def _argv_hosts(argv: Sequence[tuple[str, int, str]], origin: str | None = None) -> Iterator[_Found]:
    """Hosts of a program's arguments; each is located at the item that holds the value.

    ``argv`` items are (list, index, word); the list (``command``, ``args``) is the origin unless
    ``origin`` names the handler that holds the list.
    """
    pending: str | None = None
    for field, index, word in argv:
        candidate, pending = _read_word(word, pending)
        if candidate is not None:
            yield from _hosts(candidate, origin or field, f"{field}[{index}]", word)


def _read_word(word: str, pending: str | None) -> tuple[_Candidate | None, str | None]:
    """What one argument says, given the flag before it that waits for a value (``pending``).

    Returns the candidate it holds (if any) and the flag that now waits for a value.
    """
    if word.startswith("-") and len(word) > 1 and not _NUMBER_RE.fullmatch(word):
        name, equals, value = word.lstrip("-").partition("=")
        if word.startswith("-D") and not word.startswith("--") and equals:
            name = name[1:]  # -Dspring.datasource.url=...: the property's name
        if equals:
            return _property(value) or _Candidate(name, value), None
        return None, name
    if pending is not None:
        return _property(word) or _Candidate(pending, word), None
    return _property(word) or _Candidate("", word), None


def _property(text: str) -> _Candidate | None:
    """``zookeeper.connect=zk:2181``, as ``--override`` and ``--set`` take a property: its key is the hint."""
    key, equals, value = text.partition("=")
    if equals and _PROPERTY_RE.fullmatch(key):
        return _Candidate(key, value)
    return None


def _hosts(candidate: _Candidate, origin: str, location: str, text: str) -> Iterator[_Found]:
    for hp in parse_value(candidate.hint, candidate.value, remember=False):
        port = hp.port if hp.port is not None else candidate.port
        yield _Found(origin, location, text, hp.host, port, hp.scheme)


def _script_hosts(script: str, origin: str, first_line: int = 1) -> Iterator[_Found]:
    """Hosts of every command of a script, located at ``line N`` of the script the container holds."""
    for command in simple_commands(script):
        line = first_line + command.line - 1
        for assignment in command.assignments:  # DB_URL=postgres://db:5432/app: the name is the hint
            yield from _hosts(_property(assignment) or _Candidate("", assignment), origin, f"line {line}", assignment)
        words = _program_words(command.words)
        if not words:
            continue
        program = words[0].rsplit("/", 1)[-1]
        if program in _TEXT_PROGRAMS:
            continue
        inner = find_script(words, ()) if program in SHELLS else None
        if inner is not None:
            yield from _script_hosts(inner.text, origin, line)
            continue
        yield from _command_hosts(words, origin, f"line {line}")


def _command_hosts(words: Sequence[str], origin: str, location: str) -> Iterator[_Found]:
    """Hosts of one command (its prefixes dropped): a known tool's own options, else its arguments."""
    text = " ".join(str(w) for w in redact_command(list(words)))
    reader = _TOOLS.get(words[0].rsplit("/", 1)[-1])
    candidates = list(_argument_candidates(words[1:]))
    if reader is not None:
        # The tool's own reading knows its options (``-h`` is a host there, ``--host`` comes with
        # ``--port``); of the rest only URLs and host:port words count, as in any text.
        candidates = [*reader(words[1:]), *(c._replace(hint="") for c in candidates)]
    for candidate in candidates:
        yield from _hosts(candidate, origin, location, text)


def _argument_candidates(words: Sequence[str]) -> Iterator[_Candidate]:
    pending: str | None = None
    for word in words:
        candidate, pending = _read_word(word, pending)
        if candidate is not None:
            yield candidate


def _program_words(words: Sequence[str]) -> Sequence[str]:
    """The words from the program actually run: ``timeout 30``, ``exec``, ``busybox``, ``env X=1`` taken off."""
    while words:
        program = words[0].rsplit("/", 1)[-1]
        if program == "timeout":
            words = _after_options(words[1:], takes_value={"-s", "--signal", "-k", "--kill-after"})[1:]
        elif program in _PREFIX_PROGRAMS and len(words) > 1:
            words = words[1:]
            while program == "env" and words and "=" in words[0]:
                words = words[1:]
        else:
            return words
    return words


def _after_options(words: Sequence[str], *, takes_value: Iterable[str] = ()) -> Sequence[str]:
    """``words`` from the first one that is not an option (or an option's value)."""
    valued = set(takes_value)
    index = 0
    while index < len(words) and words[index].startswith("-") and len(words[index]) > 1:
        index += 2 if words[index] in valued else 1
    return words[index:]


def _positionals(words: Sequence[str], takes_value: frozenset[str]) -> list[str]:
    """The words that are neither options nor the values of options that take one."""
    found: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word.startswith("-") and len(word) > 1:
            skip = word in takes_value
        else:
            found.append(word)
    return found


def _options(words: Sequence[str], short: str, long: str) -> Iterator[str]:
    """Values of one option, written ``-h H``, ``-hH``, ``--host H`` or ``--host=H``."""
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else None
        if word in (short, long) and following is not None:
            yield following
        elif word.startswith(long + "="):
            yield word.partition("=")[2]
        elif word.startswith(short) and len(word) > len(short) and not word.startswith("--"):
            yield word[len(short) :]


def _first(values: Iterable[str]) -> str | None:
    return next(iter(values), None)


_NC_VALUED = frozenset("-w -i -q -W -s -p -x -X -O -I -T -e -c -g -G -m -M --wait --source".split())
_CURL_VALUED = frozenset(
    "-H -d -X -o -u -w -m -A -e -b -c -F -T -x -E -K -r -y -Y -z -C -U -P -a -t -i --header --data "
    "--data-raw --data-binary --data-urlencode --request --output --user --max-time --connect-timeout "
    "--retry --retry-delay --retry-max-time --cacert --cert --key --resolve --connect-to --proxy "
    "--user-agent --write-out --timeout --tries --post-data --output-document".split()
)
_DIG_VALUED = frozenset("-p -t -c -q -x -b -f -k -y".split())


def _netcat(words: Sequence[str]) -> Iterator[_Candidate]:
    """``nc [-zv] [-w N] host port``; ``telnet host port`` reads the same."""
    positionals = _positionals(words, _NC_VALUED)
    if positionals:
        port = parse_port(positionals[1]) if len(positionals) > 1 else None
        yield _Candidate("HOST", positionals[0], port)


def _http_client(words: Sequence[str]) -> Iterator[_Candidate]:
    """``wget``/``curl``: every URL they fetch (a scheme is optional for both)."""
    for word in _positionals(words, _CURL_VALUED):
        yield _Candidate("URL", word)


def _server_client(host: tuple[str, str], port: tuple[str, str], default: int) -> Callable[
    [Sequence[str]], Iterator[_Candidate]
]:
    """A database client that names its server with a host option and a port option."""

    def read(words: Sequence[str]) -> Iterator[_Candidate]:
        server = _first(_options(words, *host))
        if server is not None:
            number = _first(_options(words, *port))
            yield _Candidate("HOST", server, parse_port(number or "") or default)

    return read


def _pg_isready(words: Sequence[str]) -> Iterator[_Candidate]:
    yield from _server_client(("-h", "--host"), ("-p", "--port"), 5432)(words)
    for conninfo in _options(words, "-d", "--dbname"):
        yield _Candidate("DSN", conninfo)


def _redis_cli(words: Sequence[str]) -> Iterator[_Candidate]:
    yield from _server_client(("-h", "--host"), ("-p", "--port"), 6379)(words)
    for url in _options(words, "-u", "--uri"):
        yield _Candidate("URL", url)


def _name_lookup(words: Sequence[str]) -> Iterator[_Candidate]:
    """``nslookup NAME``, ``host NAME``, ``dig [@server] NAME``: the name looked up (the server is not)."""
    for word in _positionals(words, _DIG_VALUED):
        if not word.startswith(("@", "+")):
            yield _Candidate("HOST", word)
            return


_TOOLS: Mapping[str, Callable[[Sequence[str]], Iterator[_Candidate]]] = {
    "nc": _netcat,
    "ncat": _netcat,
    "netcat": _netcat,
    "telnet": _netcat,
    "wget": _http_client,
    "curl": _http_client,
    "pg_isready": _pg_isready,
    "redis-cli": _redis_cli,
    "mysql": _server_client(("-h", "--host"), ("-P", "--port"), 3306),
    "mysqladmin": _server_client(("-h", "--host"), ("-P", "--port"), 3306),
    "nslookup": _name_lookup,
    "host": _name_lookup,
    "dig": _name_lookup,
}
