"""Probe pods that cannot do their job: what the report says, and that nothing is left behind.

Image pulls that fail, pods no node can take (a nodeSelector), pods deleted
by someone else and watch streams that keep breaking happen for real in the
lab. What the lab's kubelet cannot do — never start a container, enforce a
memory limit — is what the kubelet or the kernel would report instead: those
tests read the cluster through a client that rewrites the probe pods' status
(and log) the way a real cluster would show them, while the pods themselves
are really created and deleted.

In every case the static verdicts stand, each probe says ``not-run`` with the
cause, a ``probe-not-run`` finding per pod names it, and the cluster holds no
novadiag object afterwards. Workload pods stuck Pending are named, with their
reason, in the finding about the Service they leave without endpoints.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability_support import edge_summary, leftovers, variant

import novadiag
from novadiag.cli import main
from novadiag.kube import KubeClient, KubeSettings
from novadiag.lab import Lab
from novadiag.listing import load_cluster_snapshot
from novadiag.pipeline import audit_snapshot, probe_report
from novadiag.probing import ProbeSettings
from novadiag.probing.groups import MANAGED_BY

pytestmark = pytest.mark.lab

UNPULLABLE = "registry.invalid/novadiag-probe:1"
Rewrite = Callable[[dict[str, Any]], dict[str, Any]]


@pytest.fixture(scope="module")
def pull_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Nova, with images of registry.invalid unpullable."""
    scenario = variant(tmp_path_factory.mktemp("probe-pods"), images={"unpullable": ["registry.invalid/*"]})
    with Lab(scenario=str(scenario), state_dir=tempfile.mkdtemp(prefix="nd-probe-pods-")) as lab:
        yield lab


@pytest.fixture
def clean_lab(pull_lab: Lab) -> Iterator[Lab]:
    pull_lab.clear_faults()
    yield pull_lab
    pull_lab.clear_faults()
    assert leftovers(pull_lab.kubeconfig) == []


@pytest.fixture(scope="module")
def static(pull_lab: Lab) -> novadiag.Report:
    return novadiag.audit(kubeconfig=pull_lab.kubeconfig, probe=False)


class SeenAs(KubeClient):
    """A client that shows probe pods with a status (and log) a real cluster would give."""

    def __init__(self, kubeconfig: str, rewrite: Rewrite, *, log: str | None = None) -> None:
        super().__init__(KubeSettings(kubeconfig=kubeconfig))
        self._rewrite = rewrite
        self._log = log

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        obj = super().get(kind, namespace, name)
        return self._rewrite(obj) if kind == "Pod" and obj is not None else obj

    def watch_raw(self, kind: str, **options: Any) -> Iterator[dict[str, Any]]:
        for event in super().watch_raw(kind, **options):
            if event.get("type") in ("ADDED", "MODIFIED"):
                event = {**event, "object": self._rewrite(event["object"])}
            yield event

    def read_log(self, namespace: str, pod: str, *, container: str | None = None) -> str:
        return self._log if self._log is not None else super().read_log(namespace, pod, container=container)


def probe_with(client: KubeClient, report: novadiag.Report, **settings: Any) -> novadiag.Report:
    return probe_report(client, report, ProbeSettings(**settings))


def static_report(lab: Lab) -> novadiag.Report:
    with KubeClient(KubeSettings(kubeconfig=lab.kubeconfig)) as client:
        return audit_snapshot(load_cluster_snapshot(client))


def with_status(status: dict[str, Any]) -> Rewrite:
    return lambda pod: {**pod, "status": status}


def assert_static_verdicts_stand(report: novadiag.Report, static: novadiag.Report, cause: str) -> None:
    """Nothing observed: the static verdicts stand, each probe says not-run, and a finding per pod says why."""
    assert report.probes["ran"] == 0
    assert edge_summary(report) == edge_summary(static)
    probed = [e for e in report.edges if e.probe is not None]  # routing edges too: in their controller's pod
    assert probed, "every probed edge carries the probe's error"
    for edge in probed:
        assert edge.verdict_from == "static"
        assert cause in edge.probe.error, edge.probe.error
        assert edge.probe.dns == "not-run" and edge.probe.agrees is None
    not_run = [f.message for f in report.findings if f.code == "probe-not-run"]
    assert len(not_run) == report.probes["groups"] and all(cause in m for m in not_run), not_run


def test_image_pull_backoff(clean_lab, static):
    report = novadiag.audit(kubeconfig=clean_lab.kubeconfig, probe_settings=ProbeSettings(image=UNPULLABLE, timeout=20))
    assert_static_verdicts_stand(report, static, "cannot start: ImagePullBackOff")
    assert report.probes["wall_seconds"] < 10, "a stuck pull is seen at once, not at the deadline"


def test_image_pull_backoff_on_the_command_line_is_exit_2_with_the_cause(clean_lab, tmp_path: Path, capsys):
    code = main(
        ["audit", "--kubeconfig", clean_lab.kubeconfig, "--probe-image", UNPULLABLE, "-o", str(tmp_path / "r.json")]
    )
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert err[-1].startswith("novadiag: error: no probe pod could run: probe pod ")
    assert "ImagePullBackOff" in err[-1]
    assert (tmp_path / "r.json").stat().st_size > 0, "the static report is still written"


def test_pending_unschedulable(clean_lab, static):
    """Probe pods whose nodeSelector no node matches: the lab's kubelet leaves them unscheduled, as a scheduler does."""
    with KubeClient(KubeSettings(kubeconfig=clean_lab.kubeconfig)) as client:
        report = probe_with(client, static_report(clean_lab), timeout=20, node_selector={"disktype": "ssd"})
    assert_static_verdicts_stand(report, static, "cannot start: Unschedulable: 0/1 nodes are available")
    assert report.probes["wall_seconds"] < 10, "an unschedulable pod is seen at once, not at the deadline"


def stuck_objects() -> list[tuple[str, dict[str, Any]]]:
    """A caller of Services whose pods stay Pending: one fits no node (behind a headless Service too), one's
    image cannot be pulled."""

    def deployment(name: str, **pod: Any) -> dict[str, Any]:
        container = {"name": name, "image": pod.pop("image", "stuck/app:1"), **pod.pop("container", {})}
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": "stuck"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container], **pod}},
            },
        }

    def service(name: str, app: str | None = None, **spec: Any) -> dict[str, Any]:
        spec = {"selector": {"app": app or name}, "ports": [{"name": "http", "port": 8080}], **spec}
        return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "stuck"}, "spec": spec}

    env = [
        {"name": "UNPLACED_URL", "value": "http://unplaced:8080"},
        {"name": "UNPULLED_URL", "value": "unpulled:8080"},
        {"name": "HEADLESS_URL", "value": "unplaced-headless:8080"},
    ]
    return [
        ("Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "stuck"}}),
        ("Deployment", deployment("unplaced", nodeSelector={"disktype": "ssd"})),
        ("Deployment", deployment("unpulled", image="registry.invalid/app:1")),
        ("Deployment", deployment("caller", container={"env": env})),
        ("Service", service("unplaced")),
        ("Service", service("unpulled")),
        ("Service", service("unplaced-headless", "unplaced", clusterIP="None")),
    ]


def test_services_whose_pods_are_pending_say_why_they_have_no_endpoint(clean_lab):
    objects = stuck_objects()
    with KubeClient(KubeSettings(kubeconfig=clean_lab.kubeconfig)) as admin:
        for kind, body in objects:
            admin.create(kind, None if kind == "Namespace" else "stuck", body)
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and len(list(admin.list_raw("Pod", namespace="stuck"))) < 3:
                time.sleep(0.2)
            time.sleep(1.0)  # the kubelet's next pass writes the waiting reasons
            report = novadiag.audit(kubeconfig=clean_lab.kubeconfig, namespaces=["stuck"])
        finally:
            for kind, body in reversed(objects):
                admin.delete(kind, None if kind == "Namespace" else "stuck", body["metadata"]["name"])
    assert {e.reference.env: e.status for e in report.edges} == {
        "UNPLACED_URL": "no-endpoints",
        "UNPULLED_URL": "no-endpoints",
        "HEADLESS_URL": "no-endpoints",
    }
    headless = next(e for e in report.edges if e.reference.env == "HEADLESS_URL")
    assert headless.probe.dns == "nxdomain" and headless.probe.agrees is True, "NXDOMAIN is what a headless one says"
    assert all(e.verdict_from == "probe" and e.probe.agrees for e in report.edges)
    assert not [f for f in report.findings if f.code == "probe-disagrees"]
    idle = {f.object.name: f.message for f in report.findings if f.code == "service-selects-nothing"}
    assert idle["unplaced"].startswith(
        "Service stuck/unplaced has no ready endpoint: its 1 pod(s) are Pending (Unschedulable: 0/1 nodes are available"
    )
    assert idle["unpulled"] == (
        "Service stuck/unpulled has no ready endpoint: its 1 pod(s) are Pending "
        '(ImagePullBackOff (Back-off pulling image "registry.invalid/app:1"))'
    )


def test_pending_forever_ends_at_the_probe_deadline(clean_lab, static):
    creating = with_status(
        {
            "phase": "Pending",
            "containerStatuses": [
                {"name": "probe", "ready": False, "state": {"waiting": {"reason": "ContainerCreating"}}}
            ],
        }
    )
    with SeenAs(clean_lab.kubeconfig, creating) as client:
        # all nine pods at once: one wave, so the run ends at the one deadline
        report = probe_with(client, static_report(clean_lab), timeout=4, concurrency=9)
    assert_static_verdicts_stand(report, static, "did not finish within 4s (phase: Pending)")
    assert report.probes["wall_seconds"] < 8


class SlowToStart(SeenAs):
    """Shows each probe pod as ContainerCreating for its first ``hold`` seconds, then as it really is."""

    def __init__(self, kubeconfig: str, hold: float) -> None:
        self._first_seen: dict[str, float] = {}
        self._hold = hold
        super().__init__(kubeconfig, self._held)

    def _held(self, pod: dict[str, Any]) -> dict[str, Any]:
        first = self._first_seen.setdefault(pod["metadata"]["name"], time.monotonic())
        if time.monotonic() - first >= self._hold:
            return pod
        waiting = {"name": "probe", "ready": False, "state": {"waiting": {"reason": "ContainerCreating"}}}
        return {**pod, "status": {"phase": "Pending", "containerStatuses": [waiting]}}


def test_the_probe_deadline_is_per_pod_so_later_waves_still_run(clean_lab, static):
    """Nine groups, two at a time, each pod 3 s to start: the run outlasts one pod's deadline and all succeed."""
    with SlowToStart(clean_lab.kubeconfig, hold=3.0) as client:
        report = probe_with(client, static_report(clean_lab), timeout=8, concurrency=2)
    assert report.probes["groups"] == 9  # eight namespaces' env edges, and ingress-nginx for the Ingress
    assert report.probes["failed"] == []
    assert report.probes["ran"] == 9
    assert report.probes["wall_seconds"] > 8, "five waves of pods that take at least 3 s each"
    probed = [e for e in report.edges if e.probe is not None]
    assert probed and all(e.probe.dns != "not-run" for e in probed), "every probed edge was observed"


def test_oom_killed(clean_lab, static):
    oom = with_status(
        {
            "phase": "Failed",
            "containerStatuses": [
                {
                    "name": "probe",
                    "ready": False,
                    "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
                }
            ],
        }
    )
    with SeenAs(clean_lab.kubeconfig, oom, log="resolving 3 names\n") as client:
        report = probe_with(client, static_report(clean_lab), timeout=20)
    assert_static_verdicts_stand(report, static, "ended OOMKilled (exit code 137) without a result")


def test_probe_pods_deleted_by_someone_else(clean_lab, static):
    stop = threading.Event()
    deleted: list[str] = []

    def delete_probe_pods() -> None:
        with KubeClient(KubeSettings(kubeconfig=clean_lab.kubeconfig)) as admin:
            while not stop.is_set():
                for pod in admin.list_raw("Pod", label_selector=f"{MANAGED_BY}=novadiag"):
                    meta = pod["metadata"]
                    if admin.delete("Pod", meta["namespace"], meta["name"]):
                        deleted.append(meta["name"])
                stop.wait(0.05)

    deleter = threading.Thread(target=delete_probe_pods)
    deleter.start()
    try:
        report = novadiag.audit(kubeconfig=clean_lab.kubeconfig, probe_settings=ProbeSettings(timeout=20))
    finally:
        stop.set()
        deleter.join()
    assert deleted
    errors = [o["error"] for o in report.probes["failed"]]
    assert errors and all("was deleted before it finished" in e for e in errors)
    assert edge_summary(report) == edge_summary(static)  # what no pod saw keeps its static verdict


def test_watch_streams_that_keep_breaking_fall_back_to_polling(clean_lab):
    clean_lab.inject_fault(verb="watch", resource="pods", drop_connection=True)
    report = novadiag.audit(kubeconfig=clean_lab.kubeconfig, probe_settings=ProbeSettings(timeout=30))
    assert report.probes["ran"] == report.probes["groups"] == 9
    assert report.probes["failed"] == []
