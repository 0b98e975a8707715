"""Kubernetes label selectors (``matchLabels`` and ``matchExpressions``) as values.

NetworkPolicies select pods and namespaces with them, and a Gateway's
``allowedRoutes`` selects the namespaces whose routes may attach: one reading of
the selector serves both, below either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NAME_LABEL = "kubernetes.io/metadata.name"
"""The label the API server puts on every Namespace: its own name."""
_OPERATORS = frozenset({"In", "NotIn", "Exists", "DoesNotExist"})


@dataclass(frozen=True)
class Selector:
    """A label selector: ``matchLabels`` and ``matchExpressions``, all must hold."""

    labels: tuple[tuple[str, str], ...] = ()
    expressions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    valid: bool = True

    @classmethod
    def parse(cls, raw: Any) -> Selector:
        if not isinstance(raw, Mapping):
            return cls()
        match = raw.get("matchLabels") or {}
        labels = tuple(sorted((str(k), str(v)) for k, v in match.items())) if isinstance(match, Mapping) else ()
        exprs: list[tuple[str, str, tuple[str, ...]]] = []
        valid = isinstance(match, Mapping)
        for e in raw.get("matchExpressions") or ():
            op = str(e.get("operator")) if isinstance(e, Mapping) else ""
            valid = valid and op in _OPERATORS
            if isinstance(e, Mapping):
                values = tuple(sorted(str(v) for v in e.get("values") or ()))
                exprs.append((str(e.get("key")), op, values))
        return cls(labels, tuple(exprs), valid)

    @property
    def empty(self) -> bool:
        """True for ``{}``: selects everything."""
        return self.valid and not self.labels and not self.expressions

    def matches(self, labels: Mapping[str, str]) -> bool:
        if not self.valid:
            return False  # the API server rejects it; it selects nothing
        if any(labels.get(k) != v for k, v in self.labels):
            return False
        return all(_expression_holds(key, op, values, labels) for key, op, values in self.expressions)


def _expression_holds(key: str, op: str, values: tuple[str, ...], labels: Mapping[str, str]) -> bool:
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    return key not in labels
