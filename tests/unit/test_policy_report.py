"""The ``novadiag policies`` view: policies per namespace, what they select, the edges they decide."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

import novadiag
from novadiag.cli import main
from novadiag.model import ObjectRef, SourceInfo
from novadiag.netpol.view import policy_view, render_policies
from novadiag.snapshot import build_snapshot

NOVA = Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova" / "manifests"


def nova_objects():
    return [d for p in sorted(NOVA.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]


def view_of(objects):
    from novadiag.pipeline import audit_snapshot

    report = audit_snapshot(build_snapshot(objects, SourceInfo("manifests")))
    return report, policy_view(report)


@pytest.fixture(scope="module")
def nova():
    return view_of(nova_objects())


def labels(view, ids):
    return sorted(view.edges[i] for i in ids)


def test_a_policy_lists_what_it_selects_and_the_edges_it_admits(nova):
    _, view = nova
    redis = view.policy("nova-media", "redis")
    assert redis.selects == (ObjectRef("Deployment", "nova-media", "redis"),)
    assert labels(view, redis.allows) == [
        "nova-backend/messaging-service → redis.nova-media:6379",
        "nova-feed/feed-service → redis.nova-media:6379",
        "nova-media/media-service → redis:6379",
    ]
    assert redis.denies == ()


def test_edges_that_do_not_resolve_yet_are_judged_against_the_service_they_mean(nova):
    _, view = nova
    assert "nova-backend/user-service → content-service:9081" in labels(
        view, view.policy("nova-content", "content-service").allows
    )


def test_dns_policies_count_the_workloads_whose_lookups_they_admit(nova):
    _, view = nova
    assert len(view.policy("nova-backend", "allow-dns").dns_for) == 6
    assert view.policy("nova-backend", "allow-dns").allows == ()


def test_a_denying_policy_lists_the_edges_it_stops():
    objects = [
        o
        for o in nova_objects()
        if o["metadata"] != {"name": "postgres", "namespace": "nova"} or o["kind"] != "NetworkPolicy"
    ]
    _, view = view_of(objects)
    assert labels(view, view.policy("nova", "default-deny").denies) == [
        "nova-auth/auth-service → postgres.nova:5432",
        "nova-backend/messaging-service → postgres.nova:5432",
    ]


def test_a_namespace_without_dns_egress_has_every_edge_denied_by_its_default_deny():
    objects = [o for o in nova_objects() if o["metadata"] != {"name": "allow-dns", "namespace": "nova-feed"}]
    _, view = view_of(objects)
    assert labels(view, view.policy("nova-feed", "default-deny").denies) == [
        "nova-feed/feed-service → content-service.nova-content:9081",
        "nova-feed/feed-service → redis.nova-media:6379",
    ]


def test_workloads_no_policy_selects_are_info_findings_of_the_view_only():
    objects = copy.deepcopy(nova_objects())
    objects = [
        o
        for o in objects
        if not (o["kind"] == "NetworkPolicy" and o["metadata"]["namespace"] in ("nova-auth", "nova-media"))
    ]
    objects.append(
        {
            "kind": "NetworkPolicy",
            "metadata": {"name": "redis-only", "namespace": "nova-media"},
            "spec": {"podSelector": {"matchLabels": {"app": "redis"}}},
        }
    )
    report, view = view_of(objects)
    messages = [f.message for f in view.findings if f.code == "no-network-policy"]
    assert all(f.severity == "info" for f in view.findings)
    assert any(m.startswith("namespace nova-auth has no NetworkPolicy") for m in messages)
    assert any(m.startswith("Deployment nova-media/media-service: no NetworkPolicy selects its pods") for m in messages)
    assert view.namespace("nova-media").unprotected == (ObjectRef("Deployment", "nova-media", "media-service"),)
    assert not [f for f in report.findings if f.code == "no-network-policy"]


def test_table_and_json_renderings(nova):
    _, view = nova
    table = render_policies(view, "table", width=200)
    assert "namespace nova-media — 4 NetworkPolicies" in table
    assert "nova-feed/feed-service → redis.nova-media:6379" in table
    doc = json.loads(render_policies(view, "json"))
    assert doc["schema"] == "novadiag.policies/v1"
    assert {ns["namespace"] for ns in doc["namespaces"]} >= {"nova-backend", "kafka"}


def test_cli_policies_prints_the_view_for_one_namespace(capsys):
    assert main(["policies", "--manifests", str(NOVA), "-n", "nova", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [ns["namespace"] for ns in doc["namespaces"]] == ["nova"]
    postgres = next(p for p in doc["namespaces"][0]["policies"] if p["name"] == "postgres")
    assert len(postgres["allows"]) == 2  # callers from nova-auth and nova-backend, though -n names only nova
