"""Read a live cluster into a Snapshot: one paginated list per kind.

Cost model: a cluster-wide list per kind is the cheapest way to read
everything (one request per page, no per-object calls). Where RBAC forbids a
cluster-wide list, the kind is listed namespace by namespace instead, and every
namespace that is still forbidden becomes a :class:`~novadiag.model.Gap` (a kind
forbidden in every namespace is one gap, not one per namespace) — the report
says what it could not see rather than pretending it saw nothing.
Secrets are optional: without access, references that come from them are
reported as unreadable (see :mod:`novadiag.references`). Routing kinds
(Ingress, the Gateway API) are optional in another way: a cluster without the
Gateway API CRDs has no routes, so a kind that is not served is read as none,
quietly, where any other kind not served is a gap.

Pages are decoded as raw JSON (no typed models) and the cyclic garbage
collector is paused while the lists accumulate: 300,000 objects are acyclic,
and its full collections over the growing heap cost more than the decoding.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from novadiag.errors import ClusterAccessError, PermissionDenied
from novadiag.kube import KubeClient, NotFoundError, cancelled_by
from novadiag.model import NOT_SERVED, OPTIONAL_KINDS, SNAPSHOT_KINDS, Gap, RawObject, SourceInfo, SourceKind
from novadiag.snapshot import Admission, Snapshot, assemble, paused_gc

Progress = Callable[[str, int], None]
"""Called as ``progress(kind, objects_so_far)`` while listing."""


LIST_WORKERS = 4
"""Kinds listed at once. Pages of one kind follow each other (each needs the previous
one's continue token), but kinds are independent: while the API server encodes one
kind's page, this process decodes and admits another's. Four keeps a real API server
far from its max-in-flight limits."""


def load_cluster_snapshot(
    client: KubeClient,
    *,
    namespaces: Sequence[str] | None = None,
    kinds: Iterable[str] = SNAPSHOT_KINDS,
    cluster_domain: str = "cluster.local",
    source_kind: SourceKind = "cluster",
    progress: Progress | None = None,
    workers: int = LIST_WORKERS,
) -> Snapshot:
    """List every kind novadiag reads; forbidden parts become gaps, not errors.

    Lists are cluster-wide even when ``namespaces`` (the namespaces whose edges
    are audited) is given: an edge's target may live in any namespace, and
    judging it against a partial cluster would call a Service elsewhere
    missing. ``namespaces`` says where to fall back to, one list per namespace
    and kind, when a cluster-wide list is forbidden (a namespace-scoped role).
    Namespaces are listed first (the fallback needs their names), then the
    other kinds, ``workers`` at a time; the result does not depend on the order
    in which they finish.
    """
    with paused_gc():
        return _load_cluster_snapshot(client, namespaces, list(kinds), cluster_domain, source_kind, progress, workers)


@dataclass
class _Listed:
    """One kind as listed and admitted: its objects, what it could not see, what it skipped."""

    objects: list[RawObject] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    admission: Admission = field(default_factory=Admission)
    namespaces: list[str] | None = None  # names, when this kind is Namespace and it was readable


def _load_cluster_snapshot(
    client: KubeClient,
    namespaces: Sequence[str] | None,
    kinds: list[str],
    cluster_domain: str,
    source_kind: SourceKind,
    progress: Progress | None,
    workers: int,
) -> Snapshot:
    listed: dict[str, _Listed] = {}
    known_namespaces: list[str] | None = list(namespaces) if namespaces else None
    exhaustive = False  # whether the fallback namespaces are all the cluster has
    total = 0
    stop = threading.Event()
    if "Namespace" in kinds:
        listed["Namespace"] = _list_and_admit(client, "Namespace", _Fallback(None, exhaustive=False), stop)
        exhaustive = not namespaces and listed["Namespace"].namespaces is not None
        known_namespaces = known_namespaces or listed["Namespace"].namespaces
        total += _report(progress, "Namespace", listed["Namespace"], total)
    rest = [kind for kind in kinds if kind != "Namespace"]
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="novadiag-list")
    try:
        fallback = _Fallback(known_namespaces, exhaustive)
        futures = {kind: pool.submit(_list_and_admit, client, kind, fallback, stop) for kind in rest}
        for kind in rest:  # in kind order, so progress and the snapshot read the same every time
            listed[kind] = futures[kind].result()
            total += _report(progress, kind, listed[kind], total)
    except BaseException as exc:
        # On an error or Ctrl-C the other lists give up at their next request or back-off. After an
        # error they are waited for (no thread outlives the call); after Ctrl-C a request already on
        # the wire is not (it ends by its own timeout, and the user asked to stop now).
        stop.set()
        pool.shutdown(wait=not isinstance(exc, KeyboardInterrupt), cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    admission = Admission()
    for kind in kinds:
        admission.merge(listed[kind].admission)
    source = SourceInfo(
        source_kind, context=client.context_name, cluster_domain=cluster_domain, locations=(client.host,)
    )
    gaps = [gap for kind in kinds for gap in listed[kind].gaps]
    grouped = {kind: listed[kind].objects for kind in kinds}
    return assemble(grouped, source, gaps=gaps, findings=admission.findings())


def _report(progress: Progress | None, kind: str, listed: _Listed, before: int) -> int:
    if progress is not None:
        progress(kind, before + len(listed.objects))
    return len(listed.objects)


@dataclass(frozen=True)
class _Fallback:
    """Where to list a kind namespace by namespace when a cluster-wide list is forbidden.

    ``exhaustive``: ``namespaces`` came from listing every Namespace, so the
    per-namespace lists cover the cluster. Otherwise (the ``-n`` namespaces)
    every other namespace goes unread, and a gap says so.
    """

    namespaces: list[str] | None
    exhaustive: bool


def _list_and_admit(client: KubeClient, kind: str, fallback: _Fallback, stop: threading.Event) -> _Listed:
    """List one kind, then admit its objects: a worker thread's job, so admitting overlaps other kinds' lists.

    Under :func:`~novadiag.kube.cancelled_by`: once ``stop`` is set, this thread's
    requests and back-offs give up, so every list ends at its next request.
    """
    listed = _Listed()
    with cancelled_by(stop):
        if kind == "Namespace":
            items = _list_namespaces(client, listed.gaps)
            if items is not None:
                listed.namespaces = [i["metadata"]["name"] for i in items]
        else:
            items = _list_kind(client, kind, fallback, listed.gaps)
    for item in items or ():
        kept = listed.admission.admit(item)
        if kept is not None:
            listed.objects.append(kept)
    return listed


def _list_namespaces(client: KubeClient, gaps: list[Gap]) -> list[dict[str, Any]] | None:
    try:
        return list(client.list_raw("Namespace"))
    except PermissionDenied as exc:
        gaps.append(Gap("Namespace", None, _reason(exc)))
        return None


def _list_kind(client: KubeClient, kind: str, fallback: _Fallback, gaps: list[Gap]) -> list[dict[str, Any]]:
    namespaces = fallback.namespaces
    try:
        return list(client.list_raw(kind))
    except NotFoundError:
        _not_served(kind, None, gaps)
        return []
    except PermissionDenied as exc:
        if not namespaces:
            gaps.append(Gap(kind, None, _reason(exc)))
            return []
        denied = exc
    namespace_gaps: list[Gap] = []
    found = _list_per_namespace(client, kind, namespaces, namespace_gaps)
    if not found and len(namespace_gaps) == len(namespaces):
        gaps.append(Gap(kind, None, _reason(denied)))  # forbidden everywhere: one gap, not one per namespace
        return found
    gaps.extend(namespace_gaps)
    if not fallback.exhaustive:
        unread = {gap.namespace for gap in namespace_gaps}
        read_in = tuple(ns for ns in namespaces if ns not in unread)
        gaps.append(Gap(kind, None, _reason(denied), read_in=read_in))
    return found


def _list_per_namespace(
    client: KubeClient, kind: str, namespaces: Iterable[str], gaps: list[Gap]
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for ns in namespaces:
        try:
            found.extend(client.list_raw(kind, namespace=ns))
        except NotFoundError as exc:
            if "namespaces" in str(exc):
                continue
            _not_served(kind, ns, gaps)
            return found
        except PermissionDenied as exc:
            gaps.append(Gap(kind, ns, _reason(exc)))
    return found


def _not_served(kind: str, namespace: str | None, gaps: list[Gap]) -> None:
    """A kind the API server does not serve: a gap, unless it is optional (no Gateway API CRDs means no routes)."""
    if kind not in OPTIONAL_KINDS:
        gaps.append(Gap(kind, namespace, NOT_SERVED))


def _reason(exc: ClusterAccessError) -> str:
    return f"forbidden: {exc}"
