"""Read a live cluster into a Snapshot: one paginated list per kind.

Cost model: a cluster-wide list per kind is the cheapest way to read
everything (one request per page, no per-object calls). Where RBAC forbids a
cluster-wide list, the kind is listed namespace by namespace instead, and every
namespace that is still forbidden becomes a :class:`~novadiag.model.Gap` (a kind
forbidden in every namespace is one gap, not one per namespace) — the report
says what it could not see rather than pretending it saw nothing.
Secrets are optional: without access, references that come from them are
reported as unreadable (see :mod:`novadiag.references`).

Pages are decoded as raw JSON (no typed models) and the cyclic garbage
collector is paused while the lists accumulate: 300,000 objects are acyclic,
and its full collections over the growing heap cost more than the decoding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

from novadiag.errors import ClusterAccessError, PermissionDenied
from novadiag.kube import KubeClient, NotFoundError
from novadiag.model import SNAPSHOT_KINDS, Gap, RawObject, SourceInfo, SourceKind
from novadiag.snapshot import Snapshot, build_snapshot, paused_gc

Progress = Callable[[str, int], None]
"""Called as ``progress(kind, objects_so_far)`` while listing."""


def load_cluster_snapshot(
    client: KubeClient,
    *,
    namespaces: Sequence[str] | None = None,
    kinds: Iterable[str] = SNAPSHOT_KINDS,
    cluster_domain: str = "cluster.local",
    source_kind: SourceKind = "cluster",
    progress: Progress | None = None,
) -> Snapshot:
    """List every kind novadiag reads; forbidden parts become gaps, not errors.

    Lists are cluster-wide even when ``namespaces`` (the namespaces whose edges
    are audited) is given: an edge's target may live in any namespace, and
    judging it against a partial cluster would call a Service elsewhere
    missing. ``namespaces`` says where to fall back to, one list per namespace
    and kind, when a cluster-wide list is forbidden (a namespace-scoped role).
    """
    with paused_gc():
        return _load_cluster_snapshot(client, namespaces, kinds, cluster_domain, source_kind, progress)


def _load_cluster_snapshot(
    client: KubeClient,
    namespaces: Sequence[str] | None,
    kinds: Iterable[str],
    cluster_domain: str,
    source_kind: SourceKind,
    progress: Progress | None,
) -> Snapshot:
    objects: list[dict[str, Any]] = []
    gaps: list[Gap] = []
    known_namespaces: list[str] | None = list(namespaces) if namespaces else None
    for kind in kinds:
        if kind == "Namespace":
            items = _list_namespaces(client, gaps)
            if known_namespaces is None and items is not None:
                known_namespaces = [i["metadata"]["name"] for i in items]
            objects.extend(items or ())
        else:
            objects.extend(_list_kind(client, kind, known_namespaces, gaps))
        if progress is not None:
            progress(kind, len(objects))
    source = SourceInfo(
        source_kind, context=client.context_name, cluster_domain=cluster_domain, locations=(client.host,)
    )
    return build_snapshot(cast(list[RawObject], objects), source, gaps=gaps)


def _list_namespaces(client: KubeClient, gaps: list[Gap]) -> list[dict[str, Any]] | None:
    try:
        return list(client.list_raw("Namespace"))
    except PermissionDenied as exc:
        gaps.append(Gap("Namespace", None, _reason(exc)))
        return None


def _list_kind(client: KubeClient, kind: str, namespaces: list[str] | None, gaps: list[Gap]) -> list[dict[str, Any]]:
    try:
        return list(client.list_raw(kind))
    except NotFoundError:
        gaps.append(Gap(kind, None, "the API server does not serve this kind"))
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
            gaps.append(Gap(kind, ns, "the API server does not serve this kind"))
            return found
        except PermissionDenied as exc:
            gaps.append(Gap(kind, ns, _reason(exc)))
    return found


def _reason(exc: ClusterAccessError) -> str:
    return f"forbidden: {exc}"
