"""The API server slow, refusing, cutting connections, expiring tokens: what an audit does.

Each test injects one fault into the shared Nova lab and checks what a user
would notice: the same report as without the fault when the fault is
transient, or one clear line and exit code 2 when it is not — never a hang,
never a traceback, never a probe object left in the cluster.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from reliability_support import FULL_ACCESS, edge_summary, leftovers, metrics, mint_kubeconfig, reset_metrics

from novadiag.cli import main
from novadiag.errors import ClusterUnreachable
from novadiag.kube import ApiError, ExpiredError, KubeClient, KubeSettings
from novadiag.listing import load_cluster_snapshot
from novadiag.model import SNAPSHOT_KINDS
from novadiag.pipeline import audit_cluster
from novadiag.snapshot import Snapshot

pytestmark = pytest.mark.lab

FAST = {"backoff_base": 0.01, "backoff_cap": 0.05}


def settings(kubeconfig: str, **changes: object) -> KubeSettings:
    return KubeSettings(kubeconfig=kubeconfig, **{**FAST, **changes})  # type: ignore[arg-type]


def test_429_retry_after_is_honoured(lab):
    lab.inject_fault(verb="list", resource="services", status=429, retry_after=2, times=1)
    reset_metrics(lab)
    started = time.monotonic()
    with KubeClient(settings(lab.kubeconfig)) as client:
        services = list(client.list_raw("Service"))
    waited = time.monotonic() - started
    assert services
    assert waited >= 2.0, "the client retried before the server's Retry-After"
    assert metrics(lab)["list services"] == 2


def test_429_on_every_kind_once_leaves_the_report_unchanged(lab, baseline):
    for resource in ("namespaces", "services", "pods", "deployments", "configmaps", "secrets"):
        lab.inject_fault(verb="list", resource=resource, status=429, retry_after=0, times=1)
    report = audit_cluster(settings(lab.kubeconfig), probe=False)
    assert edge_summary(report) == edge_summary(baseline)
    assert report.gaps == ()


def test_transient_500_and_503_are_retried_and_the_report_is_unchanged(lab, baseline):
    lab.inject_fault(verb="list", resource="pods", status=500, times=2)
    lab.inject_fault(verb="list", resource="deployments.apps", status=503, retry_after=0, times=2)
    reset_metrics(lab)
    report = audit_cluster(settings(lab.kubeconfig), probe=False)
    assert edge_summary(report) == edge_summary(baseline)
    counts = metrics(lab)
    assert counts["list pods"] == 3 and counts["list deployments.apps"] == 3


def test_persistent_503_stops_after_bounded_retries(lab):
    lab.inject_fault(verb="list", resource="services", status=503, retry_after=0)
    reset_metrics(lab)
    with KubeClient(settings(lab.kubeconfig, max_retries=3)) as client, pytest.raises(ApiError) as caught:
        list(client.list_raw("Service"))
    assert caught.value.status == 503
    assert metrics(lab)["list services"] == 4  # the first try and three retries


def test_persistent_500_is_one_line_and_exit_2(lab, capsys):
    lab.inject_fault(verb="list", resource="services", status=500, message="etcdserver: leader changed")
    started = time.monotonic()
    code = main(["audit", "--kubeconfig", lab.kubeconfig, "--no-probe"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [
        "novadiag: error: GET /api/v1/services: etcdserver: leader changed",
    ]
    assert time.monotonic() - started < 20, "retries are bounded in time too"


def test_kinds_listed_in_parallel_make_the_same_snapshot_as_one_at_a_time(lab):
    progress: dict[int, list[str]] = {1: [], 4: []}
    with KubeClient(settings(lab.kubeconfig)) as client:
        one = load_cluster_snapshot(client, workers=1, progress=lambda kind, _n: progress[1].append(kind))
        four = load_cluster_snapshot(client, workers=4, progress=lambda kind, _n: progress[4].append(kind))
    assert _names(one) == _names(four)  # names, not whole objects: crash-looping pods change status between lists
    assert progress[1] == progress[4] == list(SNAPSHOT_KINDS), "progress follows kind order, not finishing order"
    assert one.count()["Deployment"] > 0


def test_a_failing_kind_does_not_wait_for_another_kinds_retry_after(lab):
    """Secrets are throttled with Retry-After 30 while ConfigMaps fail for good: the run ends on the failure."""
    lab.inject_fault(verb="list", resource="secrets", status=503, retry_after=30)
    lab.inject_fault(verb="list", resource="configmaps", status=500, message="etcdserver: request timed out")
    slow_failure = settings(lab.kubeconfig, max_retries=2, backoff_base=0.5, backoff_cap=0.5)
    reset_metrics(lab)
    started = time.monotonic()
    with KubeClient(slow_failure) as client, pytest.raises(ApiError, match="configmaps"):
        load_cluster_snapshot(client, workers=4)
    assert time.monotonic() - started < 20, "the Secret worker slept out its Retry-After"
    assert metrics(lab).get("list secrets", 0) >= 1, "the Secret list had started (else this proves nothing)"


def _names(snapshot: Snapshot) -> dict[str, list[str]]:
    return {
        kind: [f"{o['metadata'].get('namespace')}/{o['metadata']['name']}" for o in snapshot.of(kind)]
        for kind in SNAPSHOT_KINDS
    }


def test_a_kind_that_keeps_failing_ends_the_parallel_listing_and_no_list_thread_survives(lab):
    lab.inject_fault(verb="list", resource="configmaps", status=500, message="etcdserver: request timed out")
    with KubeClient(settings(lab.kubeconfig, max_retries=2)) as client, pytest.raises(ApiError) as caught:
        load_cluster_snapshot(client, workers=4)
    assert caught.value.status == 500 and "configmaps" in str(caught.value)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("novadiag-list")]


def test_dropped_connections_are_retried(lab, baseline):
    lab.inject_fault(verb="list", resource="pods", drop_connection=True, times=2)
    lab.inject_fault(verb="list", resource="configmaps", drop_connection=True, times=1)
    report = audit_cluster(settings(lab.kubeconfig), probe=False)
    assert edge_summary(report) == edge_summary(baseline)


def test_a_server_that_always_drops_is_unreachable_with_one_line(lab, capsys):
    lab.inject_fault(verb="list", resource="namespaces", drop_connection=True)
    code = main(["audit", "--kubeconfig", lab.kubeconfig, "--no-probe"])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("novadiag: error: cannot reach the API server at https://127.")


def test_a_slow_answer_past_the_client_timeout_is_retried(lab, baseline):
    lab.inject_fault(verb="list", resource="services", latency_ms=2500, times=1)
    started = time.monotonic()
    report = audit_cluster(settings(lab.kubeconfig, request_timeout=1.0), probe=False)
    assert edge_summary(report) == edge_summary(baseline)
    assert time.monotonic() - started < 8


def test_a_server_slower_than_the_timeout_fails_in_bounded_time(lab):
    lab.inject_fault(verb="list", resource="services", latency_ms=3000)
    started = time.monotonic()
    with pytest.raises(ClusterUnreachable, match="timed out"):
        audit_cluster(settings(lab.kubeconfig, request_timeout=0.5, max_retries=2), probe=False)
    assert time.monotonic() - started < 5  # three tries of 0.5 s, not three of 3 s


def test_request_timeout_on_the_command_line_bounds_each_answer(lab, capsys):
    """A Services list that takes 1.5 s: fine with the default 30 s, a timeout with --request-timeout 0.5."""
    lab.inject_fault(verb="list", resource="services", latency_ms=1500)
    assert main(["audit", "--kubeconfig", lab.kubeconfig, "--no-probe", "--format", "json"]) == 1  # Nova's broken edges
    capsys.readouterr()
    code = main(["audit", "--kubeconfig", lab.kubeconfig, "--no-probe", "--request-timeout", "0.5"])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("novadiag: error: ") and "timed out" in err[0], err


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_bad_request_timeout_is_refused_by_name(value, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["audit", "--no-probe", "--request-timeout", value])
    assert exited.value.code == 2
    assert "--request-timeout" in capsys.readouterr().err


def test_an_expired_continue_token_restarts_the_list(lab, baseline):
    lab.inject_fault(expire_continue_tokens=True, verb="list", resource="pods", times=1)
    reset_metrics(lab)
    report = audit_cluster(settings(lab.kubeconfig, page_size=5), probe=False)
    assert edge_summary(report) == edge_summary(baseline)
    assert len(report.snapshot.of("Pod")) == len(baseline.snapshot.of("Pod"))
    pages = -(-len(baseline.snapshot.of("Pod")) // 5)
    assert metrics(lab)["list pods"] == pages + 2  # the expired page, then every page again


def test_continue_tokens_that_always_expire_stop_the_audit(lab, capsys):
    lab.inject_fault(expire_continue_tokens=True, verb="list", resource="pods")
    with KubeClient(settings(lab.kubeconfig, page_size=5)) as client, pytest.raises(ExpiredError):
        list(client.list_raw("Pod"))  # restarted once, not forever


def test_token_revoked_while_listing_is_one_line_and_exit_2(lab, tmp_path: Path, capsys):
    kubeconfig = mint_kubeconfig(lab, tmp_path, FULL_ACCESS, user="expiring")
    token = Path(kubeconfig).read_text().split("token: ")[1].split()[0]
    lab.inject_fault(revoke_token=token, after_requests=4)
    code = main(["audit", "--kubeconfig", kubeconfig, "--no-probe", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""  # no partial report that looks complete
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("novadiag: error: the API server rejected the credentials (401)")
    assert token not in captured.err


def test_token_revoked_while_probing_names_what_is_left_and_cleanup_removes_it(lab, baseline, tmp_path: Path, capsys):
    kubeconfig = mint_kubeconfig(lab, tmp_path, FULL_ACCESS, user="expiring-later")
    token = Path(kubeconfig).read_text().split("token: ")[1].split()[0]
    reset_metrics(lab)
    audit_cluster(KubeSettings(kubeconfig=kubeconfig), probe=False)
    listing = sum(metrics(lab).values())
    # the lists, one probe group's ConfigMap and Pod, then nothing works any more
    lab.inject_fault(revoke_token=token, after_requests=listing + 2)
    code = main(["audit", "--kubeconfig", kubeconfig, "--probe-concurrency", "1", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert "rejected the credentials (401)" in lines[0]
    assert "probe object(s) could not be deleted (run 'novadiag cleanup' with valid credentials)" in lines[0]
    assert leftovers(lab.kubeconfig), "the revoked token could delete nothing"
    assert main(["cleanup", "--kubeconfig", lab.kubeconfig]) == 0
    assert leftovers(lab.kubeconfig) == []
