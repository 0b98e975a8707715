"""Config file formats: which format a mounted file is read as, and the (location, value) pairs it yields."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import novadiag.configformats
import novadiag.mounts
from novadiag.configformats import MAX_TEXT, choose_format, hint_for, read_config
from novadiag.model import SourceInfo
from novadiag.redaction import sanitize_secret_value
from novadiag.references import discover_references
from novadiag.snapshot import build_snapshot


def pairs(file_name, text):
    return [(v.location, v.value) for v in read_config(file_name, text).values]


@pytest.mark.parametrize(
    ("file_name", "text", "expected"),
    [
        ("collector.yaml", "a: b\n", "yaml"),
        ("config.json", "{}", "json"),
        ("app.toml", "a = 1", "toml"),
        ("application.properties", "a=b", "properties"),
        (".env", "A=b", "ini"),
        ("settings.cfg", "[s]\na=b", "ini"),
        ("config", '{"url": "http://a:1"}', "json"),
        ("default.conf", "server {\n  location / { proxy_pass http://api:80; }\n}", "nginx"),
        ("nginx", "upstream api {\n  server api:80;\n}\n", "nginx"),
        ("settings", "; comment\n[database]\nhost = db\n", "ini"),
        ("config", "exporters:\n  otlp:\n    endpoint: a:1\n", "yaml"),
        ("app.conf", "key = value\n", "properties"),
        ("haproxy.cfg", "backend api\n    server api1 api:80 check\n", "text"),
        ("database-url", "postgres://db:5432/***", "text"),
        ("README", "Talk to http://api:80 please.", "text"),
    ],
)
def test_the_format_comes_from_the_extension_then_the_text(file_name, text, expected):
    assert choose_format(file_name, text) == expected


def test_yaml_documents_all_count_and_lists_keep_their_index():
    text = "targets: [a:1, b:2]\n---\nurl: http://c:3\n"
    assert pairs("p.yaml", text) == [("targets[0]", "a:1"), ("targets[1]", "b:2"), ("url", "http://c:3")]


def test_a_masked_credential_does_not_break_yaml():
    assert pairs("c.yaml", "db:\n  password: ***\n  host: postgres\n") == [
        ("db.password", "***"),
        ("db.host", "postgres"),
    ]


def test_a_sibling_port_goes_with_a_host_key():
    values = read_config("c.yaml", "db:\n  host: postgres\n  port: 5432\n").values
    assert [(v.location, v.port) for v in values] == [("db.host", "5432")]
    values = read_config("a.properties", "spring.redis.host=redis\nspring.redis.port=6379\n").values
    assert [(v.location, v.port) for v in values if v.location.endswith("host")] == [("spring.redis.host", "6379")]


def test_properties_continuations_separators_and_comments():
    text = "# c\n! c\na.url = http://a:1\nb.url: http://b:2\nc.url http://c:3\nd.servers=x:1,\\\n    y:2\n"
    assert pairs("x.properties", text) == [
        ("a.url", "http://a:1"),
        ("b.url", "http://b:2"),
        ("c.url", "http://c:3"),
        ("d.servers", "x:1,y:2"),
    ]


def test_ini_sections_quotes_and_export():
    text = '[db]\nhost = "postgres"\n; comment\n[cache]\nurl: redis://r:1\n'
    assert pairs("s.ini", text) == [("db.host", "postgres"), ("cache.url", "redis://r:1")]
    assert pairs(".env", "export DB_HOST=db # the primary\nAPP='x'\n") == [("DB_HOST", "db"), ("APP", "x")]


def test_nginx_reads_pass_targets_and_upstream_servers_only():
    text = (
        "http {\n"
        "  upstream app { server app-a:80; server 'app-b:81' weight=2; }  # a comment with proxy_pass x;\n"
        "  server {\n"
        "    listen 80; server_name web.example.com; resolver kube-dns.kube-system.svc valid=5s;\n"
        "    location / { proxy_pass http://app; }\n"
        "    location /x { proxy_pass http://x-svc:8080/x; }\n"
        "  }\n"
        "}\n"
        "stream { upstream db { server pg:5432; } server { listen 5432; proxy_pass db; } }\n"
    )
    assert pairs("nginx.conf", text) == [
        ("upstream app.server[0]", "app-a:80"),
        ("upstream app.server[1]", "app-b:81"),
        ("proxy_pass (line 6)", "http://x-svc:8080/x"),
        ("upstream db.server[0]", "pg:5432"),
    ]


def test_plain_text_keeps_url_and_host_port_words_only():
    text = "See http://api:80/v1, or redis:6379.\nAt 10:30 the main worker (v1.2.3) runs /etc/app.\n"
    assert pairs("notes.txt", text) == [("line 1", "http://api:80/v1"), ("line 1", "redis:6379"), ("line 2", "10:30")]


def test_a_file_that_does_not_parse_is_read_as_text_and_says_why():
    parsed = read_config("c.yaml", "a: [unclosed\nurl: http://api:80\n")
    assert parsed.format == "text"
    assert parsed.problem is not None and parsed.problem.startswith("invalid YAML") and "(line 2)" in parsed.problem
    assert [(v.location, v.value) for v in parsed.values] == [("line 2", "http://api:80")]
    assert read_config("c.toml", "a = [").problem.startswith("invalid TOML")


def test_an_alias_bomb_is_refused_not_expanded():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefgh":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [*{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}]\n"
    parsed = read_config("bomb.yaml", bomb)
    assert parsed.format == "text" and "aliases expand" in (parsed.problem or "")


def test_a_text_over_the_configmap_limit_is_not_read():
    parsed = read_config("big.yaml", "a: b\n" * (MAX_TEXT // 5 + 1))
    assert parsed.values == [] and "not read" in (parsed.problem or "")


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("endpoint", "HOST"),
        ("logs_endpoint", "HOST"),
        ("bootstrap.servers", "HOST"),
        ("bootstrapServers", "HOST"),
        ("targets", "HOST"),
        ("proxy_pass", "HOST"),
        ("endpoint_timeout", "VALUE"),
        ("serverPort", "VALUE"),
        ("name", "VALUE"),
        ("image", "IMAGE"),
    ],
)
def test_the_key_says_what_a_value_holds(key, hint):
    assert hint_for(key) == hint


def test_doctests():
    assert doctest.testmod(novadiag.configformats).failed == 0
    assert doctest.testmod(novadiag.mounts).failed == 0


CONFIG_TEXT = st.text(alphabet=st.sampled_from(list("abc:/.=[]{};#'\"\n\t -*&!1234567890")), max_size=200)


@given(
    name=st.sampled_from(["c.yaml", "c.json", "c.toml", "c.properties", ".env", "c.ini", "nginx.conf", "c"]),
    text=CONFIG_TEXT,
)
@settings(max_examples=300, deadline=None, database=None)
def test_read_config_never_raises(name, text):
    parsed = read_config(name, text)
    assert all(isinstance(v.value, str) and v.location for v in parsed.values)


@given(text=CONFIG_TEXT)
@settings(max_examples=200, deadline=None, database=None)
def test_a_secret_config_file_is_sanitized_idempotently_and_keeps_no_other_text(text):
    kept = sanitize_secret_value("config.yaml", text + "\nurl: postgres://u:Pw-Secret-9@db:5432/x\n")
    assert "Pw-Secret-9" not in kept
    assert sanitize_secret_value("config.yaml", kept) == kept


MALFORMED_SPECS = [
    {"volumes": "nope", "containers": [{"name": "c", "volumeMounts": "nope"}]},
    {"volumes": [None, 3, {"name": 5}, {"name": "v", "configMap": "x"}], "containers": [{"name": "c"}]},
    {
        "volumes": [{"name": "v", "configMap": {"name": "cfg", "items": [None, {"key": 3}, {"key": "a", "path": 4}]}}],
        "containers": [
            {"name": "c", "volumeMounts": [None, {"name": "v"}, {"name": "v", "mountPath": "/c", "subPath": 7}]}
        ],
    },
    {
        "volumes": [{"name": "v", "projected": {"sources": [None, {"secret": None}, {"configMap": {"name": ""}}]}}],
        "containers": [{"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/c"}]}],
    },
]


@pytest.mark.parametrize("spec", MALFORMED_SPECS)
def test_malformed_volumes_and_mounts_are_skipped_not_fatal(spec):
    objects = [
        {
            "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "a"},
            "data": {"a": "url: http://x:1\n", "b": 5},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "w", "namespace": "a"},
            "spec": {"template": {"spec": spec}},
        },
    ]
    references, _ = discover_references(build_snapshot(objects, SourceInfo("manifests")))
    assert references == []
