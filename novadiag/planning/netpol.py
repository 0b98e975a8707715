"""NetworkPolicies through a consolidation: same traffic allowed after the move.

Namespace selectors are rewritten by :mod:`novadiag.netpol.rewrite` (exact over
namespaces: names mapped, label selectors checked against the labels the
target namespace gets). Two things only the planner knows are added here:

- pods do not all follow their namespace: a conflict loser is *retired* and
  its callers are redirected to the survivor, and an unresolved conflict
  *holds* pods in their old namespace. Every peer is therefore checked against
  where the pods it admitted before actually end up, and a peer naming that
  place is added when the rewritten ones miss it (peers are ORed, so this
  only ever re-admits what was admitted);
- identical policies from several namespaces (every namespace's
  ``default-deny``) land once; different ones with the same name are renamed
  by the layout.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from novadiag.model import ObjectRef
from novadiag.netpol.rewrite import rewrite_policy
from novadiag.selector import NAME_LABEL, Selector

Place = tuple[str, tuple[tuple[str, str], ...]]
"""(namespace, pod labels) of one workload's pods."""


@dataclass
class PodMap:
    """Where each workload's pods are before and after the plan, and the namespaces' labels."""

    before: dict[ObjectRef, Place]
    after: dict[ObjectRef, Place]
    ns_before: dict[str, dict[str, str]]
    ns_after: dict[str, dict[str, str]]
    moves: dict[str, str]

    def place_after(self, workload: ObjectRef) -> Place:
        return self.after[workload]


def rewrite_moved_policy(policy: Mapping[str, Any], pods: PodMap, *, namespace: str) -> dict[str, Any]:
    """A policy as it must read after the move, re-admitting pods that went elsewhere than their namespace."""
    own_before = str((policy.get("metadata") or {}).get("namespace") or "default")
    result = rewrite_policy(policy, pods.moves, pods.ns_before, target_labels=pods.ns_after).policy
    result.setdefault("metadata", {})["namespace"] = namespace
    spec_before = policy.get("spec") or {}
    spec_after = result.get("spec") or {}
    for direction, key in (("ingress", "from"), ("egress", "to")):
        rules_before = spec_before.get(direction) or []
        for i, rule in enumerate(spec_after.get(direction) or []):
            if not isinstance(rule, dict) or not rule.get(key) or i >= len(rules_before):
                continue
            rule[key] = _repair(rules_before[i].get(key) or [], own_before, rule[key], namespace, pods)
    return result


def _repair(before: list[Any], own_before: str, after: list[Any], own_after: str, pods: PodMap) -> list[Any]:
    needed = {
        pods.place_after(w)
        for w, place in pods.before.items()
        if any(_admits(peer, own_before, place, pods.ns_before) for peer in before)
    }
    out = copy.deepcopy(after)
    for place in sorted(needed):
        if not any(_admits(peer, own_after, place, pods.ns_after) for peer in out):
            out.append(
                {
                    "namespaceSelector": {"matchLabels": {NAME_LABEL: place[0]}},
                    "podSelector": {"matchLabels": dict(place[1])},
                }
            )
    return out


def _admits(peer: Any, own: str, place: Place, ns_labels: Mapping[str, Mapping[str, str]]) -> bool:
    if not isinstance(peer, Mapping) or "ipBlock" in peer:
        return False
    ns, labels = place
    if "namespaceSelector" in peer:
        if not Selector.parse(peer["namespaceSelector"]).matches(ns_labels.get(ns, {NAME_LABEL: ns})):
            return False
    elif ns != own:
        return False
    return "podSelector" not in peer or Selector.parse(peer["podSelector"]).matches(dict(labels))


def spec_key(policy: Mapping[str, Any]) -> str:
    """Identity of a policy's rules, to land identical ones once."""
    return json.dumps(policy.get("spec") or {}, sort_keys=True)
