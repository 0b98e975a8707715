"""The crash-loop finding: which pods, how often restarted, and the broken edge that likely causes it."""

from __future__ import annotations

from typing import Any

import pytest

from novadiag.findings import crashlooping_pods
from novadiag.model import SourceInfo
from novadiag.snapshot import build_snapshot


def looping_pod(name: str, restarts: int) -> dict[str, Any]:
    waiting = {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting failed container"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "nova-backend",
            "ownerReferences": [{"kind": "ReplicaSet", "name": "user-service-7cf8746874", "controller": True}],
        },
        "spec": {"containers": [{"name": "user-service", "image": "user-service:1"}]},
        "status": {
            "phase": "Running",
            "containerStatuses": [{"name": "user-service", "restartCount": restarts, "state": {"waiting": waiting}}],
        },
    }


@pytest.mark.parametrize(
    ("restarts", "expected"),
    [
        ((3, 5), "2 pod(s) of nova-backend/user-service in CrashLoopBackOff (up to 5 restart(s): user-service-a-1"),
        ((0, 0), "2 pod(s) of nova-backend/user-service in CrashLoopBackOff (user-service-a-1, user-service-a-2)"),
    ],
)
def test_the_message_counts_restarts_only_once_there_are_some(restarts: tuple[int, int], expected: str) -> None:
    pods = [looping_pod(f"user-service-a-{i}", n) for i, n in enumerate(restarts, start=1)]
    findings = crashlooping_pods(build_snapshot(pods, SourceInfo("manifests")), [])
    assert len(findings) == 1
    assert findings[0].code == "crashloop" and findings[0].message.startswith(expected), findings[0].message
