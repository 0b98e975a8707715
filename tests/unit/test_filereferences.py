"""References in files a container mounts from ConfigMaps and Secrets, through discover_references."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from novadiag.model import Gap, SourceInfo
from novadiag.references import discover_references
from novadiag.snapshot import build_snapshot

DATA = Path(__file__).parent / "data" / "configfiles"

SERVICES = (
    "postgresql valkey-cart jaeger-collector prometheus opensearch alertmanager node-exporter kube-state-metrics "
    "thanos-receive loki api-service api-service-canary auth-service php-fpm postgres redis kafka-headless eureka "
    "mysql mongo rabbitmq backend cache kube-dns"
).split()

EXPECTED = {
    "otel-collector.yaml": {
        ("receivers.postgresql.endpoint", "postgresql", 5432),
        ("receivers.redis.endpoint", "valkey-cart", 6379),
        ("exporters.otlp.endpoint", "jaeger-collector.tracing", 4317),
        ("exporters.otlphttp/prometheus.endpoint", "prometheus", 9090),
        ("exporters.opensearch.http.endpoint", "opensearch", 9200),
    },
    "prometheus.yml": {
        ("alerting.alertmanagers[0].static_configs[0].targets[0]", "alertmanager", 9093),
        ("scrape_configs[1].static_configs[0].targets[0]", "node-exporter", 9100),
        ("scrape_configs[1].static_configs[0].targets[1]", "kube-state-metrics.monitoring.svc", 8080),
        ("remote_write[0].url", "thanos-receive.monitoring", 19291),
    },
    "datasources.yaml": {
        ("datasources[0].url", "prometheus", 9090),
        ("datasources[1].url", "loki.logging", 3100),
    },
    "default.conf": {
        ("upstream backend.server[0]", "api-service", 8000),
        ("upstream backend.server[1]", "api-service-canary", 8000),
        ("proxy_pass (line 20)", "auth-service.identity", 8080),
        ("fastcgi_pass (line 28)", "php-fpm", 9000),
    },
    "application.properties": {
        ("spring.datasource.url", "postgres", 5432),
        ("spring.redis.host", "redis", 6379),
        ("spring.kafka.bootstrap-servers", "kafka-0.kafka-headless", 9092),
        ("spring.kafka.bootstrap-servers", "kafka-1.kafka-headless", 9092),
        ("eureka.client.service-url.defaultZone", "eureka", 8761),
    },
    "application.yml": {
        ("spring.datasource.url", "mysql.db", 3306),
        ("spring.data.mongodb.uri", "mongo", 27017),
        ("spring.rabbitmq.host", "rabbitmq", 5672),
    },
    "envoy.yaml": {
        (
            "static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address"
            ".socket_address.address",
            "backend",
            8080,
        ),
    },
    "app.env": {("DB_HOST", "postgres", 5432), ("CACHE_URL", "redis", 6379)},
    "settings.ini": {("database.host", "postgres", 5432), ("cache.url", "cache.data", 6379)},
    "config.toml": {("database.url", "postgres", 5432), ("upstreams[0].address", "opensearch", 9200)},
    "notes.txt": {("line 1", "api-service", 8000), ("line 1", "redis", 6379)},
}


def service(name, ns="other"):
    return {"kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": {"ports": [{"port": 80}]}}


def config_map(name, data, ns="app"):
    return {"kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data}


def secret(name, string_data, ns="app"):
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in string_data.items()}
    return {"kind": "Secret", "metadata": {"name": name, "namespace": ns}, "data": encoded}


def workload(volumes, containers, *, name="w", ns="app", init_containers=()):
    spec = {"volumes": volumes, "containers": list(containers)}
    if init_containers:
        spec["initContainers"] = list(init_containers)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"template": {"spec": spec}},
    }


def mounting(name, *mounts):
    return {"name": name, "image": "x", "volumeMounts": list(mounts)}


def discover(*objects, services=SERVICES, gaps=()):
    snapshot = build_snapshot([*map(service, services), *objects], SourceInfo("manifests"), gaps=gaps)
    return discover_references(snapshot)


def found(references):
    return {(r.origin, r.location, r.host, r.port) for r in references}


@pytest.mark.parametrize("file_name", sorted(EXPECTED))
def test_each_public_shaped_file_yields_exactly_its_cluster_hosts(file_name):
    data = {file_name: (DATA / file_name).read_text()}
    objects = [
        config_map("files", data),
        workload(
            [{"name": "v", "configMap": {"name": "files"}}], [mounting("c", {"name": "v", "mountPath": "/etc/cfg"})]
        ),
    ]
    references, findings = discover(*objects)
    origin = f"file:configMap/files/{file_name}"
    assert found(references) == {(origin, loc, host, port) for loc, host, port in EXPECTED[file_name]}
    assert all(r.env is None and r.container == "c" for r in references)
    assert findings == []


def test_look_alike_words_in_files_are_not_references():
    references, _ = discover(
        config_map("files", {name: (DATA / name).read_text() for name in EXPECTED}),
        workload([{"name": "v", "configMap": {"name": "files"}}], [mounting("c", {"name": "v", "mountPath": "/c"})]),
    )
    hosts = {r.host for r in references}
    # localhost, 0.0.0.0, ${env:MY_POD_IP}, an nginx upstream name, a resolver, prose words, external names
    for word in (
        "localhost",
        "0.0.0.0",
        "main",
        "worker",
        "otlp",
        "orders",
        "kube-dns.kube-system.svc.cluster.local",
        "www.envoyproxy.io",
        "grafana.com",
        "127.0.0.1",
        "app",
        "payments",
    ):
        assert word not in hosts
    assert "backend" in hosts  # the Envoy cluster's socket address is one; nginx's upstream "backend" is not
    assert not any(r.location == "proxy_pass (line 15)" for r in references)


def test_a_short_name_counts_only_when_a_service_has_it():
    cm = config_map("cfg", {"collector.yaml": "exporters:\n  otlp:\n    endpoint: tempo:4317\n"})
    deployment = workload(
        [{"name": "v", "configMap": {"name": "cfg"}}], [mounting("c", {"name": "v", "mountPath": "/c"})]
    )
    assert discover(cm, deployment, services=[])[0] == []
    (reference,) = discover(cm, deployment, services=["tempo"])[0]
    assert (reference.origin, reference.location, reference.host, reference.port) == (
        "file:configMap/cfg/collector.yaml",
        "exporters.otlp.endpoint",
        "tempo",
        4317,
    )
    assert reference.slot == "file:configMap/cfg/collector.yaml:exporters.otlp.endpoint"


def test_a_workload_naming_itself_is_not_a_reference():
    cm = config_map("cfg", {"prometheus.yml": "scrape_configs:\n- static_configs:\n  - targets: [prometheus:9090]\n"})
    deployment = workload(
        [{"name": "v", "configMap": {"name": "cfg"}}],
        [mounting("c", {"name": "v", "mountPath": "/c"})],
        name="prometheus",
    )
    assert discover(cm, deployment, services=["prometheus"])[0] == []


# -- which keys are mounted -----------------------------------------------------------------------

TWO_FILES = {"a.yaml": "url: http://postgres:5432\n", "b.yaml": "url: http://redis:6379\n"}


def test_items_mount_only_the_listed_keys_under_their_path():
    volume = {"name": "v", "configMap": {"name": "cfg", "items": [{"key": "b.yaml", "path": "conf/main.yml"}]}}
    references, findings = discover(
        config_map("cfg", TWO_FILES), workload([volume], [mounting("c", {"name": "v", "mountPath": "/c"})])
    )
    assert {r.host for r in references} == {"redis"}
    assert findings == []


def test_a_subpath_expression_mount_is_left_out():
    volume = {"name": "v", "configMap": {"name": "cfg"}}
    mount = {"name": "v", "mountPath": "/etc/app", "subPathExpr": "$(POD_NAME)"}
    assert discover(config_map("cfg", TWO_FILES), workload([volume], [mounting("c", mount)]))[0] == []


def test_subpath_mounts_only_that_file():
    volume = {"name": "v", "configMap": {"name": "cfg"}}
    mount = {"name": "v", "mountPath": "/etc/app/a.yaml", "subPath": "a.yaml"}
    references, _ = discover(config_map("cfg", TWO_FILES), workload([volume], [mounting("c", mount)]))
    assert {r.host for r in references} == {"postgres"}


def test_projected_sources_and_secret_volumes_are_read():
    volumes = [
        {
            "name": "p",
            "projected": {
                "sources": [
                    {"configMap": {"name": "cfg", "items": [{"key": "a.yaml", "path": "a.yaml"}]}},
                    {"secret": {"name": "creds"}},
                ]
            },
        },
    ]
    creds = secret("creds", {"database-url": "postgresql://orders:s3cr3t-Pa55@mysql:3306/orders"})
    references, _ = discover(
        config_map("cfg", TWO_FILES), creds, workload(volumes, [mounting("c", {"name": "p", "mountPath": "/p"})])
    )
    assert found(references) == {
        ("file:configMap/cfg/a.yaml", "url", "postgres", 5432),
        ("file:secret/creds/database-url", "line 1", "mysql", 3306),
    }
    assert all("s3cr3t" not in r.reference for r in references)


def test_each_file_is_attributed_to_each_container_that_mounts_it_and_only_those():
    volume = {"name": "v", "configMap": {"name": "cfg"}}
    deployment = workload(
        [volume],
        [
            mounting("app", {"name": "v", "mountPath": "/c"}),
            mounting("sidecar"),
            mounting("proxy", {"name": "v", "mountPath": "/d", "subPath": "b.yaml"}),
        ],
        init_containers=[mounting("init", {"name": "v", "mountPath": "/c"})],
    )
    references, _ = discover(config_map("cfg", TWO_FILES), deployment)
    assert {(r.container, r.host, r.init_container) for r in references} == {
        ("app", "postgres", False),
        ("app", "redis", False),
        ("proxy", "redis", False),
        ("init", "postgres", True),
        ("init", "redis", True),
    }


def test_a_config_map_nobody_mounts_names_nothing():
    volume = {"name": "v", "configMap": {"name": "cfg"}}
    references, findings = discover(config_map("cfg", TWO_FILES), workload([volume], [mounting("c")]))
    assert references == [] and findings == []


def test_a_missing_source_is_a_finding_unless_optional():
    volumes = [
        {"name": "v", "configMap": {"name": "gone"}},
        {"name": "o", "secret": {"secretName": "absent", "optional": True}},
    ]
    mounts = [{"name": "v", "mountPath": "/c"}, {"name": "o", "mountPath": "/o"}]
    references, findings = discover(workload(volumes, [mounting("c", *mounts)]))
    assert references == []
    assert [(f.code, f.message) for f in findings] == [
        (
            "missing-config-source",
            "Deployment app/w container c volume v (ConfigMap gone): ConfigMap app/gone does not exist",
        ),
    ]


def test_a_listed_key_the_object_lacks_is_a_finding():
    volume = {"name": "v", "configMap": {"name": "cfg", "items": [{"key": "c.yaml", "path": "c.yaml"}]}}
    _, findings = discover(
        config_map("cfg", TWO_FILES), workload([volume], [mounting("c", {"name": "v", "mountPath": "/c"})])
    )
    assert [f.message for f in findings] == [
        "Deployment app/w container c volume v (ConfigMap cfg): ConfigMap app/cfg has no key 'c.yaml'",
    ]


def test_an_unreadable_source_says_so():
    gap = Gap("Secret", "app", "forbidden")
    volume = {"name": "v", "secret": {"secretName": "creds"}}
    _, findings = discover(workload([volume], [mounting("c", {"name": "v", "mountPath": "/s"})]), gaps=[gap])
    assert [f.code for f in findings] == ["secret-unreadable"]
    assert "Secret app/creds could not be read (forbidden)" in findings[0].message


def test_a_file_that_does_not_parse_as_its_extension_is_read_as_text_with_a_finding():
    cm = config_map("cfg", {"broken.yaml": "endpoint: [unclosed\nother: http://postgres:5432\n"})
    references, findings = discover(
        cm, workload([{"name": "v", "configMap": {"name": "cfg"}}], [mounting("c", {"name": "v", "mountPath": "/c"})])
    )
    assert found(references) == {("file:configMap/cfg/broken.yaml", "line 2", "postgres", 5432)}
    assert [f.code for f in findings] == ["malformed-config-file"]
    assert "file /c/broken.yaml (file:configMap/cfg/broken.yaml): invalid YAML" in findings[0].message


def test_a_mounted_secret_file_is_read_only_sanitized():
    yaml_file = "datasource:\n  url: postgres://admin:Hunter2-Secret@postgres:5432/app\n  password: Hunter2-Secret\n"
    creds = secret("creds", {"config.yaml": yaml_file, "dsn": "postgres://admin:Hunter2-Secret@postgres:5432/app"})
    references, findings = discover(
        creds,
        workload([{"name": "s", "secret": {"secretName": "creds"}}], [mounting("c", {"name": "s", "mountPath": "/s"})]),
    )
    assert found(references) == {
        ("file:secret/creds/dsn", "line 1", "postgres", 5432),
        ("file:secret/creds/config.yaml", "datasource.url", "postgres", 5432),
    }
    assert all("Hunter2" not in repr(x) for x in (*references, *findings))
    assert {r.reference for r in references} == {"postgres://postgres:5432/***"}


def test_a_secret_file_keeps_only_its_host_naming_values_in_the_snapshot():
    text = "db:\n  host: postgres\n  port: 5432\n  password: lowercasepw\n  user: admin\nurl: S3cr3t-No-Host\n"
    snapshot = build_snapshot(
        [secret("creds", {"app.yaml": text, "notes": "a\nb: http://postgres:5432\n"})], SourceInfo("manifests")
    )
    data = snapshot.get("Secret", "app", "creds")["data"]
    assert data["app.yaml"] == (
        "# novadiag: sanitized config file: location, hint, value, port\ndb.host\tHOST\tpostgres\t5432\n"
    )
    assert data["notes"] == "<redacted>"  # no config file extension: one value, which names no host alone
    workload_ = workload(
        [{"name": "s", "secret": {"secretName": "creds"}}], [mounting("c", {"name": "s", "mountPath": "/s"})]
    )
    references, _ = discover(secret("creds", {"app.yaml": text}), workload_)
    assert found(references) == {("file:secret/creds/app.yaml", "db.host", "postgres", 5432)}
