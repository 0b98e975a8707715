"""No password leaks, whatever characters it holds, in any connection-string format.

For each format a Secret value is built around a password drawn from every
character that format allows there (``;``, ``@``, spaces, ``#``, ``%``, ``:``,
``/``, quotes where the format quotes, percent-escapes in URLs), the real
pipeline audits a Deployment that reads it, and every output is searched:
each report format, the DataFrame, the dict, the repr, the findings and a
saved snapshot. A second container has the same value written inline in its
env (not from a Secret), where it is masked by pattern rather than rebuilt:
that must not leak either. Neither the password, nor its base64, nor any distinctive
piece of it (in any case: hosts are lower-cased) may appear; the host the value
names must still be audited. The explicit examples are leaks found before
Secret values were rebuilt from their hosts and parameter values masked whole.

A password is built as marker pieces (``Xq`` and four or more letters and
digits, unlike anything novadiag prints) joined by runs of the format's legal
characters, so a leak of part of a password (``db:5432/***;Xq7hTAIL``) is found
as surely as a leak of all of it, and escaping (HTML, JSON) cannot hide one.
"""

from __future__ import annotations

import base64
import json
import string
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import novadiag
from novadiag.model import SourceInfo
from novadiag.report.render import FORMATS
from novadiag.snapshot import Snapshot, build_snapshot

PROPERTY = settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

PRINTABLE = "".join(c for c in string.printable if c not in "\t\n\r\x0b\x0c") + "éß€"
UNRESERVED = string.ascii_letters + string.digits + "-._~"
SUB_DELIMS = "!$&'()*+,;="
USERINFO = UNRESERVED + SUB_DELIMS + ":"  # RFC 3986 userinfo, besides percent-escapes
QUERY_VALUE = UNRESERVED + "!$'()*+,;=:@/?"  # a query's characters but the "&" and "#" that end a value


def escaped(alphabet: str) -> st.SearchStrategy[str]:
    """One character as a URL holds it: raw when the format allows it, else percent-escaped."""
    return st.sampled_from(alphabet) | st.sampled_from(PRINTABLE).map(lambda c: quote(c, safe=""))


def raw(alphabet: str) -> st.SearchStrategy[str]:
    return st.sampled_from(alphabet)


markers = st.text(alphabet=string.ascii_letters + string.digits, min_size=4, max_size=6).map(lambda s: f"Xq{s}")


@dataclass(frozen=True)
class Format:
    """One way a password is written in a connection string, and the host that string names."""

    env: str
    build: Callable[[str], str]
    characters: st.SearchStrategy[str]
    host: str | None


def braced(pw: str) -> str:
    return "{" + pw.replace("}", "}}") + "}"


def libpq_quoted(pw: str) -> str:
    return "'" + pw.replace("\\", "\\\\").replace("'", "\\'") + "'"


FORMATS_OF_PASSWORDS: dict[str, Format] = {
    "jdbc-query": Format(
        "JDBC_URL",
        lambda pw: f"jdbc:postgresql://db.nova:5432/app?user=app&password={pw}&ssl=true",
        escaped(QUERY_VALUE),
        "db.nova",
    ),
    "jdbc-semicolon": Format(
        "JDBC_URL",
        lambda pw: f"jdbc:sqlserver://db.nova:1433;databaseName=app;user=app;password={braced(pw)};encrypt=true",
        raw(PRINTABLE),
        "db.nova",
    ),
    "url-userinfo": Format(
        "DATABASE_URL", lambda pw: f"postgres://app:{pw}@db.nova:5432/app", escaped(USERINFO), "db.nova"
    ),
    "url-query-password": Format(
        "BROKER_URL",
        lambda pw: f"amqp://rabbit.nova:5672/vhost?password={pw}&heartbeat=30",
        escaped(QUERY_VALUE),
        "rabbit.nova",
    ),
    "url-query-token": Format(
        "API_URL", lambda pw: f"https://api.nova:8443/v1?token={pw}", escaped(QUERY_VALUE), "api.nova"
    ),
    "libpq": Format(
        "DATABASE_DSN",
        lambda pw: f"host=db.nova port=5432 user=app password={pw} dbname=app",
        raw("".join(c for c in PRINTABLE if c not in " '\\")),
        "db.nova",
    ),
    "libpq-quoted": Format(
        "DATABASE_DSN",
        lambda pw: f"host=db.nova port=5432 password={libpq_quoted(pw)} dbname=app",
        raw(PRINTABLE),
        "db.nova",
    ),
    "ado-net": Format(
        "SQL_CONNECTION",
        lambda pw: f"Server=db.nova,1433;Database=app;User Id=app;Password={pw};Encrypt=True",
        raw("".join(c for c in PRINTABLE if c not in ";'\"")),
        "db.nova",
    ),
    "ado-net-double-quoted": Format(
        "SQL_CONNECTION",
        lambda pw: 'Server=db.nova,1433;Password="' + pw.replace('"', '""') + '";Database=app',
        raw(PRINTABLE),
        "db.nova",
    ),
    "ado-net-single-quoted": Format(
        "SQL_CONNECTION",
        lambda pw: "Server=db.nova,1433;Password='" + pw.replace("'", "''") + "';Database=app",
        raw(PRINTABLE),
        "db.nova",
    ),
    "go-mysql": Format("MYSQL_DSN", lambda pw: f"app:{pw}@tcp(db.nova:3306)/app?parseTime=true", raw(PRINTABLE), None),
    "oracle-ezconnect": Format(
        "ORACLE_DSN", lambda pw: f'app/"{pw}"@db.nova:1521/XE', raw(PRINTABLE.replace('"', "")), None
    ),
    "oracle-jdbc-thin": Format(
        "JDBC_URL",
        lambda pw: f"jdbc:oracle:thin:app/{pw}@db.nova:1521:XE",
        raw(string.ascii_letters + string.digits + "_$#"),
        "db.nova",
    ),
    "mongodb": Format(
        "MONGO_URL",
        lambda pw: f"mongodb://app:{pw}@m1.nova:27017,m2.nova:27017/app?replicaSet=rs0&authSource=admin",
        escaped(USERINFO),
        "m1.nova",
    ),
    "redis": Format("REDIS_URL", lambda pw: f"redis://:{pw}@redis.nova:6379/0", escaped(USERINFO), "redis.nova"),
    "password-alone": Format("DB_PASSWORD", lambda pw: pw, raw(PRINTABLE + "\n"), None),
}


@st.composite
def passwords(draw: st.DrawFn, characters: st.SearchStrategy[str]) -> tuple[str, list[str]]:
    """A password of marker pieces joined by runs of the format's characters, and its pieces."""
    pieces = draw(st.lists(markers, min_size=2, max_size=4, unique=True))
    runs = [draw(st.lists(characters, min_size=1, max_size=6).map("".join)) for _ in pieces[1:]]
    password = pieces[0] + "".join(run + piece for run, piece in zip(runs, pieces[1:], strict=True))
    return password, pieces


def manifests(env: str, value: str) -> list[dict[str, Any]]:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds", "namespace": "nova"},
        "data": {"value": base64.b64encode(value.encode()).decode()},
    }
    container = {
        "name": "app",
        "image": "app:1",
        "env": [{"name": env, "valueFrom": {"secretKeyRef": {"name": "creds", "key": "value"}}}],
    }
    inline = {"name": "inline", "image": "app:1", "env": [{"name": env, "value": value}]}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "nova"},
        "spec": {
            "selector": {"matchLabels": {"app": "app"}},
            "template": {"metadata": {"labels": {"app": "app"}}, "spec": {"containers": [container, inline]}},
        },
    }
    return [secret, deployment]


def every_output(snapshot: Snapshot) -> tuple[novadiag.Report, dict[str, str]]:
    """The audit of ``snapshot`` and everything a user can get out of it, by name."""
    report = novadiag.audit(snapshot=snapshot)
    outputs = {f"--format {fmt}": report.render(fmt) for fmt in FORMATS}
    outputs["to_frame()"] = report.to_frame().to_csv()
    outputs["to_dict()"] = json.dumps(report.to_dict())
    outputs["repr()"] = repr(report)
    outputs["findings"] = "\n".join(finding.message for finding in report.findings)
    with tempfile.TemporaryDirectory() as directory:
        saved = Path(directory) / "snapshot.json"
        snapshot.save(saved)
        outputs["snapshot save"] = saved.read_text(encoding="utf-8")
    return report, outputs


def leaks(outputs: dict[str, str], secrets: list[str]) -> list[tuple[str, str]]:
    found = [(where, secret) for where, text in outputs.items() for secret in secrets if secret in text]
    lowered = [(where, secret) for where, text in outputs.items() for secret in secrets if secret.lower() in text]
    return found or lowered


def check_format(name: str, password: str, pieces: list[str]) -> None:
    fmt = FORMATS_OF_PASSWORDS[name]
    value = fmt.build(password)
    source = SourceInfo("manifests", locations=(f"{name}.yaml",))
    report, outputs = every_output(build_snapshot(manifests(fmt.env, value), source))
    forbidden = [password, base64.b64encode(password.encode()).decode(), *pieces]
    assert leaks(outputs, forbidden) == [], f"{name}: {value!r} leaks"
    if fmt.host is not None:
        assert fmt.host in {edge.reference.host for edge in report.edges}, f"{name}: the host of {value!r} is lost"


def for_format(name: str) -> Callable[..., Any]:
    return given(passwords(FORMATS_OF_PASSWORDS[name].characters))


@PROPERTY
@for_format("jdbc-query")
@example(("Xq0000;Xq0001", ["Xq0000", "Xq0001"]))
def test_jdbc_query_passwords_never_leak(drawn: tuple[str, list[str]]) -> None:
    check_format("jdbc-query", *drawn)


@PROPERTY
@for_format("jdbc-semicolon")
@example(("Xq0000}Xq0001", ["Xq0000", "Xq0001"]))
@example(("Xq0000@Xq0001", ["Xq0000", "Xq0001"]))
@example(("Xq01;Xq02TAIL", ["Xq01", "Xq02TAIL"]))
def test_jdbc_semicolon_passwords_never_leak(drawn: tuple[str, list[str]]) -> None:
    check_format("jdbc-semicolon", *drawn)


@PROPERTY
@for_format("url-userinfo")
def test_url_userinfo_passwords_never_leak(drawn: tuple[str, list[str]]) -> None:
    check_format("url-userinfo", *drawn)


@PROPERTY
@for_format("url-query-password")
@example(("Xq0000;Xq0001", ["Xq0000", "Xq0001"]))
def test_url_query_passwords_never_leak(drawn: tuple[str, list[str]]) -> None:
    check_format("url-query-password", *drawn)


@PROPERTY
@for_format("url-query-token")
@example(("Xq0000;Xq0001", ["Xq0000", "Xq0001"]))
def test_url_query_tokens_never_leak(drawn: tuple[str, list[str]]) -> None:
    check_format("url-query-token", *drawn)


@PROPERTY
@for_format("libpq")
@example(("Xq0000;Xq0001", ["Xq0000", "Xq0001"]))
@example(("Xq0000&Xq0001", ["Xq0000", "Xq0001"]))
def test_libpq_passwords_never_leak(drawn: tuple[str, list[str]]) -> None:
    check_format("libpq", *drawn)


@PROPERTY
@for_format("libpq-quoted")
@example(("Xq01 horse Xq02TAIL", ["Xq01", "Xq02TAIL"]))
def test_libpq_quoted_passwords_never_leak(drawn: tuple[str, list[str]]) -> None:
    check_format("libpq-quoted", *drawn)


@PROPERTY
@for_format("ado-net")
@example(("Xq01 horse Xq02TAIL", ["Xq01", "Xq02TAIL"]))
@example(("Xq0000 0=Xq00000", ["Xq0000", "Xq00000"]))
@example(("Xq0000***Xq0001", ["Xq0000", "Xq0001"]))
def test_ado_net_passwords_never_leak(drawn: tuple[str, list[str]]) -> None:
    check_format("ado-net", *drawn)


@PROPERTY
@for_format("ado-net-double-quoted")
@example(('Xq0000"Xq0001', ["Xq0000", "Xq0001"]))
def test_ado_net_double_quoted_passwords_never_leak(drawn: tuple[str, list[str]]) -> None:
    check_format("ado-net-double-quoted", *drawn)


@PROPERTY
@for_format("ado-net-single-quoted")
@example(("Xq0000'Xq0001", ["Xq0000", "Xq0001"]))
@example(("Xq0000\\'Xq0001", ["Xq0000", "Xq0001"]))
def test_ado_net_single_quoted_passwords_never_leak(drawn: tuple[str, list[str]]) -> None:
    check_format("ado-net-single-quoted", *drawn)


@PROPERTY
@for_format("go-mysql")
@example(("Xq01 @Xq02TAIL", ["Xq01", "Xq02TAIL"]))
def test_go_mysql_passwords_never_leak(drawn: tuple[str, list[str]]) -> None:
    check_format("go-mysql", *drawn)


@PROPERTY
@for_format("oracle-ezconnect")
@example(("Xq0000@Xq0001", ["Xq0000", "Xq0001"]))
@example(("Xq0000***Xq0001", ["Xq0000", "Xq0001"]))  # the mask's own text inside a password
def test_oracle_ezconnect_passwords_never_leak(drawn: tuple[str, list[str]]) -> None:
    check_format("oracle-ezconnect", *drawn)


@PROPERTY
@for_format("oracle-jdbc-thin")
def test_oracle_jdbc_thin_passwords_never_leak(drawn: tuple[str, list[str]]) -> None:
    check_format("oracle-jdbc-thin", *drawn)


@PROPERTY
@for_format("mongodb")
def test_mongodb_passwords_never_leak(drawn: tuple[str, list[str]]) -> None:
    check_format("mongodb", *drawn)


@PROPERTY
@for_format("redis")
def test_redis_passwords_never_leak(drawn: tuple[str, list[str]]) -> None:
    check_format("redis", *drawn)


@PROPERTY
@for_format("password-alone")
def test_passwords_stored_alone_never_leak(drawn: tuple[str, list[str]]) -> None:
    check_format("password-alone", *drawn)
