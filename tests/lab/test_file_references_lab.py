"""A host named in a mounted config file, audited and probed through the lab.

An OpenTelemetry collector in ``otel`` mounts ``collector.yaml`` from a
ConfigMap; its exporter names ``tempo:4317``, a Service that exists only in
``tracing``. The kubelet really writes the file into the pod's volume; the
audit reads it from the ConfigMap the pod mounts, says the edge is broken with
its file origin, and the probe pod (with the collector's DNS settings) walks
the search list of ``otel`` and gets NXDOMAIN for every name it tries. A
rewrite plan applied through the real client then fixes the file in its
ConfigMap and restarts the collector, and the probe finds the new name.
"""

from __future__ import annotations

import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import novadiag
from novadiag.kube import KubeClient, KubeSettings
from novadiag.lab import Lab
from novadiag.pipeline import audit_cluster
from novadiag.planning import apply_plan
from novadiag.probing.groups import MANAGED_BY

pytestmark = pytest.mark.lab

MANIFESTS = textwrap.dedent(
    """\
    apiVersion: v1
    kind: Namespace
    metadata: {name: tracing, labels: {kubernetes.io/metadata.name: tracing}}
    ---
    apiVersion: v1
    kind: Namespace
    metadata: {name: otel, labels: {kubernetes.io/metadata.name: otel}}
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: tempo, namespace: tracing}
    spec:
      replicas: 1
      selector: {matchLabels: {app: tempo}}
      template:
        metadata: {labels: {app: tempo}}
        spec:
          containers: [{name: tempo, image: grafana/tempo:2, ports: [{name: otlp, containerPort: 4317}]}]
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: tempo, namespace: tracing}
    spec:
      selector: {app: tempo}
      ports: [{name: otlp, port: 4317, targetPort: 4317}]
    ---
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: collector-config, namespace: otel}
    data:
      collector.yaml: |
        receivers:
          otlp:
            protocols:
              grpc:
                endpoint: ${env:MY_POD_IP}:4317
        exporters:
          otlp:
            endpoint: tempo:4317
            tls: {insecure: true}
        service:
          pipelines:
            traces: {receivers: [otlp], exporters: [otlp]}
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
              image: otel/opentelemetry-collector:0.100.0
              args: [--config=/etc/otelcol/collector.yaml]
              volumeMounts: [{name: config, mountPath: /etc/otelcol}]
    """
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    scenario: Path = tmp_path_factory.mktemp("file-refs") / "file-refs"
    (scenario / "manifests").mkdir(parents=True)
    meta = {"name": "file-refs", "description": "a collector naming tempo in its mounted config file"}
    (scenario / "scenario.yaml").write_text(yaml.safe_dump({**meta, "manifests": ["manifests"]}))
    (scenario / "manifests" / "all.yaml").write_text(MANIFESTS)
    with Lab(scenario=str(scenario), state_dir=tempfile.mkdtemp(prefix="nd-file-refs-")) as running:
        yield running


def test_a_short_name_in_a_mounted_file_is_broken_and_the_probe_checks_it(lab):
    report = novadiag.audit(kubeconfig=lab.kubeconfig, probe=True)
    (edge,) = [e for e in report.edges if e.source.name == "collector"]
    ref = edge.reference
    assert (ref.env, ref.origin, ref.location) == (
        None,
        "file:configMap/collector-config/collector.yaml",
        "exporters.otlp.endpoint",
    )
    assert (ref.host, ref.port, edge.status, edge.fix) == ("tempo", 4317, "dns-unresolvable", "tempo.tracing:4317")
    assert edge.target is not None and (edge.target.namespace, edge.target.name) == ("tracing", "tempo")
    assert edge.probe is not None
    assert (edge.probe.dns, edge.probe.agrees, edge.verdict_from) == ("nxdomain", True, "probe")
    assert edge.probe.tried[0] == ("tempo.otel.svc.cluster.local", "nxdomain")
    with KubeClient(KubeSettings(kubeconfig=lab.kubeconfig)) as client:
        left = [
            o["metadata"]["name"]
            for k in ("Pod", "ConfigMap")
            for o in client.list_raw(k, label_selector=f"{MANAGED_BY}=novadiag")
        ]
    assert left == []


def test_a_rewrite_plan_fixes_the_file_and_restarts_its_reader(lab):
    """Applied through the real client: the key's text changes at the address only, the collector rolls out."""
    settings = KubeSettings(kubeconfig=lab.kubeconfig)
    plan = novadiag.plan(audit_cluster(settings, source_kind="lab", probe=True), "rewrite", wait_timeout=120)
    assert plan.verification is not None and plan.verification.ok
    assert [(s.action, str(s.object)) for s in plan.steps if s.phase == "fix"][:2] == [
        ("patch", "ConfigMap otel/collector-config"),
        ("restart", "Deployment otel/collector"),
    ]
    with KubeClient(settings) as client:
        before = client.get("ConfigMap", "otel", "collector-config")
        result = apply_plan(plan, client, yes=True, out=lambda _: None)
        assert result.ok, f"{result.stopped_at}: {result.reason}"
        after = client.get("ConfigMap", "otel", "collector-config")
        deployment = client.get("Deployment", "otel", "collector")
    assert before is not None and after is not None and deployment is not None
    assert after["data"]["collector.yaml"] == before["data"]["collector.yaml"].replace(
        "endpoint: tempo:4317", "endpoint: tempo.tracing:4317"
    )
    assert "kubectl.kubernetes.io/restartedAt" in deployment["spec"]["template"]["metadata"].get("annotations", {})
    report = audit_cluster(settings, source_kind="lab", probe=True)
    (edge,) = [e for e in report.edges if e.source.name == "collector"]
    assert (edge.reference.host, edge.status) == ("tempo.tracing", "ok")
    assert edge.probe is not None and edge.probe.dns == "ok"
