"""``fix`` is the value to write into the variable: the reference as written, with the name put in.

Each case goes through the whole static audit (reference discovery, masking,
verdicts), so the fix is built from what a report shows, never from the raw
value; ``fix_host``/``fix_port`` keep the name and port for machines.
"""

from __future__ import annotations

import base64

import pytest

from novadiag.fixvalue import fix_value
from novadiag.model import ObjectRef, Reference, SourceInfo
from novadiag.pipeline import audit_snapshot
from novadiag.snapshot import build_snapshot

PASSWORD = "S3cret-pw-81f2"


def namespace(name):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def service(ns, name, port, target_port=None):
    spec = {"selector": {"app": name}, "ports": [{"port": port, "targetPort": target_port or port}]}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def deployment(ns, name, env=()):
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": name, "env": env}]}},
        },
    }


def secret(ns, name, data):
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns}, "data": encoded}


ENV = [
    {"name": "FEED_URL", "value": "http://feed-service:8089/api/v1?lang=en"},
    {"name": "AUTH_TARGET", "value": "dns:///auth-service:9083"},
    {"name": "JDBC_URL", "value": "jdbc:postgresql://db:5432/app"},
    {"name": "PLAIN_DB_URL", "value": f"postgres://app:{PASSWORD}@db:5432/app"},
    {"name": "ORDER_QUEUE_HOSTNAME", "value": "rabbitmq"},
    {"name": "ORDER_QUEUE_PORT", "value": "5672"},
    {"name": "CACHE_HOST", "value": "redis.store-data"},
    {"name": "CACHE_PORT", "value": "16379"},
    {"name": "ADMIN_URL", "value": "http://admin.store-data"},
    {"name": "BROKERS", "value": "rabbitmq:5672,rabbitmq.store-data:5672"},
    {"name": "SECRET_DB_URL", "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "url"}}},
]


@pytest.fixture(scope="module")
def edges():
    objs = [
        namespace("shop"),
        namespace("store-data"),
        namespace("nova-feed"),
        namespace("nova-auth"),
        *(deployment("store-data", n) for n in ("db", "rabbitmq", "redis", "admin")),
        service("store-data", "db", 5432),
        service("store-data", "rabbitmq", 5672),
        service("store-data", "redis", 6379, 16379),
        service("store-data", "admin", 8080),
        deployment("nova-feed", "feed-service"),
        service("nova-feed", "feed-service", 8089),
        deployment("nova-auth", "auth-service"),
        service("nova-auth", "auth-service", 9083),
        secret("shop", "db-credentials", {"url": f"postgresql://app:{PASSWORD}@db:5432/app?sslmode=require"}),
        deployment("shop", "orders", ENV),
    ]
    report = audit_snapshot(build_snapshot(objs, SourceInfo("manifests")))
    return {(e.reference.env, e.reference.host): e for e in report.edges if e.reference.namespace == "shop"}


def test_url_keeps_its_scheme_path_and_query(edges):
    edge = edges[("FEED_URL", "feed-service")]
    assert edge.fix == "http://feed-service.nova-feed:8089/api/v1?lang=en"
    assert (edge.fix_host, edge.fix_port) == ("feed-service.nova-feed", 8089)


def test_grpc_target_keeps_its_resolver_scheme(edges):
    assert edges[("AUTH_TARGET", "auth-service")].fix == "dns:///auth-service.nova-auth:9083"


def test_jdbc_url_keeps_its_prefix(edges):
    assert edges[("JDBC_URL", "db")].fix == "jdbc:postgresql://db.store-data:5432/app"


def test_a_password_in_a_plain_value_stays_masked_in_the_fix(edges):
    edge = edges[("PLAIN_DB_URL", "db")]
    assert edge.fix == "postgres://app:***@db.store-data:5432/app"
    assert PASSWORD not in edge.fix


def test_a_variable_holding_a_host_only_gets_a_host_only(edges):
    edge = edges[("ORDER_QUEUE_HOSTNAME", "rabbitmq")]
    assert edge.reference.port_env == "ORDER_QUEUE_PORT"
    assert edge.fix == "rabbitmq.store-data"
    assert (edge.fix_host, edge.fix_port) == ("rabbitmq.store-data", 5672)
    assert "ORDER_QUEUE_PORT" not in edge.detail  # the port is right: nothing to say about it


def test_a_wrong_port_in_the_paired_variable_is_named_in_the_detail(edges):
    edge = edges[("CACHE_HOST", "redis.store-data")]
    assert edge.status == "port-mismatch"
    assert edge.fix == "redis.store-data"
    assert edge.fix_port == 6379
    assert edge.detail.endswith("; set CACHE_PORT to 6379")


def test_a_port_the_scheme_implied_is_written_when_it_changes(edges):
    edge = edges[("ADMIN_URL", "admin.store-data")]
    assert edge.status == "port-mismatch"
    assert edge.fix == "http://admin.store-data:8080"


def test_in_a_list_only_the_broken_host_changes(edges):
    edge = edges[("BROKERS", "rabbitmq")]
    assert edge.fix == "rabbitmq.store-data:5672,rabbitmq.store-data:5672"
    assert edges[("BROKERS", "rabbitmq.store-data")].fix is None


def test_a_value_from_a_secret_reveals_nothing_the_masked_reference_does_not(edges):
    edge = edges[("SECRET_DB_URL", "db")]
    assert edge.reference.reference == "postgresql://db:5432/***"
    assert edge.fix == "postgresql://db.store-data:5432/***"
    assert PASSWORD not in edge.fix and "sslmode" not in edge.fix and "app" not in edge.fix


def test_the_json_edge_carries_the_value_and_the_address(edges):
    data = edges[("FEED_URL", "feed-service")].to_dict()
    assert (data["fix"], data["fix_host"], data["fix_port"]) == (
        "http://feed-service.nova-feed:8089/api/v1?lang=en",
        "feed-service.nova-feed",
        8089,
    )


def _ref(value: str, host: str, port: int | None) -> Reference:
    return Reference(ObjectRef("Deployment", "shop", "orders"), "orders", "X", "value", value, host, port)


@pytest.mark.parametrize(
    ("value", "host", "port", "new", "expected"),
    [
        # the host named again in the path: the one before the port is the host
        ("http://content-service:9081/content-service/v1", "content-service", 9081, "content-service.c", None),
        # a user named like the host: the userinfo is not the host
        ("amqp://rabbitmq:***@rabbitmq:5672/vhost", "rabbitmq", 5672, "rabbitmq.d", None),
        # written in capitals: hosts are case-insensitive, the fix is written as the resolver checked it
        ("HTTP://Feed-Service:8089", "feed-service", 8089, "feed-service.f", "HTTP://feed-service.f:8089"),
        # ADO.NET writes the port after a comma
        ("Server=db,1433;Database=app", "db", 1433, "db.data", "Server=db.data,1433;Database=app"),
        # a longer name that starts with the host is left alone
        ("db-replica:5432,db:5432", "db", 5432, "db.data", "db-replica:5432,db.data:5432"),
    ],
)
def test_only_the_host_itself_is_replaced(value, host, port, new, expected):
    want = expected or value.replace(f"{host}:{port}", f"{new}:{port}")
    assert fix_value(_ref(value, host, port), new, port) == want


def test_a_value_masked_whole_gets_the_name_and_port_alone():
    assert fix_value(_ref("<redacted>", "db", 5432), "db.data", 5432) == "db.data:5432"
