"""Run probe pods through the API and always clean up after them.

The loop keeps at most ``concurrency`` probe pods alive, launching the next
group as one finishes, and learns about pod phases from a cluster-wide watch
on the run's label (with a periodic GET of the live pods as a safety net for a
watch that breaks). A pod's log is read as soon as it ends and the pod and its
ConfigMap are deleted right away, so a large run never holds more than
``concurrency`` pods.

Nothing survives a run: every object is recorded *before* the request that
creates it (a create whose answer never arrives — a dropped connection, Ctrl-C
mid-request — may still have happened; deleting what was never made is a
harmless 404), and a ``finally`` deletes them all — on success, error,
timeout, Ctrl-C, SIGTERM, SIGHUP (a closed terminal), SIGQUIT and SIGUSR1 (turned
into KeyboardInterrupt while a run is in progress). A second signal during that final cleanup is held until it ends,
so an impatient double Ctrl-C does not strand pods; the cleanup deletes in
parallel and gives up after :func:`cleanup_deadline` seconds, so a slow API
server cannot hold the terminal for minutes. What it could not delete is
named, in the report (``probes.leftovers``) and in the interruption. Revoked credentials (401)
end the run at once: nothing more can be created, observed or deleted, and
the error names what is left for ``novadiag cleanup``, which also sweeps what a
killed (SIGKILL) run could not.
"""

from __future__ import annotations

import json
import queue
import secrets
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from novadiag.errors import ClusterAccessError, NovadiagError, PermissionDenied, Unauthorized
from novadiag.kube import ApiError, KubeClient, cancelled_by
from novadiag.probing.groups import (
    CREATED,
    MANAGED_BY,
    RUN_ID,
    ProbeGroup,
    ProbeSettings,
    configmap_spec,
    pod_spec,
    resource_names,
    run_prefix,
)
from novadiag.signals import signals_held, stop_signals_as_interrupt

STUCK_REASONS = frozenset(
    {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError"}
)
PROBE_SCHEMA = "novadiag.probe/v1"
IN_FLIGHT_SETTLE = 3.0
"""Seconds cleanup keeps looking for objects whose create was sent but never answered."""
REFUSED = frozenset({400, 401, 403, 404, 422})
"""Answers to a create that prove nothing was made (a 409 means it exists; a 5xx may come after the write)."""

CLEANUP_WORKERS = 16
"""Deletes in flight at once when a run ends (one slow DELETE must not queue the others)."""

ProbeProgress = Callable[[dict[str, int]], None]
"""Called with counters ``created``, ``running``, ``done``, ``failed``, ``total``."""


@dataclass
class GroupOutcome:
    """What became of one probe group's pod."""

    group: ProbeGroup
    index: int
    pod: str
    phase: str | None = None
    document: dict[str, Any] | None = None
    error: str | None = None
    started: float | None = None
    finished: float | None = None
    forbidden: bool = False
    """RBAC refused to create the probe objects: a missing permission (a gap), not a failed probe."""

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started


@dataclass
class ProbeRun:
    """The result of one probe run: outcomes per group and what it cost."""

    run_id: str
    outcomes: list[GroupOutcome]
    pods_created: int = 0
    wall_seconds: float = 0.0
    leftovers: list[str] = field(default_factory=list)

    @property
    def any_ran(self) -> bool:
        return any(o.document is not None for o in self.outcomes)

    @property
    def failed(self) -> list[GroupOutcome]:
        """Probe pods that could have run but did not (RBAC refusals are gaps, not failures)."""
        return [o for o in self.outcomes if o.error and not o.forbidden]

    @property
    def forbidden(self) -> list[GroupOutcome]:
        return [o for o in self.outcomes if o.forbidden]

    def to_dict(self) -> dict[str, Any]:
        lifetimes = [o.seconds for o in self.outcomes if o.seconds is not None]
        return {
            "run_id": self.run_id,
            "groups": len(self.outcomes),
            "ran": sum(1 for o in self.outcomes if o.document is not None),
            "pods_created": self.pods_created,
            "wall_seconds": round(self.wall_seconds, 3),
            "slowest_pod_seconds": round(max(lifetimes), 3) if lifetimes else None,
            "median_pod_seconds": round(statistics.median(lifetimes), 3) if lifetimes else None,
            "failed": [{"namespace": o.group.namespace, "pod": o.pod, "error": o.error} for o in self.failed],
            "forbidden": [{"namespace": o.group.namespace, "error": o.error} for o in self.forbidden],
            "leftovers": list(self.leftovers),
        }


def run_probes(
    client: KubeClient,
    groups: Sequence[ProbeGroup],
    settings: ProbeSettings | None = None,
    *,
    progress: ProbeProgress | None = None,
) -> ProbeRun:
    """Run one probe pod per group; returns outcomes, never leaves objects behind."""
    settings = settings or ProbeSettings()
    run = ProbeRun(run_id=secrets.token_hex(4), outcomes=[])
    run.outcomes = [GroupOutcome(g, i, resource_names(run.run_id, i)) for i, g in enumerate(groups)]
    created: list[tuple[str, str, str]] = []
    unanswered: set[tuple[str, str, str]] = set()
    started = time.monotonic()
    with stop_signals_as_interrupt(), _PodWatch(client, run.run_id) as watch:
        try:
            try:
                _drive(client, run, settings, (created, unanswered), watch, progress)
            finally:
                with signals_held():
                    run.leftovers = _delete_in_parallel(client, created) + _settle(client, unanswered)
        except Unauthorized as exc:
            raise _unauthorized(exc, run.leftovers) from exc
        except KeyboardInterrupt as exc:
            if run.leftovers:
                raise ProbesInterrupted(run.leftovers) from exc
            raise
    run.pods_created = sum(1 for o in run.outcomes if o.started is not None)
    run.wall_seconds = time.monotonic() - started
    return run


@dataclass
class _Slots:
    """The probe pods holding one of the ``concurrency`` slots, and how one is given back."""

    client: KubeClient
    created: list[tuple[str, str, str]]
    counters: dict[str, int]
    active: dict[str, GroupOutcome] = field(default_factory=dict)

    def finish(self, outcome: GroupOutcome) -> None:
        """Count the pod as done or failed and delete its objects now, freeing its slot."""
        outcome.finished = time.monotonic()
        self.active.pop(outcome.pod, None)
        self.counters["failed" if outcome.error else "done"] += 1
        ns, created = outcome.group.namespace, self.created
        _delete_all(self.client, [c for c in created if c[1] == ns and c[2] == outcome.pod], forget_from=created)


def _drive(
    client: KubeClient,
    run: ProbeRun,
    settings: ProbeSettings,
    ledger: tuple[list[tuple[str, str, str]], set[tuple[str, str, str]]],
    watch: _PodWatch,
    progress: ProbeProgress | None,
) -> None:
    pending = deque(run.outcomes)
    counters = {"created": 0, "running": 0, "done": 0, "failed": 0, "total": len(run.outcomes)}
    slots = _Slots(client, ledger[0], counters)
    active = slots.active
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    last_poll = time.monotonic()
    while pending or active:
        while pending and len(active) < max(1, settings.concurrency):
            outcome = pending.popleft()
            if _launch(client, outcome, run.run_id, settings, stamp, ledger):
                active[outcome.pod] = outcome
                counters["created"] += 1
            else:
                counters["failed"] += 1
        pod = watch.next(timeout=0.25)
        if pod is None and time.monotonic() - last_poll > 2.0:
            last_poll = time.monotonic()
            for outcome in list(active.values()):
                _observe(slots, _get_pod(client, outcome), outcome)
        elif pod is not None:
            watched = active.get(pod["metadata"]["name"])
            if watched is not None:
                _observe(slots, pod, watched)
        _expire(slots, settings.timeout)
        if progress is not None:
            counters["running"] = len(active)
            progress(dict(counters))


def _expire(slots: _Slots, timeout: float) -> None:
    """End the pods that outlived ``timeout`` since their own launch.

    The deadline is per pod, like the pod's ``activeDeadlineSeconds``: a run of
    many groups takes ⌈groups / concurrency⌉ waves, and a deadline for the
    whole run would fail the last waves before they even started. The pod is
    deleted at once, so its slot goes to the next group.
    """
    now = time.monotonic()
    for outcome in list(slots.active.values()):
        if outcome.started is not None and now - outcome.started > timeout:
            outcome.error = (
                f"probe pod {outcome.group.namespace}/{outcome.pod} did not finish within "
                f"{timeout:g}s (phase: {outcome.phase or 'unknown'})"
            )
            slots.finish(outcome)


def _launch(
    client: KubeClient,
    outcome: GroupOutcome,
    run_id: str,
    settings: ProbeSettings,
    stamp: str,
    ledger: tuple[list[tuple[str, str, str]], set[tuple[str, str, str]]],
) -> bool:
    created, unanswered = ledger
    ns = outcome.group.namespace
    for kind, spec in (
        ("ConfigMap", configmap_spec(outcome.group, run_id, outcome.index, settings, stamp)),
        ("Pod", pod_spec(outcome.group, run_id, outcome.index, settings, stamp)),
    ):
        key = (kind, ns, outcome.pod)
        created.append(key)  # before the request: its answer may never arrive
        unanswered.add(key)
        try:
            client.create(kind, ns, spec)
            unanswered.discard(key)
        except ApiError as exc:
            if exc.status in REFUSED:  # a definite refusal: nothing was made
                created.remove(key)
                unanswered.discard(key)
            if isinstance(exc, Unauthorized):
                raise
            outcome.error = f"cannot create probe pod in {ns}: {exc}"
            outcome.forbidden = isinstance(exc, PermissionDenied)
            return False
        except ClusterAccessError as exc:
            outcome.error = f"cannot create probe pod in {ns}: {exc}"
            return False
    outcome.started = time.monotonic()
    return True


def _observe(slots: _Slots, pod: dict[str, Any] | None, outcome: GroupOutcome) -> None:
    ns = outcome.group.namespace
    if pod is None or pod.get("_deleted"):
        outcome.error = f"probe pod {ns}/{outcome.pod} was deleted before it finished"
    else:
        status = pod.get("status") or {}
        outcome.phase = status.get("phase")
        stuck = _stuck_reason(status)
        if outcome.phase in ("Succeeded", "Failed"):
            _collect(slots.client, outcome, status)
        elif stuck:
            outcome.error = f"probe pod {ns}/{outcome.pod} cannot start: {stuck}"
        else:
            return
    slots.finish(outcome)


def _collect(client: KubeClient, outcome: GroupOutcome, status: dict[str, Any]) -> None:
    ns = outcome.group.namespace
    try:
        log = client.read_log(ns, outcome.pod)
    except Unauthorized:
        raise
    except ClusterAccessError as exc:
        outcome.error = f"cannot read the log of probe pod {ns}/{outcome.pod}: {exc}"
        return
    document = _parse_probe_log(log)
    if document is not None:
        outcome.document = document
        return
    reason = status.get("reason") or _terminated_reason(status) or outcome.phase
    tail = log.strip().splitlines()[-1:] if log.strip() else []
    outcome.error = f"probe pod {ns}/{outcome.pod} ended {reason} without a result" + (
        f": {tail[0][:200]}" if tail else ""
    )


def _parse_probe_log(log: str) -> dict[str, Any] | None:
    for line in reversed(log.strip().splitlines()):
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("schema") == PROBE_SCHEMA:
            return doc
    return None


def _stuck_reason(status: dict[str, Any]) -> str | None:
    for cs in status.get("containerStatuses") or ():
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in STUCK_REASONS:
            message = waiting.get("message") or ""
            return f"{waiting['reason']}" + (f" ({message})" if message else "")
    for condition in status.get("conditions") or ():
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            return f"Unschedulable: {condition.get('message', '')}"
    return None


def _terminated_reason(status: dict[str, Any]) -> str | None:
    for cs in status.get("containerStatuses") or ():
        term = (cs.get("state") or {}).get("terminated") or {}
        if term:
            return f"{term.get('reason') or 'Terminated'} (exit code {term.get('exitCode')})"
    return None


def _get_pod(client: KubeClient, outcome: GroupOutcome) -> dict[str, Any] | None:
    try:
        return client.get("Pod", outcome.group.namespace, outcome.pod)
    except Unauthorized:
        raise
    except ClusterAccessError:
        return {"status": {"phase": outcome.phase}}


def _delete_all(
    client: KubeClient,
    objects: Sequence[tuple[str, str, str]],
    *,
    forget_from: list[tuple[str, str, str]] | None = None,
) -> list[str]:
    """Delete pods first, then ConfigMaps; returns what could not be deleted."""
    failed: list[str] = []
    for kind, ns, name in sorted(objects, key=lambda o: o[0] != "Pod"):
        try:
            client.delete(kind, ns, name)
        except (ClusterAccessError, NovadiagError) as exc:
            failed.append(f"{kind} {ns}/{name}: {exc}")
            continue
        if forget_from is not None and (kind, ns, name) in forget_from:
            forget_from.remove((kind, ns, name))
    return failed


class ProbesInterrupted(KeyboardInterrupt):
    """Ctrl-C or a stop signal, after a cleanup that could not delete everything: it names what is left."""

    def __init__(self, leftovers: Sequence[str]) -> None:
        super().__init__(f"{len(leftovers)} probe object(s) could not be deleted ({leftovers[0]})")
        self.leftovers = list(leftovers)


def cleanup_deadline(client: KubeClient) -> float:
    """Seconds the final cleanup may take: two request timeouts, at least 10 and at most 60."""
    return min(60.0, max(10.0, 2 * client.settings.request_timeout))


def _delete_in_parallel(client: KubeClient, objects: Sequence[tuple[str, str, str]]) -> list[str]:
    """:func:`_delete_all` for the end of a run: many at once, and given up after :func:`cleanup_deadline`.

    The workers are daemon threads whose retries stop when the deadline passes
    (:func:`~novadiag.kube.cancelled_by`); a request already on the wire ends by
    its own timeout without holding the process. What did not finish is named.
    """
    if not objects:
        return []
    seconds = cleanup_deadline(client)
    deadline = time.monotonic() + seconds
    todo: queue.Queue[tuple[str, str, str]] = queue.Queue()
    pods_first = sorted(objects, key=lambda o: o[0] != "Pod")
    for key in pods_first:
        todo.put(key)
    results: dict[tuple[str, str, str], list[str]] = {}
    stop = threading.Event()

    def work() -> None:
        with cancelled_by(stop):
            while not stop.is_set():
                try:
                    key = todo.get_nowait()
                except queue.Empty:
                    return
                results[key] = _delete_all(client, [key])

    workers = [threading.Thread(target=work, daemon=True) for _ in range(min(CLEANUP_WORKERS, len(objects)))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    stop.set()
    return [
        line
        for key in pods_first
        for line in results.get(key, [f"{key[0]} {key[1]}/{key[2]}: not deleted within {seconds:g}s"])
    ]


def _settle(client: KubeClient, unanswered: set[tuple[str, str, str]]) -> list[str]:
    """Delete creates that land after cleanup: a request cut off mid-flight may still be processed.

    Costs up to :data:`IN_FLIGHT_SETTLE` seconds, and only when a create went unanswered.
    """
    waiting = set(unanswered)
    stuck: dict[tuple[str, str, str], list[str]] = {}
    deadline = time.monotonic() + IN_FLIGHT_SETTLE
    while waiting and time.monotonic() < deadline:
        time.sleep(0.2)
        for key in sorted(waiting):
            try:
                landed = client.get(*key) is not None
            except ClusterAccessError:
                continue
            if landed:
                stuck[key] = _delete_all(client, [key])
                if not stuck[key]:
                    waiting.discard(key)
    return [line for lines in stuck.values() for line in lines]


def _unauthorized(exc: Unauthorized, leftovers: Sequence[str]) -> Unauthorized:
    """The 401, with what it stranded: cleanup needs credentials that work."""
    if not leftovers:
        return exc
    return Unauthorized(
        f"{exc}; {len(leftovers)} probe object(s) could not be deleted (run 'novadiag cleanup' with valid credentials)"
    )


def cleanup(client: KubeClient, *, older_than: float | None = None) -> list[str]:
    """Delete every novadiag probe object in the cluster (older than N seconds, if given).

    Only what a probe run created: labelled ``managed-by=novadiag`` *and* with
    a run id, named after that run id (:func:`is_probe_object`). A user's own
    object merely labelled ``managed-by=novadiag`` is not novadiag's to delete.
    """
    now = datetime.now(UTC)
    doomed: list[tuple[str, str, str]] = []
    for kind in ("Pod", "ConfigMap"):
        for obj in client.list_raw(kind, label_selector=f"{MANAGED_BY}=novadiag,{RUN_ID}"):
            meta = obj.get("metadata") or {}
            if not is_probe_object(meta) or (older_than is not None and _age(meta, now) < older_than):
                continue
            doomed.append((kind, meta.get("namespace", "default"), meta["name"]))
    failed = _delete_all(client, doomed)
    gone = [f"{k} {ns}/{n}" for k, ns, n in doomed if not any(f.startswith(f"{k} {ns}/{n}:") for f in failed)]
    if failed:
        raise ClusterAccessError(f"could not delete {len(failed)} object(s): {failed[0]}")
    return gone


def is_probe_object(meta: Mapping[str, Any]) -> bool:
    """Whether an object's metadata is that of a probe object: its name begins with its run id's prefix."""
    labels = meta.get("labels") or {}
    run_id, name = labels.get(RUN_ID), meta.get("name")
    return isinstance(run_id, str) and isinstance(name, str) and name.startswith(run_prefix(run_id))


def _age(meta: dict[str, Any], now: datetime) -> float:
    stamp = (meta.get("annotations") or {}).get(CREATED) or meta.get("creationTimestamp")
    try:
        created = datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return float("inf")
    return (now - created).total_seconds()


class _PodWatch:
    """A background watch on the run's pods, feeding a queue; silent when forbidden."""

    def __init__(self, client: KubeClient, run_id: str) -> None:
        self._client = client
        self._selector = f"{RUN_ID}={run_id}"
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="novadiag-probe-watch", daemon=True)

    def __enter__(self) -> _PodWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def next(self, timeout: float) -> dict[str, Any] | None:
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            return None

    def _loop(self) -> None:
        version: str | None = None
        while not self._stop.is_set():
            try:
                for event in self._stream(version):
                    if self._stop.is_set():
                        return
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        version = None
                        break
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if event.get("type") == "DELETED":
                        obj = {**obj, "_deleted": True}
                    if event.get("type") != "BOOKMARK":
                        self._events.put(obj)
            except ApiError as exc:
                if exc.status in (401, 403):
                    return  # the GET poll in the main loop takes over
                version = None
                self._stop.wait(0.5)
            except ClusterAccessError:
                self._stop.wait(0.5)

    def _stream(self, version: str | None) -> Iterator[dict[str, Any]]:
        return self._client.watch_raw("Pod", label_selector=self._selector, resource_version=version, timeout_seconds=5)
