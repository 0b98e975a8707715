"""The headline scenario: the Nova backend (docs/lab.md), audited from its manifests.

``expected.yaml`` (next to the manifests) lists every edge with its status and
target; the audit must match it edge for edge — no missing, no extra.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import novadiag

SCENARIO = Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova"
MANIFESTS = SCENARIO / "manifests"


@pytest.fixture(scope="module")
def report():
    return novadiag.audit(manifests=[MANIFESTS])


def edge_key(source, container, env, host, port):
    return (source, container, env, host, port)


def test_every_edge_matches_expected_status_and_target(report):
    expected = {
        edge_key(e["source"], e["container"], e["env"], e["host"], e["port"]): e
        for e in yaml.safe_load((SCENARIO / "expected.yaml").read_text())
    }
    actual = {}
    for edge in report.edges:
        src = edge.source
        actual[
            edge_key(
                f"{src.namespace}/{src.kind}/{src.name}",
                edge.reference.container,
                edge.reference.env,
                edge.reference.host,
                edge.reference.port,
            )
        ] = edge
    assert sorted(actual) == sorted(expected)
    for key, want in expected.items():
        edge = actual[key]
        target = None if edge.target is None else f"{edge.target.namespace}/{edge.target.name}"
        assert (edge.status, target, edge.reference.origin) == (want["status"], want["target"], want["origin"]), key


def test_broken_edges_are_the_four_the_plan_calls_broken_and_the_refused_route(report):
    broken = sorted((e.source.name, e.reference.host, e.target.namespace) for e in report.broken)
    assert broken == [
        ("content-api", "content-service.nova-content", "nova-content"),
        ("user-service", "auth-service", "nova-auth"),
        ("user-service", "content-service", "nova-content"),
        ("user-service", "feed-service", "nova-feed"),
        ("user-service", "media-service", "nova-media"),
    ]
    assert all(e.cross_namespace for e in report.broken)


def test_the_route_without_its_reference_grant_gets_the_grant_as_fix(report):
    (route,) = [e for e in report.broken if e.source.kind == "HTTPRoute"]
    assert route.status == "blocked"
    assert route.fix == "add ReferenceGrant in nova-content: from HTTPRoute in nova-gateway to Service content-service"



def test_each_broken_edge_gets_the_shortest_working_name(report):
    addresses = {e.reference.env: (e.fix_host, e.fix_port) for e in report.broken if not e.reference.routing}
    assert addresses == {
        "CONTENT_SERVICE_URL": ("content-service.nova-content", 9081),
        "FEED_SERVICE_URL": ("feed-service.nova-feed", 8089),
        "AUTH_SERVICE_URL": ("auth-service.nova-auth", 9083),
        "MEDIA_SERVICE_URL": ("media-service.nova-media", 9082),
    }


def test_each_fix_is_the_value_to_write_keeping_scheme_and_path(report):
    """``fix`` is what the variable must hold: the written value with the name put in."""
    written = {e.reference.env: (e.reference.reference, e.fix) for e in report.broken if not e.reference.routing}
    assert written == {
        "CONTENT_SERVICE_URL": ("content-service:9081", "content-service.nova-content:9081"),
        "FEED_SERVICE_URL": ("http://feed-service:8089", "http://feed-service.nova-feed:8089"),
        "AUTH_SERVICE_URL": ("dns:///auth-service:9083", "dns:///auth-service.nova-auth:9083"),
        "MEDIA_SERVICE_URL": ("http://media-service:9082", "http://media-service.nova-media:9082"),
    }


def test_duplicate_postgres_is_reported(report):
    dupes = [f for f in report.findings if f.code == "duplicate-service-name"]
    assert any("postgres" in f.message and "nova-backend" in f.message and "nova," in f.message + "," for f in dupes)
    assert any(f.severity == "warning" for f in dupes if "postgres" in f.message)


def test_summary_counts_the_plan_namespaces_and_workloads(report):
    summary = report.summary()
    assert summary["namespaces"] == 10
    assert summary["broken"] == 5
    assert summary["by_status"]["dns-unresolvable"] == 4
    assert summary["by_status"]["blocked"] == 1
    assert summary["edges"] == len(report.edges)


def test_no_secret_value_in_json_or_table(report):
    text = report.to_json() + report.render("table")
    assert "NOVA-SECRET" not in text
