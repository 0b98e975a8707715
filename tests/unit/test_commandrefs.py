"""References in container command/args and in the shell scripts they run."""

from __future__ import annotations

import csv
import doctest
import io
import json
from pathlib import Path

import pytest

import novadiag
import novadiag.commandrefs
import novadiag.shellwords
from novadiag import audit
from novadiag.hostgrammar import HostPort, parse_value
from novadiag.manifests import load_manifests
from novadiag.model import SourceInfo
from novadiag.planning import render_plan
from novadiag.references import discover_references
from novadiag.report.tabular import render_csv
from novadiag.shellwords import find_script, simple_commands
from novadiag.snapshot import build_snapshot

DATA = Path(__file__).parent / "data" / "commands"


def command_refs(snapshot):
    refs, _ = discover_references(snapshot)
    return {(r.workload.name, r.container, r.origin, r.location, r.host, r.port) for r in refs if r.env is None}


# Everything the public-manifest shapes of tests/unit/data/commands name, and nothing else:
# the look-alikes there (gunicorn's app.main:app and 0.0.0.0:8000, -Dagentlib's server=y,
# echo'd host:port words, localhost, $FRONTEND_ADDR, the pod's own name app, file paths,
# --logging.level.root=info) must not appear.
EXPECTED = {
    ("orders", "wait-for-kafka", "init-script", "line 1", "kafka.data", 9092),
    ("orders", "wait-for-db", "init-script", "line 2", "postgresql.data", 5432),
    ("orders", "wait-for-db", "init-script", "line 5", "redis-master.data", 6379),
    ("orders", "wait-for-db", "init-script", "line 6", "mysql.data", 3306),
    ("orders", "wait-for-broker", "init-script", "line 1", "rabbitmq.data", 15672),
    ("orders", "wait-for-broker", "init-script", "line 1", "zookeeper.data", None),
    ("orders", "orders", "args", "args[0]", "postgresql.data", 5432),
    ("orders", "orders", "args", "args[1]", "kafka.data", 9092),
    ("kafka", "kafka", "command", "line 1", "zookeeper", 2181),
    ("kafka", "controller", "args", "args[1]", "kafka-0.kafka-headless", 9093),
    ("kafka", "controller", "args", "args[1]", "kafka-1.kafka-headless", 9093),
    ("prometheus-adapter", "prometheus-adapter", "args", "args[0]", "prometheus.monitoring.svc", 9090),
    ("prometheus-adapter", "prometheus-adapter", "args", "args[6]", "kubernetes.default.svc", 443),
    ("loadgenerator", "frontend-check", "init-script", "line 7", "frontend", 80),
    ("loadgenerator", "main", "args", "args[0]", "frontend.shop", 80),
    ("app", "otel-agent", "args", "args[1]", "otel-collector.observability", 4317),
    ("app", "cart-probe", "command", "command[1]", "cartservice", 7070),
    ("app", "sidecar", "command", "line 1", "main", 80),
    # Exec probes and hooks: $(VAR) expanded in probes from literal env values only, hooks as written.
    ("checkout", "checkout", "readinessProbe", "exec.command[1]", "cartservice", 7070),
    ("checkout", "metrics-sidecar", "readinessProbe", "exec.command", "prometheus.monitoring", 9090),
    ("connect", "connect", "preStop", "line 1", "consul-server.consul.svc", 8500),
    ("connect", "connect", "readinessProbe", "line 1", "kafka", 9092),
}


def test_public_manifest_shapes_give_exactly_the_expected_references() -> None:
    assert command_refs(load_manifests([DATA])) == EXPECTED


def test_references_keep_env_null_and_the_value_as_written() -> None:
    refs, _ = discover_references(load_manifests([DATA]))
    by_location = {(r.container, r.location, r.host): r for r in refs if r.env is None}
    arg = by_location[("orders", "args[0]", "postgresql.data")]
    assert arg.reference == "-Dspring.datasource.url=jdbc:postgresql://postgresql.data:5432/orders"
    assert arg.slot == "args[0]" and not arg.init_container
    script = by_location[("wait-for-db", "line 6", "mysql.data")]
    assert script.init_container and script.slot == "line 6"
    assert script.reference == "mysqladmin ping -h mysql.data -P 3306 -u root -p*** --silent"
    assert "XYZ" not in repr(refs) and "s3cr3t" not in repr(refs)


INIT_WAIT = """\
apiVersion: v1
kind: Service
metadata: {name: kafka, namespace: data}
spec: {ports: [{port: 9092}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec:
  initContainers: [{name: wait, command: [sh, -c, 'until nc -z kafka 9092; do sleep 2; done']}]
  containers:
  - name: web
    image: x
"""


def pod(containers, *, init=(), services=("db", "kafka", "api", "cache"), name="web"):
    objects = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": s, "namespace": "other"}, "spec": {}}
        for s in services
    ]
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "app"},
            "spec": {"containers": list(containers), "initContainers": list(init)},
        }
    )
    return build_snapshot(objects, SourceInfo("manifests"))


def hosts_of(containers, **kwargs):
    return sorted(((r[3], r[4], r[5]) for r in command_refs(pod(containers, **kwargs))), key=str)


def test_args_expand_variables_like_the_kubelet() -> None:
    container = {
        "name": "c",
        "env": [{"name": "DB", "value": "db"}, {"name": "PORT", "value": "5432"}],
        "args": ["--db-url=postgres://$(DB):$(PORT)/x", "--api=$$(DB):80", "--cache=$(MISSING):6379"],
    }
    assert hosts_of([container]) == [("args[0]", "db", 5432)]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--db-host", "db"], [("args[1]", "db", None)]),
        (["--db-host=db"], [("args[0]", "db", None)]),
        (["-db-host", "db"], [("args[1]", "db", None)]),
        (
            ["-Dkafka.bootstrap.servers=kafka:9092,kafka.other:9092"],
            [("args[0]", "kafka", 9092), ("args[0]", "kafka.other", 9092)],
        ),
        (["--kafka.brokers=kafka:9092"], [("args[0]", "kafka", 9092)]),
        (["--upstream", "http://api:8080", "--log-level", "info"], [("args[1]", "api", 8080)]),
        (["serve", "api:8080"], [("args[1]", "api", 8080)]),
        (["--mode", "db"], []),  # a bare word after a flag whose name is not host-ish
        (["--db-host", "mainframe"], []),  # not a Service of the cluster
        (["--db-host", "localhost", "--api=http://127.0.0.1:80"], []),
        (["--config", "/etc/db/db.yaml", "--db-host=${DB_HOST}"], []),
        (["--password=s3cr3t", "--db-host=db"], [("args[1]", "db", None)]),
    ],
)
def test_flags_name_hosts(args, expected) -> None:
    assert hosts_of([{"name": "c", "args": args}]) == sorted(expected, key=str)


def test_the_pods_own_names_are_not_references() -> None:
    container = {
        "name": "cache",
        "args": ["--advertise=web:80", "--peer=cache:6379", "--self=$(HOSTNAME):80", "--db=db:5432"],
    }
    assert hosts_of([container], services=("web", "cache", "db")) == [("args[3]", "db", 5432)]


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        (["sh", "-c", "until nc -z kafka 9092; do sleep 2; done"], [], [("line 1", "kafka", 9092)]),
        (["/bin/sh", "-c"], ["nc -zv -w 5 kafka 9092"], [("line 1", "kafka", 9092)]),
        (["sh"], ["-c", "ncat -z kafka 9092 || exit 1"], [("line 1", "kafka", 9092)]),
        (["ash", "-c", "timeout 30 nc -z db 5432"], [], [("line 1", "db", 5432)]),
        (["bash", "-c", "telnet cache 6379 </dev/null"], [], [("line 1", "cache", 6379)]),
        (["sh", "-c", "pg_isready --host=db --port=5433"], [], [("line 1", "db", 5433)]),
        (["sh", "-c", "pg_isready -h db"], [], [("line 1", "db", 5432)]),
        (["sh", "-c", "redis-cli -h cache -p 6380 ping"], [], [("line 1", "cache", 6380)]),
        (["sh", "-c", "mysql -hdb -P 3307 -e 'select 1'"], [], [("line 1", "db", 3307)]),
        (["sh", "-c", "curl -sf -H 'Host: x' http://api:8080/health"], [], [("line 1", "api", 8080)]),
        (["sh", "-c", "while ! wget -q --spider api:8080/health; do sleep 1; done"], [], [("line 1", "api", 8080)]),
        (
            ["sh", "-c", "dig @10.0.0.10 +short db\nnslookup kafka\nhost cache"],
            [],
            [("line 1", "db", None), ("line 2", "kafka", None), ("line 3", "cache", None)],
        ),
        (["sh", "-c", "echo start\nuntil nc -z \\\n  db 5432; do sleep 1; done"], [], [("line 2", "db", 5432)]),
        (["sh", "-c", "sh -c 'nc -z db 5432'"], [], [("line 1", "db", 5432)]),
        (["sh", "-c", "exec /app --api-url=http://api:80"], [], [("line 1", "api", 80)]),
        (["sh", "-c", "echo 'unbalanced\nnc -z db 5432 \"x"], [], [("line 2", "db", 5432)]),
        (["sh", "-c", "echo db:5432 api:80; sleep 5; cat /etc/db.conf; nc -z localhost 80"], [], []),
        (["sh", "-c", "until nc -z $DB_HOST $DB_PORT; do sleep 1; done"], [], []),
        (["sh", "-c", "nc -z mainframe 23"], [], []),
        (["bash", "-o", "pipefail", "-c", "nc -z db 5432 | tee /tmp/log"], [], [("line 1", "db", 5432)]),
        (
            ["sh", "-c", "DB_URL=postgres://u:pw@db:5432/x\nAPI_HOST=api exec /app"],
            [],
            [("line 1", "db", 5432), ("line 2", "api", None)],
        ),
    ],
)
def test_scripts_name_hosts_in_tool_arguments(command, args, expected) -> None:
    assert hosts_of([], init=[{"name": "wait", "command": command, "args": args}]) == sorted(expected, key=str)


def test_script_origin_is_where_the_script_is_unless_in_an_init_container() -> None:
    snap = pod(
        [{"name": "c", "command": ["sh", "-c"], "args": ["exec app --db=db:5432"]}],
        init=[{"name": "i", "command": ["sh", "-c", "nc -z db 5432"]}],
    )
    origins = {(r[1], r[2]) for r in command_refs(snap)}
    assert origins == {("c", "args"), ("i", "init-script")}


def test_kraft_voter_lists_in_the_host_grammar() -> None:

    voters = "1@kafka-0.kafka-headless:9093,2@kafka-1.kafka-headless:9093"
    assert parse_value("controller.quorum.voters", voters) == (
        HostPort("kafka-0.kafka-headless", 9093, None),
        HostPort("kafka-1.kafka-headless", 9093, None),
    )
    assert parse_value("KAFKA_CFG_CONTROLLER_QUORUM_VOTERS", "0@kafka:9093") == (HostPort("kafka", 9093, None),)
    assert parse_value("X", "1001@localhost:9093") == ()
    assert parse_value("X", "1@kafka") == ()  # a voter always has a port
    assert parse_value("X", "me@kafka:9093") == ()


def test_shellwords_cut_scripts_into_simple_commands() -> None:
    script = "set -e\nuntil nc -z db 5432 >/dev/null 2>&1; do\n  sleep 2\ndone && A=1 redis-cli -h c ping | grep PONG"
    assert [(c.line, c.words) for c in simple_commands(script)] == [
        (1, ("set", "-e")),
        (2, ("nc", "-z", "db", "5432")),
        (3, ("sleep", "2")),
        (4, ("redis-cli", "-h", "c", "ping")),
        (4, ("grep", "PONG")),
    ]
    assert find_script(["python", "-c", "x"], []) is None
    assert find_script(["sh", "/entrypoint.sh"], []) is None
    assert find_script(["busybox", "sh", "-c", "x"], []).text == "x"


def test_kubernetes_default_svc_is_never_broken_in_a_manifest_audit() -> None:
    report = audit(manifests=[DATA])
    edges = [e for e in report.edges if e.reference.host == "kubernetes.default.svc"]
    assert [(e.status, e.target.name if e.target else None) for e in edges] == [("ok", "kubernetes")]


def test_an_init_script_edge_to_another_namespace_is_judged_like_an_env_edge(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: kafka, namespace: data}\nspec: {ports: [{port: 9092}]}\n"
        "---\napiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n"
        "  initContainers: [{name: wait, command: [sh, -c, 'until nc -z kafka 9092; do sleep 2; done']}]\n"
        "  containers: [{name: web, image: x}]\n"
    )
    report = audit(manifests=[tmp_path])
    (edge,) = report.edges
    assert (edge.status, edge.reference.origin, edge.reference.location) == (
        "dns-unresolvable",
        "init-script",
        "line 1",
    )
    assert edge.fix is not None and "kafka.data" in edge.fix
    assert edge.to_dict()["env"] is None and edge.id.endswith("/wait/line 1/kafka:9092")


def test_docstrings() -> None:
    assert doctest.testmod(novadiag.shellwords).failed == 0
    assert doctest.testmod(novadiag.commandrefs).failed == 0


def test_manifest_lines_point_at_the_argument_or_the_script_line() -> None:
    report = audit(manifests=[DATA / "workloads.yaml", DATA / "services.yaml"])
    rows = csv.DictReader(io.StringIO(render_csv(report)))
    lines = {(r["container"], r["location"], r["host"]): int(r["line"]) for r in rows if r["location"]}
    text = (DATA / "workloads.yaml").read_text().splitlines()
    for (container, location, host), line in lines.items():
        assert host in text[line - 1], (container, location, host, text[line - 1])
    assert lines[("wait-for-db", "line 5", "redis-master.data")] == 27  # a "|" block: the script's own line
    assert lines[("orders", "args[1]", "kafka.data")] == 40


def test_junit_and_sarif_say_where_the_host_is_named(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text(INIT_WAIT)
    report = audit(manifests=[tmp_path])
    junit = report.render("junit")
    assert 'name="[wait] line 1 -&gt; kafka:9092"' in junit
    assert "where:     init-script line 1" in junit and "env:       None" not in junit
    sarif = json.loads(report.render("sarif"))
    (result,) = sarif["runs"][0]["results"]
    assert result["message"]["text"].startswith("Pod shop/web container wait, line 1: kafka does not resolve")
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 10  # the line of the script item


def test_the_planner_rewrites_the_argument_and_the_script_item_that_name_the_host(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text(INIT_WAIT + "    args: [--kafka-brokers=kafka:9092]\n")
    plan = novadiag.plan(audit(manifests=[tmp_path]), "rewrite")
    assert [f.detail for f in plan.fixes] == [
        "rewrite; kafka -> kafka.data in command[2] of container wait",
        "rewrite; kafka -> kafka.data in args[0] of container web",
    ]
    assert plan.verification is not None and plan.verification.ok
    text = render_plan(plan, "markdown")
    assert "rewrite command[2] of container wait, args[0] of container web of Pod shop/web" in text


def test_an_exec_probe_naming_another_namespace_by_short_name_is_judged_and_fixed() -> None:
    report = audit(manifests=[DATA])
    edge = next(e for e in report.edges if e.reference.origin == "readinessProbe" and e.reference.host == "cartservice")
    assert edge.id == "web/deployment/checkout/checkout/readinessProbe:exec.command[1]/cartservice:7070"
    assert edge.status == "dns-unresolvable"
    assert edge.fix == "-addr=cartservice.shop:7070"
    plan = novadiag.plan(report, "rewrite")
    fix = next(f for f in plan.fixes if f.edge == edge.id)
    # -addr=$(CART_SERVICE_ADDR): the host comes in through the variable, so the variable is rewritten.
    assert (fix.action, fix.detail) == (
        "rewrite",
        "rewrite; cartservice -> cartservice.shop in env CART_SERVICE_ADDR of container checkout",
    )
    probe = "streams/deployment/connect/connect/readinessProbe:line 1/kafka:9092"
    connect = next(f for f in plan.fixes if f.edge == probe)
    assert connect.detail == "rewrite; kafka -> kafka.data in readinessProbe.exec.command[2] of container connect"
    assert "s3cr3t" not in json.dumps(report.to_dict())
