"""What an audit could not read, asked per verdict: which missing reads would change it.

A gap (:class:`~novadiag.model.Gap`) says what RBAC hid; this module says which
verdicts that leaves open, so an audit that could not see never calls an edge
``ok`` or broken on the strength of objects it never read. The rule is per
layer, and only the data that layer reads counts:

* an unknown target depends on the Services of every namespace (and on the
  Namespace list when the host names a namespace that seems not to exist); a
  two-label host ``svc.ns`` called external depends on the Namespace list too;
* a name that does not resolve depends on the Services of the namespaces its
  resolver tried (a same-named Service there would answer);
* ``no-endpoints`` depends on the target namespace's EndpointSlices/Endpoints;
* a pod name under a headless Service (``kafka-0.kafka-headless.kafka``) that
  names no pod depends on the StatefulSets of the Service's namespace;
* ``ok`` depends on the NetworkPolicies of the source and target namespaces
  (an unseen policy may deny it);
* ``blocked`` depends on Namespace labels when a policy there selects
  namespaces by labels other than ``kubernetes.io/metadata.name``.

A verdict at an earlier layer that read everything it needed stands: a short
name that cannot resolve is broken whatever the NetworkPolicies say.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from novadiag.model import NOT_SERVED, WORKLOAD_KINDS, Gap

ENDPOINT_KINDS = ("EndpointSlice", "Endpoints")


def resource_name(kind: str) -> str:
    """The REST resource of a kind as RBAC names it (``NetworkPolicy`` → ``networkpolicies``)."""
    lower = kind.lower()
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    return lower if lower.endswith("s") else lower + "s"


def describe(gap: Gap, namespace: str | None = None) -> str:
    """One clause naming the missing permission: ``list networkpolicies in nova-prod: forbidden``."""
    where = namespace or gap.namespace
    if where is None and gap.read_in:
        place = f" outside {', '.join(gap.read_in)}"
    else:
        place = f" in {where}" if where else ""
    cause = gap.reason.split(":", 1)[0] or "not read"
    return f"{gap.verb} {resource_name(gap.kind)}{place}: {cause}"


@dataclass(frozen=True)
class Visibility:
    """The list gaps of one snapshot, and which of them a verdict depends on."""

    gaps: tuple[Gap, ...] = ()

    @classmethod
    def of(cls, gaps: Iterable[Gap]) -> Visibility:
        """The gaps that hide objects: list gaps, except kinds the API server does not serve (none exist)."""
        return cls(tuple(g for g in gaps if g.verb == "list" and g.reason != NOT_SERVED))

    @cached_property
    def _by_kind(self) -> dict[str, tuple[Gap, ...]]:
        """Gaps per kind: every edge asks, and a cluster of forbidden namespaces has thousands of gaps."""
        grouped: dict[str, list[Gap]] = defaultdict(list)
        for gap in self.gaps:
            grouped[gap.kind].append(gap)
        return {kind: tuple(gaps) for kind, gaps in grouped.items()}

    @cached_property
    def _by_namespace(self) -> dict[tuple[str, str], Gap]:
        return {(g.kind, g.namespace): g for g in self.gaps if g.namespace is not None}

    def _covering(self, kind: str, namespace: str | None) -> Gap | None:
        if namespace is not None and (found := self._by_namespace.get((kind, namespace))) is not None:
            return found
        return next((g for g in self._by_kind.get(kind, ()) if g.namespace is None and g.covers(kind, namespace)), None)

    def unread(self, kind: str, namespaces: Iterable[str | None]) -> list[str]:
        """Descriptions of the gaps that hid ``kind`` in any of ``namespaces``, each once."""
        found: dict[str, None] = {}
        for namespace in namespaces:
            gap = self._covering(kind, namespace)
            if gap is not None:
                found[describe(gap, namespace)] = None
        return list(found)

    def unread_anywhere(self, kind: str) -> list[str]:
        return list(dict.fromkeys(describe(g) for g in self._by_kind.get(kind, ())))

    def unknown_target(self, missing_namespace: str | None) -> list[str]:
        """What could hide the Service an unknown-target edge names."""
        if missing_namespace is None:
            return self.unread_anywhere("Service")
        return self.unread("Namespace", [None]) + self.unread("Service", [missing_namespace])

    def maybe_namespace(self, name: str | None) -> list[str]:
        """What could hide namespace ``name`` (``svc.name`` looks external only while no such namespace is known)."""
        if name is None:
            return []
        hidden = self.unread("Namespace", [None])
        return hidden + self.unread("Service", [name]) if hidden else []

    def unresolved(self, namespaces: Iterable[str]) -> list[str]:
        """What could hide a Service that a name tried in ``namespaces`` would have found."""
        return self.unread("Service", namespaces)

    def endpoints(self, namespace: str) -> list[str]:
        """Readiness is unknown only when neither EndpointSlices nor Endpoints were read there."""
        missing = [self.unread(kind, [namespace]) for kind in ENDPOINT_KINDS]
        return [text for texts in missing for text in texts] if all(missing) else []

    def stateful_sets(self, namespace: str) -> list[str]:
        """What could hide the StatefulSet whose pod a name like ``kafka-3.kafka-headless.NS`` means."""
        return self.unread("StatefulSet", [namespace])

    def policies(self, namespaces: Iterable[str | None]) -> list[str]:
        return self.unread("NetworkPolicy", namespaces)

    def namespace_labels(self) -> list[str]:
        return self.unread("Namespace", [None])

    def nothing_read(self, *, workloads: int, services: int) -> str | None:
        """Why the audit saw nothing at all (no workload, or no Service, and a gap to blame), or None."""
        if workloads == 0:
            hidden = [text for kind in WORKLOAD_KINDS for text in self.unread_anywhere(kind)]
            if hidden:
                return f"no workload could be read ({hidden[0]})"
        if services == 0:
            hidden = self.unread_anywhere("Service")
            if hidden:
                return f"no Service could be read ({hidden[0]})"
        return None
