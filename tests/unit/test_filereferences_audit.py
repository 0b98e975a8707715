"""A reference in a mounted config file is an edge like an env one: verdict, fix, reports, source line, plan."""

from __future__ import annotations

import csv
import io
import textwrap

import novadiag
from novadiag.manifests import load_manifests
from novadiag.pipeline import audit_snapshot
from novadiag.planning.runbook import render_runbook
from novadiag.report.frame import to_frame
from novadiag.report.tabular import render_csv

MANIFESTS = textwrap.dedent(
    """\
    apiVersion: v1
    kind: Service
    metadata: {name: tempo, namespace: tracing}
    spec:
      selector: {app: tempo}
      ports: [{port: 4317}]
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
          containers: [{name: tempo, image: tempo, ports: [{containerPort: 4317}]}]
    ---
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: collector-config, namespace: otel}
    data:
      README: "not mounted: http://tempo:4317"
      collector.yaml: |
        exporters:
          otlp:
            endpoint: tempo:4317
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
          volumes:
            - name: config
              configMap:
                name: collector-config
                items: [{key: collector.yaml, path: collector.yaml}]
          containers:
            - name: otelcol
              image: otel/opentelemetry-collector
              volumeMounts: [{name: config, mountPath: /etc/otelcol}]
    """
)


def audit(tmp_path):
    path = tmp_path / "all.yaml"
    path.write_text(MANIFESTS)
    return audit_snapshot(load_manifests([path]))


def test_a_cross_namespace_short_name_in_a_mounted_file_is_broken_with_a_fix(tmp_path):
    report = audit(tmp_path)
    (edge,) = report.edges
    assert (edge.status, edge.fix) == ("dns-unresolvable", "tempo.tracing:4317")
    data = edge.to_dict()
    assert (data["env"], data["origin"], data["location"]) == (
        None,
        "file:configMap/collector-config/collector.yaml",
        "exporters.otlp.endpoint",
    )
    assert data["id"] == (
        "otel/deployment/collector/otelcol/file:configMap/collector-config/collector.yaml:exporters.otlp.endpoint"
        "/tempo:4317"
    )


def test_csv_and_frame_carry_the_location(tmp_path):
    report = audit(tmp_path)
    (row,) = csv.DictReader(io.StringIO(render_csv(report)))
    assert (row["origin"], row["location"]) == (
        "file:configMap/collector-config/collector.yaml",
        "exporters.otlp.endpoint",
    )
    frame = to_frame(report)
    assert list(frame["location"]) == ["exporters.otlp.endpoint"]


def test_the_source_line_is_the_config_map_key(tmp_path):
    report = audit(tmp_path)
    where = report.source_line(report.edges[0])
    assert where is not None
    assert where.line == MANIFESTS.splitlines().index("  collector.yaml: |") + 1


def test_the_plan_rewrites_the_file_in_its_config_map_key(tmp_path):
    plan = novadiag.plan(audit(tmp_path), "rewrite")
    (fix,) = plan.fixes
    assert (fix.action, fix.detail) == (
        "rewrite",
        "rewrite; tempo -> tempo.tracing in ConfigMap otel/collector-config key collector.yaml",
    )
    runbook = render_runbook(plan)
    assert "rewrite ConfigMap otel/collector-config" in runbook
    assert "restart Deployment otel/collector so it reads the new values" in runbook
    (patch,) = [s.operation.patch for s in plan.steps if s.action == "patch"]
    assert patch == {"data": {"collector.yaml": "exporters:\n  otlp:\n    endpoint: tempo.tracing:4317\n"}}
