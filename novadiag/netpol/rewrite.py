"""Rewrite NetworkPolicies for a namespace move so the same edges stay allowed and denied.

A consolidation silently changes what policies select: a ``namespaceSelector``
naming ``nova-content`` matches nothing once content-service lives in
``nova-prod``, and one selecting ``environment: prod`` stops matching moved pods
if the new namespace lacks the label. The planner moves policies with their
workloads and calls :func:`rewrite_policy_for_move` on every policy of the
cluster (policies in namespaces that stay put name moved ones too).

The rewrite is exact over the namespaces it knows. A move maps each namespace
``ns`` to ``f(ns)`` (several may merge into one). For every namespaceSelector,
let M be the namespaces it matched before; afterwards it must match ``f(ns)``
exactly when ``ns`` was in M. So:

1. names are mapped: ``matchLabels[kubernetes.io/metadata.name]`` and the values
   of ``In``/``NotIn`` expressions on that key go through ``f`` (the smallest,
   most readable change);
2. the result is matched against the labels namespaces will have; a namespace it
   now matches but must not gets a ``NotIn`` on the name key, and namespaces it
   must match but misses get an extra peer naming them (peers are ORed), with
   the same podSelector.

What no namespace selector can express, and is therefore reported in ``notes``:
a namespace that was matched merging with one that was not (pods of one
namespace cannot be told apart by namespace; the rewrite keeps admitting them,
because a verification fails on "allowed before, denied after"), and
``spec.podSelector`` or podSelector-only peers of a policy whose namespace
receives other namespaces' pods (they now select those pods too, when labels match).

Metadata other than ``metadata.namespace`` is left alone: stripping ``uid``,
``resourceVersion`` and the like is the planner's job for every kind it moves.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from novadiag.selector import NAME_LABEL, Selector

__all__ = [
    "PolicyRewrite",
    "PolicySetRewrite",
    "rewrite_policies_for_move",
    "rewrite_policy",
    "rewrite_policy_for_move",
]


@dataclass(frozen=True)
class PolicyRewrite:
    """One rewritten policy and what the rewrite could not keep exact."""

    policy: dict[str, Any]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicySetRewrite:
    """All policies of a cluster after a move, name collisions in merged namespaces resolved."""

    policies: tuple[dict[str, Any], ...]
    notes: tuple[str, ...] = ()


def rewrite_policy_for_move(
    policy: Mapping[str, Any],
    moves: Mapping[str, str],
    namespace_labels: Mapping[str, Mapping[str, str]],
    *,
    target_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """The policy as it must read after ``moves`` (old namespace → new), same edges allowed and denied.

    Args:
        policy: a raw NetworkPolicy (not modified).
        moves: old namespace → new namespace; several may share a target.
        namespace_labels: labels of every namespace before the move.
        target_labels: labels that move targets will carry, when the planner sets them
            (a target absent from both mappings gets only ``kubernetes.io/metadata.name``).

    >>> policy = {"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "kafka"},
    ...     "spec": {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector":
    ...     {"matchLabels": {"kubernetes.io/metadata.name": "nova-backend"}}}]}]}}
    >>> out = rewrite_policy_for_move(policy, {"nova-backend": "nova-prod"}, {"nova-backend": {}, "kafka": {}})
    >>> out["spec"]["ingress"][0]["from"][0]["namespaceSelector"]
    {'matchLabels': {'kubernetes.io/metadata.name': 'nova-prod'}}
    """
    return rewrite_policy(policy, moves, namespace_labels, target_labels=target_labels).policy


def rewrite_policy(
    policy: Mapping[str, Any],
    moves: Mapping[str, str],
    namespace_labels: Mapping[str, Mapping[str, str]],
    *,
    target_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> PolicyRewrite:
    """Like :func:`rewrite_policy_for_move`, with notes on what could not stay exact."""
    world = _World(moves, namespace_labels, target_labels or {})
    out = copy.deepcopy(dict(policy))
    meta = out.setdefault("metadata", {})
    own = str(meta.get("namespace") or "default")
    meta["namespace"] = world.f(own)
    label = f"NetworkPolicy {own}/{meta.get('name')}"
    notes: list[str] = []
    joined = world.joined(own)
    if joined:
        notes.append(
            f"{label}: {world.f(own)} also receives the pods of {', '.join(joined)}; spec.podSelector and "
            "podSelector-only peers now select them too where their labels match"
        )
    spec = out.get("spec") or {}
    for direction, key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or ()):
            if isinstance(rule, dict) and rule.get(key):
                where = f"{label} spec.{direction}[{i}]"
                rule[key] = [p for peer in rule[key] for p in _rewrite_peer(peer, world, where, notes)]
    return PolicyRewrite(out, tuple(notes))


def rewrite_policies_for_move(
    policies: Iterable[Mapping[str, Any]],
    moves: Mapping[str, str],
    namespace_labels: Mapping[str, Mapping[str, str]],
    *,
    target_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> PolicySetRewrite:
    """Rewrite every policy; identical policies merged into one namespace are kept once,
    different ones with the same name are renamed ``<name>-<old namespace>``."""
    kept: dict[tuple[str, str], dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    notes: list[str] = []
    # Policies of namespaces that stay come first and keep their names.
    ordered = sorted(policies, key=lambda p: (p.get("metadata") or {}).get("namespace") in moves)
    for raw in ordered:
        old_ns = str((raw.get("metadata") or {}).get("namespace") or "default")
        result = rewrite_policy(raw, moves, namespace_labels, target_labels=target_labels)
        policy, meta = result.policy, result.policy["metadata"]
        key = (meta["namespace"], str(meta.get("name")))
        twin = kept.get(key)
        if twin is not None and twin.get("spec") == policy.get("spec"):
            continue
        if twin is not None:
            meta["name"] = f"{meta.get('name')}-{old_ns}"
            notes.append(f"NetworkPolicy {old_ns}/{key[1]} renamed {meta['name']}: {key[0]} already has one")
        kept[(meta["namespace"], str(meta["name"]))] = policy
        out.append(policy)
        for note in result.notes:
            if note not in notes:
                notes.append(note)
    return PolicySetRewrite(tuple(out), tuple(notes))


class _World:
    """Namespaces before and after the move, with their labels."""

    def __init__(
        self,
        moves: Mapping[str, str],
        namespace_labels: Mapping[str, Mapping[str, str]],
        target_labels: Mapping[str, Mapping[str, str]],
    ) -> None:
        self.moves = {old: new for old, new in moves.items() if old != new}
        self.before = {ns: {**labels, NAME_LABEL: ns} for ns, labels in namespace_labels.items()}
        for ns in self.moves:
            self.before.setdefault(ns, {NAME_LABEL: ns})
        self.after = {ns: labels for ns, labels in self.before.items() if ns not in self.moves}
        for new in set(self.moves.values()) | set(target_labels):
            labels = target_labels.get(new, self.after.get(new, {}))
            self.after[new] = {**labels, NAME_LABEL: new}

    def f(self, ns: str) -> str:
        return self.moves.get(ns, ns)

    def joined(self, ns: str) -> list[str]:
        """Other namespaces whose pods end up where ``ns``'s pods do."""
        target = self.f(ns)
        return sorted(other for other in self.before if other != ns and self.f(other) == target)


def _rewrite_peer(peer: Any, world: _World, where: str, notes: list[str]) -> list[Any]:
    if not isinstance(peer, dict) or not isinstance(peer.get("namespaceSelector"), dict):
        return [peer]
    raw = peer["namespaceSelector"]
    selector = Selector.parse(raw)
    if not selector.valid:
        return [peer]  # the API server would reject it; leave it for the user to see
    matched = {ns for ns, labels in world.before.items() if selector.matches(labels)}
    wanted = {world.f(ns) for ns in matched}
    unwanted = {world.f(ns) for ns in world.before if ns not in matched}
    mixed = sorted(wanted & unwanted)
    if mixed:
        strays = sorted(ns for ns in world.before if ns not in matched and world.f(ns) in mixed)
        notes.append(
            f"{where}: {', '.join(strays)} merge into {', '.join(mixed)} with namespaces the selector matched; "
            "their pods are admitted too (no namespace selector can tell them apart)"
        )
    renamed = _rename(raw, world, wanted)
    after = Selector.parse(renamed)
    now = {ns for ns, labels in world.after.items() if after.matches(labels)}
    extra, missing = sorted(now - wanted), sorted(wanted - now)
    if extra:
        renamed.setdefault("matchExpressions", []).append({"key": NAME_LABEL, "operator": "NotIn", "values": extra})
    out = [{**peer, "namespaceSelector": renamed}]
    if missing:
        named = {"matchExpressions": [{"key": NAME_LABEL, "operator": "In", "values": missing}]}
        out.append({**peer, "namespaceSelector": named})
    return out


def _rename(raw: Mapping[str, Any], world: _World, wanted: set[str]) -> dict[str, Any]:
    """Map namespace names in the selector; a NotIn keeps no name that must stay matched."""
    out = copy.deepcopy(dict(raw))
    labels = out.get("matchLabels")
    if isinstance(labels, dict) and NAME_LABEL in labels:
        labels[NAME_LABEL] = world.f(str(labels[NAME_LABEL]))
    for expr in out.get("matchExpressions") or ():
        if not isinstance(expr, dict) or expr.get("key") != NAME_LABEL or expr.get("operator") not in ("In", "NotIn"):
            continue
        values = [world.f(str(v)) for v in expr.get("values") or ()]
        if expr["operator"] == "NotIn":
            values = [v for v in values if v not in wanted]
        expr["values"] = sorted(dict.fromkeys(values))
    if "matchExpressions" in out:
        # In/NotIn need values: a NotIn emptied above excludes nothing and goes.
        out["matchExpressions"] = [e for e in out["matchExpressions"] if not _emptied(e)]
        if not out["matchExpressions"]:
            del out["matchExpressions"]
    return out


def _emptied(expr: Any) -> bool:
    return (
        isinstance(expr, dict)
        and expr.get("key") == NAME_LABEL
        and expr.get("operator") == "NotIn"
        and not expr.get("values")
    )
