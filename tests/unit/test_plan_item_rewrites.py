"""The planner rewrites hosts where they are written outside the env: list items, scripts, mounted files.

Each case is hand-written: the manifest, the broken edge, and the exact text
the plan must leave in the item or the file (and nothing else changed).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import novadiag
from novadiag.cli import main
from novadiag.manifests import load_manifests
from novadiag.pipeline import audit_snapshot
from novadiag.planning.paths import get_at
from novadiag.planning.simulate import simulate
from novadiag.planning.values import Plan

SERVICES = textwrap.dedent(
    """\
    apiVersion: v1
    kind: Service
    metadata: {name: kafka, namespace: data}
    spec: {selector: {app: kafka}, ports: [{port: 9092}]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: postgres, namespace: data}
    spec: {selector: {app: postgres}, ports: [{port: 5432}]}
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: kafka, namespace: data}
    spec:
      replicas: 1
      selector: {matchLabels: {app: kafka}}
      template:
        metadata: {labels: {app: kafka}}
        spec: {containers: [{name: kafka, image: kafka, ports: [{containerPort: 9092}]}]}
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: postgres, namespace: data}
    spec:
      replicas: 1
      selector: {matchLabels: {app: postgres}}
      template:
        metadata: {labels: {app: postgres}}
        spec: {containers: [{name: postgres, image: postgres, ports: [{containerPort: 5432}]}]}
    """
)

WAIT_SCRIPT = "until nc -z kafka 9092; do echo waiting for kafka; sleep 2; done"

ORDERS = textwrap.dedent(
    """\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: orders, namespace: shop}
    spec:
      replicas: 1
      selector: {matchLabels: {app: orders}}
      template:
        metadata: {labels: {app: orders}}
        spec:
          initContainers:
            - name: wait-for-kafka
              image: busybox
              command: [sh, -c, "WAIT_SCRIPT"]
          containers:
            - name: orders
              image: orders
              args: [--verbose, --db-host=postgres, --port=8080]
              readinessProbe:
                exec: {command: [/bin/check, --broker=kafka:9092]}
    """
).replace("WAIT_SCRIPT", WAIT_SCRIPT)

ORDERS_PATH = ("spec", "template", "spec")


def audit(tmp_path: Path, *documents: str) -> novadiag.Report:
    path = tmp_path / "all.yaml"
    path.write_text("---\n".join((SERVICES, *documents)))
    return audit_snapshot(load_manifests([path]))


def final_object(plan: Plan, kind: str, namespace: str, name: str) -> dict:
    assert plan.snapshot is not None
    obj = simulate(plan.snapshot, plan.steps).get(kind, namespace, name)
    assert obj is not None
    return dict(obj)


def rolled_back(plan: Plan, kind: str, namespace: str, name: str) -> dict:
    """The object after every step and then every rollback, in reverse order."""
    assert plan.snapshot is not None
    forward = simulate(plan.snapshot, plan.steps)
    back_steps = [
        type(step)(f"{step.id}-back", step.phase, "rollback", op)
        for step in reversed(plan.steps)
        for op in step.rollback
    ]
    obj = simulate(forward, back_steps).get(kind, namespace, name)
    assert obj is not None
    return dict(obj)


def test_an_init_wait_script_an_argument_and_an_exec_probe_are_rewritten_in_their_items(tmp_path: Path) -> None:
    report = audit(tmp_path, ORDERS)
    broken = sorted(e.id for e in report.edges if e.broken)
    assert broken == [
        "shop/deployment/orders/orders/args[1]/postgres:-",
        "shop/deployment/orders/orders/readinessProbe:exec.command[1]/kafka:9092",
        "shop/deployment/orders/wait-for-kafka/line 1/kafka:9092",
    ]
    plan = novadiag.plan(report, "rewrite")
    assert [f.action for f in plan.fixes] == ["rewrite", "rewrite", "rewrite"]
    assert plan.verification is not None
    assert (plan.verification.broken_after, plan.verification.value_problems) == (0, ())
    assert sorted(plan.verification.fixed) == broken

    spec = get_at(final_object(plan, "Deployment", "shop", "orders"), ORDERS_PATH)
    assert spec["initContainers"][0]["command"] == [
        "sh",
        "-c",
        "until nc -z kafka.data 9092; do echo waiting for kafka; sleep 2; done",
    ]
    assert spec["containers"][0]["args"] == ["--verbose", "--db-host=postgres.data", "--port=8080"]
    assert spec["containers"][0]["readinessProbe"]["exec"]["command"] == ["/bin/check", "--broker=kafka.data:9092"]


def test_one_patch_per_workload_and_its_rollback_restores_every_item_byte_for_byte(tmp_path: Path) -> None:
    report = audit(tmp_path, ORDERS)
    plan = novadiag.plan(report, "rewrite")
    patches = [s for s in plan.steps if s.action == "patch"]
    assert len(patches) == 1  # one step for the three items of one workload
    assert "command[2] of container wait-for-kafka" in patches[0].title
    assert "args[1] of container orders" in patches[0].title
    assert "readinessProbe.exec.command[1] of container orders" in patches[0].title
    original = plan.snapshot.get("Deployment", "shop", "orders") if plan.snapshot else None
    assert original is not None
    after = rolled_back(plan, "Deployment", "shop", "orders")
    assert get_at(after, ORDERS_PATH) == get_at(original, ORDERS_PATH)
    assert get_at(after, (*ORDERS_PATH, "initContainers", "#0", "command", "#2")) == WAIT_SCRIPT


def test_the_strategic_patch_addresses_the_containers_by_name(tmp_path: Path) -> None:
    plan = novadiag.plan(audit(tmp_path, ORDERS), "rewrite")
    (step,) = [s for s in plan.steps if s.action == "patch"]
    assert step.operation.strategic
    assert step.operation.patch == {
        "spec": {
            "template": {
                "spec": {
                    "initContainers": [
                        {
                            "name": "wait-for-kafka",
                            "command": [
                                "sh",
                                "-c",
                                "until nc -z kafka.data 9092; do echo waiting for kafka; sleep 2; done",
                            ],
                        }
                    ],
                    "containers": [
                        {
                            "name": "orders",
                            "args": ["--verbose", "--db-host=postgres.data", "--port=8080"],
                            "readinessProbe": {"exec": {"command": ["/bin/check", "--broker=kafka.data:9092"]}},
                        }
                    ],
                }
            }
        }
    }


MASKED = textwrap.dedent(
    """\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: billing, namespace: shop}
    spec:
      replicas: 1
      selector: {matchLabels: {app: billing}}
      template:
        metadata: {labels: {app: billing}}
        spec:
          containers:
            - name: billing
              image: billing
              command: [sh, -c, "exec billing --password=s3cret --db=postgres:5432"]
    """
)


def test_a_masked_argument_stays_a_manual_step_and_its_secret_appears_nowhere(tmp_path: Path) -> None:
    report = audit(tmp_path, MASKED)
    (edge,) = [e for e in report.edges if e.broken]
    assert (edge.reference.origin, edge.reference.host) == ("command", "postgres")
    plan = novadiag.plan(report, "rewrite")
    (fix,) = plan.fixes
    assert fix.action is None
    assert "credential the snapshot masked" in fix.detail
    assert "change postgres there to postgres.data" in fix.detail
    assert not [s for s in plan.steps if s.action == "patch"]
    for text in (plan.to_json(), novadiag.render_plan(plan, "markdown"), novadiag.render_plan(plan, "script")):
        assert "s3cret" not in text


OTEL = textwrap.dedent(
    """\
    apiVersion: v1
    kind: Service
    metadata: {name: tempo, namespace: tracing}
    spec: {selector: {app: tempo}, ports: [{port: 4317}]}
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: tempo, namespace: tracing}
    spec:
      replicas: 1
      selector: {matchLabels: {app: tempo}}
      template:
        metadata: {labels: {app: tempo}}
        spec: {containers: [{name: tempo, image: tempo, ports: [{containerPort: 4317}]}]}
    ---
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: collector-config, namespace: otel}
    data:
      collector.yaml: |
        exporters:
          otlp:
            endpoint: tempo:4317
        extensions:
          tempo: {}
        service:
          pipelines:
            traces: {exporters: [otlp], processors: [tempo-batch]}
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: collector, namespace: otel}
    spec:
      replicas: 1
      selector: {matchLabels: {app: collector}}
      template:
        metadata: {labels: {app: collector}}
        spec:
          volumes: [{name: config, configMap: {name: collector-config}}]
          containers:
            - name: otelcol
              image: otel/opentelemetry-collector
              volumeMounts: [{name: config, mountPath: /etc/otelcol}]
    """
)


def test_a_mounted_config_map_file_is_rewritten_at_the_address_and_its_reader_restarts(tmp_path: Path) -> None:
    report = audit(tmp_path, OTEL)
    (edge,) = [e for e in report.edges if e.broken]
    plan = novadiag.plan(report, "rewrite")
    (fix,) = plan.fixes
    assert fix.action == "rewrite"
    assert plan.verification is not None and plan.verification.ok
    assert plan.verification.fixed == (edge.id,)
    text = final_object(plan, "ConfigMap", "otel", "collector-config")["data"]["collector.yaml"]
    original = report.snapshot.get("ConfigMap", "otel", "collector-config")["data"]["collector.yaml"]
    assert text == original.replace("endpoint: tempo:4317", "endpoint: tempo.tracing:4317")
    assert "  tempo: {}" in text and "tempo-batch" in text  # a key and a longer word stay
    actions = [(s.action, str(s.object)) for s in plan.steps if s.phase == "fix"]
    assert actions[:2] == [("patch", "ConfigMap otel/collector-config"), ("restart", "Deployment otel/collector")]
    restart = next(s for s in plan.steps if s.action == "restart")
    assert restart.depends_on == (plan.steps[0].id,)
    assert rolled_back(plan, "ConfigMap", "otel", "collector-config")["data"]["collector.yaml"] == original


def test_a_consolidation_rewrites_the_init_wait_script_of_the_moved_copy(tmp_path: Path) -> None:
    report = audit(tmp_path, ORDERS)
    plan = novadiag.plan(report, "consolidate", into="prod", keep=["data"])
    assert plan.verification is not None
    assert plan.verification.broken_after == 0 and plan.verification.ok, plan.verification.notes
    create = next(s for s in plan.steps if s.action == "create" and str(s.object) == "Deployment prod/orders")
    manifest = create.operation.manifest
    assert manifest is not None
    assert get_at(manifest, (*ORDERS_PATH, "initContainers", "#0", "command", "#2")) == (
        "until nc -z kafka.data 9092; do echo waiting for kafka; sleep 2; done"
    )
    assert json.dumps(manifest).count("kafka.data") == 2  # the script and the probe
    assert "shop/deployment/orders/wait-for-kafka/line 1/kafka:9092" in create.fixes
    assert "shop/deployment/orders/wait-for-kafka/line 1/kafka:9092" in plan.verification.fixed


RECORDER = f"""#!{sys.executable}
import json, os, sys
with open(os.environ["ARGV_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
"""


def test_the_kubectl_script_sends_the_rewritten_items_and_passes_shellcheck(tmp_path: Path) -> None:
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "all.yaml").write_text("---\n".join((SERVICES, ORDERS)))
    script = tmp_path / "plan.sh"
    args = ["plan", "--manifests", str(manifests), "--strategy", "rewrite", "--format", "script", "-o", str(script)]
    assert main(args) == 0
    if shutil.which("shellcheck") is not None:
        checked = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("kubectl", "novadiag"):
        (bin_dir / tool).write_text(RECORDER)
        (bin_dir / tool).chmod(0o755)
    log = tmp_path / "argv.log"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "ARGV_LOG": str(log), "HOME": str(tmp_path)}
    done = subprocess.run(["/bin/bash", str(script), "--execute"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    (patch,) = [c for c in calls if c[:1] == ["patch"]]
    assert patch[:6] == ["patch", "deployment/orders", "-n", "shop", "--type", "strategic"]
    body = json.loads(patch[patch.index("-p") + 1])
    spec = body["spec"]["template"]["spec"]
    assert spec["initContainers"] == [
        {"name": "wait-for-kafka", "command": ["sh", "-c", WAIT_SCRIPT.replace("nc -z kafka ", "nc -z kafka.data ")]}
    ]
    assert spec["containers"][0]["args"] == ["--verbose", "--db-host=postgres.data", "--port=8080"]
    # The rollback the script prints on failure sets the original items back.
    rollback = script.read_text().split("rollback_s001() {", 1)[1].split("\n}", 1)[0]
    assert json.dumps(WAIT_SCRIPT) in rollback
    assert '"args":["--verbose","--db-host=postgres","--port=8080"]' in rollback


def secret_variant(text: str) -> str:
    """OTEL with the collector's file in a Secret, next to a password that must never be written."""
    return (
        text.replace("kind: ConfigMap", "kind: Secret")
        .replace("configMap: {name: collector-config}", "secret: {secretName: collector-config}")
        .replace("data:\n  collector.yaml", "stringData:\n  collector.yaml")
        .replace("        extensions:\n", "        auth: {password: hunter2}\n        extensions:\n")
    )


def test_a_mounted_secret_file_is_rewritten_in_the_live_value_by_host_and_port(tmp_path: Path) -> None:
    report = audit(tmp_path, secret_variant(OTEL))
    (edge,) = [e for e in report.edges if e.broken]
    plan = novadiag.plan(report, "rewrite")
    assert plan.verification is not None and plan.verification.ok
    assert plan.verification.fixed == (edge.id,)
    rewrite, restart = (s for s in plan.steps if s.phase == "fix" and s.action != "wait-ready")
    assert rewrite.operation.to_dict()["replacements"] == [
        {"key": "collector.yaml", "old": "tempo:4317", "new": "tempo.tracing:4317"}
    ]
    assert [r.to_dict() for r in rewrite.rollback[0].replacements] == [
        {"key": "collector.yaml", "old": "tempo.tracing:4317", "new": "tempo:4317"}
    ]
    assert (restart.action, str(restart.object), restart.depends_on) == (
        "restart",
        "Deployment otel/collector",
        (rewrite.id,),
    )
    for text in (plan.to_json(), novadiag.render_plan(plan, "markdown"), novadiag.render_plan(plan, "script")):
        assert "hunter2" not in text


def test_the_scripts_secret_rewrite_changes_the_address_and_not_a_key_of_the_same_name(tmp_path: Path) -> None:
    plan = novadiag.plan(audit(tmp_path, secret_variant(OTEL)), "rewrite")
    script = novadiag.render_plan(plan, "script")
    helper = "rewrite_host() {" + script.split("\nrewrite_host() {", 1)[1].split("\n}\n", 1)[0] + "\n}\n"
    live = "exporters:\n  otlp:\n    endpoint: tempo:4317\nauth: {password: hunter2}\nextensions:\n  tempo: {}\n"
    (tmp_path / "collector.yaml").write_text(live)
    program = helper + f'rewrite_host {tmp_path / "collector.yaml"} tempo:4317 tempo.tracing:4317\n'
    done = subprocess.run(["/bin/bash", "-c", program], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "collector.yaml").read_text() == live.replace("tempo:4317", "tempo.tracing:4317")


def test_a_bare_host_is_rewritten_in_a_file_only_where_the_file_names_it_once(tmp_path: Path) -> None:
    bare = OTEL.replace("endpoint: tempo:4317", "endpoint: tempo")
    once = bare.replace("    extensions:\n      tempo: {}\n", "")
    assert once != bare
    plan = novadiag.plan(audit(tmp_path, once), "rewrite")
    assert plan.verification is not None and plan.verification.ok
    (patch,) = [s.operation.patch for s in plan.steps if s.action == "patch"]
    assert "endpoint: tempo.tracing\n" in patch["data"]["collector.yaml"]

    twice = novadiag.plan(audit(tmp_path, bare), "rewrite")  # the extension key is named tempo too
    (fix,) = twice.fixes
    assert fix.action is None
    assert "in ConfigMap otel/collector-config, key collector.yaml, change tempo to tempo.tracing" in fix.detail
    assert not [s for s in twice.steps if s.action == "patch"]


def test_a_file_read_by_several_workloads_is_rewritten_once_and_every_reader_restarts(tmp_path: Path) -> None:
    second = OTEL.split("---\n")[-1].replace("name: collector,", "name: collector-b,").replace(
        "app: collector}", "app: collector-b}"
    )
    env_reader = textwrap.dedent(
        """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: dashboard, namespace: otel}
        spec:
          replicas: 1
          selector: {matchLabels: {app: dashboard}}
          template:
            metadata: {labels: {app: dashboard}}
            spec:
              containers:
                - name: dashboard
                  image: dashboard
                  envFrom: [{configMapRef: {name: collector-config}}]
        """
    )
    report = audit(tmp_path, OTEL, second, env_reader)
    assert len([e for e in report.edges if e.broken]) == 2
    plan = novadiag.plan(report, "rewrite")
    assert plan.verification is not None and plan.verification.ok
    patches = [s for s in plan.steps if s.action == "patch"]
    assert [str(s.object) for s in patches] == ["ConfigMap otel/collector-config"]
    restarts = sorted(str(s.object) for s in plan.steps if s.action == "restart")
    assert restarts == ["Deployment otel/collector", "Deployment otel/collector-b"]
    assert plan.warnings == (
        "ConfigMap otel/collector-config is also read by Deployment otel/dashboard: "
        "they see the new value at their next restart",
    )


def test_a_host_an_argument_takes_from_a_variable_is_rewritten_in_the_variable_not_the_argument(tmp_path: Path) -> None:
    expanded = textwrap.dedent(
        """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: reports, namespace: shop}
        spec:
          replicas: 1
          selector: {matchLabels: {app: reports}}
          template:
            metadata: {labels: {app: reports}}
            spec:
              containers:
                - name: reports
                  image: reports
                  env: [{name: DB_SERVER, value: "postgres"}]
                  args: ["--db-host=$(DB_SERVER)"]
        """
    )
    report = audit(tmp_path, expanded)
    edge = next(e for e in report.edges if e.reference.location == "args[0]")
    plan = novadiag.plan(report, "rewrite")
    fix = next(f for f in plan.fixes if f.edge == edge.id)
    assert (fix.action, fix.detail) == (
        "rewrite",
        "rewrite; postgres -> postgres.data in env DB_SERVER of container reports",
    )
    assert plan.verification is not None and plan.verification.ok
    container = get_at(final_object(plan, "Deployment", "shop", "reports"), (*ORDERS_PATH, "containers", "#0"))
    assert container["args"] == ["--db-host=$(DB_SERVER)"]
    assert container["env"] == [{"name": "DB_SERVER", "value": "postgres.data"}]


def test_a_script_port_written_apart_from_its_host_that_must_change_stays_manual(tmp_path: Path) -> None:
    wrong_port = ORDERS.replace("nc -z kafka 9092", "nc -z kafka.data 9093")
    report = audit(tmp_path, wrong_port)
    edge = next(e for e in report.edges if e.reference.origin == "init-script")
    assert (edge.status, edge.fix_host, edge.fix_port) == ("port-mismatch", "kafka.data", 9092)
    plan = novadiag.plan(report, "rewrite")
    fix = next(f for f in plan.fixes if f.edge == edge.id)
    assert fix.action is None
    assert "the port is written apart from the host in command[2] of container wait-for-kafka" in fix.detail
    assert "change kafka.data there to kafka.data and port 9093 to 9092" in fix.detail
    (patch,) = [s for s in plan.steps if s.action == "patch"]  # the argument and the probe; no empty patch
    assert "wait-for-kafka" not in patch.title
    assert "initContainers" not in json.dumps(patch.operation.patch)


def test_a_probe_tool_option_is_rewritten_in_the_one_item_that_names_the_host(tmp_path: Path) -> None:
    probe = ORDERS.replace(
        "exec: {command: [/bin/check, --broker=kafka:9092]}", "exec: {command: [pg_isready, -h, postgres, -p, '5432']}"
    )
    report = audit(tmp_path, probe)
    edge = next(e for e in report.edges if e.reference.origin == "readinessProbe")
    assert edge.reference.location == "exec.command"
    plan = novadiag.plan(report, "rewrite")
    fix = next(f for f in plan.fixes if f.edge == edge.id)
    assert fix.detail == "rewrite; postgres -> postgres.data in readinessProbe.exec.command[2] of container orders"
    assert plan.verification is not None and plan.verification.ok
    container = get_at(final_object(plan, "Deployment", "shop", "orders"), (*ORDERS_PATH, "containers", "#0"))
    assert container["readinessProbe"]["exec"]["command"] == ["pg_isready", "-h", "postgres.data", "-p", "5432"]


def test_a_consolidation_rewrites_a_mounted_file_in_the_copy_of_its_config_map_or_secret(tmp_path: Path) -> None:
    plan = novadiag.plan(audit(tmp_path, OTEL), "consolidate", into="prod", keep=["data", "tracing"])
    assert plan.verification is not None and plan.verification.ok
    copy = next(s for s in plan.steps if str(s.object) == "ConfigMap prod/collector-config")
    assert copy.operation.manifest is not None
    text = copy.operation.manifest["data"]["collector.yaml"]
    assert "endpoint: tempo.tracing:4317" in text and "  tempo: {}" in text

    secret = novadiag.plan(audit(tmp_path, secret_variant(OTEL)), "consolidate", into="prod", keep=["data", "tracing"])
    assert secret.verification is not None and secret.verification.ok
    step = next(s for s in secret.steps if str(s.object) == "Secret prod/collector-config")
    assert step.action == "copy-secret"
    assert [r.to_dict() for r in step.operation.replacements] == [
        {"key": "collector.yaml", "old": "tempo:4317", "new": "tempo.tracing:4317"}
    ]
    assert "hunter2" not in secret.to_json()
