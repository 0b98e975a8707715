from __future__ import annotations

import base64
import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import novadiag
from novadiag.model import SourceInfo
from novadiag.redaction import (
    LAST_APPLIED,
    REDACTED,
    SANITIZED_KEY,
    names_a_secret,
    redact,
    redact_command,
    redact_text,
    sanitize_secret,
    sanitize_secret_value,
)
from novadiag.references import discover_references
from novadiag.report.render import FORMATS
from novadiag.snapshot import SNAPSHOT_SCHEMA, Snapshot, build_snapshot, load_snapshot_file


def b64(text):
    return base64.b64encode(text.encode()).decode()


# ----------------------------------------------------------------------------- redact


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("postgres://user:pw@host", "postgres://user:***@host"),
        ("postgres://user:pw@host:5432/db", "postgres://user:***@host:5432/db"),
        ("https://TOKEN@host/repo.git", "https://***@host/repo.git"),
        ("redis://:pw@redis:6379/0", "redis://:***@redis:6379/0"),
        ("amqp://guest:guest@rabbit", "amqp://guest:***@rabbit"),
        ("jdbc:postgresql://u:pw@pg/db", "jdbc:postgresql://u:***@pg/db"),
        ("mongodb://u:pw@a:1,b:2/db?replicaSet=x", "mongodb://u:***@a:1,b:2/db?replicaSet=x"),
        ("mongodb+srv://u:pw@cluster0.example.net/db", "mongodb+srv://u:***@cluster0.example.net/db"),
    ],
)
def test_url_userinfo_is_masked(value, expected):
    assert redact(value) == expected


def test_password_with_at_and_slash_is_masked_whole():
    assert redact("postgres://u:p@ss/w@rd@db:5432/app") == "postgres://u:***@db:5432/app"


def test_every_url_in_a_list_is_masked():
    assert redact("https://T1@a,https://T2@b") == "https://***@a,https://***@b"


def test_user_that_is_an_email_keeps_the_password_masked():
    assert redact("smtp://me@example.com:pw@mail:587") == "smtp://me@example.com:***@mail:587"


def test_at_sign_after_a_port_is_not_userinfo():
    assert redact("smtp://mail:587?from=noreply@example.com") == "smtp://mail:587?from=noreply@example.com"


@pytest.mark.parametrize(
    "name",
    ["password", "PASSWORD", "passwd", "pwd", "secret", "client_secret", "token", "access_token",
     "apikey", "api_key", "access_key", "sslpassword", "auth", "key", "sig", "X-Amz-Security-Token"],
)
def test_secret_named_query_parameters_are_masked(name):
    assert redact(f"https://api:443/v1?user=u&{name}=hunter2&x=1") == f"https://api:443/v1?user=u&{name}=***&x=1"


def test_harmless_parameters_named_like_auth_stay():
    value = "mongodb://a/db?authSource=admin&authMechanism=SCRAM-SHA-256"
    assert redact(value) == value


def test_jdbc_semicolon_parameters_are_masked():
    assert (
        redact("jdbc:sqlserver://sql:1433;user=sa;password=hunter2;encrypt=true")
        == "jdbc:sqlserver://sql:1433;user=sa;password=***;encrypt=true"
    )


def test_jdbc_braced_password_is_masked_whole():
    assert redact("jdbc:sqlserver://sql;password={a;b};x=1") == "jdbc:sqlserver://sql;password=***;x=1"


def test_oracle_thin_credentials_are_masked():
    assert redact("jdbc:oracle:thin:scott/tiger@ora:1521:ORCL") == "jdbc:oracle:thin:***@ora:1521:ORCL"


def test_libpq_password_is_masked():
    assert redact("host=db port=5432 password=hunter2 dbname=app") == "host=db port=5432 password=*** dbname=app"


def test_libpq_quoted_password_with_spaces_is_masked():
    assert redact("host=db password = 'a b\\' c' dbname=app") == "host=db password = *** dbname=app"


def test_ado_net_password_is_masked():
    assert redact("Server=db;User Id=sa;Password=hunter2;") == "Server=db;User Id=sa;Password=***;"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Bearer abc.def.ghi", "Bearer ***"),
        ("Authorization: Bearer abc", "Authorization: Bearer ***"),
        ("Basic dXNlcjpwYXNz", "Basic ***"),
    ],
)
def test_authorization_values_are_masked(value, expected):
    assert redact(value) == expected


def test_json_secret_keys_are_masked():
    assert redact('{"host": "db", "password": "hunter2"}') == '{"host": "db", "password": "***"}'


def test_value_without_credentials_is_unchanged():
    assert redact("http://user-service:8080/api?page=2") == "http://user-service:8080/api?page=2"


def test_redact_is_idempotent():
    once = redact("postgres://u:pw@db/app?password=x")
    assert redact(once) == once


@pytest.mark.parametrize("value", ["", "@", "://@", "a://:@", "?=&;", "password=", "\x00\udcff", "x" * 10_000])
def test_redact_never_raises(value):
    assert isinstance(redact(value), str)


# ----------------------------------------------------------------------------- sanitize_secret_value


def test_secret_value_naming_a_host_keeps_it_redacted():
    assert sanitize_secret_value("url", "postgres://u:hunter2@db/app") == "postgres://db:5432/***"


def test_secret_value_without_a_host_vanishes():
    assert sanitize_secret_value("password", "hunter2") == REDACTED


def test_secret_password_that_looks_like_a_word_vanishes():
    assert sanitize_secret_value("DB_PASSWORD", "redis") == REDACTED


def test_multi_line_secret_file_keeps_only_its_hosts():
    text = "spring.datasource.url=jdbc:postgresql://db/app\nspring.datasource.password=hunter2\n"
    kept = sanitize_secret_value("application.properties", text)
    assert kept.splitlines()[1:] == ["spring.datasource.url\tHOST\tpostgresql://db:5432/***\t"]
    assert "hunter2" not in kept and sanitize_secret_value("application.properties", kept) == kept


def test_multi_line_secret_value_that_is_not_a_config_file_vanishes():
    text = "spring.datasource.url=jdbc:postgresql://db/app\nspring.datasource.password=hunter2\n"
    assert sanitize_secret_value("application", text) == REDACTED
    assert sanitize_secret_value("broken.yaml", "a: [\nurl: http://db:80\n") == REDACTED


# ----------------------------------------------------------------------------- sanitize_secret


def raw_secret(**extra):
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": "db", "namespace": "nova", "labels": {"app": "db"}},
        **extra,
    }


def test_data_is_decoded_and_sanitized():
    out = sanitize_secret(raw_secret(data={"url": b64("redis://:hunter2@redis:6379"), "password": b64("hunter2")}))
    assert out["data"] == {"url": "redis://redis:6379/***", "password": REDACTED}


def test_string_data_is_merged_and_removed():
    out = sanitize_secret(raw_secret(stringData={"url": "http://api:80"}))
    assert (out["data"], "stringData" in out) == ({"url": "http://api:80"}, False)


def test_string_data_wins_over_data():
    out = sanitize_secret(raw_secret(data={"url": b64("http://old:80")}, stringData={"url": "http://new:80"}))
    assert out["data"] == {"url": "http://new:80"}


@pytest.mark.parametrize("bad", ["not base64!", "//4=", 42, None], ids=["not-base64", "not-utf8", "int", "none"])
def test_undecodable_data_is_redacted(bad):
    assert sanitize_secret(raw_secret(data={"k": bad}))["data"] == {"k": REDACTED}


def test_non_string_string_data_is_redacted():
    assert sanitize_secret(raw_secret(stringData={"k": 5}))["data"] == {"k": REDACTED}


def test_sanitized_secret_is_marked():
    assert sanitize_secret(raw_secret())[SANITIZED_KEY] is True


def test_sanitize_is_idempotent():
    once = sanitize_secret(raw_secret(data={"url": b64("postgres://u:pw@db/app")}))
    assert sanitize_secret(once) == once


def test_already_marked_secret_is_returned_unchanged():
    marked = {**raw_secret(), SANITIZED_KEY: True, "data": {"url": "http://a:80"}}
    assert sanitize_secret(marked) is marked


def test_a_secret_marked_as_sanitized_is_sanitized_again():
    marked = {
        **raw_secret(),
        SANITIZED_KEY: True,
        "data": {"url": "postgres://u:MarkedPw1@db:5432/app", "password": "MarkedPw2", "port": 5432},
        "stringData": {"token": "MarkedTok3"},
    }
    out = sanitize_secret(marked)
    assert out["data"] == {"url": "postgres://db:5432/***", "password": REDACTED, "port": REDACTED, "token": REDACTED}
    assert "stringData" not in out


def deployment_reading_the_db_url():
    env = [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}]
    return {
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "nova"},
        "spec": {"template": {"metadata": {}, "spec": {"containers": [{"name": "app", "env": env}]}}},
    }


def test_a_snapshot_built_by_hand_cannot_pass_a_credential_off_as_sanitized():
    secret = {**raw_secret(), SANITIZED_KEY: True, "data": {"url": "postgres://u:HandPw1@db.nova:5432/app"}}
    objects = {"Secret": (secret,), "Deployment": (deployment_reading_the_db_url(),)}
    snapshot = Snapshot(SourceInfo("manifests"), objects)
    references, _ = discover_references(snapshot)
    assert [ref.reference for ref in references] == ["postgres://db.nova:5432/***"]


def test_a_snapshot_file_that_claims_its_secrets_are_sanitized_is_not_believed(tmp_path):
    """A snapshot file can be edited or written by another tool: its Secrets are sanitized on load all the same."""
    secret = {**raw_secret(), SANITIZED_KEY: True, "data": {"url": "postgres://u:FilePw1@db.nova:5432/app"}}
    path = tmp_path / "forged.json"
    objects = {"Secret": [secret], "Deployment": [deployment_reading_the_db_url()]}
    path.write_text(json.dumps({"schema": SNAPSHOT_SCHEMA, "objects": objects}))
    report = novadiag.audit(snapshot=path)
    outputs = [report.render(fmt) for fmt in FORMATS] + [json.dumps(report.to_dict())]
    load_snapshot_file(path).save(tmp_path / "again.json")
    outputs.append((tmp_path / "again.json").read_text())
    assert [text for text in outputs if "FilePw1" in text] == []
    assert {edge.reference.host for edge in report.edges} == {"db.nova"}


def test_metadata_and_type_are_kept():
    out = sanitize_secret(raw_secret(data={}))
    assert (out["metadata"], out["type"], out["kind"]) == (raw_secret()["metadata"], "Opaque", "Secret")


def test_input_is_not_modified():
    original = raw_secret(stringData={"password": "hunter2"})
    sanitize_secret(original)
    assert original["stringData"] == {"password": "hunter2"}


def test_last_applied_configuration_is_dropped():
    secret = raw_secret(data={"password": b64("hunter2")})
    secret["metadata"]["annotations"] = {LAST_APPLIED: '{"data":{"password":"aHVudGVyMg=="}}', "team": "core"}
    assert sanitize_secret(secret)["metadata"]["annotations"] == {"team": "core"}


def test_secret_without_data_gets_empty_data():
    assert sanitize_secret({"kind": "Secret", "metadata": {"name": "x"}})["data"] == {}


def test_secret_host_in_lower_case_is_kept():
    assert sanitize_secret_value("DB_HOST", "postgres.nova") == "postgres.nova"


def test_secret_token_with_capitals_under_a_host_key_vanishes():
    assert sanitize_secret_value("DB_HOST", "PWx7Gq9") == REDACTED


def test_sanitizing_never_memoizes_a_value():
    """A lone lower-case password passes redact() unchanged: parsing it must not leave it in a cache."""
    from novadiag import hostgrammar

    before = hostgrammar._parse.cache_info().currsize
    sanitize_secret_value("DB_HOST", "correcthorsebattery")
    sanitize_secret_value("API_URL", "http://svc-memo-check:80")
    assert hostgrammar._parse.cache_info().currsize == before


# ----------------------------------------------------------------------------- the one-URL shortcut

_pieces = st.text(alphabet="aZ9_-.*:@/,;=?# %", max_size=12)


@settings(max_examples=400, deadline=None, database=None)
@given(
    scheme=st.sampled_from(["postgres", "MongoDB+srv", "jdbc:mysql", "a.b", "9x", "", "x" * 33]),
    user=_pieces,
    rest=st.text(alphabet="ab:/@,;= ?#", max_size=16),
)
@example(scheme="mongodb", user="u:pw", rest="a:1,b:2/db?replicaSet=x")
@example(scheme="http", user="user", rest="host:8080/x@y")
def test_one_credential_url_shortcut_agrees_with_the_full_pattern(scheme, user, rest):
    from novadiag.redaction import _URL_CREDENTIALS_RE, _mask_each_url, _mask_url_credentials, _mask_userinfo

    text = f"{scheme}://{user}@{rest}"
    assert _mask_url_credentials(text) == _mask_each_url(text) == _URL_CREDENTIALS_RE.sub(_mask_userinfo, text)


def test_one_credential_url_shortcut_is_taken_for_a_plain_dsn():
    from novadiag.redaction import _ONE_CREDENTIAL_URL_RE

    assert _ONE_CREDENTIAL_URL_RE.fullmatch("mongodb://u:pw@a:1,b:2/db?replicaSet=x") is not None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("user:Pw1@tcp(pg.data:5432)/x", "user:***@tcp(pg.data:5432)/x"),  # Go MySQL DSN
        ("scott/Tiger1@pg.data:1521/XE", "scott/***@pg.data:1521/XE"),  # Oracle EZConnect
        ("postgres://user:pw1 space@pg.data/x", "postgres://user:***@pg.data/x"),  # a password with a space
        ("http://pg.data:5432/cb#access_token=FragTok2", "http://pg.data:5432/cb#access_token=***"),
    ],
)
def test_credentials_without_a_url_userinfo_are_masked(value, expected):
    assert redact(value) == expected
    assert redact(expected) == expected


@pytest.mark.parametrize("value", ["a@b.com", "git@github.com:org/repo.git", "http://host:8080/a@b", "nats://a:4222"])
def test_at_signs_that_are_not_credentials_stay(value):
    assert redact(value) == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://hooks.slack.com/services/T0AAAA/B0BBBB/HookTok1", "https://hooks.slack.com:443/***"),
        ("http://pg.data:5432/cb#access_token=FragTok2", "http://pg.data:5432/***"),
        ("https://bucket.s3.example/obj?X-Amz-Signature=abc&X-Amz-Credential=k", "https://bucket.s3.example:443/***"),
        ("mongodb://u:P1@h1:27017,h2:27017/db?replicaSet=rs", "mongodb://h1:27017,h2:27017/***"),
        ("http://a/x,http://b/y", "http://a:80,b:80/***"),
        ("redis://cache:6379", "redis://cache:6379"),
        ("dns:///payments:6379", "grpc://payments:6379/***"),  # gRPC: the host is the path
    ],
)
def test_a_secret_url_keeps_only_scheme_hosts_and_ports(value, expected):
    """A token hides in a path or fragment as often as in the userinfo; a Secret's URL keeps its hosts only."""
    assert sanitize_secret_value("URL", value) == expected


@given(
    st.lists(
        st.sampled_from(["DB", "_", "-", ".", "PASS", "word", "Pwd", "secret", "TOKEN", "api", "KEY", "access", "Auth",
                         "credential", "SIG", "nature", "URL", "host", "x1", "PAT", "H"]),
        max_size=6,
    ).map("".join)
)
@example("DB_PASSWORD")
@example("AUTH_SERVICE_URL")
@example("GITHUB_PAT")
def test_the_quick_check_of_secret_names_agrees_with_the_pattern(name):
    from novadiag.redaction import _SECRET_KEY_RE, names_a_secret

    assert names_a_secret(name) == (_SECRET_KEY_RE.fullmatch(name) is not None)


@given(
    st.lists(
        st.sampled_from(
            ["jdbc:", "postgres", "dns", "DNS", "mongodb+srv", "://", "u", ":", "p", "@", "db", "-1", ":5432"]
            + [",h2:1", "/", "app", "?", "a=b", "#", "frag", "//", ".", "x", "1"]
        ),
        max_size=10,
    ).map("".join)
)
@settings(max_examples=1000)
@example("jdbc:postgresql://db:5432/app")
@example("dns:///payments:6379")
@example("https://hooks.example/services/T0/B0/tok")
def test_authority_only_shortcut_agrees_with_the_pattern(text):
    from novadiag.redaction import _URL_TAIL_RE, _cut_after_authority, authority_only

    expected = _URL_TAIL_RE.sub(_cut_after_authority, text) if "://" in text else text
    assert authority_only(text) == expected


# ----------------------------------------------------------------------------- command lines, names, annotations


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("--password hunter2", "--password ***"),
        ("--password=hunter2", "--password=***"),
        ("--token abc.def", "--token ***"),
        ("--db-api-key 'a b'", "--db-api-key ***"),
        ("mysql -uroot -phunter2 app", "mysql -uroot -p*** app"),
        ('sh -c "mysqldump -phunter2 --password hunter3 app"', 'sh -c "mysqldump -p*** --password *** app"'),
    ],
)
def test_command_line_credentials_are_masked(value, expected):
    assert redact(value) == expected


@pytest.mark.parametrize("value", ["mkdir -p /data", "--port 5432", "--host db --verbose", "-v --verbose"])
def test_command_lines_without_credentials_stay(value):
    assert redact(value) == value


def test_the_item_after_a_secret_flag_in_args_is_masked_whole():
    args = ["--password", "hunter 2", "--token", "t0k", "--host", "db", "-phunter3", 5]
    assert redact_command(args) == ["--password", "***", "--token", "***", "--host", "db", "-p***", 5]


def test_a_variable_reference_after_a_secret_flag_is_kept():
    # the kubelet expands $(REDIS_PASSWORD) from env, which is masked on its own; masking the reference
    # hid nothing and made the planner read the whole container from the live cluster
    args = ["--requirepass", "$(REDIS_PASSWORD)", "--password", "${DB_PASSWORD}", "--token", "$(A)x"]
    expected = ["--requirepass", "$(REDIS_PASSWORD)", "--password", "${DB_PASSWORD}", "--token", "***"]
    assert redact_command(args) == expected


@pytest.mark.parametrize("name", ["GITHUB_PAT", "PAT", "APP_TOKEN", "OPENAI_API_KEY", "JWT_SECRET", "DB_PASSWD",
                                  "GCP_CREDENTIALS", "SMTP_PASSWORD"])
def test_env_names_of_credentials_are_recognised(name):
    assert names_a_secret(name)


@pytest.mark.parametrize("name", ["PATH", "PATTERN", "DB_HOST", "PAT_URL", "SPAT"])
def test_env_names_that_are_not_credentials_are_not(name):
    assert not names_a_secret(name)


def test_a_saved_snapshot_keeps_no_command_line_token_pat_or_secret_annotation(tmp_path):
    """Args, commands, env values named like credentials and annotations named like one: nothing survives."""
    container = {
        "name": "app",
        "image": "app:1",
        "command": ["sh", "-c", "mysql -uroot -pCmdPw1 -h db"],
        "args": ["--password", "ArgPw2", "--token", "ArgTok3", "--url", "postgres://db:5432/app"],
        "env": [{"name": "GITHUB_PAT", "value": "ghp_EnvPat4"}, {"name": "DB_HOST", "value": "db"}],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "a", "annotations": {"example.com/api-token": "AnnTok5"}},
        "spec": {
            "selector": {"matchLabels": {"app": "app"}},
            "template": {
                "metadata": {"labels": {"app": "app"}, "annotations": {"vault.example/secret-key": "AnnKey6"}},
                "spec": {"containers": [container]},
            },
        },
    }
    path = tmp_path / "snapshot.json"
    build_snapshot([deployment], SourceInfo("manifests")).save(path)
    text = path.read_text()
    leaked = [seed for seed in ("CmdPw1", "ArgPw2", "ArgTok3", "ghp_EnvPat4", "AnnTok5", "AnnKey6") if seed in text]
    assert leaked == []
    assert "postgres://db:5432/app" in text and '"value":"db"' in text  # hosts stay


def test_a_saved_snapshot_keeps_no_password_of_probes_hooks_ephemeral_containers_or_credential_keys(tmp_path):
    """Exec probes and lifecycle hooks run commands as args do; a ConfigMap key named like a credential is one."""
    container = {
        "name": "cache",
        "image": "redis:7",
        "livenessProbe": {"exec": {"command": ["redis-cli", "-a", "ProbePw1", "ping"]}},
        "lifecycle": {"postStart": {"exec": {"command": ["mysql", "--password", "HookPw2", "-h", "db"]}}},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "debug", "namespace": "a"},
        "spec": {
            "containers": [container],
            "ephemeralContainers": [
                {"name": "dbg", "image": "busybox", "args": ["--password", "EphPw3"],
                 "env": [{"name": "DB_PASSWORD", "value": "EphEnvPw4"}]}
            ],
        },
    }
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app", "namespace": "a"},
        "data": {"DB_PASSWORD": "CmKeyPw5", "app.yaml": "db:\n  host: pg\n  password: CmFilePw6\n"},
    }
    path = tmp_path / "snapshot.json"
    build_snapshot([pod, config_map], SourceInfo("manifests")).save(path)
    text = path.read_text()
    seeds = ("ProbePw1", "HookPw2", "EphPw3", "EphEnvPw4", "CmKeyPw5", "CmFilePw6")
    assert [seed for seed in seeds if seed in text] == []
    assert "host: pg" in text  # the config file's host stays


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("curl -H 'Authorization: Token abc123' http://api:80", "curl -H 'Authorization: ***' http://api:80"),
        ("curl -u admin:Sec1 http://api:80", "curl -u admin:*** http://api:80"),
        ("X-Api-Key: Sec2", "X-Api-Key: ***"),
        ("password: Sec3", "password: ***"),
        ("token: Sec4", "token: ***"),
        ("redis-cli -h cache -a Sec5 ping", "redis-cli -h cache -a *** ping"),
        ("ls -a /tmp", "ls -a /tmp"),
        ("AUTH_URL: http://auth:80", "AUTH_URL: http://auth:80"),
    ],
)
def test_headers_colon_keys_and_tool_flags_are_masked(text, masked):
    assert redact(text) == masked


def test_the_password_of_redis_cli_and_curl_in_an_args_list_is_masked():
    assert redact_command(["redis-cli", "-a", "Sec6", "ping"]) == ["redis-cli", "-a", "***", "ping"]
    assert redact_command(["curl", "-u", "me:Sec7", "http://x"]) == ["curl", "-u", "me:***", "http://x"]
    assert redact_command(["ls", "-a", "/tmp"]) == ["ls", "-a", "/tmp"]


# ----------------------------------------------------------------------------- free text


def test_free_text_keeps_its_words_and_hosts_and_loses_its_credentials():
    text = "criterion 'https://ci:CritPw1@api.nova/health?token=CritTok2' failed: answered 401 (--token CritTok3)"
    expected = "criterion 'https://ci:***@api.nova/health?token=*** failed: answered 401 (--token ***"
    assert redact_text(text) == expected


def test_a_long_free_text_is_masked_line_by_line_not_withheld():
    lines = [f"line {n}: http://svc-{n}.nova:8080/ok" for n in range(5000)] + ["redis://:LongPw4@cache:6379"]
    masked = redact_text("\n".join(lines))
    assert "LongPw4" not in masked and masked.splitlines()[0] == "line 0: http://svc-0.nova:8080/ok"
