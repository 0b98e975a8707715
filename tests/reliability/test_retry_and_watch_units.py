"""Backoff, jitter and watch resumption, pinned without a lab.

The lab tests show that transient faults are survived; these pin *how*: delays
grow, are capped, vary between clients (jitter, so a fleet of retrying
clients does not hammer a recovering API server in lockstep), never undercut
the server's ``Retry-After``, and a watch stream cut mid-way resumes from the
last resourceVersion it delivered.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from novadiag.errors import ClusterUnreachable
from novadiag.kube import KubeClient, KubeSettings, _json_lines
from novadiag.probing.runner import _PodWatch


def delays_of(monkeypatch: pytest.MonkeyPatch, calls: list[tuple[int, str | None]], **settings: Any) -> list[float]:
    """The sleeps a client's retry loop takes for ``(attempt, Retry-After)`` pairs."""
    client = object.__new__(KubeClient)  # only the settings are read: no kubeconfig needed
    client.settings = KubeSettings(**settings)
    slept: list[float] = []
    monkeypatch.setattr("novadiag.kube.time.sleep", slept.append)
    for attempt, retry_after in calls:
        client._sleep(attempt, retry_after)
    monkeypatch.undo()
    return slept


def test_backoff_grows_exponentially_and_is_capped(monkeypatch):
    slept = delays_of(monkeypatch, [(n, None) for n in range(1, 10)], backoff_base=0.2, backoff_cap=5.0)
    for attempt, delay in enumerate(slept, start=1):
        ceiling = min(5.0, 0.2 * 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling


def test_jitter_spreads_clients_retrying_at_the_same_moment(monkeypatch):
    random.seed(2)
    slept = delays_of(monkeypatch, [(4, None)] * 20)
    assert len({round(d, 6) for d in slept}) > 15


def test_retry_after_is_a_floor_and_is_capped_at_a_minute(monkeypatch):
    calls = [(1, "3"), (1, "86400"), (1, "Wed, 21 Oct 2015 07:28:00 GMT"), (1, "nan")]
    slept = delays_of(monkeypatch, calls, backoff_base=0.01, backoff_cap=0.01)
    assert slept[:2] == [3.0, 60.0]
    assert max(slept[2:]) <= 0.01  # unparseable: the plain backoff


def test_a_watch_stream_cut_mid_event_is_a_broken_stream_not_a_crash():
    chunks = [b'{"type": "ADDED", "object": {"metadata": {"name": "a"}}}\n{"type": "MODI']
    events = _json_lines(iter(chunks))
    assert next(events)["type"] == "ADDED"
    with pytest.raises(ClusterUnreachable, match="middle of an event"):
        next(events)


class _CutWatchClient:
    """Each watch delivers one event, then the connection drops."""

    def __init__(self) -> None:
        self.versions: list[str | None] = []

    def watch_raw(self, kind: str, *, resource_version: str | None = None, **_: Any) -> Iterator[dict[str, Any]]:
        self.versions.append(resource_version)
        n = len(self.versions)
        yield {"type": "MODIFIED", "object": {"metadata": {"name": f"pod-{n}", "resourceVersion": str(100 + n)}}}
        raise ClusterUnreachable("watch of /api/v1/pods broke: connection reset")


def test_a_cut_watch_resumes_from_the_last_resource_version():
    client = _CutWatchClient()
    with _PodWatch(client, "run") as watch:  # type: ignore[arg-type]
        names = [watch.next(timeout=5)["metadata"]["name"] for _ in range(3)]
    assert names == ["pod-1", "pod-2", "pod-3"]
    assert client.versions[:3] == [None, "101", "102"]
