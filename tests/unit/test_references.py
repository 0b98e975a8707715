from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from novadiag.hostgrammar import HostPort, classify_env_name, parse_value
from novadiag.model import ROUTE_KINDS, Gap, ObjectRef, SourceInfo
from novadiag.redaction import REDACTED
from novadiag.references import discover_references, expand
from novadiag.snapshot import build_snapshot

NOVA = Path(__file__).resolve().parents[2] / "novadiag" / "lab" / "scenarios" / "nova"


def hosts(env_name, value):
    return [(hp.host, hp.port) for hp in parse_value(env_name, value)]


# ----------------------------------------------------------------------------- parse_value: forms


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("content-service:9081", [("content-service", 9081)]),
        ("http://user-service:8080", [("user-service", 8080)]),
        ("http://user-service", [("user-service", 80)]),
        ("https://api.example.com/v1", [("api.example.com", 443)]),
        ("grpc://user-service:50051", [("user-service", 50051)]),
        ("grpc://user-service", [("user-service", None)]),
        ("postgres://db/app", [("db", 5432)]),
        ("postgresql://db/app", [("db", 5432)]),
        ("mysql://db/app", [("db", 3306)]),
        ("redis://redis/0", [("redis", 6379)]),
        ("rediss://redis", [("redis", 6379)]),
        ("mongodb://mongo/app", [("mongo", 27017)]),
        ("mongodb+srv://cluster0.example.net/app", [("cluster0.example.net", None)]),
        ("amqp://rabbit", [("rabbit", 5672)]),
        ("amqps://rabbit", [("rabbit", 5671)]),
        ("kafka://broker", [("broker", 9092)]),
        ("nats://nats", [("nats", 4222)]),
        ("memcached://cache", [("cache", 11211)]),
        ("ws://socket", [("socket", 80)]),
        ("wss://socket", [("socket", 443)]),
        ("ldap://ad", [("ad", 389)]),
        ("ldaps://ad", [("ad", 636)]),
        ("postgresql+psycopg2://db/app", [("db", 5432)]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_url_gives_host_and_port_or_scheme_default(value, expected):
    assert hosts("X", value) == expected


def test_url_keeps_its_scheme():
    assert parse_value("X", "redis://redis:6380") == (HostPort("redis", 6380, "redis"),)


def test_url_userinfo_is_not_taken_for_a_host():
    assert hosts("X", "postgres://app:s3cr3t@db:5433/app") == [("db", 5433)]


def test_password_holding_at_sign_still_finds_the_host():
    assert hosts("X", "postgres://app:p@ss@db:5432/app") == [("db", 5432)]


def test_at_sign_in_query_after_a_port_is_not_userinfo():
    assert hosts("X", "smtp://mail:587?from=noreply@example.com") == [("mail", 587)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("kafka-0.kafka:9092,kafka-1.kafka:9092", [("kafka-0.kafka", 9092), ("kafka-1.kafka", 9092)]),
        ("a:9092, b:9092", [("a", 9092), ("b", 9092)]),
        ("a:9092 b:9092", [("a", 9092), ("b", 9092)]),
        ("a:9092;b:9092", [("a", 9092), ("b", 9092)]),
        ("http://etcd-0:2379,http://etcd-1:2379", [("etcd-0", 2379), ("etcd-1", 2379)]),
    ],
)
def test_lists_give_every_host(value, expected):
    assert hosts("KAFKA_BROKERS", value) == expected


def test_duplicate_hosts_in_a_list_are_reported_once():
    assert hosts("KAFKA_BROKERS", "a:9092,a:9092") == [("a", 9092)]


def test_list_with_one_non_host_token_names_nothing():
    assert hosts("X", "kafka:9092,not a host") == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("jdbc:postgresql://pg.nova:5432/auth", [("pg.nova", 5432)]),
        ("jdbc:postgresql://pg/auth", [("pg", 5432)]),
        ("jdbc:mysql://h1,h2/db", [("h1", 3306), ("h2", 3306)]),
        ("jdbc:mysql:loadbalance://h1:3307,h2/db", [("h1", 3307), ("h2", 3306)]),
        ("jdbc:sqlserver://sql:1433;databaseName=x;encrypt=true", [("sql", 1433)]),
        ("jdbc:sqlserver://sql\\inst;databaseName=x", [("sql", 1433)]),
        ("jdbc:oracle:thin:@//ora:1521/svc", [("ora", 1521)]),
        ("jdbc:oracle:thin:@ora:1522:ORCL", [("ora", 1522)]),
    ],
)
def test_jdbc_urls(value, expected):
    assert hosts("SPRING_DATASOURCE_URL", value) == expected


def test_jdbc_in_memory_database_names_no_host():
    assert hosts("SPRING_DATASOURCE_URL", "jdbc:h2:mem:test") == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("dns:///auth-service:9083", [("auth-service", 9083)]),
        ("dns://8.8.8.8/auth.example.com:443", [("auth.example.com", 443)]),
        ("dns:auth-service:9083", [("auth-service", 9083)]),
        ("dns:///auth-service", [("auth-service", None)]),
        ("ipv4:10.0.0.1:80,10.0.0.2:81", [("10.0.0.1", 80), ("10.0.0.2", 81)]),
        ("ipv6:[fd00::1]:80", [("fd00::1", 80)]),
    ],
)
def test_grpc_targets(value, expected):
    assert hosts("AUTH_GRPC_TARGET", value) == expected


def test_grpc_targets_are_marked_grpc():
    assert parse_value("X", "dns:///auth:9083")[0].scheme == "grpc"


@pytest.mark.parametrize("value", ["xds:///user-service", "unix:///var/run/x.sock", "unix:/tmp/s"])
def test_grpc_xds_and_unix_targets_are_ignored(value):
    assert hosts("AUTH_GRPC_TARGET", value) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("mongodb://a:1,b:2/db?replicaSet=x", [("a", 1), ("b", 2)]),
        ("mongodb://a,b/db", [("a", 27017), ("b", 27017)]),
        ("postgresql://h1:5432,h2:5433/db", [("h1", 5432), ("h2", 5433)]),
        ("redis+sentinel://s1,s2:26380/master", [("s1", 26379), ("s2", 26380)]),
    ],
)
def test_multi_host_dsns(value, expected):
    assert hosts("X", value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("host=db port=5432 dbname=app", [("db", 5432)]),
        ("host=db dbname=app", [("db", 5432)]),
        ("host=db1,db2 port=5432,5433", [("db1", 5432), ("db2", 5433)]),
        ("dbname=app host='db' user=x", [("db", 5432)]),
        ("Server=tcp:sql.example.com,1433;Database=x;User Id=u", [("sql.example.com", 1433)]),
        ("Host=pg;Port=5433;Database=app", [("pg", 5433)]),
    ],
)
def test_key_value_dsns(value, expected):
    assert hosts("CONNECTION", value) == expected


def test_libpq_socket_directory_is_not_a_host():
    assert hosts("PG", "host=/var/run/postgresql dbname=app") == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.0.0.5:5432", [("10.0.0.5", 5432)]),
        ("[fd00::1]:8080", [("fd00::1", 8080)]),
        ("http://[fd00::1]:8080/", [("fd00::1", 8080)]),
        ("http://10.0.0.5", [("10.0.0.5", 80)]),
    ],
)
def test_ip_literals(value, expected):
    assert hosts("X", value) == expected


def test_bare_ip_counts_under_a_host_name():
    assert hosts("DB_HOST", "10.0.0.5") == [("10.0.0.5", None)]


def test_bare_ip_does_not_count_under_another_name():
    assert hosts("ALLOWED_CIDR", "10.0.0.5") == []


def test_hosts_are_lower_cased():
    assert hosts("X", "HTTP://User-Service.NOVA:8080") == [("user-service.nova", 8080)]


def test_trailing_dot_is_kept():
    assert hosts("X", "content-service.nova.svc.cluster.local.:9081") == [
        ("content-service.nova.svc.cluster.local.", 9081)
    ]


def test_srv_style_labels_may_start_with_underscore():
    assert hosts("X", "_grpc._tcp.api.nova.svc:50051") == [("_grpc._tcp.api.nova.svc", 50051)]


def test_surrounding_whitespace_is_ignored():
    assert hosts("X", "  redis:6379\n") == [("redis", 6379)]


# ----------------------------------------------------------------------------- bare and dotted names


@pytest.mark.parametrize(
    "env_name",
    [
        "DB_HOST", "REDIS_HOSTNAME", "REDIS_ADDR", "SMTP_ADDRESS", "MAIL_SERVER", "KAFKA_SERVERS",
        "AUTH_SERVICE", "API_ENDPOINT", "MQ_BROKER", "KAFKA_BROKERS", "API_URL", "DB_URI", "DSN",
        "UPSTREAM", "PROXY_TARGET", "ES_NODES", "KAFKA_BOOTSTRAP", "DB_HOST_RO", "redis_host",
    ],
)
def test_bare_label_counts_when_the_env_name_says_host(env_name):
    assert hosts(env_name, "redis") == [("redis", None)]


@pytest.mark.parametrize(
    "env_name", ["REDIS", "CACHE", "OTEL_SERVICE_NAME", "SERVER_MODE", "HOSTILE", "SERVICE_ACCOUNT"]
)
def test_bare_label_does_not_count_under_other_names(env_name):
    assert hosts(env_name, "redis") == []


@pytest.mark.parametrize("value", ["true", "none", "default", "v2", "v1beta1", "my_db", "-redis"])
def test_keywords_and_versions_are_not_hosts_even_under_host_names(value):
    assert hosts("DB_HOST", value) == []


def test_dotted_name_counts_under_a_host_name():
    assert hosts("REDIS_HOST", "redis.nova-media") == [("redis.nova-media", None)]


def test_dotted_name_does_not_count_under_other_names():
    assert hosts("CACHE", "redis.nova-media") == []


@pytest.mark.parametrize("value", ["redis.nova.svc", "redis.nova.svc.cluster.local", "redis.nova.svc.k8s.corp"])
def test_service_names_count_under_any_name(value):
    assert hosts("CACHE", value) == [(value, None)]


@pytest.mark.parametrize("value", ["api.example.com", "db.internal", "mail.example.io"])
def test_names_with_a_common_tld_count_under_any_name(value):
    assert hosts("THING", value) == [(value, None)]


def test_whitespace_list_of_fqdns_counts():
    assert hosts("THING", "a.example.com b.example.com") == [("a.example.com", None), ("b.example.com", None)]


def test_whitespace_list_never_takes_bare_labels():
    assert hosts("UPSTREAM_SERVERS", "alpha beta") == []


def test_host_port_with_path_counts_under_a_host_name():
    assert hosts("API_URL", "content-service:9081/api") == [("content-service", 9081)]


def test_host_port_with_path_does_not_count_under_other_names():
    assert hosts("REGISTRY", "registry.example.com:5000/team/app") == []


def test_image_reference_is_not_a_host():
    assert hosts("SIDECAR_IMAGE", "redis:7") == []


def test_env_name_classes():
    assert [classify_env_name(n) for n in ("DB_HOST", "LOG_LEVEL", "REDIS_IMAGE")] == [
        "host", "plain", "image"
    ]


# ----------------------------------------------------------------------------- non-hosts


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("number", "4194304"),
        ("negative number", "-1"),
        ("decimal", "0.75"),
        ("version", "1.4.2"),
        ("version with suffix", "2.1.0-rc1"),
        ("boolean", "true"),
        ("duration", "30s"),
        ("duration compound", "1h30m"),
        ("size", "512Mi"),
        ("absolute path", "/var/lib/postgresql/data"),
        ("relative path", "./config"),
        ("parent path", "../x"),
        ("home path", "~/x"),
        ("windows path", "C:\\data"),
        ("relative path without dot", "data/media"),
        ("jvm flag", "-Xmx512m"),
        ("jvm flags", "-Xmx512m -Xms512m"),
        ("cli flag", "--foo=bar"),
        ("email", "ops@example.com"),
        ("localhost", "localhost:8080"),
        ("localhost url", "http://localhost:8080"),
        ("loopback", "127.0.0.1:5432"),
        ("loopback other", "127.1.2.3:5432"),
        ("any address", "0.0.0.0:8080"),
        ("ipv6 loopback", "[::1]:80"),
        ("java class", "com.example.Main"),
        ("yaml file", "config.yaml"),
        ("jar file", "app.jar"),
        ("json object", '{"host": "db", "port": 5432}'),
        ("json array", '["a:1"]'),
        ("prose", "connect to the server"),
        ("prose with fqdn", "see docs.example.com for details"),
        ("empty", ""),
        ("blank", "   "),
        ("leftover", "$(DB_HOST)"),
        ("leftover in url", "http://$(HOST):8080"),
        ("shell template", "${DB_HOST}:5432"),
        ("time of day", "12:30"),
        ("mac address", "aa:bb:cc:dd:ee:ff"),
        ("log filter", "user_service=info,tower_http=warn"),
        ("image tag", "nginx:latest"),
        ("image version", "postgres:16.4"),
        ("bucket", "s3://bucket/key"),
        ("file url", "file:///etc/config"),
        ("bad port", "http://host:abc"),
        ("port zero", "redis:0"),
        ("port too big", "redis:70000"),
        ("query string", "a=b&c=d"),
        ("underscore host", "my_db:5432"),
        ("numeric host", "123:456"),
    ],
)
def test_non_hosts_produce_nothing(kind, value):
    assert parse_value("CONFIG", value) == ()


@pytest.mark.parametrize(
    "value", ["30s", "1.4.2", "/var/lib", "-Xmx512m", "a@b.com", "localhost", "127.0.0.1", "app.jar"]
)
def test_non_hosts_produce_nothing_even_under_host_names(value):
    assert parse_value("DB_HOST", value) == ()


def test_overlong_label_is_not_a_host():
    assert parse_value("X", "a" * 64 + ":80") == ()


def test_overlong_name_is_not_a_host():
    assert parse_value("X", ".".join(["a" * 60] * 5) + ".com:80") == ()


# ----------------------------------------------------------------------------- expand


def test_expand_substitutes_defined_vars():
    assert expand("http://$(HOST):$(PORT)", {"HOST": "api", "PORT": "80"}) == "http://api:80"


def test_expand_keeps_unknown_vars_literal():
    assert expand("http://$(HOST)", {}) == "http://$(HOST)"


def test_expand_double_dollar_escapes():
    assert expand("$$(HOST) $$x", {"HOST": "api"}) == "$(HOST) $x"


def test_expand_leaves_unterminated_reference_alone():
    assert expand("$(HOST", {"HOST": "api"}) == "$(HOST"


# ----------------------------------------------------------------------------- discover_references


def deployment(containers, *, name="app", ns="nova", annotations=None, init_containers=None):
    spec = {"containers": containers}
    if init_containers is not None:
        spec["initContainers"] = init_containers
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"template": {"metadata": {"annotations": annotations or {}}, "spec": spec}},
    }


def config_map(name, data, ns="nova"):
    return {"kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data}


def secret(name, string_data, ns="nova"):
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in string_data.items()}
    return {"kind": "Secret", "metadata": {"name": name, "namespace": ns}, "data": encoded}


def container(env=None, env_from=None, name="app"):
    c = {"name": name, "image": "app:1"}
    if env is not None:
        c["env"] = env
    if env_from is not None:
        c["envFrom"] = env_from
    return c


def discover(*objects, gaps=()):
    snapshot = build_snapshot(list(objects), SourceInfo("manifests"), gaps=gaps)
    return discover_references(snapshot)


def refs_of(*objects):
    return discover(*objects)[0]


def test_env_value_becomes_a_reference():
    (ref,) = refs_of(deployment([container([{"name": "CONTENT_URL", "value": "content:9081"}])]))
    assert (ref.workload, ref.container, ref.env, ref.origin, ref.reference, ref.host, ref.port) == (
        ObjectRef("Deployment", "nova", "app"), "app", "CONTENT_URL", "value", "content:9081", "content", 9081,
    )


def test_values_that_name_no_host_give_no_reference():
    assert refs_of(deployment([container([{"name": "LOG_LEVEL", "value": "info"}])])) == []


def test_config_map_key_ref_origin():
    env = [{"name": "FEED_URL", "valueFrom": {"configMapKeyRef": {"name": "ep", "key": "feed"}}}]
    (ref,) = refs_of(config_map("ep", {"feed": "http://feed:8089"}), deployment([container(env)]))
    assert (ref.origin, ref.host, ref.port) == ("configMapKeyRef:ep/feed", "feed", 8089)


def test_secret_key_ref_origin_and_redacted_reference():
    env = [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}]
    objs = secret("db", {"url": "postgres://app:PWtopsecret@pg:5432/app"}), deployment([container(env)])
    (ref,) = refs_of(*objs)
    assert (ref.origin, ref.reference, ref.host) == ("secretKeyRef:db/url", "postgres://pg:5432/***", "pg")


def test_plain_env_value_with_credentials_is_redacted():
    env = [{"name": "DATABASE_URL", "value": "postgres://app:PWinline@pg/app"}]
    (ref,) = refs_of(deployment([container(env)]))
    assert ref.reference == "postgres://app:***@pg/app"


def test_secret_holding_only_a_password_gives_no_reference():
    env = [{"name": "DB_HOST", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]
    assert refs_of(secret("db", {"password": "PWalone"}), deployment([container(env)])) == []


def test_env_from_config_map():
    objs = config_map("cfg", {"MEDIA_URL": "http://media:9082", "LOG": "info"}), deployment(
        [container(env_from=[{"configMapRef": {"name": "cfg"}}])]
    )
    assert [(r.env, r.origin, r.host) for r in refs_of(*objs)] == [("MEDIA_URL", "envFrom:configMap/cfg", "media")]


def test_env_from_secret():
    objs = secret("db", {"DATABASE_URL": "postgres://u:PWx1234567@pg/app"}), deployment(
        [container(env_from=[{"secretRef": {"name": "db"}}])]
    )
    assert [(r.env, r.origin, r.host) for r in refs_of(*objs)] == [("DATABASE_URL", "envFrom:secret/db", "pg")]


def test_env_from_prefix_is_applied_to_the_name():
    objs = config_map("k", {"BROKERS": "kafka.kafka.svc:9092"}), deployment(
        [container(env_from=[{"prefix": "KAFKA_", "configMapRef": {"name": "k"}}])]
    )
    assert [r.env for r in refs_of(*objs)] == ["KAFKA_BROKERS"]


def test_env_from_keys_that_are_not_env_names_are_skipped():
    objs = config_map("k", {"1BAD": "redis:6379", "GOOD": "redis:6379"}), deployment(
        [container(env_from=[{"configMapRef": {"name": "k"}}])]
    )
    assert [r.env for r in refs_of(*objs)] == ["GOOD"]


def test_later_env_from_source_wins():
    objs = (
        config_map("a", {"API_URL": "http://old:80"}),
        config_map("b", {"API_URL": "http://new:80"}),
        deployment([container(env_from=[{"configMapRef": {"name": "a"}}, {"configMapRef": {"name": "b"}}])]),
    )
    assert [(r.host, r.origin) for r in refs_of(*objs)] == [("new", "envFrom:configMap/b")]


def test_env_entry_overrides_env_from():
    objs = config_map("a", {"API_URL": "http://old:80"}), deployment(
        [container([{"name": "API_URL", "value": "http://new:80"}], env_from=[{"configMapRef": {"name": "a"}}])]
    )
    assert [(r.host, r.origin) for r in refs_of(*objs)] == [("new", "value")]


def test_later_env_entry_overrides_earlier_one():
    env = [{"name": "API_URL", "value": "http://old:80"}, {"name": "API_URL", "value": "http://new:80"}]
    assert [r.host for r in refs_of(deployment([container(env)]))] == ["new"]


def test_value_expands_earlier_vars():
    env = [{"name": "MEDIA_PORT", "value": "9082"}, {"name": "MEDIA_URL", "value": "http://media:$(MEDIA_PORT)/a"}]
    (ref,) = refs_of(deployment([container(env)]))
    assert (ref.reference, ref.port) == ("http://media:9082/a", 9082)


def test_value_expands_env_from_vars():
    objs = config_map("c", {"MEDIA": "media"}), deployment(
        [container([{"name": "MEDIA_URL", "value": "http://$(MEDIA):80"}], env_from=[{"configMapRef": {"name": "c"}}])]
    )
    assert [r.host for r in refs_of(*objs)] == ["media"]


def test_value_does_not_expand_later_vars():
    env = [{"name": "MEDIA_URL", "value": "http://media:$(MEDIA_PORT)"}, {"name": "MEDIA_PORT", "value": "9082"}]
    assert refs_of(deployment([container(env)])) == []


def test_escaped_reference_is_not_expanded():
    env = [{"name": "MEDIA", "value": "media"}, {"name": "MEDIA_URL", "value": "http://$$(MEDIA):80"}]
    assert refs_of(deployment([container(env)])) == []


def test_namespace_from_the_downward_api_expands():
    env = [
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "API_URL", "value": "http://api.$(NS).svc:80"},
    ]
    assert [r.host for r in refs_of(deployment([container(env)]))] == ["api.nova.svc"]


def test_init_containers_are_read_and_marked():
    init = [container([{"name": "DB_URL", "value": "postgres://pg"}], name="wait-db")]
    main = [container([{"name": "API_URL", "value": "http://api:80"}])]
    refs = refs_of(deployment(main, init_containers=init))
    assert sorted((r.container, r.init_container) for r in refs) == [("app", False), ("wait-db", True)]


def owned(name, owner_kind):
    return {"name": name, "namespace": "nova", "ownerReferences": [{"kind": owner_kind, "name": "x"}]}


def test_owned_pods_and_replica_sets_are_counted_once():
    dep = deployment([container([{"name": "API_URL", "value": "http://api:80"}])])
    template = dep["spec"]["template"]
    rs = {"kind": "ReplicaSet", "metadata": owned("app-1", "Deployment"), "spec": {"template": template}}
    pod = {"kind": "Pod", "metadata": owned("app-1-x", "ReplicaSet"), "spec": template["spec"]}
    assert [r.workload.kind for r in refs_of(dep, rs, pod)] == ["Deployment"]


def test_bare_pod_is_its_own_workload():
    pod = {"kind": "Pod", "metadata": {"name": "debug", "namespace": "nova"},
           "spec": {"containers": [container([{"name": "API_URL", "value": "http://api:80"}])]}}
    assert [r.workload for r in refs_of(pod)] == [ObjectRef("Pod", "nova", "debug")]


def test_one_reference_per_host_and_port():
    env = [{"name": "KAFKA_BROKERS", "value": "a:9092,b:9092,a:9092"}]
    assert [(r.host, r.port) for r in refs_of(deployment([container(env)]))] == [("a", 9092), ("b", 9092)]


def test_split_host_and_port_make_one_reference():
    env = [{"name": "DB_HOST", "value": "postgres"}, {"name": "DB_PORT", "value": "5432"}]
    (ref,) = refs_of(deployment([container(env)]))
    assert (ref.env, ref.host, ref.port, ref.port_env) == ("DB_HOST", "postgres", 5432, "DB_PORT")


@pytest.mark.parametrize("suffix", ["HOSTNAME", "ADDR", "SERVER"])
def test_split_host_and_port_other_suffixes(suffix):
    env = [{"name": f"REDIS_{suffix}", "value": "redis"}, {"name": "REDIS_PORT", "value": "6380"}]
    (ref,) = refs_of(deployment([container(env)]))
    assert (ref.port, ref.port_env) == (6380, "REDIS_PORT")


def test_split_port_that_is_invalid_gives_no_port():
    env = [{"name": "DB_HOST", "value": "postgres"}, {"name": "DB_PORT", "value": "five"}]
    (ref,) = refs_of(deployment([container(env)]))
    assert (ref.port, ref.port_env) == (None, "DB_PORT")


def test_host_with_its_own_port_ignores_the_port_var():
    env = [{"name": "DB_HOST", "value": "postgres:5433"}, {"name": "DB_PORT", "value": "5432"}]
    (ref,) = refs_of(deployment([container(env)]))
    assert (ref.port, ref.port_env) == (5433, None)


def test_host_without_port_var_has_no_port():
    (ref,) = refs_of(deployment([container([{"name": "DB_HOST", "value": "postgres"}])]))
    assert (ref.port, ref.port_env) == (None, None)


def test_startup_annotation_marks_references():
    env = [{"name": "A_URL", "value": "http://a:80"}, {"name": "B_URL", "value": "http://b:80"}]
    dep = deployment([container(env)], annotations={"lab.novadiag.dev/startup-needs": "B_URL, C_URL"})
    assert [(r.env, r.startup) for r in refs_of(dep)] == [("A_URL", False), ("B_URL", True)]


def test_missing_config_map_is_a_finding_not_a_crash():
    env = [{"name": "FEED_URL", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "url"}}}]
    refs, findings = discover(deployment([container(env)]))
    assert refs == []
    (finding,) = findings
    assert (finding.severity, finding.code, finding.object) == (
        "warning", "missing-config-source", ObjectRef("Deployment", "nova", "app"),
    )
    assert all(word in finding.message for word in ("app", "FEED_URL", "ConfigMap nova/gone"))


def test_missing_key_is_a_finding():
    env = [{"name": "FEED_URL", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "url"}}}]
    _, findings = discover(config_map("cfg", {}), deployment([container(env)]))
    assert [(f.code, "'url'" in f.message) for f in findings] == [("missing-config-source", True)]


def test_missing_env_from_source_is_a_finding():
    _, findings = discover(deployment([container(env_from=[{"secretRef": {"name": "gone"}}])]))
    assert [(f.code, "Secret nova/gone" in f.message) for f in findings] == [("missing-config-source", True)]


def test_missing_optional_source_is_silent():
    env = [{"name": "FEED_URL", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "u", "optional": True}}}]
    env_from = [{"configMapRef": {"name": "x", "optional": True}}]
    assert discover(deployment([container(env, env_from=env_from)])) == ([], [])


@pytest.mark.parametrize("gap_namespace", ["nova", None])
def test_unreadable_secret_is_reported_as_such(gap_namespace):
    env = [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}]
    gap = Gap("Secret", gap_namespace, "forbidden")
    _, findings = discover(deployment([container(env)]), gaps=[gap])
    assert [(f.code, "DATABASE_URL" in f.message) for f in findings] == [("secret-unreadable", True)]


def test_secret_gap_in_another_namespace_does_not_hide_a_missing_secret():
    env = [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}]
    _, findings = discover(deployment([container(env)]), gaps=[Gap("Secret", "other", "forbidden")])
    assert [f.code for f in findings] == ["missing-config-source"]


@pytest.mark.parametrize(
    "entry",
    ["API_URL=http://a", {"value": "http://a:80"}, {"name": "API_URL", "value": 80}, {"name": ""},
     {"name": "X", "valueFrom": "cm"}, {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "c"}}}],
    ids=["string", "no-name", "int-value", "empty-name", "valueFrom-string", "ref-without-key"],
)
def test_malformed_env_entry_is_skipped_with_a_finding(entry):
    env = [entry, {"name": "OK_URL", "value": "http://ok:80"}]
    refs, findings = discover(deployment([container(env)]))
    assert ([r.env for r in refs], [f.code for f in findings]) == (["OK_URL"], ["malformed-env"])


def test_malformed_env_from_entry_is_skipped_with_a_finding():
    refs, findings = discover(deployment([container(env_from=["cfg", {"configMapRef": {}}])]))
    assert (refs, [f.code for f in findings]) == ([], ["malformed-env", "malformed-env"])


def test_env_that_is_not_a_list_is_a_finding():
    _, findings = discover(deployment([container({"API_URL": "http://a"})]))
    assert [f.code for f in findings] == ["malformed-env"]


def test_hand_built_snapshot_secret_is_sanitized_before_use():
    from novadiag.snapshot import Snapshot

    raw = secret("db", {"url": "postgres://u:PWhandbuilt@pg/app", "pw": "PWhandbuilt"})
    env = [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}},
           {"name": "X", "value": "http://h:1/$(DB_PW)"},
           {"name": "DB_PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}]
    snap = Snapshot(SourceInfo("manifests"), {"Secret": (raw,), "Deployment": (deployment([container(env)]),)})
    refs, _ = discover_references(snap)
    assert [r.reference for r in refs][0] == "postgres://pg:5432/***"
    assert all("PWhandbuilt" not in r.reference for r in refs)


def test_redacted_secret_value_expanded_into_a_url_stays_redacted():
    env = [{"name": "DB_PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
           {"name": "DATABASE_URL", "value": "postgres://app:$(DB_PW)@pg/app"}]
    (ref,) = refs_of(secret("db", {"pw": "PWexpanded"}), deployment([container(env)]))
    assert (ref.host, "PWexpanded" in ref.reference) == ("pg", False)
    assert REDACTED not in ref.reference


# ----------------------------------------------------------------------------- the bundled scenario


def load_scenario():
    objects = []
    for entry in yaml.safe_load((NOVA / "scenario.yaml").read_text())["manifests"]:
        location = NOVA / entry
        for path in sorted(location.rglob("*.yaml")) if location.is_dir() else [location]:
            objects.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return build_snapshot(objects, SourceInfo("manifests"))


def test_nova_scenario_references_match_expected_edges():
    refs, findings = discover_references(load_scenario())
    got = {(f"{r.workload.namespace}/{r.workload.kind}/{r.workload.name}", r.container, r.env, r.origin, r.host, r.port)
           for r in refs}
    expected = {(e["source"], e["container"], e["env"], e["origin"], e["host"], e["port"])
                for e in yaml.safe_load((NOVA / "expected.yaml").read_text())
                if e["source"].split("/")[1] not in ROUTE_KINDS}  # routing objects are not env references
    assert (got, findings) == (expected, [])


def test_nova_scenario_never_exposes_a_secret():
    refs, _ = discover_references(load_scenario())
    assert not [r.reference for r in refs if "NOVA-SECRET" in r.reference]


def test_values_that_may_carry_credentials_are_not_memoized():
    from novadiag import hostgrammar

    before = hostgrammar._parse.cache_info().currsize
    parse_value("DATABASE_URL", "postgres://u:PWmemo@db/app")
    parse_value("DSN", "host=db password=PWmemo")
    assert hostgrammar._parse.cache_info().currsize == before
