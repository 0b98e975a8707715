from __future__ import annotations

import base64
import string

from hypothesis import example, given, settings
from hypothesis import strategies as st

from novadiag.hostgrammar import HostPort, parse_value
from novadiag.model import SourceInfo
from novadiag.redaction import REDACTED, redact, sanitize_secret, sanitize_secret_value
from novadiag.references import discover_references
from novadiag.snapshot import build_snapshot

PROPERTY = settings(max_examples=300, deadline=None, database=None)

labels = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)
hostnames = st.lists(labels, min_size=1, max_size=4).map(".".join)
ports = st.integers(min_value=1, max_value=65535)
users = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
passwords = st.text(alphabet=string.ascii_letters + string.digits, min_size=8).map(lambda s: f"PW{s}")

DSN_TEMPLATES = [
    "postgres://{user}:{pw}@{host}:{port}/app",
    "postgresql://{user}:{pw}@{host}:{port},{host2}:{port}/app?sslmode=require",
    "mysql://{user}:{pw}@{host}/app",
    "redis://:{pw}@{host}:{port}/0",
    "amqp://{user}:{pw}@{host}",
    "mongodb://{user}:{pw}@{host}:{port},{host2}/db?replicaSet=rs0&authSource=admin",
    "mongodb+srv://{user}:{pw}@{host}/db",
    "https://{pw}@{host}/org/repo.git",
    "https://{host}:{port}/v1?user={user}&password={pw}",
    "https://{host}/v1?api_key={pw}&page=2",
    "http://{host}:{port}/?token={pw}",
    "jdbc:postgresql://{host}:{port}/app?user={user}&password={pw}",
    "jdbc:sqlserver://{host}:{port};databaseName=app;user={user};password={pw};encrypt=true",
    "jdbc:oracle:thin:{user}/{pw}@{host}:{port}:ORCL",
    "host={host} port={port} user={user} password={pw} dbname=app",
    "host={host} password='{pw}' sslmode=require",
    "Server={host},{port};Database=app;User Id={user};Password={pw};",
    "Host={host};Port={port};Username={user};Password={pw}",
]


@st.composite
def dsns(draw):
    template = draw(st.sampled_from(DSN_TEMPLATES))
    password = draw(passwords)
    fields = dict(user=draw(users), pw=password, host=draw(hostnames), host2=draw(hostnames), port=draw(ports))
    return template.format(**fields), password


env_names = st.one_of(
    st.sampled_from(["DATABASE_URL", "DB_HOST", "DB_PORT", "KAFKA_BROKERS", "API_URL", "LOG_LEVEL", "X"]),
    st.text(max_size=20),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)


def b64(text):
    return base64.b64encode(text.encode()).decode()


def deployment(env, env_from=()):
    container = {"name": "app", "env": env, "envFrom": list(env_from)}
    return {
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "nova"},
        "spec": {"template": {"metadata": {}, "spec": {"containers": [container]}}},
    }


def discover(*objects):
    return discover_references(build_snapshot(list(objects), SourceInfo("manifests")))


@PROPERTY
@given(name=env_names, value=st.text())
def test_parse_value_never_raises_and_returns_host_ports(name, value):
    for hp in parse_value(name, value):
        assert isinstance(hp, HostPort)
        assert hp.host == hp.host.lower() and hp.host
        assert hp.port is None or 0 < hp.port < 65536


@PROPERTY
@given(value=st.text())
def test_redact_never_raises(value):
    assert isinstance(redact(value), str)


@PROPERTY
@given(env=st.lists(st.fixed_dictionaries({"name": env_names, "value": st.text()}), max_size=6),
       data=st.dictionaries(st.text(max_size=12), st.text(), max_size=4))
def test_discover_references_never_raises_on_text_values(env, data):
    config_map = {"kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "nova"}, "data": data}
    env_from = [{"configMapRef": {"name": "cfg"}}, {"prefix": "P_", "configMapRef": {"name": "cfg"}}]
    refs, findings = discover(config_map, deployment(env, env_from))
    assert all(ref.host for ref in refs)


@PROPERTY
@given(env=st.lists(json_values, max_size=5), env_from=st.lists(json_values, max_size=3))
def test_discover_references_never_raises_on_malformed_entries(env, env_from):
    discover(deployment(env, env_from))


@PROPERTY
@given(case=dsns(), name=env_names)
def test_password_never_reaches_a_reference_or_finding(case, name):
    dsn, password = case
    secret = {"kind": "Secret", "metadata": {"name": "db", "namespace": "nova"},
              "data": {"url": b64(dsn)}, "stringData": {"DATABASE_URL": dsn, "DB_HOST": password}}
    env = [
        {"name": name or "X", "value": dsn},
        {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}},
        {"name": "MISSING", "valueFrom": {"secretKeyRef": {"name": "gone", "key": dsn}}},
        {"name": "EXPANDED", "value": "$(FROM_SECRET)"},
    ]
    refs, findings = discover(secret, deployment(env, [{"secretRef": {"name": "db"}}]))
    assert not [r.reference for r in refs if password in r.reference]
    assert not [f.message for f in findings if password in f.message]


@PROPERTY
@given(case=dsns(), key=env_names)
def test_password_never_survives_sanitize_secret(case, key):
    dsn, password = case
    secret = {"kind": "Secret", "metadata": {"name": "db"}, "data": {key: b64(dsn)}, "stringData": {"s": dsn}}
    out = sanitize_secret(secret)
    assert password not in repr(out)


@PROPERTY
@given(case=dsns(), key=env_names)
def test_sanitizing_a_sanitized_value_changes_nothing(case, key):
    """Snapshot files are sanitized again on load: what novadiag wrote must come back as it was."""
    once = sanitize_secret_value(key, case[0])
    assert sanitize_secret_value(key, once) == once


@PROPERTY
@given(password=passwords, key=env_names)
def test_a_password_alone_vanishes_entirely(password, key):
    out = sanitize_secret({"kind": "Secret", "metadata": {"name": "db"}, "stringData": {key: password}})
    assert out["data"] == {key: REDACTED}


# The shortcuts in redact() must change nothing: each is checked against the pattern it stands in for,
# on DSNs and on text made of the characters those patterns turn on.
url_like = st.text(alphabet="ab:/@,;?#=&. Pw1-+", max_size=60)
params_like = st.lists(
    st.sampled_from(["password", "api-key", "x.sig", "auth", "mode", "a", "1", *"-._= &;?'"]),
    max_size=12,
).map("".join)


@PROPERTY
@given(text=st.one_of(url_like, dsns().map(lambda case: case[0]), st.text()))
def test_url_credentials_are_masked_as_the_whole_pattern_masks_them(text):
    from novadiag.redaction import _URL_CREDENTIALS_RE, _mask_url_credentials, _mask_userinfo

    assert _mask_url_credentials(text) == _URL_CREDENTIALS_RE.sub(_mask_userinfo, text)


@PROPERTY
@given(text=st.one_of(params_like, url_like, dsns().map(lambda case: case[0]), st.text()))
@example("db-password-ro=x")
@example("a.secret.b = x")
@example("x;client_token\t=x")
def test_a_value_the_param_check_passes_holds_no_secret_param(text):
    from novadiag.redaction import _PARAM_RE, _names_a_secret_param

    if not _names_a_secret_param(text):
        assert _PARAM_RE.search(text) is None


# The credential-URL shortcut of the parser against the general rules it skips.
_near_hosts = st.one_of(
    hostnames,
    st.sampled_from(["jdbc", "localhost", "127.0.0.1", "10.0.0.7", "a..b", "-a", "a-", "_srv", "x.1", "", "[::1]"]),
    st.text(alphabet="abz019._-:[]", max_size=12),
)
_near_ports = st.one_of(st.none(), ports.map(str), st.sampled_from(["0", "65536", "99999", "", "08080"]))
_entries = st.tuples(_near_hosts, _near_ports).map(lambda hp: hp[0] if hp[1] is None else f"{hp[0]}:{hp[1]}")
_userinfo = st.text(alphabet="ab9_-.*:@/,;=?# %", max_size=10)
_TAIL_TOKENS = ["/", "?", "#", ";", ",", "=", "&", "@", " ", ":", "//", "host", "server", "jdbc:", "x", "9", ".", "$(",
                ";host=", " server=", ",jdbc:", ",b://"]


@st.composite
def credential_urls(draw):
    scheme = draw(st.sampled_from(["mongodb", "postgresql", "mongodb+srv", "redis", "file", "dns", "unix", "jdbc:mysql",
                                   "a.b", "x"]))
    authority = ",".join(draw(st.lists(_entries, min_size=1, max_size=4)))
    tail = "".join(draw(st.lists(st.sampled_from(_TAIL_TOKENS), max_size=8)))
    return f"{scheme}://{draw(_userinfo)}@{authority}{tail}"


@PROPERTY
@given(text=credential_urls())
@example(text="mongodb://u:***@a-0:9090,b.ns-1:9090,c:5432/app?replicaset=rs0")
@example(text="postgresql://u:***@db:5432,jdbc:5432/app")
@example(text="redis://:***@localhost:6379/0")
@example(text="mongodb://u:p@a:1,b:99999/x")
@example(text="mongodb://u:p@h:1/x;host=y")
def test_credential_url_shortcut_agrees_with_the_general_rules(text):
    from novadiag.hostgrammar import _parse_credential_url, _parse_text

    fast = _parse_credential_url(text)
    if fast is not None:
        for name_class in ("host", "plain", "image"):
            assert fast == _parse_text(text, name_class), name_class


def test_credential_url_shortcut_takes_the_common_dsns():
    """Not vacuous: the shapes most Secrets hold go through the shortcut."""
    from novadiag.hostgrammar import _parse_credential_url

    assert _parse_credential_url("mongodb://u:***@a-0:9090,b.ns-1:9090/app?replicaset=rs0") == (
        HostPort("a-0", 9090, "mongodb"),
        HostPort("b.ns-1", 9090, "mongodb"),
    )
    assert _parse_credential_url("postgresql://u:***@db/app") == (HostPort("db", 5432, "postgresql"),)
