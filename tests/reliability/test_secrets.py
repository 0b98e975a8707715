"""No secret value, URL credential or token in anything novadiag prints, writes or creates.

A variant of Nova is seeded with distinctive secret values in every place a
credential hides: Secret ``data`` and ``stringData`` (whole passwords and DSNs
with passwords), Secret and ConfigMap keys mounted as config files, env values
with inline URL passwords, bearer tokens and secret query parameters, ConfigMap
values, and the ``last-applied-configuration`` annotation that repeats a whole
Secret. Every output is then searched for every seed, and for the kubeconfig's
bearer token: each report format, the CLI's stdout and stderr, a saved
snapshot, the policies view, the DataFrame, error messages, log records at
DEBUG, and the probe objects created in the cluster.
"""

from __future__ import annotations

import base64
import json
import logging
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from reliability_support import admin_token, leftovers, run_cli, variant

import novadiag
from novadiag.cli import main
from novadiag.kube import KubeClient, KubeSettings
from novadiag.lab import Lab
from novadiag.report.render import FORMATS

pytestmark = pytest.mark.lab

SEEDS = {
    "dsn-password": "NDSEED-dsn-pw-7f3a",
    "plain-password": "NDSEED-plain-pw-91c2",
    "string-data": "NDSEED-stringdata-5e",
    "inline-env": "NDSEED-inline-env-2b",
    "bearer": "NDSEED-bearer-0d44",
    "query-token": "NDSEED-query-tok-3c",
    "configmap-dsn": "NDSEED-cm-dsn-8a",
    "configmap-kv": "NDSEED-cm-kv-6f",
    "last-applied": "NDSEED-last-applied-1e",
    "jdbc": "NDSEED-jdbc-pw-44",
    "arg-password": "NDSEED-arg-pw-5d",
    "script-redis": "NDSEED-script-redis-a1",
    "script-mysql": "NDSEEDscriptmysql7c",
    "secret-file-dsn": "NDSEED-secret-file-dsn-5d",
    "secret-file-yaml": "NDSEED-secret-file-yaml-9e",
    "configmap-file-dsn": "NDSEED-cm-file-dsn-71",
    "configmap-file-key": "NDSEED-cm-file-key-a0",
}


SECRET_DATA_SEEDS = {
    "dsn-password", "plain-password", "string-data", "last-applied", "jdbc", "secret-file-dsn", "secret-file-yaml",
}
"""The seeds that live in a Secret's data; the others are plain values of the user's own manifests."""


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


SCRIPT = (
    f"until redis-cli -h redis.nova-media -a {SEEDS['script-redis']} ping; do sleep 1; done\n"
    f"mysql -h postgres.nova-backend -P 5432 -u app -p{SEEDS['script-mysql']} -e 'select 1'"
)
"""An init container's wait script with passwords on its command lines; its hosts are audited all the same."""


def seeded_manifests() -> list[dict[str, Any]]:
    secret_for_annotation = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "seeded-db", "namespace": "nova-backend"},
        "data": {"password": _b64(SEEDS["last-applied"])},
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "seeded-db",
            "namespace": "nova-backend",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(secret_for_annotation)},
        },
        "data": {
            "url": _b64(f"postgres://app:{SEEDS['dsn-password']}@postgres.nova-backend:5432/app"),
            "password": _b64(SEEDS["plain-password"]),
            "jdbc": _b64(f"jdbc:postgresql://postgres:5432/app?user=app&password={SEEDS['jdbc']}"),
        },
        "stringData": {"admin": SEEDS["string-data"]},
    }
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "seeded-config", "namespace": "nova-backend"},
        "data": {
            "AMQP_URL": f"amqp://guest:{SEEDS['configmap-dsn']}@rabbitmq.nova-backend:5672/",
            "LIBPQ": f"host=postgres port=5432 user=app password={SEEDS['configmap-kv']}",
        },
    }
    secret_files = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "seeded-files", "namespace": "nova-backend"},
        "data": {
            "database-url": _b64(f"postgres://app:{SEEDS['secret-file-dsn']}@postgres.nova-backend:5432/app"),
            "config.yaml": _b64(
                "datasource:\n"
                f"  url: postgres://app:{SEEDS['secret-file-yaml']}@postgres.nova-backend:5432/app\n"
                f"  password: {SEEDS['secret-file-yaml']}\n"
            ),
        },
    }
    configmap_files = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "seeded-files", "namespace": "nova-backend"},
        "data": {
            "collector.yaml": (
                "exporters:\n"
                "  otlphttp:\n"
                f"    endpoint: http://otel:{SEEDS['configmap-file-dsn']}@content-service:9081\n"
                f"    api_key: {SEEDS['configmap-file-key']}\n"
            ),
        },
    }
    env = [
        {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "seeded-db", "key": "url"}}},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "seeded-db", "key": "password"}}},
        {"name": "JDBC_URL", "valueFrom": {"secretKeyRef": {"name": "seeded-db", "key": "jdbc"}}},
        {"name": "CACHE_URL", "value": f"redis://:{SEEDS['inline-env']}@redis.nova-media:6379/0"},
        {"name": "UPSTREAM_AUTH", "value": f"Bearer {SEEDS['bearer']}"},
        {"name": "WEBHOOK_URL", "value": f"https://hooks.example.com/notify?token={SEEDS['query-token']}"},
    ]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "seeded-service", "namespace": "nova-backend"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "seeded-service"}},
            "template": {
                "metadata": {"labels": {"app": "seeded-service"}},
                "spec": {
                    "initContainers": [
                        {
                            "name": "wait",
                            "image": "seeded-wait:1",
                            "command": ["sh", "-c"],
                            "args": [SCRIPT],
                        }
                    ],
                    "containers": [
                        {
                            "name": "app",
                            "image": "seeded:1",
                            "args": [f"--password={SEEDS['arg-password']}", "--cache-url=redis://redis.nova-media:6379"],
                            "env": env,
                            "envFrom": [{"configMapRef": {"name": "seeded-config"}}],
                            "volumeMounts": [
                                {"name": "secret-files", "mountPath": "/etc/secret-files"},
                                {"name": "config-files", "mountPath": "/etc/config-files"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "secret-files", "secret": {"secretName": "seeded-files"}},
                        {"name": "config-files", "configMap": {"name": "seeded-files"}},
                    ],
                },
            },
        },
    }
    return [secret, configmap, secret_files, configmap_files, deployment]


@pytest.fixture(scope="module")
def seeded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scenario = variant(tmp_path_factory.mktemp("secrets"))
    (scenario / "manifests" / "zz-seeded.yaml").write_text(yaml.safe_dump_all(seeded_manifests()))
    return scenario


@pytest.fixture(scope="module")
def seeded_lab(seeded_dir: Path) -> Iterator[Lab]:
    with Lab(scenario=str(seeded_dir), state_dir=tempfile.mkdtemp(prefix="nd-secrets-")) as lab:
        yield lab


def forbidden(lab: Lab | None = None) -> dict[str, str]:
    found = dict(SEEDS)
    if lab is not None:
        found["kubeconfig token"] = admin_token(lab)
    return found


def assert_clean(where: str, text: str, lab: Lab | None = None) -> None:
    leaked = [name for name, value in forbidden(lab).items() if value in text]
    assert leaked == [], f"{where} leaks {leaked}"


def test_the_seeds_are_really_in_the_cluster(seeded_lab):
    with KubeClient(KubeSettings(kubeconfig=seeded_lab.kubeconfig)) as client:
        raw = json.dumps(client.get("Secret", "nova-backend", "seeded-db"))
    assert _b64(SEEDS["plain-password"]) in raw  # else the test below proves nothing


@pytest.fixture(scope="module")
def probed_report(seeded_lab: Lab) -> Iterator[tuple[novadiag.Report, list[str], list[logging.LogRecord]]]:
    """A probed audit, with every body novadiag sent to the cluster and every log record."""
    sent: list[str] = []
    original = KubeClient.create

    def recording(self: KubeClient, kind: str, namespace: str | None, body: Any) -> dict[str, Any]:
        sent.append(json.dumps(body))
        return original(self, kind, namespace, body)

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    root = logging.getLogger()
    handler, level = Keep(level=logging.DEBUG), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    KubeClient.create = recording  # type: ignore[method-assign]
    try:
        report = novadiag.audit(kubeconfig=seeded_lab.kubeconfig)
    finally:
        KubeClient.create = original  # type: ignore[method-assign]
        root.removeHandler(handler)
        root.setLevel(level)
    yield report, sent, records


def test_the_seeded_references_are_still_audited(probed_report):
    report, _, _ = probed_report
    seeded = {e.reference.env for e in report.edges if e.source.name == "seeded-service"}
    assert {"DATABASE_URL", "JDBC_URL", "CACHE_URL", "AMQP_URL"} <= seeded
    outside_env = {
        (e.reference.origin, e.reference.slot, e.reference.host) for e in report.edges if e.reference.env is None
    }
    assert {
        ("args", "args[1]", "redis.nova-media"),
        ("init-script", "line 1", "redis.nova-media"),
        ("init-script", "line 2", "postgres.nova-backend"),
    } <= outside_env
    files = {(e.reference.origin, e.reference.host) for e in report.edges if e.reference.origin.startswith("file:")}
    assert files == {
        ("file:secret/seeded-files/database-url", "postgres.nova-backend"),
        ("file:secret/seeded-files/config.yaml", "postgres.nova-backend"),
        ("file:configMap/seeded-files/collector.yaml", "content-service"),
    }
    assert report.probes["ran"] == report.probes["groups"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_report_format_leaks(seeded_lab, probed_report, fmt):
    report, _, _ = probed_report
    assert_clean(f"--format {fmt}", report.render(fmt), seeded_lab)


def test_the_dataframe_the_dict_and_the_repr_do_not_leak(seeded_lab, probed_report):
    report, _, _ = probed_report
    assert_clean("to_frame()", report.to_frame().to_csv(), seeded_lab)
    assert_clean("to_dict()", json.dumps(report.to_dict()), seeded_lab)
    assert_clean("repr()", repr(report), seeded_lab)
    assert_clean("findings", "\n".join(f.message for f in report.findings), seeded_lab)


def test_probe_objects_created_in_the_cluster_do_not_carry_secrets(seeded_lab, probed_report):
    _, sent, _ = probed_report
    assert sent, "the probe run created its ConfigMaps and Pods"
    for body in sent:
        assert_clean("a probe object", body, seeded_lab)
    assert leftovers(seeded_lab.kubeconfig) == []


def test_debug_logs_do_not_leak(seeded_lab, probed_report):
    _, _, records = probed_report
    assert_clean("log records", "\n".join(r.getMessage() for r in records), seeded_lab)


def test_the_command_line_does_not_leak(seeded_lab, tmp_path, capsys):
    snapshot = tmp_path / "snap.json"
    codes = [
        main(["audit", "--kubeconfig", seeded_lab.kubeconfig, "--no-probe"]),
        main(["audit", "--kubeconfig", seeded_lab.kubeconfig, "--no-probe", "--format", "markdown"]),
        main(["snapshot", "save", str(snapshot), "--kubeconfig", seeded_lab.kubeconfig]),
        main(["policies", "--kubeconfig", seeded_lab.kubeconfig, "--format", "json"]),
    ]
    captured = capsys.readouterr()
    assert codes == [1, 1, 0, 0]
    assert_clean("stdout", captured.out, seeded_lab)
    assert_clean("stderr", captured.err, seeded_lab)
    assert_clean("a saved snapshot", snapshot.read_text(), seeded_lab)


def test_auditing_the_manifest_files_does_not_leak(seeded_dir, tmp_path, capsys):
    report = novadiag.audit(manifests=[seeded_dir / "manifests"])
    for fmt in FORMATS:
        assert_clean(f"manifests --format {fmt}", report.render(fmt))
    main(["snapshot", "save", str(tmp_path / "snap.json"), "--manifests", str(seeded_dir / "manifests")])
    assert_clean("a snapshot of manifests", (tmp_path / "snap.json").read_text())


def test_errors_do_not_leak_url_credentials_or_tokens(seeded_lab, tmp_path, capsys):
    config = yaml.safe_load(Path(seeded_lab.kubeconfig).read_text())
    cluster = config["clusters"][0]["cluster"]
    cluster["server"] = cluster["server"].replace("https://", f"https://admin:{SEEDS['dsn-password']}@")
    cluster["server"] = cluster["server"].rsplit(":", 1)[0] + ":1"  # nothing listens there
    kubeconfig = tmp_path / "bad.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    code = main(["audit", "--kubeconfig", str(kubeconfig), "--no-probe"])
    err = capsys.readouterr().err
    assert code == 2
    assert "cannot reach the API server at https://admin:***@127." in err
    assert_clean("an unreachable-server error", err, seeded_lab)


@pytest.mark.parametrize("fmt", ["markdown", "json", "script", "manifests"])
def test_plans_that_copy_secrets_do_not_write_their_values(seeded_dir, tmp_path, fmt, capsys):
    out = tmp_path / ("plan-dir" if fmt == "manifests" else f"plan.{fmt}")
    args = ["plan", "--manifests", str(seeded_dir / "manifests"), "--strategy", "consolidate", "--into", "nova-prod"]
    args += ["--keep", "kafka", "--keep", "nova-staging", "--prefer", "nova-backend/postgres", "--format", fmt]
    assert main([*args, "-o", str(out)]) in (0, 1)  # 1: the seeded service names hosts no plan can fix
    captured = capsys.readouterr()
    files = sorted(out.rglob("*")) if out.is_dir() else [out]
    written = "\n".join(f.read_text() for f in files if f.is_file())
    assert "seeded-db" in written, "the plan does move the seeded Secret"
    assert_clean(f"plan --format {fmt} on the terminal", captured.out + captured.err)
    if fmt != "manifests":
        assert_clean(f"plan --format {fmt}", written)
        return
    # Manifests made from the user's own files carry the user's own plain values byte for byte (a masked
    # value written there would be applied as '***'), in files only the user can read; a Secret's data
    # never: Secrets are copied through the API when the plan runs.
    in_secrets = {k: v for k, v in forbidden().items() if k in SECRET_DATA_SEEDS}
    assert [name for name, value in in_secrets.items() if value in written] == []
    assert SEEDS["inline-env"] in written and SEEDS["configmap-dsn"] in written
    modes = {f.name: f.stat().st_mode & 0o777 for f in files if f.is_file() and SEEDS["inline-env"] in f.read_text()}
    assert modes and set(modes.values()) == {0o600}, modes


FAILING_PLUGIN = """
import sys
sys.stderr.write("login failed; cached refresh token: NDSEED-exec-stderr-77\\n")
sys.exit(3)
"""


EXPIRING_THEN_FAILING_PLUGIN = """
import json, pathlib, sys
runs = pathlib.Path(sys.argv[1])
if runs.exists():
    sys.stderr.write("refresh failed; refresh token: NDSEED-exec-refresh-78\\n")
    sys.exit(4)
runs.write_text("1")
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
                  "status": {"token": "t-1", "expirationTimestamp": "2000-01-01T00:00:00Z"}}))
"""


def exec_kubeconfig(tmp_path, plugin_source, *args):
    plugin = tmp_path / "get-token.py"
    plugin.write_text(plugin_source)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": sys.executable,
            "args": [str(plugin), *args],
            "interactiveMode": "Never",
        }}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    return kubeconfig


def test_a_failing_exec_plugin_is_named_but_its_output_is_not_shown(tmp_path):
    """An exec credential plugin's stderr can hold a token: novadiag names the plugin and its exit status only."""
    kubeconfig = exec_kubeconfig(tmp_path, FAILING_PLUGIN)
    done = run_cli("audit", "--kubeconfig", str(kubeconfig), "--no-probe", "--format", "json")
    assert done.code == 2
    assert "NDSEED-exec-stderr-77" not in done.out + done.err
    warnings = [line for line in done.err.splitlines() if "exec credential plugin" in line]
    assert warnings == [f"novadiag: warning: the exec credential plugin {sys.executable} failed (exit status 3); "
                        "its output is not shown, as it may hold a credential"]


def test_an_exec_plugin_failing_on_refresh_is_named_but_its_output_is_not_logged(tmp_path, capsys, caplog):
    """The client runs the plugin again before a request once the token expired: the same rule holds there."""
    kubeconfig = exec_kubeconfig(tmp_path, EXPIRING_THEN_FAILING_PLUGIN, str(tmp_path / "runs"))
    caplog.set_level(logging.DEBUG)
    with KubeClient(KubeSettings(kubeconfig=str(kubeconfig))) as client:
        client._api.configuration.refresh_api_key_hook(client._api.configuration)  # what each request does first
    err = capsys.readouterr().err
    assert "NDSEED-exec-refresh-78" not in err + "\n".join(r.getMessage() for r in caplog.records)
    assert f"the exec credential plugin {sys.executable} failed (exit status 4)" in err
