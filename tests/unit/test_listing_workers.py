"""Kinds listed in parallel (novadiag.listing): an error ends every list, even one that yields nothing.

A client stands in for the API server here because what matters is when each
worker gives up, which a lab cannot slow down on purpose; like KubeClient, it
checks for cancellation before each request. The lab-backed tests of the same
code are in tests/reliability/test_api_faults.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from novadiag.errors import PermissionDenied
from novadiag.kube import ApiError, raise_if_cancelled
from novadiag.listing import load_cluster_snapshot

NAMESPACES = [f"team-{i:04d}" for i in range(2000)]


class NamespaceScopedClient:
    """Cluster-wide Secret lists are forbidden (so Secrets fall back to one list per namespace,
    each empty and a millisecond long) and the ConfigMap list fails outright."""

    context_name = "fake"
    host = "https://127.0.0.1:6443"

    def __init__(self) -> None:
        self.secret_lists = 0
        self.lock = threading.Lock()

    def list_raw(self, kind: str, *, namespace: str | None = None, **_: Any) -> Iterator[dict[str, Any]]:
        if kind == "Namespace":
            yield from ({"kind": "Namespace", "metadata": {"name": ns}} for ns in NAMESPACES)
        elif kind == "ConfigMap":
            raise ApiError("GET /api/v1/configmaps: etcdserver: request timed out", status=500)
        elif kind == "Secret" and namespace is None:
            raise PermissionDenied("secrets is forbidden at the cluster scope")
        elif kind == "Secret":
            raise_if_cancelled("GET", f"/api/v1/namespaces/{namespace}/secrets")  # as KubeClient.request does
            with self.lock:
                self.secret_lists += 1
            time.sleep(0.001)
            yield from ()


def test_a_failing_kind_stops_a_per_namespace_fallback_that_finds_nothing() -> None:
    client = NamespaceScopedClient()
    with pytest.raises(ApiError, match="configmaps"):
        load_cluster_snapshot(client, workers=4)  # type: ignore[arg-type]
    lists_at_the_error = client.secret_lists
    time.sleep(0.05)
    assert client.secret_lists == lists_at_the_error, "a list thread kept going after the error"
    assert lists_at_the_error < len(NAMESPACES), "the Secret fallback walked every namespace before stopping"
    assert not [t.name for t in threading.enumerate() if t.name.startswith("novadiag-list")]


def test_without_errors_the_fallback_lists_every_namespace() -> None:
    class Healthy(NamespaceScopedClient):
        def list_raw(self, kind: str, *, namespace: str | None = None, **kw: Any) -> Iterator[dict[str, Any]]:
            if kind == "ConfigMap":
                return iter(())
            return super().list_raw(kind, namespace=namespace, **kw)

    client = Healthy()
    snapshot = load_cluster_snapshot(client, workers=4)  # type: ignore[arg-type]
    assert client.secret_lists == len(NAMESPACES)
    assert snapshot.count()["Namespace"] == len(NAMESPACES)
    assert not snapshot.gaps
