"""Findings that are not edge verdicts but change how a report should be read.

- ``duplicate-service-name``: the same Service name in several namespaces. A
  short name then means different things from different namespaces (Nova's two
  postgres), and a consolidation must decide which one survives.
- ``service-selects-nothing``: a Service with a selector that matches no
  workload (static) or has no ready endpoint (live); when its pods are
  Pending, why (Unschedulable, ImagePullBackOff...), since that is the fix.
- ``missing-namespace``: an env var names a namespace that does not exist.
- ``externalname-loop`` / ``externalname-dangling``: ExternalName Services
  that name each other in a circle, or name an in-cluster Service that does
  not exist; every name reaching them fails to resolve.
- ``crashloop``: a pod in CrashLoopBackOff, tied to the broken start-up edges
  of its workload when there are any — the symptom next to its cause.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from novadiag.index import ClusterIndex
from novadiag.model import Edge, Finding, ObjectRef, RawObject, Severity
from novadiag.resolver import follow_aliases
from novadiag.snapshot import Snapshot


def derive_findings(snapshot: Snapshot, index: ClusterIndex, edges: Sequence[Edge]) -> list[Finding]:
    findings: list[Finding] = []
    findings.extend(duplicate_services(index, edges))
    findings.extend(idle_services(index, snapshot))
    findings.extend(missing_namespaces(edges))
    findings.extend(crashlooping_pods(snapshot, edges))
    findings.extend(broken_aliases(index))
    return findings


def broken_aliases(index: ClusterIndex) -> list[Finding]:
    """One error per ExternalName loop, one warning per alias that names a missing Service."""
    out: dict[object, Finding] = {}
    for svc in index.services.values():
        chain = follow_aliases(svc, index)
        if chain.final is not None or svc not in chain.aliases:
            continue
        if chain.loop:
            key: object = frozenset(s.ref for s in chain.aliases)
            first = min(chain.aliases, key=lambda s: s.ref)
            message = f"ExternalName Services name each other in a loop ({follow_aliases(first, index).describe()})"
            out.setdefault(key, Finding("error", "externalname-loop", message, first.ref))
        elif chain.aliases[-1] is svc:
            message = f"ExternalName {svc.namespace}/{svc.name} names {chain.dangling}, which does not exist"
            out[svc.ref] = Finding("warning", "externalname-dangling", message, svc.ref)
    return sorted(out.values(), key=lambda f: f.message)


def duplicate_services(index: ClusterIndex, edges: Iterable[Edge]) -> list[Finding]:
    referenced = {e.target.name for e in edges if e.target is not None}
    out = []
    for name, services in sorted(index.services_by_name.items()):
        if len(services) < 2:
            continue
        namespaces = sorted(s.namespace for s in services)
        severity: Severity = "warning" if name in referenced else "info"
        out.append(
            Finding(
                severity,
                "duplicate-service-name",
                f"Service {name} exists in {len(namespaces)} namespaces ({', '.join(namespaces)}): "
                "a short name reaches a different one from each; a consolidation must pick one",
                ObjectRef("Service", namespaces[0], name),
            )
        )
    return out


def idle_services(index: ClusterIndex, snapshot: Snapshot) -> list[Finding]:
    out = []
    pods = _pods_by_namespace(snapshot)
    for svc in index.services.values():
        if svc.type == "ExternalName" or not svc.selector:
            continue
        live = index.endpoints.get((svc.namespace, svc.name))
        if index.live and live is not None:
            empty = not live.ready
            why = "has no ready endpoint" + _pending_cause(svc.selector, pods.get(svc.namespace, ()))
        else:
            empty = not any(w.replicas > 0 for w in index.selected_workloads(svc))
            why = "selects no workload with replicas"
        if empty:
            out.append(
                Finding("warning", "service-selects-nothing", f"Service {svc.namespace}/{svc.name} {why}", svc.ref)
            )
    return sorted(out, key=lambda f: f.message)


def _pods_by_namespace(snapshot: Snapshot) -> dict[str, list[RawObject]]:
    grouped: dict[str, list[RawObject]] = defaultdict(list)
    for pod in snapshot.of("Pod"):
        grouped[str((pod.get("metadata") or {}).get("namespace"))].append(pod)
    return grouped


def _pending_cause(selector: Mapping[str, str], pods: Iterable[RawObject]) -> str:
    """``: its 2 pod(s) are Pending (Unschedulable: …)`` for the selected pods stuck Pending; else empty."""
    causes: Counter[str] = Counter()
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        status = pod.get("status") or {}
        if status.get("phase") == "Pending" and all(labels.get(k) == v for k, v in selector.items()):
            causes[pending_reason(status)] += 1
    if not causes:
        return ""
    named = "; ".join(cause for cause, _ in causes.most_common(2))
    return f": its {sum(causes.values())} pod(s) are Pending ({named})"


def pending_reason(status: Mapping[str, Any]) -> str:
    """Why a pod is Pending, as kubectl describe would show it: scheduling first, then a waiting container."""
    for condition in status.get("conditions") or ():
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return f"{condition.get('reason') or 'not scheduled'}: {condition.get('message') or ''}".rstrip(": ")
    for container in status.get("containerStatuses") or ():
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            message = waiting.get("message")
            return str(waiting["reason"]) + (f" ({message})" if message else "")
    return "not started yet"


def missing_namespaces(edges: Iterable[Edge]) -> list[Finding]:
    out = []
    for edge in edges:
        if edge.status == "unknown-target" and "does not exist" in edge.detail and not edge.reference.routing:
            out.append(
                Finding(
                    "error", "missing-namespace", f"{edge.source} {_named_in(edge)}: {edge.detail}", edge.source
                )
            )
    return out


def _named_in(edge: Edge) -> str:
    """``env DB_URL``, or ``container wait init-script line 2`` for a host named outside the env."""
    ref = edge.reference
    if ref.env is not None:
        return f"env {ref.env}"
    return f"container {ref.container} {ref.origin} {ref.location or ''}".rstrip()


def crashlooping_pods(snapshot: Snapshot, edges: Sequence[Edge]) -> list[Finding]:
    """One finding per workload with crash-looping pods, naming the broken edges it needs at start-up."""
    broken_by_workload: dict[tuple[str | None, str], list[Edge]] = defaultdict(list)
    for edge in edges:
        if edge.broken:
            broken_by_workload[(edge.source.namespace, edge.source.name)].append(edge)
    looping: dict[tuple[str | None, str], list[tuple[str, int]]] = defaultdict(list)
    for pod in snapshot.of("Pod"):
        meta = pod.get("metadata") or {}
        for status in (pod.get("status") or {}).get("containerStatuses") or ():
            waiting = (status.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") == "CrashLoopBackOff":
                key = (meta.get("namespace"), _workload_name(meta))
                looping[key].append((str(meta.get("name")), int(status.get("restartCount") or 0)))
    out = []
    for (ns, owner), pods in sorted(looping.items(), key=lambda item: (str(item[0][0]), item[0][1])):
        causes = sorted(broken_by_workload.get((ns, owner), []), key=lambda e: (not e.reference.startup, e.id))
        cause = ""
        if causes:
            named = ", ".join(
                f"{e.reference.slot} ({e.status}{', needed at start-up' if e.reference.startup else ''})"
                for e in causes[:3]
            )
            cause = f"; likely cause: {named}"
        restarts = max(r for _, r in pods)
        counted = f"up to {restarts} restart(s): " if restarts else ""  # waiting out its first back-off
        out.append(
            Finding(
                "error",
                "crashloop",
                f"{len(pods)} pod(s) of {ns}/{owner} in CrashLoopBackOff ({counted}"
                f"{', '.join(sorted(name for name, _ in pods)[:4])}){cause}",
                ObjectRef("Pod", ns, pods[0][0]),
            )
        )
    return out


def _workload_name(meta: dict[str, object]) -> str:
    """The owning workload's name, from the pod's owner chain naming convention."""
    for owner in meta.get("ownerReferences") or ():  # type: ignore[attr-defined]
        name = str(owner.get("name", ""))
        if owner.get("kind") == "ReplicaSet" and "-" in name:
            return name.rsplit("-", 1)[0]
        return name
    return str(meta.get("name"))
