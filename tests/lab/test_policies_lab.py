"""NetworkPolicies through the lab's API: listed like any kind, judged as from manifests.

The Nova scenario stores its policies without enforcing them
(``network_policies: store``), so what is checked here is the path a real cluster takes: the policies come back from the
API server's list calls and give the same verdicts and the same policies view as
the manifests they were created from.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import novadiag
from novadiag.kube import KubeSettings
from novadiag.lab import Lab
from novadiag.netpol.view import policy_view
from novadiag.pipeline import audit_snapshot, read_snapshot
from novadiag.source import Cluster

pytestmark = pytest.mark.lab

MANIFESTS = Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova" / "manifests"


@pytest.fixture(scope="module")
def lab_report() -> Iterator[novadiag.Report]:
    with Lab.private("nova", prefix="nd-policies-") as lab:  # a failed start is an error, never a skip
        snap = read_snapshot(Cluster(KubeSettings(kubeconfig=lab.kubeconfig), kind="lab"))
        yield audit_snapshot(snap)


def test_the_lab_lists_the_nova_policies(lab_report):
    assert len(lab_report.snapshot.of("NetworkPolicy")) == 35


def test_no_lab_edge_is_blocked_as_none_is_from_the_manifests(lab_report):
    # (Other statuses differ for live reasons: user-service crash-loops, so it has no ready endpoint.)
    # The one blocked edge is the HTTPRoute without its ReferenceGrant, from either source; no policy blocks.
    from_files = novadiag.audit(manifests=[MANIFESTS])
    blocked = [e.id for e in lab_report.edges if e.status == "blocked"]
    assert blocked == [e.id for e in from_files.edges if e.status == "blocked"]
    assert [e.source.kind for e in lab_report.edges if e.status == "blocked"] == ["HTTPRoute"]
    assert len(lab_report.edges) == len(from_files.edges)


def test_lab_policies_view_matches_the_manifests_view(lab_report):
    static = policy_view(novadiag.audit(manifests=[MANIFESTS]))
    live = policy_view(lab_report)

    def summary(view):
        return {
            (p.ref, tuple(sorted(p.allows)), tuple(sorted(p.denies))) for ns in view.namespaces for p in ns.policies
        }

    assert summary(live) == summary(static)
