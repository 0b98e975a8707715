"""An audit that could not see must not pass: verdicts resting on unread objects are ``unverified``.

Each test takes Nova's manifests, hides what a restricted role could not list
(the objects go, a gap says why, as :mod:`novadiag.listing` records them) and
checks which verdicts stay open and which still stand.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import novadiag
from novadiag.criteria.builtin import no_broken_edges
from novadiag.criteria.context import CheckContext, CriteriaSettings
from novadiag.manifests import load_manifests
from novadiag.model import NOT_SERVED, SNAPSHOT_KINDS, Gap
from novadiag.pipeline import audit_snapshot
from novadiag.report.core import Report
from novadiag.report.tablerows import summary_line
from novadiag.snapshot import Snapshot, load_snapshot_file
from novadiag.visibility import resource_name

NOVA = Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova" / "manifests"
FORBIDDEN = "forbidden: the role does not allow it"


@pytest.fixture(scope="module")
def nova() -> Snapshot:
    return load_manifests([NOVA])


def hidden(snapshot: Snapshot, gaps: list[Gap], keep=lambda kind, obj: True) -> Snapshot:
    """The snapshot as a role that got ``gaps`` sees it: the objects they cover are gone."""
    objects = {}
    for kind, items in snapshot.objects.items():
        kept = []
        for obj in items:
            namespace = obj["metadata"].get("namespace")  # None for cluster-scoped kinds
            if keep(kind, obj) and not any(g.covers(kind, namespace) for g in gaps):
                kept.append(obj)
        objects[kind] = tuple(kept)
    return Snapshot(snapshot.source, objects, tuple(gaps))


def statuses(report: Report) -> dict[str, str]:
    return {f"{e.reference.namespace} {e.reference.env} {e.reference.host}": e.status for e in report.edges}


def namespace_scoped(namespace: str) -> list[Gap]:
    """A RoleBinding in one namespace: no Namespace list, every other kind read only there."""
    kinds = [k for k in SNAPSHOT_KINDS if k != "Namespace"]
    return [Gap("Namespace", None, FORBIDDEN), *(Gap(k, None, FORBIDDEN, read_in=(namespace,)) for k in kinds)]


def test_resource_names_are_the_ones_rbac_uses():
    assert [resource_name(k) for k in ("NetworkPolicy", "Endpoints", "Service", "Namespace", "EndpointSlice")] == [
        "networkpolicies",
        "endpoints",
        "services",
        "namespaces",
        "endpointslices",
    ]


def test_a_namespace_scoped_view_calls_nothing_broken_that_it_could_not_see(nova):
    report = audit_snapshot(hidden(nova, namespace_scoped("nova-backend")), namespaces=["nova-backend"])
    seen = statuses(report)
    assert "unknown-target" not in seen.values() and "dns-unresolvable" not in seen.values()
    kafka = next(e for e in report.edges if e.reference.host == "kafka.kafka.svc")
    assert kafka.status == "unverified"
    assert kafka.detail.startswith("cannot be verified (list namespaces: forbidden; list services in kafka: forbidden)")
    assert "names namespace kafka, which does not exist" in kafka.detail  # what the read objects alone suggest
    media = next(e for e in report.edges if e.reference.host == "media-service")
    assert media.status == "unverified" and "list services outside nova-backend: forbidden" in media.detail
    assert not [f for f in report.findings if f.code == "missing-namespace"]


def test_what_the_scoped_view_did_read_is_still_judged(nova):
    report = audit_snapshot(hidden(nova, namespace_scoped("nova-backend")), namespaces=["nova-backend"])
    own = [e for e in report.edges if e.reference.host == "postgres"]
    assert own and all(e.status == "ok" for e in own), "Service, policies and endpoints of nova-backend were read"


def test_an_incomplete_audit_is_not_ok_and_says_incomplete(nova):
    report = audit_snapshot(hidden(nova, namespace_scoped("nova-backend")), namespaces=["nova-backend"])
    assert not report.broken and report.unverified
    assert report.ok is False and report.complete is False
    summary = report.summary()
    assert summary["complete"] is False and summary["unverified"] == len(report.unverified)
    assert summary_line(report).startswith(f"INCOMPLETE: none of {len(report.edges)} edges broken, ")
    assert f"{len(report.unverified)} unverified" in summary_line(report)
    report.raise_for_broken()  # unchanged: only broken edges raise


def test_unreadable_policies_leave_ok_edges_open_but_not_names_that_cannot_resolve(nova):
    gaps = [Gap("NetworkPolicy", "nova-backend", FORBIDDEN)]
    before, after = statuses(audit_snapshot(nova)), statuses(audit_snapshot(hidden(nova, gaps)))
    changed = {edge: (before[edge], after[edge]) for edge in before if before[edge] != after[edge]}
    assert changed and set(changed.values()) == {("ok", "unverified")}
    assert all(edge.startswith("nova-backend ") or "nova-backend" in edge for edge in changed)
    assert [s for e, s in after.items() if s == "dns-unresolvable"] == ["dns-unresolvable"] * 4
    edge = next(e for e in audit_snapshot(hidden(nova, gaps)).edges if e.status == "unverified")
    assert "list networkpolicies in nova-backend: forbidden" in edge.detail


def test_a_denial_that_needs_namespace_labels_is_unverified_without_the_namespace_list(nova):
    """kafka admits namespaces labelled environment=prod: without the labels, every caller looked denied."""
    gaps = [Gap("Namespace", None, FORBIDDEN)]
    report = audit_snapshot(hidden(nova, gaps))
    to_kafka = [
        e
        for e in report.edges
        if e.resolves_to is not None and e.resolves_to.namespace == "kafka" and e.reference.namespace != "kafka"
    ]
    assert to_kafka and not [e for e in report.edges if e.status == "blocked" and not e.reference.routing]
    for edge in to_kafka:
        assert edge.status == "unverified"
        assert edge.detail.startswith("cannot be verified (list namespaces: forbidden); from what was read: blocked: ")
    inside = next(e for e in report.edges if e.reference.namespace == "kafka")
    assert inside.status == "ok", "a label selector can only deny: an allowed edge stays ok"


def test_an_audit_that_read_nothing_says_so(nova):
    everything = [Gap("Namespace", None, FORBIDDEN), *(Gap(k, None, FORBIDDEN) for k in SNAPSHOT_KINDS[1:])]
    report = audit_snapshot(hidden(nova, everything))
    assert report.edges == ()
    assert report.nothing_read == "no workload could be read (list deployments: forbidden)"
    assert not report.ok
    assert summary_line(report).startswith("INCOMPLETE: none of 0 edges broken, no workload could be read")


def test_services_alone_unreadable_is_nothing_read_too(nova):
    report = audit_snapshot(hidden(nova, [Gap("Service", None, FORBIDDEN)]))
    assert report.nothing_read == "no Service could be read (list services: forbidden)"


def test_gaps_that_no_verdict_needs_leave_the_audit_complete(nova):
    report = audit_snapshot(hidden(nova, [Gap("PersistentVolumeClaim", None, FORBIDDEN)]))
    assert report.gaps and report.complete and not report.unverified


def test_a_broken_and_incomplete_audit_says_both(nova):
    gaps = [Gap("NetworkPolicy", "nova-feed", FORBIDDEN)]
    line = summary_line(audit_snapshot(hidden(nova, gaps)))
    assert line.startswith("BROKEN: 5 of 26 edges (4 dns-unresolvable, 1 blocked); INCOMPLETE: 2 unverified")


def test_saved_snapshots_keep_where_a_kind_was_read(nova, tmp_path):
    snapshot = hidden(nova, namespace_scoped("nova-backend"))
    snapshot.save(tmp_path / "s.json")
    loaded = load_snapshot_file(tmp_path / "s.json")
    assert loaded.gaps == snapshot.gaps
    assert statuses(audit_snapshot(loaded)) == statuses(audit_snapshot(snapshot))


def test_the_no_broken_edges_criterion_does_not_pass_on_what_it_could_not_verify(nova):
    report = audit_snapshot(hidden(nova, [Gap("NetworkPolicy", "nova-gateway", FORBIDDEN)]))
    context = CheckContext(CriteriaSettings(), _report=report)
    outcome = no_broken_edges({"namespaces": ["nova-gateway"]}, context)
    assert not outcome.passed
    from_pods = [x for x in outcome.offenders if "/httproute/" not in x]  # the route's grant needs no policy read
    assert from_pods and len(outcome.offenders) == len(from_pods) + 1
    assert all(": unverified: cannot be verified (list networkpolicies in" in x for x in from_pods)
    assert no_broken_edges({"namespaces": ["nova-gateway"], "statuses": ["dns-unresolvable"]}, context).passed


@pytest.fixture(scope="module")
def scoped(nova) -> Report:
    return audit_snapshot(hidden(nova, namespace_scoped("nova-backend")), namespaces=["nova-backend"])


def test_the_table_shows_unverified_edges_with_the_missing_permission(scoped):
    text = scoped.render("table")
    rows = [line for line in text.splitlines() if line.startswith("│ unverified │")]
    assert len(rows) == len(scoped.unverified) and all("cannot be verified (list" in row for row in rows)
    assert text.rstrip().splitlines()[-1].startswith("INCOMPLETE: none of")
    assert "gap: Service outside nova-backend not read: forbidden" in text


def test_json_carries_the_status_the_counts_and_where_a_kind_was_read(scoped):
    doc = json.loads(scoped.render("json"))
    assert doc["summary"]["complete"] is False
    assert doc["summary"]["by_status"]["unverified"] == doc["summary"]["unverified"] > 0
    gap = next(g for g in doc["gaps"] if g["kind"] == "Service")
    assert gap == {
        "kind": "Service",
        "namespace": None,
        "reason": FORBIDDEN,
        "read_in": ["nova-backend"],
        "verb": "list",
    }


def test_markdown_and_html_say_incomplete(scoped):
    markdown = scoped.render("markdown")
    assert markdown.startswith("# novadiag audit: INCOMPLETE\n")
    assert f"## Unverified edges ({len(scoped.unverified)})" in markdown
    assert f"None among the edges it could judge; {len(scoped.unverified)} could not be verified." in markdown
    html = scoped.render("html")
    assert '<span class="verdict warn" id="nd-verdict">INCOMPLETE</span>' in html
    assert '<span class="badge s-unverified">unverified</span>' in html
    assert f"Nothing it could judge is broken; {len(scoped.unverified)} could not be verified." in html


def test_junit_skips_unverified_edges_and_marks_the_run_incomplete(scoped):
    root = ET.fromstring(scoped.render("junit"))
    skipped = [s.get("message") or "" for s in root.iter("skipped")]
    assert sum(m.startswith("unverified: cannot be verified (") for m in skipped) == len(scoped.unverified)
    assert {p.get("value") for p in root.iter("property") if p.get("name") == "complete"} == {"false"}
    assert not list(root.iter("failure"))


def test_the_frame_has_an_unverified_category(scoped):
    frame = scoped.to_frame()
    assert "unverified" in frame["status"].cat.categories
    assert (frame["status"] == "unverified").sum() == len(scoped.unverified)
    assert not frame.loc[frame["status"] == "unverified", "broken"].any()


def test_a_kind_the_api_server_does_not_serve_hides_nothing(nova):
    """Without the NetworkPolicy API there are no policies: ok edges are ok, not unverified."""
    report = audit_snapshot(hidden(nova, [Gap("NetworkPolicy", None, NOT_SERVED)]))
    assert report.gaps and not report.unverified and report.complete


def test_drawings_do_not_paint_unverified_edges_as_ok(scoped):
    svg = ET.fromstring(scoped.render("svg"))
    classes = [p.get("class") or "" for p in svg.iter("{http://www.w3.org/2000/svg}path")]
    assert "nd-link nd-unverified" in classes
    assert any(t.text == "unverified" for t in svg.iter("{http://www.w3.org/2000/svg}text")), "the legend says so"
    assert 'color="#0969da"' in scoped.render("dot")
    assert "stroke:#0969da" in scoped.render("mermaid")


def test_an_edge_names_three_missing_permissions_and_counts_the_rest(nova):
    forbidden = ["nova", "nova-auth", "nova-content", "nova-feed", "nova-media"]
    report = audit_snapshot(hidden(nova, [Gap("Service", ns, FORBIDDEN) for ns in forbidden]))
    unknown = [e for e in report.edges if e.detail.startswith("cannot be verified (list services in nova: forbidden; ")]
    assert unknown
    assert all("; 2 more); from what was read: unknown-target: " in e.detail for e in unknown)
