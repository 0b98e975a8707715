"""What plans change in routing objects (Ingress, Gateway API): copies that follow a move, manual edits.

A consolidation copies the routing objects of the namespaces it moves, like
their Roles and NetworkPolicies. A copy lives in the target namespace, so every
namespace it names is rewritten: a ``backendRef`` or ``parentRef`` into a moved
namespace names the target instead (and, being then its own namespace, drops
the field, so no ReferenceGrant is needed); a ReferenceGrant's ``from``
namespace that moved names the target too. An Ingress names no namespace and
is copied as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from novadiag.model import Edge


def retarget_routing_copy(obj: dict[str, Any], old_namespace: str, moved: Mapping[str, str]) -> None:
    """Rewrite, in place, the namespaces a copied routing object names (``moved``: old namespace -> new)."""
    here = str((obj.get("metadata") or {}).get("namespace") or old_namespace)
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if obj.get("kind") == "ReferenceGrant":
        for entry in _dicts(spec.get("from")):
            if isinstance(entry.get("namespace"), str):
                entry["namespace"] = moved.get(entry["namespace"], entry["namespace"])
        return
    refs = [*_dicts(spec.get("parentRefs"))]
    for rule in _dicts(spec.get("rules")):
        refs.extend(_dicts(rule.get("backendRefs")))
    for ref in refs:
        named = str(ref.get("namespace") or old_namespace)
        after = moved.get(named, named)
        if after == here:
            ref.pop("namespace", None)
        else:
            ref["namespace"] = after


def routing_change(edge: Edge) -> str:
    """The manual step for a broken backend of an Ingress or route: the object is edited, no env var is."""
    where = f"{edge.source} {edge.reference.location}"
    return f"edit {where}: {edge.fix}" if edge.fix else f"edit {where}: {edge.detail}"


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
