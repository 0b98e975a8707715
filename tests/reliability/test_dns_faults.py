"""The cluster DNS failing under the probes: SERVFAIL, truncated or dropped UDP, slow answers.

The probe pods resolve with glibc against the lab's DNS server, so these are
the answers an application would get. What a user must see: DNS trouble
reported as DNS trouble (not as missing Services), answers that need TCP
still working, slow answers tolerated, and a run that ends on time even when
the DNS server never answers.
"""

from __future__ import annotations

from collections import Counter

import pytest
from reliability_support import edge_summary, leftovers

import novadiag
from novadiag.probing import ProbeSettings

pytestmark = pytest.mark.lab


def probed(lab, **settings: object) -> novadiag.Report:
    report = novadiag.audit(kubeconfig=lab.kubeconfig, probe_settings=ProbeSettings(**settings))  # type: ignore[arg-type]
    assert leftovers(lab.kubeconfig) == []
    return report


def in_cluster(report: novadiag.Report) -> list[novadiag.Edge]:
    """The edges a probe pod looks up by the names written: in-cluster names from workloads.

    Routing backends are probed too, by their Service's FQDN from the controller's namespace
    (tests/lab/test_probes_lab.py); a refused route's probe has nothing to agree with.
    """
    return [e for e in report.edges if e.status != "external" and not e.reference.routing]


def test_servfail_is_reported_as_the_cluster_dns_failing(lab):
    lab.set_dns_faults(servfail=True)
    report = probed(lab)
    assert {e.probe.dns for e in in_cluster(report)} == {"servfail"}
    assert {e.status for e in in_cluster(report)} == {"dns-unresolvable"}
    disagree = [f for f in report.findings if f.code == "probe-disagrees"]
    assert disagree and all(
        "the cluster DNS did not answer for a Service that exists (DNS servfail)" in f.message for f in disagree
    )


def test_truncated_udp_answers_fall_back_to_tcp(lab, baseline):
    lab.set_dns_faults(truncate_udp=True)
    report = probed(lab)
    assert report.probes["ran"] == 9
    assert edge_summary(report) == edge_summary(baseline)
    assert all(e.probe.agrees for e in in_cluster(report) if e.probe is not None)


def test_slow_answers_within_the_resolver_timeout_change_nothing(lab, baseline):
    lab.set_dns_faults(delay_ms=500)
    report = probed(lab)
    assert edge_summary(report) == edge_summary(baseline)
    assert Counter(e.probe.dns for e in in_cluster(report)) == Counter({"ok": 19, "nxdomain": 4})


def test_dropped_udp_ends_at_the_probe_deadline_with_static_verdicts(lab, baseline):
    # glibc waits 5 s x 2 tries per name and never falls back to TCP on silence: probes
    # would report DNS timeouts after ~35 s; a 6 s deadline keeps the run (and this test) short.
    lab.set_dns_faults(drop_udp=True)
    report = probed(lab, timeout=6, concurrency=9)  # all nine pods in one wave
    assert report.probes["wall_seconds"] < 10
    assert edge_summary(report) == edge_summary(baseline)
    for failed in report.probes["failed"]:  # our deadline, or the pod's activeDeadlineSeconds, whichever is first
        assert "did not finish within 6s" in failed["error"] or "DeadlineExceeded" in failed["error"]
